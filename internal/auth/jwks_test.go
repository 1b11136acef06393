package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidehook/sidehook/internal/auth"
)

// jwksServer serves a JWKS that tests can change, counting fetches.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int32
	gate chan struct{} // when non-nil, each fetch waits for it to close

	mu     sync.Mutex
	keys   []auth.SigningKey
	status int
}

func newJWKSServer(tb testing.TB, keys ...auth.SigningKey) *jwksServer {
	tb.Helper()
	s := &jwksServer{keys: keys, status: http.StatusOK}
	// httptest binds 127.0.0.1:0.
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if s.gate != nil {
			<-s.gate
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.status != http.StatusOK {
			w.WriteHeader(s.status)
			return
		}
		set, err := auth.NewJWKS(s.keys...)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	tb.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setKeys(keys ...auth.SigningKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
}

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func newClock() *clock               { c := &clock{}; c.ns.Store(t0.UnixNano()); return c }
func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }

func TestJWKSFetcher(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ec, ed, rs := keyPairs()[auth.ES256], keyPairs()[auth.EdDSA], keyPairs()[auth.RS256]

	t.Run("OKCachedForTTL", func(t *testing.T) {
		t.Parallel()
		srv := newJWKSServer(t, ec, ed)
		clk := newClock()
		f := auth.NewJWKSFetcher(srv.URL, srv.Client(), auth.JWKSOptions{TTL: time.Minute, Now: clk.Now})
		for _, k := range []auth.SigningKey{ec, ed, ec} {
			_, alg, err := f.Key(ctx, k.KID)
			if err != nil || alg != k.Alg {
				t.Fatalf("Key(%s): got %s, %v", k.Alg, alg, err)
			}
		}
		if n := srv.hits.Load(); n != 1 {
			t.Fatalf("fetches: got %d, want 1", n)
		}
		clk.Add(time.Minute + time.Second)
		if _, _, err := f.Key(ctx, ec.KID); err != nil {
			t.Fatal(err)
		}
		if n := srv.hits.Load(); n != 2 {
			t.Fatalf("fetches after TTL: got %d, want 2", n)
		}
	})

	t.Run("OKRefetchOnUnknownKIDRateLimited", func(t *testing.T) {
		t.Parallel()
		srv := newJWKSServer(t, ec)
		clk := newClock()
		f := auth.NewJWKSFetcher(srv.URL, srv.Client(), auth.JWKSOptions{MinRefetch: 10 * time.Second, Now: clk.Now})
		if _, _, err := f.Key(ctx, ec.KID); err != nil {
			t.Fatal(err)
		}
		// A kid nobody has: fetched again once, then refused without
		// asking the server until MinRefetch has passed.
		clk.Add(time.Second)
		for range 3 {
			if _, _, err := f.Key(ctx, "nobody"); !errors.Is(err, auth.ErrUnknownKID) {
				t.Fatalf("unknown: got %v, want ErrUnknownKID", err)
			}
		}
		if n := srv.hits.Load(); n != 2 {
			t.Fatalf("fetches for an unknown kid: got %d, want 2", n)
		}
		srv.setKeys(ec, rs) // the relay rotated in a new key
		clk.Add(time.Second)
		for range 5 {
			if _, _, err := f.Key(ctx, rs.KID); !errors.Is(err, auth.ErrUnknownKID) {
				t.Fatalf("rate-limited: got %v, want ErrUnknownKID", err)
			}
		}
		if n := srv.hits.Load(); n != 2 {
			t.Fatalf("fetches while rate-limited: got %d, want 2", n)
		}
		clk.Add(10 * time.Second)
		if _, alg, err := f.Key(ctx, rs.KID); err != nil || alg != auth.RS256 {
			t.Fatalf("after refetch: got %s, %v, want RS256", alg, err)
		}
		if n := srv.hits.Load(); n != 3 {
			t.Fatalf("fetches: got %d, want 3", n)
		}
	})

	t.Run("OKRotationSoonAfterRoutineFetch", func(t *testing.T) {
		// The relay rotates its key a second after the receiver fetched
		// the set for a known kid: the first token of the new key fetches
		// again at once. Refused (401), its delivery would never be retried.
		t.Parallel()
		srv := newJWKSServer(t, ec)
		clk := newClock()
		f := auth.NewJWKSFetcher(srv.URL, srv.Client(), auth.JWKSOptions{MinRefetch: 10 * time.Second, Now: clk.Now})
		if _, _, err := f.Key(ctx, ec.KID); err != nil {
			t.Fatal(err)
		}
		srv.setKeys(ec, rs)
		clk.Add(time.Second)
		if _, alg, err := f.Key(ctx, rs.KID); err != nil || alg != auth.RS256 {
			t.Fatalf("new key a second after a routine fetch: got %s, %v, want RS256", alg, err)
		}
		if n := srv.hits.Load(); n != 2 {
			t.Fatalf("fetches: got %d, want 2", n)
		}
	})

	t.Run("OKConcurrentCallersShareOneFetch", func(t *testing.T) {
		t.Parallel()
		const callers = 12
		srv := newJWKSServer(t, ec)
		srv.gate = make(chan struct{})
		// Every Key call reads the clock once under the fetcher's lock;
		// the server answers only once all callers are past that point, so
		// each of them either started the fetch or joined it. A zero TTL
		// and MinRefetch would make any late caller fetch again.
		var calls atomic.Int32
		now := func() time.Time {
			if calls.Add(1) == callers {
				close(srv.gate)
			}
			return t0
		}
		f := auth.NewJWKSFetcher(srv.URL, srv.Client(), auth.JWKSOptions{TTL: time.Nanosecond, MinRefetch: time.Nanosecond, Now: now})
		var wg sync.WaitGroup
		errs := make(chan error, callers)
		for range callers {
			wg.Go(func() {
				_, _, err := f.Key(ctx, ec.KID)
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := srv.hits.Load(); n != 1 {
			t.Fatalf("fetches: got %d, want 1 shared by %d callers", n, callers)
		}
	})

	t.Run("OKSingleKeyWithoutKID", func(t *testing.T) {
		t.Parallel()
		srv := newJWKSServer(t, ed)
		f := auth.NewJWKSFetcher(srv.URL, srv.Client(), auth.JWKSOptions{})
		if _, alg, err := f.Key(ctx, ""); err != nil || alg != auth.EdDSA {
			t.Fatalf("got %s, %v, want the only key", alg, err)
		}
	})

	t.Run("ErrServerDown", func(t *testing.T) {
		t.Parallel()
		srv := newJWKSServer(t, ec)
		url := srv.URL
		srv.Close()
		clk := newClock()
		f := auth.NewJWKSFetcher(url, nil, auth.JWKSOptions{Now: clk.Now, Timeout: 2 * time.Second})
		_, _, err := f.Key(ctx, ec.KID)
		if err == nil || errors.Is(err, auth.ErrUnknownKID) {
			t.Fatalf("got %v, want a fetch error", err)
		}
		// The failure is remembered for MinRefetch rather than retried on
		// every token.
		if _, _, again := f.Key(ctx, ec.KID); again == nil || again.Error() != err.Error() {
			t.Fatalf("again: got %v, want the same error", again)
		}
	})

	t.Run("ErrStatus", func(t *testing.T) {
		t.Parallel()
		srv := newJWKSServer(t, ec)
		srv.status = http.StatusInternalServerError
		f := auth.NewJWKSFetcher(srv.URL, srv.Client(), auth.JWKSOptions{})
		if _, _, err := f.Key(ctx, ec.KID); err == nil {
			t.Fatal("got nil error, want one")
		}
	})

	t.Run("ErrNoUsableKeys", func(t *testing.T) {
		t.Parallel()
		srv := newJWKSServer(t)
		f := auth.NewJWKSFetcher(srv.URL, srv.Client(), auth.JWKSOptions{})
		if _, _, err := f.Key(ctx, ec.KID); err == nil {
			t.Fatal("got nil error, want one")
		}
	})

	t.Run("ErrCallerContextCanceled", func(t *testing.T) {
		t.Parallel()
		srv := newJWKSServer(t, ec)
		srv.gate = make(chan struct{})
		t.Cleanup(func() { close(srv.gate) })
		f := auth.NewJWKSFetcher(srv.URL, srv.Client(), auth.JWKSOptions{})
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, _, err := f.Key(cctx, ec.KID); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	})
}

func TestVerify_JWKS(t *testing.T) {
	t.Parallel()
	ec, ed, rs := keyPairs()[auth.ES256], keyPairs()[auth.EdDSA], keyPairs()[auth.RS256]
	srv := newJWKSServer(t, ec, ed, rs)
	clk := newClock()
	f := auth.NewJWKSFetcher(srv.URL, srv.Client(), auth.JWKSOptions{Now: clk.Now})
	v := newVerifier(t, auth.VerifyConfig{JWKS: f, Now: clk.Now})
	for _, k := range []auth.SigningKey{ec, ed, rs} {
		got := verify(v, request("POST", "/", body, bearer(attempt(t, k, body, nil))), body)
		if got.Status != auth.StatusValid {
			t.Errorf("%s: got %+v, want valid", k.Alg, got)
		}
	}
	// A token claiming the EC key's kid but signed RS256 by another key.
	forged := forge(map[string]any{"alg": "RS256", "kid": ec.KID}, goodClaims(), func(string) []byte { return make([]byte, 256) })
	if got := verify(v, request("POST", "/", body, bearer(forged)), body); got.Reason != `unexpected signing method "RS256", want ES256` {
		t.Errorf("kid/alg mismatch: got %+v, want reason `unexpected signing method \"RS256\", want ES256`", got)
	}
	other := otherKeyPairs()[auth.ES256]
	if got := verify(v, request("POST", "/", body, bearer(attempt(t, other, body, nil))), body); !strings.HasPrefix(got.Reason, fmt.Sprintf("unknown key id %q, not in the JWKS, which has 3 keys: ", other.KID)) {
		t.Errorf("unknown kid: got %+v, want unknown key id %q, not in the JWKS", got, other.KID)
	}
	noKID := forge(map[string]any{"alg": "ES256"}, goodClaims(), func(string) []byte { return make([]byte, 64) })
	if got := verify(v, request("POST", "/", body, bearer(noKID)), body); !strings.HasPrefix(got.Reason, "missing kid header (alg ES256): the JWKS has 3 keys") {
		t.Errorf("no kid: got %+v, want missing kid header (alg ES256): the JWKS has 3 keys…", got)
	}
	hs := signingKey(t, auth.HS256)
	if got := verify(v, request("POST", "/", body, bearer(attempt(t, hs, body, nil))), body); got.Reason != `unexpected signing method "HS256", want one of RS256, ES256, EdDSA` {
		t.Errorf("HS256 against a JWKS: got %+v, want reason `unexpected signing method \"HS256\", want one of RS256, ES256, EdDSA`", got)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Errorf("fetches: got %d, want 2 (the first unknown kid fetches again, later ones are rate-limited)", n)
	}

	down := newJWKSServer(t, ec)
	down.status = http.StatusBadGateway
	vd := newVerifier(t, auth.VerifyConfig{JWKS: auth.NewJWKSFetcher(down.URL, down.Client(), auth.JWKSOptions{})})
	if got := verify(vd, request("POST", "/", body, bearer(attempt(t, ec, body, nil))), body); !auth.KeysUnavailable(got.Reason) || got.Reason != "jwks unavailable: fetch "+down.URL+": status 502" {
		t.Errorf("server failing: got %+v, want jwks unavailable", got)
	}
}

func TestNewJWKS(t *testing.T) {
	t.Parallel()
	set, err := auth.NewJWKS(keyPairs()[auth.ES256], keyPairs()[auth.RS256])
	if err != nil || len(set.Keys) != 2 {
		t.Fatalf("got %+v, %v", set, err)
	}
	raw, _ := json.Marshal(auth.JWKS{Keys: []auth.JWK{}})
	if string(raw) != `{"keys":[]}` {
		t.Errorf("empty set: got %s, want {\"keys\":[]}", raw)
	}
	if _, err := auth.NewJWKS(signingKey(t, auth.HS256)); err == nil {
		t.Error("HS256: got nil error, want one")
	}
}
