package auth_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/sidehook/sidehook/internal/auth"
)

var body = []byte(`{"type":"payment","paymentId":"pay_1","amount":"50.00"}`)

// jwtConfig returns a verifier configuration accepting alg the way a
// receiver would be configured for it: the secret, or the public key.
func jwtConfig(tb testing.TB, alg auth.Algorithm) auth.VerifyConfig {
	tb.Helper()
	if alg == auth.HS256 {
		return auth.VerifyConfig{JWTSecret: secret}
	}
	pub, err := signingKey(tb, alg).Public()
	if err != nil {
		tb.Fatal(err)
	}
	return auth.VerifyConfig{JWTPublicKey: pub, JWTPublicAlg: alg}
}

func TestVerify_RoundTrip(t *testing.T) {
	t.Parallel()
	std := standardSecret(t)
	webio, err := auth.MintWebioToken(secret, auth.WebioClaims{Org: "demo", IssuedAt: t0.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	algs := []auth.Algorithm{auth.HS256, auth.RS256, auth.ES256, auth.EdDSA}
	for _, alg := range algs {
		for _, method := range []string{http.MethodPost, http.MethodGet} {
			t.Run(string(alg)+"/"+method+"/OK", func(t *testing.T) {
				t.Parallel()
				k := signingKey(t, alg)
				h := http.Header{}
				o := auth.Outbound{Method: method, WebhookID: "evt_1", Event: "payment", Timestamp: t0}
				target := "/hook"
				var sent []byte
				if method == http.MethodGet {
					o.RawQuery = "customerUID=ACC-10023&fields=fullname,currency"
					target += "?" + o.RawQuery
				} else {
					o.Body, sent = body, body
				}
				keys := auth.OutboundKeys{WebioToken: webio, JWT: &k, Issuer: "sidehook", Org: "demo", Audience: "crm", Standard: [][]byte{std}}
				schemes := []string{auth.SchemeWebioToken, auth.SchemeJWT, auth.SchemeStandard}
				if err := auth.SignRequest(h, schemes, keys, o); err != nil {
					t.Fatalf("SignRequest: %v", err)
				}
				cfg := jwtConfig(t, alg)
				cfg.WebioSecret, cfg.Org = secret, "demo"
				cfg.StandardSecrets = [][]byte{std}
				cfg.Audience, cfg.Issuer, cfg.RequireSHA256 = "crm", "sidehook", true
				v := newVerifier(t, cfg)
				got := verify(v, request(method, target, sent, h), sent)
				if got.Status != auth.StatusValid || got.Scheme != "webio-token,jwt,standard" {
					t.Fatalf("got %+v, want valid webio-token,jwt,standard", got)
				}
				for claim, want := range map[string]any{"sub": "demo", "aud": "crm", "evt": "payment", "wid": "evt_1", "iss": "sidehook"} {
					if got.Claims[claim] != want {
						t.Errorf("claim %s: got %v, want %v", claim, got.Claims[claim], want)
					}
				}
			})
		}
	}
	t.Run("EachSchemeAlone", func(t *testing.T) {
		t.Parallel()
		k := signingKey(t, auth.HS256)
		keys := auth.OutboundKeys{WebioToken: webio, JWT: &k, Org: "demo", Standard: [][]byte{std}}
		cfgs := map[string]auth.VerifyConfig{
			auth.SchemeWebioToken: {WebioSecret: secret, Org: "demo"},
			auth.SchemeJWT:        {JWTSecret: secret},
			auth.SchemeStandard:   {StandardSecrets: [][]byte{std}},
		}
		for scheme, cfg := range cfgs {
			h := http.Header{}
			if err := auth.SignRequest(h, []string{scheme}, keys, auth.Outbound{WebhookID: "evt_2", Body: body, Timestamp: t0}); err != nil {
				t.Fatalf("%s: SignRequest: %v", scheme, err)
			}
			got := verify(newVerifier(t, cfg), request("POST", "/", body, h), body)
			if got.Status != auth.StatusValid || got.Scheme != scheme {
				t.Errorf("%s: got %+v, want valid", scheme, got)
			}
		}
	})
}

func TestVerify_Unverified(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, auth.VerifyConfig{Org: "demo", Audience: "crm"})
	if v.Enabled() {
		t.Fatal("Enabled: got true, want false with no keys")
	}
	got := verify(v, request("POST", "/", body, nil), body)
	if got.Status != auth.StatusUnverified {
		t.Fatalf("got %+v, want unverified", got)
	}
}

// forge builds a JWT with an arbitrary header and claims and a signature
// from sign (nil: empty signature).
func forge(header, claims map[string]any, sign func(input string) []byte) string {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	var sig []byte
	if sign != nil {
		sig = sign(input)
	}
	return input + "." + enc.EncodeToString(sig)
}

func goodClaims() map[string]any {
	return map[string]any{
		"iss": "sidehook", "sub": "demo", "aud": "crm", "iat": t0.Unix(), "nbf": t0.Unix(),
		"exp": t0.Add(5 * time.Minute).Unix(), "jti": "jti-forged", "sha256": auth.BodyHash(body),
	}
}

func hmacSign(key []byte) func(string) []byte {
	return func(in string) []byte {
		m := hmac.New(sha512.New, key)
		m.Write([]byte(in))
		return m.Sum(nil)
	}
}

func hmacSHA256(key []byte, in string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(in))
	return m.Sum(nil)
}

