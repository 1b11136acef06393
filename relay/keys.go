package relay

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sidehook/sidehook/internal/auth"
)

// retiredFor is how long a replaced key stays in the JWKS: its last token
// expires DefaultAttemptTTL after the rotation, plus a minute for clocks.
const retiredFor = auth.DefaultAttemptTTL + time.Minute

// retiredPrefix names retired key documents: retired-{until}-{alg}-{kid}.
const retiredPrefix = "retired-"

// keyring holds the relay's key pairs for jwt: one current key per
// asymmetric algorithm in use, and the retired ones whose tokens may still
// be alive. Keys are kept in the store (the current one under its
// algorithm's name) so receivers' cached JWKS stay valid across restarts
// and relays sharing a store sign with the same key. A relay on a shared
// store (natsstore) reloads the keyring when any relay or `sidehook relay
// rotate-key` changes the keys; one on Badger loads them at its start.
type keyring struct {
	store Store
	now   func() time.Time

	mu      sync.RWMutex
	algs    []auth.Algorithm // the algorithms in use, set by load
	cur     map[auth.Algorithm]*auth.SigningKey
	retired []retiredKey
}

type retiredKey struct {
	key   auth.SigningKey
	until time.Time
}

func newKeyring(st Store, now func() time.Time) *keyring {
	return &keyring{store: st, now: now, cur: make(map[auth.Algorithm]*auth.SigningKey)}
}

// load reads (or generates, on first start) the current key of each
// algorithm and the retired keys still within their lifetime; expired
// ones are deleted.
func (k *keyring) load(ctx context.Context, algs []auth.Algorithm) error {
	k.mu.Lock()
	k.algs = algs
	k.mu.Unlock()
	return k.reload(ctx)
}

// reload reads the keys of load's algorithms again and replaces the ones
// in memory with them: what another relay sharing the store rotated.
func (k *keyring) reload(ctx context.Context) error {
	docs, err := k.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	k.mu.RLock()
	algs := k.algs
	k.mu.RUnlock()
	now := k.now()
	var retired []retiredKey
	for name, doc := range docs {
		rest, ok := strings.CutPrefix(name, retiredPrefix)
		if !ok {
			continue
		}
		sec, _, _ := strings.Cut(rest, "-")
		n, err := strconv.ParseInt(sec, 10, 64)
		if err != nil || time.Unix(n, 0).Before(now) {
			if err := k.store.DeleteSigningKey(ctx, name); err != nil {
				return fmt.Errorf("keys: delete expired %s: %w", name, err)
			}
			continue
		}
		key, err := auth.ParseKey(doc)
		if err != nil {
			return fmt.Errorf("keys: %s: %w", name, err)
		}
		retired = append(retired, retiredKey{key: key, until: time.Unix(n, 0)})
	}
	// Oldest retirement first, as rotate appends them.
	slices.SortFunc(retired, func(a, b retiredKey) int { return a.until.Compare(b.until) })
	cur := make(map[auth.Algorithm]*auth.SigningKey, len(algs))
	for _, alg := range algs {
		doc, ok := docs[string(alg)]
		if !ok {
			if doc, err = k.create(ctx, alg); err != nil {
				return err
			}
		}
		key, err := auth.ParseKey(doc)
		if err != nil {
			return fmt.Errorf("keys: %s: %w", alg, err)
		}
		if key.Alg != alg {
			return fmt.Errorf("keys: the key stored as %s is a %s key", alg, key.Alg)
		}
		cur[alg] = &key
	}
	k.mu.Lock()
	k.cur, k.retired = cur, retired
	k.mu.Unlock()
	return nil
}

// create generates a key and stores it unless another relay sharing the
// store did first: the one stored is returned.
func (k *keyring) create(ctx context.Context, alg auth.Algorithm) ([]byte, error) {
	doc, err := generateKey(alg)
	if err != nil {
		return nil, err
	}
	stored, err := k.store.CreateSigningKey(ctx, string(alg), doc)
	if err != nil {
		return nil, fmt.Errorf("keys: store %s: %w", alg, err)
	}
	return stored, nil
}

func generateKey(alg auth.Algorithm) ([]byte, error) {
	key, err := auth.GenerateKey(alg)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	b, err := auth.MarshalKey(key)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return b, nil
}

// StoredKey returns the key pair a relay on st signs alg JWTs with: the
// one Start would load, generated and stored now if there is none yet (a
// relay started on st later loads that one). It lets a program that runs
// a relay beside something else sign as the relay does: `sidehook dev`
// gives it to its mock receiver, which re-signs replays of what the relay
// signed. It is the key of the moment: a rotation after it (RotateKey,
// RotateStoredKey) is not followed by the key returned.
func StoredKey(ctx context.Context, st Store, alg auth.Algorithm) (*auth.SigningKey, error) {
	if !alg.Asymmetric() {
		return nil, fmt.Errorf("relay: %s has no key pair", alg)
	}
	k := newKeyring(st, time.Now)
	if err := k.load(ctx, []auth.Algorithm{alg}); err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	return k.current(alg), nil
}

