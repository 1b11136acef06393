package relay

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sidehook/sidehook/internal/auth"
)

// retiredFor is how long a replaced key stays in the JWKS: its last token
// expires DefaultAttemptTTL after the rotation, plus a minute for clocks.
const retiredFor = auth.DefaultAttemptTTL + time.Minute

// keyring holds the relay's key pairs for jwt: one current key per
// asymmetric algorithm in use, and the retired ones whose tokens may still
// be alive. Keys live in files under dir ({alg}.pem, and
// retired-{until}-{alg}.pem) so receivers' cached JWKS stay valid across
// restarts; with no dir they live in memory only.
type keyring struct {
	dir string
	now func() time.Time

	mu      sync.RWMutex
	cur     map[auth.Algorithm]*auth.SigningKey
	retired []retiredKey
}

type retiredKey struct {
	key   auth.SigningKey
	until time.Time
	file  string
}

func newKeyring(dir string, now func() time.Time) *keyring {
	return &keyring{dir: dir, now: now, cur: make(map[auth.Algorithm]*auth.SigningKey)}
}

// load reads (or generates, on first start) the current key of each
// algorithm and the retired keys still within their lifetime.
func (k *keyring) load(algs []auth.Algorithm) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.dir != "" {
		if err := os.MkdirAll(k.dir, 0o700); err != nil {
			return fmt.Errorf("keys: %w", err)
		}
		if err := k.loadRetired(); err != nil {
			return err
		}
	}
	for _, alg := range algs {
		if k.dir != "" {
			b, err := os.ReadFile(k.path(alg))
			if err == nil {
				key, err := auth.ParseKey(b)
				if err != nil {
					return fmt.Errorf("keys: %s: %w", k.path(alg), err)
				}
				if key.Alg != alg {
					return fmt.Errorf("keys: %s holds a %s key", k.path(alg), key.Alg)
				}
				k.cur[alg] = &key
				continue
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("keys: %w", err)
			}
		}
		key, err := k.generate(alg)
		if err != nil {
			return err
		}
		k.cur[alg] = key
	}
	return nil
}

func (k *keyring) path(alg auth.Algorithm) string { return filepath.Join(k.dir, string(alg)+".pem") }

func (k *keyring) generate(alg auth.Algorithm) (*auth.SigningKey, error) {
	key, err := auth.GenerateKey(alg)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	if k.dir != "" {
		b, err := auth.MarshalKey(key)
		if err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		if err := writeFileAtomic(k.path(alg), b); err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
	}
	return &key, nil
}

func (k *keyring) loadRetired() error {
	entries, err := os.ReadDir(k.dir)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	now := k.now()
	for _, e := range entries {
		name := e.Name()
		rest, ok := strings.CutPrefix(name, "retired-")
		if !ok || !strings.HasSuffix(name, ".pem") {
			continue
		}
		p := filepath.Join(k.dir, name)
		sec, _, _ := strings.Cut(rest, "-")
		n, err := strconv.ParseInt(sec, 10, 64)
		if err != nil || time.Unix(n, 0).Before(now) {
			os.Remove(p)
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("keys: %w", err)
		}
		key, err := auth.ParseKey(b)
		if err != nil {
			return fmt.Errorf("keys: %s: %w", p, err)
		}
		k.retired = append(k.retired, retiredKey{key: key, until: time.Unix(n, 0), file: p})
	}
	return nil
}

func (k *keyring) current(alg auth.Algorithm) *auth.SigningKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.cur[alg]
}

// rotate replaces the current key of alg; the old one stays published
// until every token it signed has expired.
func (k *keyring) rotate(alg auth.Algorithm) (*auth.SigningKey, error) {
	if !alg.Asymmetric() {
		return nil, fmt.Errorf("keys: %s has no key pair to rotate", alg)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	old := k.cur[alg]
	if old != nil {
		until := k.now().Add(retiredFor)
		rk := retiredKey{key: *old, until: until}
		if k.dir != "" {
			rk.file = filepath.Join(k.dir, fmt.Sprintf("retired-%d-%s-%s.pem", until.Unix(), alg, safeName(old.KID)))
			b, err := auth.MarshalKey(*old)
			if err != nil {
				return nil, fmt.Errorf("keys: %w", err)
			}
			if err := writeFileAtomic(rk.file, b); err != nil {
				return nil, fmt.Errorf("keys: %w", err)
			}
		}
		k.retired = append(k.retired, rk)
	}
	key, err := k.generate(alg)
	if err != nil {
		return nil, err
	}
	k.cur[alg] = key
	return key, nil
}

// jwks is the public half of every current key and every retired key
// still within its lifetime.
func (k *keyring) jwks() auth.JWKS {
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	set := auth.JWKS{Keys: []auth.JWK{}}
	for _, alg := range []auth.Algorithm{auth.RS256, auth.ES256, auth.EdDSA} {
		if key := k.cur[alg]; key != nil {
			if j, err := auth.PublicJWK(*key); err == nil {
				set.Keys = append(set.Keys, j)
			}
		}
	}
	live := k.retired[:0]
	for _, rk := range k.retired {
		if rk.until.Before(now) {
			if rk.file != "" {
				os.Remove(rk.file)
			}
			continue
		}
		live = append(live, rk)
		if j, err := auth.PublicJWK(rk.key); err == nil {
			set.Keys = append(set.Keys, j)
		}
	}
	k.retired = live
	return set
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			return r
		}
		return '_'
	}, s)
}

// writeFileAtomic writes through a temporary file and a rename, so a crash
// never leaves half a key.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// RotateKey replaces the relay's key pair for alg (RS256, ES256 or EdDSA).
// Tokens signed with the old key keep verifying: its public key stays in
// the JWKS until they have expired.
func (r *Relay) RotateKey(alg auth.Algorithm) error {
	_, err := r.keys.rotate(alg)
	return err
}

// JWKS returns the document served at /.well-known/jwks.json.
func (r *Relay) JWKS() auth.JWKS { return r.keys.jwks() }