func TestVerify_JWTFailures(t *testing.T) {
	t.Parallel()
	rsaPub, err := signingKey(t, auth.RS256).Public()
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM, err := auth.MarshalPublicKeyPEM(rsaPub)
	if err != nil {
		t.Fatal(err)
	}
	hs := signingKey(t, auth.HS256)
	weakOther, _ := auth.HMACKey(otherSecret)

	tests := []struct {
		name   string
		alg    auth.Algorithm // which key the verifier trusts
		cfg    func(*auth.VerifyConfig)
		method string
		target string
		header http.Header
		body   []byte
		want   string
	}{
		{name: "ErrExpired", alg: auth.HS256, header: bearer(attempt(t, hs, body, func(c *auth.AttemptClaims) { c.IssuedAt = t0.Add(-6 * time.Minute) })), want: "token expired: exp " + stamp(t0.Add(-time.Minute)) + ", now " + stamp(t0)},
		{name: "ErrNotYetValid", alg: auth.HS256, header: bearer(attempt(t, hs, body, func(c *auth.AttemptClaims) { c.IssuedAt = t0.Add(time.Minute) })), want: "token not yet valid: nbf " + stamp(t0.Add(time.Minute)) + ", now " + stamp(t0)},
		{name: "ErrWrongAudience", alg: auth.ES256, cfg: func(c *auth.VerifyConfig) { c.Audience = "billing" }, header: bearer(attempt(t, signingKey(t, auth.ES256), body, nil)), want: `wrong audience "crm", want "billing"`},
		{name: "ErrMissingAudience", alg: auth.HS256, cfg: func(c *auth.VerifyConfig) { c.Audience = "crm" },
			header: bearer(attempt(t, hs, body, func(c *auth.AttemptClaims) { c.Audience = "" })), want: `missing aud claim, want "crm"`},
		{name: "ErrMissingIssuer", alg: auth.HS256, cfg: func(c *auth.VerifyConfig) { c.Issuer = "sidehook" },
			header: bearer(jwtHS256(t, map[string]any{"exp": t0.Add(time.Minute).Unix()})), want: `missing iss claim, want "sidehook"`},
		{name: "ErrWrongIssuer", alg: auth.EdDSA, cfg: func(c *auth.VerifyConfig) { c.Issuer = "webio" }, header: bearer(attempt(t, signingKey(t, auth.EdDSA), body, nil)), want: `wrong issuer "sidehook", want "webio"`},
		{name: "ErrTamperedBody", alg: auth.RS256, header: bearer(attempt(t, signingKey(t, auth.RS256), body, nil)), body: []byte(`{"type":"payment","amount":"5000.00"}`), want: "sha256 claim " + hashOf(string(body)) + " does not match the body's " + hashOf(`{"type":"payment","amount":"5000.00"}`)},
		{name: "ErrTamperedQuery", alg: auth.HS256, method: "GET", target: "/cv?fields=fullname&customerUID=OTHER",
			header: bearer(attempt(t, hs, []byte("fields=fullname&customerUID=ACC-1"), nil)), want: "sha256 claim " + hashOf("fields=fullname&customerUID=ACC-1") + " does not match the query's " + hashOf("fields=fullname&customerUID=OTHER")},
		{name: "ErrMissingSHA256", alg: auth.HS256, cfg: func(c *auth.VerifyConfig) { c.RequireSHA256 = true },
			header: bearer(attempt(t, hs, body, func(c *auth.AttemptClaims) { c.SHA256 = "" })), want: "missing sha256 claim, want the body's " + hashOf(string(body))},
		{name: "ErrTamperedSignature", alg: auth.ES256, header: bearer(tamperSignature(attempt(t, signingKey(t, auth.ES256), body, nil))), want: mismatchOf(signingKey(t, auth.ES256))},
		{name: "ErrTamperedClaims", alg: auth.EdDSA, header: bearer(tamperClaims(t, attempt(t, signingKey(t, auth.EdDSA), body, nil))), want: mismatchOf(signingKey(t, auth.EdDSA))},
		{name: "ErrWrongSecret", alg: auth.HS256, header: bearer(attempt(t, weakOther, body, nil)), want: "signature mismatch"},
		{name: "ErrWrongKeySameAlg", alg: auth.RS256, header: bearer(attempt(t, otherKeyPairs()[auth.RS256], body, nil)), want: mismatchOf(otherKeyPairs()[auth.RS256])},
		// The classic confusion: an HS256 token whose HMAC key is the
		// verifier's RSA public key, which an attacker knows.
		{name: "ErrAlgConfusionHS256WithRSAPublicKey", alg: auth.RS256,
			header: bearer(hs256With(t, rsaPEM)), want: `unexpected signing method "HS256", want RS256`},
		// With a secret configured too, HS256 is checked with that secret
		// and never with the public key.
		{name: "ErrAlgConfusionWithSecretConfigured", alg: auth.RS256, cfg: func(c *auth.VerifyConfig) { c.JWTSecret = secret },
			header: bearer(hs256With(t, rsaPEM)), want: "signature mismatch"},
		{name: "ErrAlgNone", alg: auth.HS256, header: bearer(forge(map[string]any{"alg": "none", "typ": "JWT"}, goodClaims(), nil)), want: `unexpected signing method "none", want HS256`},
		{name: "ErrAlgNoneAsymmetric", alg: auth.EdDSA, header: bearer(forge(map[string]any{"alg": "none"}, goodClaims(), nil)), want: `unexpected signing method "none", want EdDSA`},
		{name: "ErrAlgHS512", alg: auth.HS256, header: bearer(forge(map[string]any{"alg": "HS512"}, goodClaims(), hmacSign(secret))), want: `unexpected signing method "HS512", want HS256`},
		{name: "ErrAlgMismatchRS256ForECKey", alg: auth.ES256, header: bearer(attempt(t, signingKey(t, auth.RS256), body, nil)), want: `unexpected signing method "RS256", want ES256`},
		{name: "ErrAlgUnknown", alg: auth.HS256, header: bearer(forge(map[string]any{"alg": "XX999"}, goodClaims(), hmacSign(secret))), want: `unexpected signing method "XX999", want HS256`},
		{name: "ErrAlgMissing", alg: auth.HS256, header: bearer(forge(map[string]any{"typ": "JWT"}, goodClaims(), hmacSign(secret))), want: "missing alg header, want HS256"},
		{name: "ErrCritHeader", alg: auth.HS256, header: bearer(forge(map[string]any{"alg": "HS256", "crit": []string{"b64"}, "b64": false}, goodClaims(), func(in string) []byte {
			return hmacSHA256(secret, in)
		})), want: `unsupported crit header ["b64"], want none: no extension is understood`},
		{name: "ErrMissingExp", alg: auth.HS256, header: bearer(jwtHS256(t, map[string]any{"iss": "sidehook", "sha256": auth.BodyHash(body)})), want: "missing exp claim"},
		// iat beyond now + leeway: nbf alone would not catch it (a token may
		// have none), and a webio token has no exp to end it.
		{name: "ErrIssuedInFuture", alg: auth.HS256,
			header: bearer(jwtHS256(t, map[string]any{"iat": t0.Add(time.Hour).Unix(), "exp": t0.Add(2 * time.Hour).Unix()})), want: "token issued in the future: iat " + stamp(t0.Add(time.Hour)) + ", now " + stamp(t0)},
		{name: "ErrIssuedFarInFuture", alg: auth.HS256,
			header: bearer(jwtHS256(t, map[string]any{"iat": 1e19, "exp": t0.Add(time.Hour).Unix()})), want: "invalid iat claim 10000000000000000000" + timeWant},
		{name: "OKIssuedInFutureWithinLeeway", alg: auth.HS256, cfg: func(c *auth.VerifyConfig) { c.Leeway = 2 * time.Minute },
			header: bearer(jwtHS256(t, map[string]any{"iat": t0.Add(time.Minute).Unix(), "exp": t0.Add(time.Hour).Unix()}))},
		{name: "ErrMissingHeader", alg: auth.HS256, header: http.Header{}, want: "missing authorization header"},
		{name: "ErrNotBearer", alg: auth.HS256, header: http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, want: `authorization header is not a bearer token: scheme "Basic", want Bearer`},
		{name: "ErrMalformedOneSegment", alg: auth.HS256, header: bearer("abc"), want: "malformed token: 1 dot-separated part, want 3 (header.claims.signature)"},
		{name: "ErrMalformedTwoSegments", alg: auth.HS256, header: bearer("a.b"), want: "malformed token: 2 dot-separated parts, want 3 (header.claims.signature)"},
		{name: "ErrMalformedBase64", alg: auth.HS256, header: bearer("!!!.???.***"), want: "malformed token: its header is not (canonical) base64url"},
		{name: "ErrMalformedJSON", alg: auth.HS256, header: bearer("eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln"), want: "malformed token: its claims do not decode as one JSON object"},
		{name: "ErrMalformedFourSegments", alg: auth.HS256, header: bearer("a.b.c.d"), want: "malformed token: 4 dot-separated parts, want 3 (header.claims.signature)"},
		{name: "ErrTooLarge", alg: auth.HS256, header: bearer(string(make([]byte, 20000))), want: "token too large: 20000 bytes, want at most 16384"},
		{name: "ErrBadClaimType", alg: auth.HS256, header: bearer(jwtHS256(t, map[string]any{"exp": "tomorrow"})), want: `invalid exp claim "tomorrow"` + timeWant},
		{name: "ErrBadIssuerType", alg: auth.HS256, cfg: func(c *auth.VerifyConfig) { c.Issuer = "sidehook" },
			header: bearer(jwtHS256(t, map[string]any{"exp": t0.Add(time.Minute).Unix(), "iss": 7})), want: `invalid iss claim 7, want "sidehook"`},
		{name: "ErrBadAudienceType", alg: auth.HS256, cfg: func(c *auth.VerifyConfig) { c.Audience = "crm" },
			header: bearer(jwtHS256(t, map[string]any{"exp": t0.Add(time.Minute).Unix(), "aud": []any{"crm", 7}})), want: `invalid aud claim ["crm",7], want "crm"`},
		{name: "ErrSHA256NotString", alg: auth.HS256, header: bearer(jwtHS256(t, map[string]any{"exp": t0.Add(time.Minute).Unix(), "sha256": 42})), want: "sha256 claim 42 does not match the body's " + hashOf(string(body))},
		{name: "ErrJTINotString", alg: auth.HS256, header: bearer(jwtHS256(t, map[string]any{"exp": t0.Add(time.Minute).Unix(), "jti": 42})), want: "invalid jti claim 42, want a non-empty string"},
		{name: "OKLowercaseBearer", alg: auth.HS256, header: http.Header{"Authorization": {"bearer " + attempt(t, hs, body, nil)}}},
		{name: "OKLeewayExpired", alg: auth.HS256, cfg: func(c *auth.VerifyConfig) { c.Leeway = 2 * time.Minute },
			header: bearer(attempt(t, hs, body, func(c *auth.AttemptClaims) { c.IssuedAt = t0.Add(-6 * time.Minute) }))},
		{name: "OKLeewayNotBefore", alg: auth.HS256, cfg: func(c *auth.VerifyConfig) { c.Leeway = 2 * time.Minute },
			header: bearer(attempt(t, hs, body, func(c *auth.AttemptClaims) { c.IssuedAt = t0.Add(time.Minute) }))},
		{name: "OKNoSHA256WhenNotRequired", alg: auth.HS256, header: bearer(attempt(t, hs, body, func(c *auth.AttemptClaims) { c.SHA256 = "" }))},
		{name: "OKQuery", alg: auth.HS256, method: "GET", target: "/cv?fields=fullname&customerUID=ACC-1",
			header: bearer(attempt(t, hs, []byte("fields=fullname&customerUID=ACC-1"), nil))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := jwtConfig(t, tt.alg)
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			method, target, b := tt.method, tt.target, tt.body
			if method == "" {
				method = http.MethodPost
			}
			if target == "" {
				target = "/hook"
			}
			if b == nil && method == http.MethodPost {
				b = body
			}
			got := verify(newVerifier(t, cfg), request(method, target, b, tt.header), b)
			if tt.want == "" {
				if got.Status != auth.StatusValid {
					t.Fatalf("got %+v, want valid", got)
				}
				return
			}
			if got.Status != auth.StatusInvalid || got.Scheme != auth.SchemeJWT || got.Reason != tt.want {
				t.Fatalf("got %+v, want invalid jwt %q", got, tt.want)
			}
		})
	}
}