// Rotation is what a key rotation did.
type Rotation struct {
	Alg auth.Algorithm
	// KID is the new current key's: every JWT of Alg is signed with it.
	KID string
	// Retired is the replaced key's KID ("" when there was none); it
	// stays in the JWKS until Until, when its last token has expired.
	Retired string
	Until   time.Time
}

// RotateStoredKey replaces the key pair of alg kept in st, as
// Relay.RotateKey does, for a program that runs no relay on st (`sidehook
// relay rotate-key`). Relays sharing st (natsstore) follow it at once:
// they sign with the new key and publish both. A relay on Badger holds its
// directory, so it is stopped first and loads the new key at its start.
// A store with no key of alg is refused: a relay signing with alg makes
// its key at its first start, so none has run on st (on NATS, another
// prefix or other servers than the relays'), and a key made there would
// be no relay's.
func RotateStoredKey(ctx context.Context, st Store, alg auth.Algorithm) (Rotation, error) {
	if !alg.Asymmetric() {
		return Rotation{}, fmt.Errorf("relay: %s has no key pair to rotate", alg)
	}
	docs, err := st.SigningKeys(ctx)
	if err != nil {
		return Rotation{}, fmt.Errorf("relay: keys: %w", err)
	}
	if _, ok := docs[string(alg)]; !ok {
		return Rotation{}, fmt.Errorf("relay: the store holds no %s key: no relay signing with %s has started on it (a relay makes its key at its first start); name the relays' store: their --config, with the same store.servers and store.prefix", alg, alg)
	}
	k := newKeyring(st, time.Now)
	if err := k.load(ctx, []auth.Algorithm{alg}); err != nil {
		return Rotation{}, fmt.Errorf("relay: %w", err)
	}
	rot, err := k.rotate(ctx, alg)
	if err != nil {
		return Rotation{}, fmt.Errorf("relay: %w", err)
	}
	return rot, nil
}

func (k *keyring) current(alg auth.Algorithm) *auth.SigningKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.cur[alg]
}

// rotate replaces the current key of alg; the old one stays published
// until every token it signed has expired. The old key is stored as
// retired before the new one replaces it, so a crash between the two
// writes leaves both published rather than neither. Once begun, the
// writes are not cut short by ctx.
func (k *keyring) rotate(ctx context.Context, alg auth.Algorithm) (Rotation, error) {
	if !alg.Asymmetric() {
		return Rotation{}, fmt.Errorf("keys: %s has no key pair to rotate", alg)
	}
	ctx = context.WithoutCancel(ctx)
	k.mu.Lock()
	defer k.mu.Unlock()
	rot := Rotation{Alg: alg}
	if old := k.cur[alg]; old != nil {
		// Whole seconds, as the name keeps it.
		until := k.now().Add(retiredFor).Truncate(time.Second)
		name := fmt.Sprintf("%s%d-%s-%s", retiredPrefix, until.Unix(), alg, safeName(old.KID))
		b, err := auth.MarshalKey(*old)
		if err != nil {
			return Rotation{}, fmt.Errorf("keys: %w", err)
		}
		if err := k.store.PutSigningKey(ctx, name, b); err != nil {
			return Rotation{}, fmt.Errorf("keys: retire %s: %w", alg, err)
		}
		k.retired = append(k.retired, retiredKey{key: *old, until: until})
		rot.Retired, rot.Until = old.KID, until
	}
	doc, err := generateKey(alg)
	if err != nil {
		return Rotation{}, err
	}
	if err := k.store.PutSigningKey(ctx, string(alg), doc); err != nil {
		return Rotation{}, fmt.Errorf("keys: store %s: %w", alg, err)
	}
	key, err := auth.ParseKey(doc)
	if err != nil {
		return Rotation{}, fmt.Errorf("keys: %w", err)
	}
	k.cur[alg] = &key
	rot.KID = key.KID
	return rot, nil
}

// jwks is the public half of every current key and every retired key
// still within its lifetime (expired ones are deleted at the next start).
func (k *keyring) jwks() auth.JWKS {
	now := k.now()
	k.mu.RLock()
	defer k.mu.RUnlock()
	set := auth.JWKS{Keys: []auth.JWK{}}
	for _, alg := range []auth.Algorithm{auth.RS256, auth.ES256, auth.EdDSA} {
		if key := k.cur[alg]; key != nil {
			if j, err := auth.PublicJWK(*key); err == nil {
				set.Keys = append(set.Keys, j)
			}
		}
	}
	for _, rk := range k.retired {
		// A key retired and still current is one another relay is
		// rotating: listed once.
		if rk.until.Before(now) || k.cur[rk.key.Alg] != nil && k.cur[rk.key.Alg].KID == rk.key.KID {
			continue
		}
		if j, err := auth.PublicJWK(rk.key); err == nil {
			set.Keys = append(set.Keys, j)
		}
	}
	return set
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, s)
}
