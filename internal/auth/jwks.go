package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	neturl "net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// JWK is one public key of a JSON Web Key Set (RFC 7517, RFC 8037 for
// Ed25519). Binary fields are base64url without padding.
type JWK struct {
	Kty string `json:"kty,omitempty"`
	Kid string `json:"kid,omitempty"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
	Crv string `json:"crv,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
}

// JWKS is the document served at /.well-known/jwks.json.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// PublicJWK returns the public half of a key pair as a JWK with kid, alg
// and use set. An HS256 key has nothing publishable and is an error.
func PublicJWK(k SigningKey) (JWK, error) {
	if err := k.validate(); err != nil {
		return JWK{}, err
	}
	if k.Alg == HS256 {
		return JWK{}, errors.New("auth: an HS256 secret has no public key")
	}
	j, err := publicJWK(k.Private.Public(), k.Alg, k.KID)
	if err != nil {
		return JWK{}, err
	}
	if j.Kid == "" {
		if j.Kid, err = j.Thumbprint(); err != nil {
			return JWK{}, err
		}
	}
	return j, nil
}

// NewJWKS builds the document a relay publishes from its key pairs,
// current and retiring alike (a retired key stays until its last token
// has expired).
func NewJWKS(keys ...SigningKey) (JWKS, error) {
	set := JWKS{Keys: make([]JWK, 0, len(keys))}
	for _, k := range keys {
		j, err := PublicJWK(k)
		if err != nil {
			return JWKS{}, err
		}
		set.Keys = append(set.Keys, j)
	}
	return set, nil
}