// jwtHS256 signs arbitrary claims with the test secret.
func jwtHS256(tb testing.TB, claims map[string]any) string {
	tb.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(claims)).SignedString(secret)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// hs256With signs valid-looking claims HS256 with an arbitrary key.
func hs256With(tb testing.TB, key []byte) string {
	tb.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(goodClaims())).SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// tamperSignature flips one bit of the decoded signature.
func tamperSignature(tok string) string {
	parts := splitJWT(nil, tok)
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sig[len(sig)/2] ^= 0x01
	return parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// tamperClaims rewrites the claims (an attacker raising the audience to
// another endpoint) and keeps the old signature.
func tamperClaims(tb testing.TB, tok string) string {
	tb.Helper()
	parts := splitJWT(tb, tok)
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		tb.Fatal(err)
	}
	claims["aud"] = "billing"
	raw, _ = json.Marshal(claims)
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(raw) + "." + parts[2]
}

func TestVerify_WebioFailures(t *testing.T) {
	t.Parallel()
	mint := func(c auth.WebioClaims, key []byte) string {
		if c.Org == "" {
			c.Org = "demo"
		}
		tok, err := auth.MintWebioToken(key, c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := mint(auth.WebioClaims{IssuedAt: t0.Add(-24 * time.Hour)}, secret)
	tests := []struct {
		name   string
		cfg    auth.VerifyConfig
		header http.Header
		want   string
	}{
		{name: "OK", cfg: auth.VerifyConfig{WebioSecret: secret, Org: "demo"}, header: http.Header{"X-Webio-Token": {good}}},
		{name: "OKAnyOrgWhenUnset", cfg: auth.VerifyConfig{WebioSecret: secret}, header: http.Header{"X-Webio-Token": {mint(auth.WebioClaims{Org: "other"}, secret)}}},
		{name: "OKBearerPrefix", cfg: auth.VerifyConfig{WebioSecret: secret}, header: http.Header{"X-Webio-Token": {"Bearer " + good}}},
		{name: "OKIssuer", cfg: auth.VerifyConfig{WebioSecret: secret, WebioIssuer: "sidehook"}, header: http.Header{"X-Webio-Token": {good}}},
		// Issuer applies to the per-attempt JWT only; see VerifyConfig.
		{name: "OKJWTIssuerIgnored", cfg: auth.VerifyConfig{WebioSecret: secret, Issuer: "elsewhere"}, header: http.Header{"X-Webio-Token": {good}}},
		{name: "ErrMissingIssuer", cfg: auth.VerifyConfig{WebioSecret: secret, WebioIssuer: "webio"}, header: http.Header{"X-Webio-Token": {jwtHS256(t, map[string]any{"org": "demo"})}}, want: `missing iss claim, want "webio"`},
		{name: "ErrWrongIssuer", cfg: auth.VerifyConfig{WebioSecret: secret, WebioIssuer: "webio"}, header: http.Header{"X-Webio-Token": {good}}, want: `wrong issuer "sidehook", want "webio"`},
		{name: "ErrWrongOrg", cfg: auth.VerifyConfig{WebioSecret: secret, Org: "acme"}, header: http.Header{"X-Webio-Token": {good}}, want: `wrong org "demo", want "acme"`},
		{name: "ErrMissingOrg", cfg: auth.VerifyConfig{WebioSecret: secret, Org: "demo"}, header: http.Header{"X-Webio-Token": {jwtHS256(t, map[string]any{"iss": "x"})}}, want: `missing org claim, want "demo"`},
		{name: "ErrMissingHeader", cfg: auth.VerifyConfig{WebioSecret: secret}, header: bearer(good), want: "missing x-webio-token header"},
		{name: "ErrWrongSecret", cfg: auth.VerifyConfig{WebioSecret: otherSecret}, header: http.Header{"X-Webio-Token": {good}}, want: "signature mismatch"},
		{name: "ErrExpired", cfg: auth.VerifyConfig{WebioSecret: secret}, header: http.Header{"X-Webio-Token": {mint(auth.WebioClaims{IssuedAt: t0.Add(-2 * time.Hour), TTL: time.Hour}, secret)}}, want: "token expired: exp " + stamp(t0.Add(-time.Hour)) + ", now " + stamp(t0)},
		{name: "ErrIssuedInFuture", cfg: auth.VerifyConfig{WebioSecret: secret}, header: http.Header{"X-Webio-Token": {mint(auth.WebioClaims{IssuedAt: t0.Add(24 * time.Hour)}, secret)}}, want: "token issued in the future: iat " + stamp(t0.Add(24*time.Hour)) + ", now " + stamp(t0)},
		{name: "ErrIssuedInFutureBeyondLeeway", cfg: auth.VerifyConfig{WebioSecret: secret, Leeway: time.Minute}, header: http.Header{"X-Webio-Token": {mint(auth.WebioClaims{IssuedAt: t0.Add(2 * time.Minute)}, secret)}}, want: "token issued in the future: iat " + stamp(t0.Add(2*time.Minute)) + ", now " + stamp(t0) + ", leeway 1m0s"},
		{name: "ErrIssuedFarInFuture", cfg: auth.VerifyConfig{WebioSecret: secret}, header: http.Header{"X-Webio-Token": {jwtHS256(t, map[string]any{"org": "demo", "iat": 1e19})}}, want: "invalid iat claim 10000000000000000000" + timeWant},
		{name: "OKIssuedInFutureWithinLeeway", cfg: auth.VerifyConfig{WebioSecret: secret, Leeway: time.Minute}, header: http.Header{"X-Webio-Token": {mint(auth.WebioClaims{IssuedAt: t0.Add(30 * time.Second)}, secret)}}},
		{name: "OKExpiredWithinLeeway", cfg: auth.VerifyConfig{WebioSecret: secret, Leeway: 2 * time.Hour}, header: http.Header{"X-Webio-Token": {mint(auth.WebioClaims{IssuedAt: t0.Add(-2 * time.Hour), TTL: time.Hour}, secret)}}},
		{name: "ErrAlgHS512", cfg: auth.VerifyConfig{WebioSecret: secret}, header: http.Header{"X-Webio-Token": {forge(map[string]any{"alg": "HS512"}, map[string]any{"org": "demo"}, hmacSign(secret))}}, want: `unexpected signing method "HS512", want HS256`},
		{name: "ErrAlgNone", cfg: auth.VerifyConfig{WebioSecret: secret}, header: http.Header{"X-Webio-Token": {forge(map[string]any{"alg": "none"}, map[string]any{"org": "demo"}, nil)}}, want: `unexpected signing method "none", want HS256`},
		{name: "ErrMalformed", cfg: auth.VerifyConfig{WebioSecret: secret}, header: http.Header{"X-Webio-Token": {"not-a-token"}}, want: "malformed token: 1 dot-separated part, want 3 (header.claims.signature)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := verify(newVerifier(t, tt.cfg), request("POST", "/", body, tt.header), body)
			if tt.want == "" {
				if got.Status != auth.StatusValid || got.Scheme != auth.SchemeWebioToken {
					t.Fatalf("got %+v, want valid", got)
				}
				if got.Claims["org"] == nil || got.Claims["jti"] == nil {
					t.Errorf("claims: got %v, want org and jti", got.Claims)
				}
				return
			}
			if got.Status != auth.StatusInvalid || got.Scheme != auth.SchemeWebioToken || got.Reason != tt.want {
				t.Fatalf("got %+v, want invalid webio-token %q", got, tt.want)
			}
		})
	}
}

func TestVerify_StandardFailures(t *testing.T) {
	t.Parallel()
	std := standardSecret(t)
	ts := strconv.FormatInt(t0.Unix(), 10)
	headers := func(id, stamp, sig string) http.Header {
		h := http.Header{}
		if id != "" {
			h.Set("webhook-id", id)
		}
		if stamp != "" {
			h.Set("webhook-timestamp", stamp)
		}
		if sig != "" {
			h.Set("webhook-signature", sig)
		}
		return h
	}
	sigAt := func(at time.Time) string { return auth.SignStandard(std, "evt_1", at, body) }
	stampAt := func(at time.Time) string { return strconv.FormatInt(at.Unix(), 10) }
	old, soon := t0.Add(-6*time.Minute), t0.Add(6*time.Minute)
	edge := t0.Add(-auth.DefaultStandardTolerance)
	svix := func(id, stamp, sig string) http.Header {
		h := http.Header{}
		for name, v := range map[string]string{"svix-id": id, "svix-timestamp": stamp, "svix-signature": sig} {
			if v != "" {
				h.Set(name, v)
			}
		}
		return h
	}
	bogus := func(n int) string {
		return strings.TrimSpace(strings.Repeat("v1,"+base64.StdEncoding.EncodeToString(make([]byte, 32))+" ", n))
	}
	tests := []struct {
		name   string
		header http.Header
		body   []byte
		want   string
	}{
		{name: "OK", header: headers("evt_1", ts, sigAt(t0))},
		{name: "OKWithinTolerancePast", header: headers("evt_1", stampAt(t0.Add(-4*time.Minute)), sigAt(t0.Add(-4*time.Minute)))},
		{name: "OKWithinToleranceFuture", header: headers("evt_1", stampAt(t0.Add(4*time.Minute)), sigAt(t0.Add(4*time.Minute)))},
		{name: "OKUnknownVersionSkipped", header: headers("evt_1", ts, "v1a,AAAA "+sigAt(t0))},
		{name: "ErrStale", header: headers("evt_1", stampAt(old), sigAt(old)), want: "timestamp too old: webhook-timestamp " + stampAt(old) + ", now " + ts + ", tolerance 5m0s"},
		// Exactly the tolerance old is too old, as in the reference
		// libraries; a second younger passes.
		{name: "ErrExactlyToleranceOld", header: headers("evt_1", stampAt(edge), sigAt(edge)), want: "timestamp too old: webhook-timestamp " + stampAt(edge) + ", now " + ts + ", tolerance 5m0s"},
		{name: "OKJustWithinTolerance", header: headers("evt_1", stampAt(edge.Add(time.Second)), sigAt(edge.Add(time.Second)))},
		{name: "OKGoodAmongFirst16", header: headers("evt_1", ts, bogus(15)+" "+sigAt(t0)+" "+bogus(10))},
		{name: "ErrGoodPastFirst16", header: headers("evt_1", ts, bogus(16)+" "+sigAt(t0)+" "+bogus(3)),
			want: "signature mismatch in the first 16 v1 signatures; 4 more were not checked"},
		{name: "OKSvixHeaders", header: svix("evt_1", ts, sigAt(t0))},
		{name: "ErrSvixTampered", header: svix("evt_1", ts, sigAt(t0)), body: []byte(`{}`), want: `signature mismatch: none of 1 v1 signature matches svix-id "evt_1", svix-timestamp "` + ts + `" and the 2-byte body under 1 secret`},
		{name: "ErrSvixMissingTimestamp", header: svix("evt_1", "", sigAt(t0)), want: "missing svix-timestamp header"},
		{name: "ErrSvixStale", header: svix("evt_1", stampAt(old), sigAt(old)), want: "timestamp too old: svix-timestamp " + stampAt(old) + ", now " + ts + ", tolerance 5m0s"},
		{name: "OKSvixPreferredWhenComplete", header: func() http.Header {
			h := svix("evt_1", ts, sigAt(t0))
			h.Set("webhook-id", "evt_other")
			return h
		}()},
		{name: "ErrMixedNamesNotCombined", header: func() http.Header {
			h := headers("evt_1", "", "")
			h.Set("svix-timestamp", ts)
			h.Set("svix-signature", sigAt(t0))
			return h
		}(), want: "missing webhook-timestamp header"},
		{name: "ErrFuture", header: headers("evt_1", stampAt(soon), sigAt(soon)), want: "timestamp too new: webhook-timestamp " + stampAt(soon) + ", now " + ts + ", tolerance 5m0s"},
		{name: "ErrHugeTimestamp", header: headers("evt_1", "9223372036854775807", sigAt(t0)), want: "timestamp too new: webhook-timestamp 9223372036854775807, now " + ts + ", tolerance 5m0s"},
		{name: "ErrNegativeTimestamp", header: headers("evt_1", "-9223372036854775808", sigAt(t0)), want: "timestamp too old: webhook-timestamp -9223372036854775808, now " + ts + ", tolerance 5m0s"},
		{name: "ErrBadTimestamp", header: headers("evt_1", "2026-01-01", sigAt(t0)), want: `invalid webhook-timestamp header "2026-01-01", want unix seconds`},
		{name: "ErrTamperedBody", header: headers("evt_1", ts, sigAt(t0)), body: []byte(`{"type":"payment","amount":"1"}`), want: `signature mismatch: none of 1 v1 signature matches webhook-id "evt_1", webhook-timestamp "` + ts + `" and the 31-byte body under 1 secret`},
		{name: "ErrOtherID", header: headers("evt_2", ts, sigAt(t0)), want: `signature mismatch: none of 1 v1 signature matches webhook-id "evt_2", webhook-timestamp "` + ts + `" and the ` + strconv.Itoa(len(body)) + `-byte body under 1 secret`},
		{name: "ErrTamperedSignature", header: headers("evt_1", ts, "v1,"+base64.StdEncoding.EncodeToString(make([]byte, 32))), want: `signature mismatch: none of 1 v1 signature matches webhook-id "evt_1", webhook-timestamp "` + ts + `" and the ` + strconv.Itoa(len(body)) + `-byte body under 1 secret`},
		{name: "ErrNoV1", header: headers("evt_1", ts, "v2,abc garbage"), want: `no v1 signature in webhook-signature header: it carries 1 "v2" signature and 1 entry without a version; want "v1,<base64 of an HMAC-SHA256>"`},
		{name: "ErrMissingID", header: headers("", ts, sigAt(t0)), want: "missing webhook-id header"},
		{name: "ErrMissingTimestamp", header: headers("evt_1", "", sigAt(t0)), want: "missing webhook-timestamp header"},
		{name: "ErrMissingSignature", header: headers("evt_1", ts, ""), want: "missing webhook-signature header"},
	}
	v := newVerifier(t, auth.VerifyConfig{StandardSecrets: [][]byte{std}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := tt.body
			if b == nil {
				b = body
			}
			got := verify(v, request("POST", "/", b, tt.header), b)
			if tt.want == "" {
				if got.Status != auth.StatusValid {
					t.Fatalf("got %+v, want valid", got)
				}
				return
			}
			if got.Status != auth.StatusInvalid || got.Scheme != auth.SchemeStandard || got.Reason != tt.want {
				t.Fatalf("got %+v, want invalid standard %q", got, tt.want)
			}
		})
	}
}

