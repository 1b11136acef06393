package auth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidehook/sidehook/internal/auth"
)

// t0 is the fixed "now" of most tests.
var t0 = time.Unix(1_800_000_000, 0)

func fixedNow() time.Time { return t0 }

// Test secrets: 32 bytes (the minimum) and a Standard Webhooks secret.
var (
	secret      = []byte("0123456789abcdef0123456789abcdef")
	otherSecret = []byte("fedcba9876543210fedcba9876543210")
)

// keyPairs generates one key per asymmetric algorithm once per test binary:
// 2048-bit RSA generation is too slow to repeat in every test.
var keyPairs = sync.OnceValue(func() map[auth.Algorithm]auth.SigningKey {
	m := make(map[auth.Algorithm]auth.SigningKey)
	for _, alg := range []auth.Algorithm{auth.RS256, auth.ES256, auth.EdDSA} {
		k, err := auth.GenerateKey(alg)
		if err != nil {
			panic(err)
		}
		m[alg] = k
	}
	return m
})

// otherKeyPairs are a second, unrelated set (wrong-key tests).
var otherKeyPairs = sync.OnceValue(func() map[auth.Algorithm]auth.SigningKey {
	m := make(map[auth.Algorithm]auth.SigningKey)
	for _, alg := range []auth.Algorithm{auth.RS256, auth.ES256, auth.EdDSA} {
		k, err := auth.GenerateKey(alg)
		if err != nil {
			panic(err)
		}
		m[alg] = k
	}
	return m
})

// signingKey returns the test key for alg: the shared secret for HS256.
func signingKey(tb testing.TB, alg auth.Algorithm) auth.SigningKey {
	tb.Helper()
	if alg == auth.HS256 {
		k, err := auth.HMACKey(secret)
		if err != nil {
			tb.Fatal(err)
		}
		return k
	}
	return keyPairs()[alg]
}

func standardSecret(tb testing.TB) []byte {
	tb.Helper()
	s, err := auth.ParseStandardSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func newVerifier(tb testing.TB, cfg auth.VerifyConfig) *auth.Verifier {
	tb.Helper()
	if cfg.Now == nil {
		cfg.Now = fixedNow
	}
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		tb.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// request builds an inbound request with the given headers.
func request(method, target string, body []byte, h http.Header) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(string(body)))
	for k, v := range h {
		r.Header[http.CanonicalHeaderKey(k)] = v
	}
	return r
}

// attempt signs a per-attempt JWT with defaults a test may override.
func attempt(tb testing.TB, k auth.SigningKey, body []byte, edit func(*auth.AttemptClaims)) string {
	tb.Helper()
	c := auth.AttemptClaims{
		Issuer: "sidehook", Subject: "demo", Audience: "crm",
		Event: "payment", WebhookID: "evt_1", SHA256: auth.BodyHash(body),
		IssuedAt: t0,
	}
	if edit != nil {
		edit(&c)
	}
	tok, err := auth.SignAttempt(k, c)
	if err != nil {
		tb.Fatalf("SignAttempt: %v", err)
	}
	return tok
}

func bearer(tok string) http.Header {
	return http.Header{"Authorization": {"Bearer " + tok}}
}

func verify(v *auth.Verifier, r *http.Request, body []byte) auth.Verdict {
	return v.Verify(context.Background(), r, body)
}

func unix(sec int64) time.Time { return time.Unix(sec, 0) }

// stamp is a time as a reason names it.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// hashOf is the quoted body hash a reason names.
func hashOf(b string) string { return strconv.Quote(auth.BodyHash([]byte(b))) }

// timeWant ends the reason of a time claim that is no time.
const timeWant = ", want a number of seconds (years 1 to 9999)"