func publicJWK(pub crypto.PublicKey, alg Algorithm, kid string) (JWK, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	j := JWK{Kid: kid, Alg: string(alg), Use: "sig"}
	switch p := pub.(type) {
	case *rsa.PublicKey:
		j.Kty, j.N, j.E = "RSA", b64(p.N.Bytes()), b64(big.NewInt(int64(p.E)).Bytes())
	case *ecdsa.PublicKey:
		raw, err := p.Bytes()
		if err != nil || len(raw) != 65 {
			return JWK{}, fmt.Errorf("auth: encode EC public key: %v", err)
		}
		j.Kty, j.Crv, j.X, j.Y = "EC", "P-256", b64(raw[1:33]), b64(raw[33:])
	case ed25519.PublicKey:
		j.Kty, j.Crv, j.X = "OKP", "Ed25519", b64(p)
	default:
		return JWK{}, fmt.Errorf("auth: unsupported key type %T", pub)
	}
	return j, nil
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of the key, base64url: a
// kid that is stable across restarts and derived only from public members.
func (j JWK) Thumbprint() (string, error) {
	// RFC 7638 §3.2: only the required members, in lexicographic order, no
	// whitespace. Struct field order gives that order through encoding/json.
	var v any
	switch j.Kty {
	case "RSA":
		v = struct {
			E   string `json:"e"`
			Kty string `json:"kty"`
			N   string `json:"n"`
		}{j.E, j.Kty, j.N}
	case "EC":
		v = struct {
			Crv string `json:"crv"`
			Kty string `json:"kty"`
			X   string `json:"x"`
			Y   string `json:"y"`
		}{j.Crv, j.Kty, j.X, j.Y}
	case "OKP":
		v = struct {
			Crv string `json:"crv"`
			Kty string `json:"kty"`
			X   string `json:"x"`
		}{j.Crv, j.Kty, j.X}
	default:
		return "", fmt.Errorf("auth: thumbprint: unsupported key type %q", j.Kty)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("auth: thumbprint: %w", err)
	}
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// PublicKey decodes the key and returns it with the only algorithm it may
// verify. A key whose alg member names another algorithm, or whose use is
// not "sig", is refused rather than trusted.
func (j JWK) PublicKey() (crypto.PublicKey, Algorithm, error) {
	if j.Use != "" && j.Use != "sig" {
		return nil, "", fmt.Errorf("auth: jwk %q: use %q is not sig", j.Kid, j.Use)
	}
	pub, err := j.decode()
	if err != nil {
		return nil, "", fmt.Errorf("auth: jwk %q: %w", j.Kid, err)
	}
	alg, err := algorithmFor(pub)
	if err != nil {
		return nil, "", fmt.Errorf("auth: jwk %q: %w", j.Kid, err)
	}
	if j.Alg != "" && j.Alg != string(alg) {
		return nil, "", fmt.Errorf("auth: jwk %q: alg %q does not fit a %s key", j.Kid, j.Alg, j.Kty)
	}
	return pub, alg, nil
}

func (j JWK) decode() (crypto.PublicKey, error) {
	dec := base64.RawURLEncoding.DecodeString
	switch j.Kty {
	case "RSA":
		n, err := dec(j.N)
		if err != nil || len(n) == 0 {
			return nil, errors.New("invalid n")
		}
		e, err := dec(j.E)
		// Exponents above 2^31 are never used and would overflow int on
		// 32-bit platforms.
		if err != nil || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("invalid e")
		}
		exp := new(big.Int).SetBytes(e)
		if !exp.IsInt64() || exp.Int64() < 3 || exp.Int64() > 1<<31-1 || exp.Bit(0) == 0 {
			return nil, errors.New("invalid e")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())}, nil
	case "EC":
		if j.Crv != "P-256" {
			return nil, fmt.Errorf("unsupported curve %q", j.Crv)
		}
		x, errX := dec(j.X)
		y, errY := dec(j.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return nil, errors.New("invalid x or y")
		}
		point := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
		if err != nil {
			return nil, fmt.Errorf("invalid point: %w", err)
		}
		return pub, nil
	case "OKP":
		if j.Crv != "Ed25519" {
			return nil, fmt.Errorf("unsupported curve %q", j.Crv)
		}
		x, err := dec(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("invalid x")
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, fmt.Errorf("unsupported key type %q", j.Kty)
}

// ErrUnknownKID is returned by JWKSFetcher.Key when the set, even freshly
// fetched, has no key with that id.
var ErrUnknownKID = errors.New("auth: unknown key id")

// unknownKIDError is ErrUnknownKID with what the set holds, so a
// refusal can say which keys a token could have named.
type unknownKIDError struct {
	kid string
	// keys are the set's keys as a reason names them, "ES256 \"kid\"",
	// sorted; n is how many it holds.
	keys []string
	n    int
}

func (e *unknownKIDError) Error() string        { return fmt.Sprintf("%v %q", ErrUnknownKID, e.kid) }
func (e *unknownKIDError) Is(target error) bool { return target == ErrUnknownKID }

// maxNamedKeys is how many of a JWKS's keys a reason names.
const maxNamedKeys = 4

// held names the keys of the set: "3 keys", and up to maxNamedKeys of
// them, "ES256 \"k1\", EdDSA \"k2\" and 1 more".
func (e *unknownKIDError) held() (count, named string) {
	count = strconv.Itoa(e.n) + " keys"
	if e.n == 1 {
		count = "1 key"
	}
	shown := e.keys[:min(len(e.keys), maxNamedKeys)]
	named = strings.Join(shown, ", ")
	if more := e.n - len(shown); more > 0 {
		named += " and " + strconv.Itoa(more) + " more"
	}
	return count, named
}

// unknownKID is the error of a kid the set does not hold; f.mu is held.
func (f *JWKSFetcher) unknownKID(kid string) error {
	keys := make([]string, 0, len(f.keys))
	for id, e := range f.keys {
		name := string(e.alg) + " without a kid"
		if id != "" {
			name = string(e.alg) + " " + strconv.Quote(clipTo(id, maxKIDText))
		}
		keys = append(keys, name)
	}
	slices.Sort(keys)
	return &unknownKIDError{kid: kid, keys: keys, n: len(f.keys)}
}

// maxKIDText is how much of a key id a reason shows: a thumbprint is
// told from another by its start.
const maxKIDText = 16

// ErrJWKSClosed is returned by JWKSFetcher.Key when the key would need a
// fetch and the fetcher is closed.
var ErrJWKSClosed = errors.New("auth: jwks: fetcher closed")

// maxJWKSBytes bounds the JWKS document: a set of a few keys is a few KiB.
const maxJWKSBytes = 1 << 20

// JWKSOptions tune a JWKSFetcher; zero values take the defaults.
type JWKSOptions struct {
	// TTL is how long a fetched set is used before it is fetched again
	// (default 5m).
	TTL time.Duration
	// MinRefetch is the least time between two fetches made for unknown
	// kids (and after a failed fetch), so a stream of tokens with unknown
	// kids cannot turn the receiver into a flood against the key server
	// (default 10s).
	MinRefetch time.Duration
	// Timeout bounds one fetch (default 10s).
	Timeout time.Duration
	Now     func() time.Time
}

// JWKSFetcher serves public keys from a remote JWKS: cached for TTL, fetched
// again when a token names an unknown kid (at most once per MinRefetch
// for unknown kids, however recent the last routine fetch),
// with concurrent callers sharing one fetch. Safe for concurrent use.
// Close stops a fetch in progress and waits for it.
type JWKSFetcher struct {
	url string
	// shown is url as errors (and verdict reasons) name it, its password
	// redacted.
	shown      string
	client     *http.Client
	ownClient  bool // made here: Close closes its idle connections
	ttl        time.Duration
	minRefetch time.Duration
	timeout    time.Duration
	now        func() time.Time

	mu          sync.Mutex
	keys        map[string]jwksEntry // nil until the first successful fetch
	fetchedAt   time.Time            // end of the last successful fetch
	attemptedAt time.Time            // start of the last fetch, successful or not
	// kidAttemptedAt is the start of the last fetch made for an unknown
	// kid while the set was fresh: only those wait out MinRefetch for
	// one another. A routine fetch (the first, or past the TTL) does not
	// hold back the next unknown kid, which is how a rotated-in key
	// first shows: refused (401) it would never be retried.
	kidAttemptedAt time.Time
	lastErr        error // outcome of the last fetch
	inflight       *jwksCall
	closed         bool

	// stop ends the fetches' context (Close); fetches counts them, Added
	// under mu while not closed.
	ctx     context.Context
	stop    context.CancelFunc
	fetches sync.WaitGroup
}

type jwksEntry struct {
	pub crypto.PublicKey
	alg Algorithm
}

type jwksCall struct {
	done chan struct{}
	err  error
}

// NewJWKSFetcher makes a fetcher for url; it does no I/O until Key is
// called. A nil client gets one of its own, on a transport of its own
// (never http.DefaultClient or Go's shared default transport, so nobody
// else's settings leak in and Close can close its idle connection).
func NewJWKSFetcher(url string, client *http.Client, opts JWKSOptions) *JWKSFetcher {
	own := client == nil
	if own {
		client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	ctx, stop := context.WithCancel(context.Background())
	shown := "the JWKS URL"
	if u, err := neturl.Parse(url); err == nil {
		shown = u.Redacted()
	}
	f := &JWKSFetcher{
		url: url, shown: shown, client: client, ownClient: own,
		ttl: opts.TTL, minRefetch: opts.MinRefetch, timeout: opts.Timeout, now: opts.Now,
		ctx: ctx, stop: stop,
	}
	if f.ttl <= 0 {
		f.ttl = 5 * time.Minute
	}
	if f.minRefetch <= 0 {
		f.minRefetch = 10 * time.Second
	}
	if f.timeout <= 0 {
		f.timeout = 10 * time.Second
	}
	if f.now == nil {
		f.now = time.Now
	}
	return f
}

// URL returns the JWKS address, its password (if any) redacted.
func (f *JWKSFetcher) URL() string { return f.shown }

// Close stops a fetch in progress (its waiters get its error) and waits
// for it, then closes the idle connection of a client the fetcher made
// itself. Keys already fetched are still served; one that needs a fetch
// fails with ErrJWKSClosed. Close is safe to call twice and
// concurrently.
func (f *JWKSFetcher) Close() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.stop()
	f.fetches.Wait()
	if f.ownClient {
		f.client.CloseIdleConnections()
	}
	return nil
}

// Key returns the key with that id and the only algorithm it may verify. An
// empty kid matches when the set holds exactly one key.
func (f *JWKSFetcher) Key(ctx context.Context, kid string) (crypto.PublicKey, Algorithm, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", fmt.Errorf("auth: jwks: %w", err)
	}
	f.mu.Lock()
	now := f.now()
	fresh := f.keys != nil && now.Sub(f.fetchedAt) < f.ttl
	if fresh {
		if e, ok := f.lookup(kid); ok {
			f.mu.Unlock()
			return e.pub, e.alg, nil
		}
	}
	call := f.inflight
	if call == nil {
		last := f.attemptedAt
		if fresh && f.lastErr == nil {
			last = f.kidAttemptedAt
		}
		if !last.IsZero() && now.Sub(last) < f.minRefetch {
			// The last fetch is too recent to repeat: its answer stands.
			lastErr := f.lastErr
			e, ok := f.lookup(kid)
			f.mu.Unlock()
			if lastErr != nil {
				return nil, "", lastErr
			}
			if ok {
				return e.pub, e.alg, nil
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			return nil, "", f.unknownKID(kid)
		}
		if f.closed {
			f.mu.Unlock()
			return nil, "", ErrJWKSClosed
		}
		call = &jwksCall{done: make(chan struct{})}
		f.inflight = call
		f.attemptedAt = now
		if fresh {
			f.kidAttemptedAt = now
		}
		// The fetch belongs to every waiter, so one caller giving up must
		// not cancel it; it is bounded by its own timeout, and by Close.
		f.fetches.Add(1)
		go f.fetch(call)
	}
	f.mu.Unlock()

	select {
	case <-call.done:
	case <-ctx.Done():
		return nil, "", fmt.Errorf("auth: jwks: %w", ctx.Err())
	}
	if call.err != nil {
		return nil, "", call.err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.lookup(kid)
	if !ok {
		return nil, "", f.unknownKID(kid)
	}
	return e.pub, e.alg, nil
}

// lookup must be called with f.mu held.
func (f *JWKSFetcher) lookup(kid string) (jwksEntry, bool) {
	if kid == "" {
		if len(f.keys) == 1 {
			for _, e := range f.keys {
				return e, true
			}
		}
		return jwksEntry{}, false
	}
	e, ok := f.keys[kid]
	return e, ok
}

func (f *JWKSFetcher) fetch(call *jwksCall) {
	defer f.fetches.Done()
	ctx, cancel := context.WithTimeout(f.ctx, f.timeout)
	defer cancel()
	keys, err := f.get(ctx)
	f.mu.Lock()
	if err == nil {
		f.keys = keys
		f.fetchedAt = f.now()
	}
	f.lastErr = err
	f.inflight = nil
	f.mu.Unlock()
	call.err = err
	close(call.done)
}

func (f *JWKSFetcher) get(ctx context.Context) (map[string]jwksEntry, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url, nil)
	if err != nil {
		// Not err: it quotes the URL whole, password and all.
		return nil, errors.New("auth: jwks: not a URL: " + f.shown)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("auth: jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("auth: jwks: fetch %s: status %d", f.shown, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("auth: jwks: read %s: %w", f.shown, err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("auth: jwks: %s is larger than %d bytes", f.shown, maxJWKSBytes)
	}
	return parseJWKS(body)
}

// parseJWKS decodes a JWKS document into its usable keys by kid. Keys it
// cannot use (encryption keys, other curves, short RSA) are skipped so one
// exotic key does not hide the rest; a set with no usable key is an error.
func parseJWKS(data []byte) (map[string]jwksEntry, error) {
	var set JWKS
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("auth: jwks: decode: %w", err)
	}
	keys := make(map[string]jwksEntry, len(set.Keys))
	for _, j := range set.Keys {
		pub, alg, err := j.PublicKey()
		if err != nil {
			continue
		}
		if _, dup := keys[j.Kid]; !dup {
			keys[j.Kid] = jwksEntry{pub: pub, alg: alg}
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("auth: jwks: no usable signing key in the set")
	}
	return keys, nil
}