func TestVerify_AllSchemesRequired(t *testing.T) {
	t.Parallel()
	std := standardSecret(t)
	v := newVerifier(t, auth.VerifyConfig{WebioSecret: secret, JWTSecret: secret, StandardSecrets: [][]byte{std}})
	webio, _ := auth.MintWebioToken(secret, auth.WebioClaims{Org: "demo", IssuedAt: t0})
	hs := signingKey(t, auth.HS256)
	keys := auth.OutboundKeys{WebioToken: webio, JWT: &hs, Standard: [][]byte{std}}
	o := auth.Outbound{WebhookID: "evt_9", Body: body, Timestamp: t0}
	tests := []struct {
		name    string
		schemes []string
		want    string // failing scheme
	}{
		{name: "ErrOnlyWebio", schemes: []string{auth.SchemeWebioToken}, want: auth.SchemeJWT},
		{name: "ErrOnlyJWT", schemes: []string{auth.SchemeJWT}, want: auth.SchemeWebioToken},
		{name: "ErrNoStandard", schemes: []string{auth.SchemeWebioToken, auth.SchemeJWT}, want: auth.SchemeStandard},
	}
	for _, tt := range tests {
		h := http.Header{}
		if err := auth.SignRequest(h, tt.schemes, keys, o); err != nil {
			t.Fatal(err)
		}
		got := verify(v, request("POST", "/", body, h), body)
		if got.Status != auth.StatusInvalid || got.Scheme != tt.want {
			t.Errorf("%s: got %+v, want invalid %s", tt.name, got, tt.want)
		}
	}
}

func TestVerify_ClaimsOnFailure(t *testing.T) {
	t.Parallel()
	hs := signingKey(t, auth.HS256)
	tok := attempt(t, hs, body, func(c *auth.AttemptClaims) { c.ID = "jti-expired"; c.IssuedAt = t0.Add(-time.Hour) })
	got := verify(newVerifier(t, auth.VerifyConfig{JWTSecret: secret}), request("POST", "/", body, bearer(tok)), body)
	if want := "token expired: exp " + stamp(t0.Add(-55*time.Minute)) + ", now " + stamp(t0); got.Reason != want || got.Claims["jti"] != "jti-expired" {
		t.Fatalf("got %+v, want token expired with its claims", got)
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil || back["status"] != "invalid" || back["claims"] == nil {
		t.Fatalf("json: got %s, want status and claims", b)
	}
}

func TestVerify_Replay(t *testing.T) {
	t.Parallel()
	hs := signingKey(t, auth.HS256)
	std := standardSecret(t)

	t.Run("ErrJTIReused", func(t *testing.T) {
		t.Parallel()
		v := newVerifier(t, auth.VerifyConfig{JWTSecret: secret})
		tok := attempt(t, hs, body, nil)
		if got := verify(v, request("POST", "/", body, bearer(tok)), body); got.Status != auth.StatusValid {
			t.Fatalf("first: got %+v, want valid", got)
		}
		got := verify(v, request("POST", "/", body, bearer(tok)), body)
		if want := fmt.Sprintf("jti %q already used", got.Claims["jti"]); got.Status != auth.StatusInvalid || got.Reason != want {
			t.Fatalf("replay: got %+v, want jti already used", got)
		}
		// A fresh attempt of the same event has its own jti.
		if got := verify(v, request("POST", "/", body, bearer(attempt(t, hs, body, nil))), body); got.Status != auth.StatusValid {
			t.Fatalf("new attempt: got %+v, want valid", got)
		}
	})

	t.Run("OKNotRecordedWhenAnotherSchemeFails", func(t *testing.T) {
		t.Parallel()
		v := newVerifier(t, auth.VerifyConfig{JWTSecret: secret, StandardSecrets: [][]byte{std}})
		tok := attempt(t, hs, body, nil)
		h := bearer(tok)
		h.Set("webhook-id", "evt_1")
		h.Set("webhook-timestamp", strconv.FormatInt(t0.Unix(), 10))
		h.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(make([]byte, 32)))
		if got := verify(v, request("POST", "/", body, h), body); got.Scheme != auth.SchemeStandard {
			t.Fatalf("bad signature: got %+v, want invalid standard", got)
		}
		h.Set("webhook-signature", auth.SignStandard(std, "evt_1", t0, body))
		if got := verify(v, request("POST", "/", body, h), body); got.Status != auth.StatusValid {
			t.Fatalf("fixed: got %+v, want valid", got)
		}
	})

	t.Run("OKForgottenAfterReplayWindow", func(t *testing.T) {
		t.Parallel()
		var now atomic.Int64
		now.Store(t0.Unix())
		v := newVerifier(t, auth.VerifyConfig{JWTSecret: secret, ReplayWindow: time.Minute,
			Now: func() time.Time { return time.Unix(now.Load(), 0) }})
		tok := attempt(t, hs, body, nil)
		verify(v, request("POST", "/", body, bearer(tok)), body)
		now.Add(2 * 60)
		if got := verify(v, request("POST", "/", body, bearer(tok)), body); got.Status != auth.StatusValid {
			t.Fatalf("after window: got %+v, want valid", got)
		}
		now.Add(10 * 60)
		if got, want := verify(v, request("POST", "/", body, bearer(tok)), body), "token expired: exp "+stamp(t0.Add(5*time.Minute))+", now "+stamp(t0.Add(12*time.Minute)); got.Reason != want {
			t.Fatalf("after exp: got %+v, want token expired", got)
		}
	})

	t.Run("OKBoundedEvictsSoonestExpiry", func(t *testing.T) {
		t.Parallel()
		v := newVerifier(t, auth.VerifyConfig{JWTSecret: secret, MaxJTIs: 2})
		short := attempt(t, hs, body, func(c *auth.AttemptClaims) { c.TTL = time.Minute })
		a, b := attempt(t, hs, body, nil), attempt(t, hs, body, nil)
		for _, tok := range []string{short, a, b} {
			if got := verify(v, request("POST", "/", body, bearer(tok)), body); got.Status != auth.StatusValid {
				t.Fatalf("got %+v, want valid", got)
			}
		}
		if got := verify(v, request("POST", "/", body, bearer(b)), body); got.Reason != fmt.Sprintf("jti %q already used", got.Claims["jti"]) {
			t.Fatalf("recent: got %+v, want jti already used", got)
		}
		if got := verify(v, request("POST", "/", body, bearer(short)), body); got.Status != auth.StatusValid {
			t.Fatalf("evicted: got %+v, want valid (the cache keeps only 2)", got)
		}
	})

	t.Run("OKDisabled", func(t *testing.T) {
		t.Parallel()
		v := newVerifier(t, auth.VerifyConfig{JWTSecret: secret, MaxJTIs: -1})
		tok := attempt(t, hs, body, nil)
		for i := range 2 {
			if got := verify(v, request("POST", "/", body, bearer(tok)), body); got.Status != auth.StatusValid {
				t.Fatalf("%d: got %+v, want valid", i, got)
			}
		}
	})

	t.Run("OKConcurrentExactlyOnce", func(t *testing.T) {
		t.Parallel()
		v := newVerifier(t, auth.VerifyConfig{JWTSecret: secret})
		tok := attempt(t, hs, body, nil)
		var valid atomic.Int32
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				if verify(v, request("POST", "/", body, bearer(tok)), body).Status == auth.StatusValid {
					valid.Add(1)
				}
			})
		}
		wg.Wait()
		if n := valid.Load(); n != 1 {
			t.Fatalf("valid verdicts: got %d, want 1", n)
		}
	})
}

func TestNewVerifier_Errors(t *testing.T) {
	t.Parallel()
	ecPub, _ := signingKey(t, auth.ES256).Public()
	tests := []struct {
		name string
		cfg  auth.VerifyConfig
		weak bool
	}{
		{name: "ErrWeakWebioSecret", cfg: auth.VerifyConfig{WebioSecret: []byte("short")}, weak: true},
		{name: "ErrEmptyWebioSecret", cfg: auth.VerifyConfig{WebioSecret: []byte{}}, weak: true},
		{name: "ErrWeakJWTSecret", cfg: auth.VerifyConfig{JWTSecret: secret[:31]}, weak: true},
		{name: "ErrAlgDoesNotFitKey", cfg: auth.VerifyConfig{JWTPublicKey: ecPub, JWTPublicAlg: auth.RS256}},
		{name: "ErrAlgWithoutKey", cfg: auth.VerifyConfig{JWTPublicAlg: auth.ES256}},
		{name: "ErrUnsupportedKey", cfg: auth.VerifyConfig{JWTPublicKey: "not a key"}},
		{name: "ErrShortStandardSecret", cfg: auth.VerifyConfig{StandardSecrets: [][]byte{[]byte("short")}}},
		{name: "ErrNegativeLeeway", cfg: auth.VerifyConfig{JWTSecret: secret, Leeway: -time.Second}},
	}
	for _, tt := range tests {
		_, err := auth.NewVerifier(tt.cfg)
		if err == nil {
			t.Errorf("%s: got nil error, want one", tt.name)
			continue
		}
		if tt.weak && !errors.Is(err, auth.ErrWeakSecret) {
			t.Errorf("%s: got %v, want ErrWeakSecret", tt.name, err)
		}
	}
}

func TestVerify_NeverPanicsOnOddRequests(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, auth.VerifyConfig{WebioSecret: secret, JWTSecret: secret, StandardSecrets: [][]byte{standardSecret(t)}})
	//lint:ignore SA1012 a nil context is exactly the odd input under test
	if got := v.Verify(nil, nil, nil); got.Status != auth.StatusInvalid { //nolint:staticcheck
		t.Fatalf("nil request: got %+v, want invalid", got)
	}
	r := &http.Request{Method: http.MethodGet}
	if got := v.Verify(context.Background(), r, nil); got.Status != auth.StatusInvalid {
		t.Fatalf("bare request: got %+v, want invalid", got)
	}
	var nilV *auth.Verifier
	if nilV.Enabled() {
		t.Fatal("nil verifier: Enabled got true")
	}
}

// mismatchOf is the reason of a token that names k's kid and does not
// verify: the kid as reasons clip it (a thumbprint to 16 characters).
func mismatchOf(k auth.SigningKey) string {
	kid := k.KID
	if len(kid) > 16 {
		kid = kid[:16] + "…"
	}
	return "signature mismatch (alg " + string(k.Alg) + ", kid " + strconv.Quote(kid) + ")"
}
