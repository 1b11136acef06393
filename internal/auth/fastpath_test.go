package auth_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidehook/sidehook/internal/auth"
)

// verifierPair is a verifier with the fast path and one without, built
// from the same configuration.
type verifierPair struct {
	name      string
	fast, ref *auth.Verifier
}

func newVerifierPair(tb testing.TB, name string, cfg auth.VerifyConfig) verifierPair {
	tb.Helper()
	if cfg.Now == nil {
		cfg.Now = fixedNow
	}
	// Each gets its own JWKS fetcher, so neither sees the other's fetches.
	refCfg := cfg
	if cfg.JWKS != nil {
		refCfg.JWKS = auth.NewJWKSFetcher(cfg.JWKS.URL(), nil, auth.JWKSOptions{})
	}
	ref, err := auth.NewReferenceVerifier(refCfg)
	if err != nil {
		tb.Fatalf("NewReferenceVerifier: %v", err)
	}
	return verifierPair{name: name, fast: newVerifier(tb, cfg), ref: ref}
}

// check verifies r with both and fails unless the verdicts are identical.
func (p verifierPair) check(tb testing.TB, r *http.Request, b []byte) auth.Verdict {
	tb.Helper()
	got := p.fast.Verify(context.Background(), r, b)
	want := p.ref.Verify(context.Background(), r, b)
	if !reflect.DeepEqual(got, want) {
		tb.Fatalf("%s: got %+v, want %+v (reference path)", p.name, got, want)
	}
	return got
}

// rawHS256 signs a token whose header and claims are raw JSON text, so a
// test can send what json.Marshal never writes.
func rawHS256(header, claims string) string {
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	return input + "." + enc.EncodeToString(hmacSHA256(secret, input))
}

// nonCanonicalHS256 signs claims whose base64 has non-zero padding bits:
// a lax decoder reads the same bytes, a strict one refuses the segment.
func nonCanonicalHS256(claims string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	enc := base64.RawURLEncoding
	for len(enc.EncodeToString([]byte(claims)))%4 == 0 {
		claims = " " + claims
	}
	seg := enc.EncodeToString([]byte(claims))
	last := strings.IndexByte(alphabet, seg[len(seg)-1])
	seg = seg[:len(seg)-1] + string(alphabet[last^1])
	input := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + seg
	return input + "." + enc.EncodeToString(hmacSHA256(secret, input))
}

// fastPathSeeds are tokens around every edge the fast path must hand to
// the parser, and the common ones it must accept.
func fastPathSeeds(tb testing.TB, ed auth.SigningKey) []string {
	tb.Helper()
	hs := signingKey(tb, auth.HS256)
	const hdr = `{"alg":"HS256","typ":"JWT"}`
	exp := strconv.FormatInt(t0.Add(5*time.Minute).Unix(), 10)
	good := `"iss":"sidehook","sub":"demo","aud":"crm","iat":1800000000,"nbf":1800000000,"exp":` + exp +
		`,"jti":"seed","evt":"payment","wid":"evt_1","sha256":"` + auth.BodyHash(body) + `"`
	valid := attempt(tb, hs, body, func(c *auth.AttemptClaims) { c.ID = "seed-valid" })
	parts := strings.Split(valid, ".")
	seeds := []string{
		valid,
		attempt(tb, ed, body, func(c *auth.AttemptClaims) { c.ID = "seed-ed" }),
		attempt(tb, signingKey(tb, auth.ES256), body, nil),
		attempt(tb, signingKey(tb, auth.RS256), body, nil),
		attempt(tb, hs, []byte("q=1"), nil),
		attempt(tb, hs, body, func(c *auth.AttemptClaims) { c.IssuedAt = t0.Add(-6 * time.Minute) }), // expired
		attempt(tb, hs, body, func(c *auth.AttemptClaims) { c.IssuedAt = t0.Add(10 * time.Second) }), // nbf within leeway
		attempt(tb, hs, body, func(c *auth.AttemptClaims) { c.IssuedAt = t0.Add(time.Minute) }),      // nbf in the future
		attempt(tb, hs, body, func(c *auth.AttemptClaims) { c.Audience = "billing"; c.Issuer = "webio" }),
		attempt(tb, hs, body, func(c *auth.AttemptClaims) { c.SHA256 = "" }),
		attempt(tb, hs, body, func(c *auth.AttemptClaims) { c.Event = "paiement-reçu ✓" }),
		tamperSignature(valid),
		tamperClaims(tb, valid),
		parts[0] + "." + parts[1] + ".", // no signature
		parts[0] + "." + parts[1] + "." + parts[2] + "=",
		parts[0] + "." + parts[1] + "." + parts[2] + ".",
		" " + valid + " ",
		"Bearer " + valid,
		rawHS256(`{"alg":"HS256"}`, "{"+good+"}"),
		rawHS256(`{"typ":"JWT","alg":"HS256","kid":"k1"}`, "{"+good+"}"),
		rawHS256(` { "alg" : "HS256" } `, " { "+strings.ReplaceAll(good, ",", " ,\n\t")+" } "),
		rawHS256(`{"alg":"none","alg":"HS256"}`, "{"+good+"}"), // duplicate header keys
		rawHS256(`{"alg":"HS256","alg":"none"}`, "{"+good+"}"),
		rawHS256(`{"alg":"HS256","kid":7}`, "{"+good+"}"),        // kid not a string
		rawHS256(`{"alg":"HS256","crit":["exp"]}`, "{"+good+"}"), // crit
		rawHS256(`{"alg":"HS256","crit":null}`, "{"+good+"}"),
		rawHS256(`{"alg":"none"}`, "{"+good+"}"), // alg none, signed anyway
		rawHS256(`{"alg":"hs256"}`, "{"+good+"}"),
		rawHS256(`{"alg":"HS512"}`, "{"+good+"}"),
		rawHS256(`{"alg":"EdDSA"}`, "{"+good+"}"),
		rawHS256(`{"alg":null}`, "{"+good+"}"),
		rawHS256(`{}`, "{"+good+"}"),
		rawHS256(`null`, "{"+good+"}"), // header not an object
		rawHS256(`["HS256"]`, "{"+good+"}"),
		rawHS256(`{"alg":"HS256"}x`, "{"+good+"}"),            // trailing bytes in the header
		rawHS256(hdr, "{"+good+",\"exp\":1,\"exp\":"+exp+"}"), // duplicate claims: the last wins
		rawHS256(hdr, "{"+good+",\"exp\":"+exp+",\"exp\":1}"),
		rawHS256(hdr, "{"+good+"} "), // trailing whitespace
		rawHS256(hdr, "{"+good+"}x"), // trailing bytes after the claims
		rawHS256(hdr, "{"+good+"}{}"),
		rawHS256(hdr, "{"+good+"}\x00"),
		rawHS256(hdr, "\ufeff{"+good+"}"),                         // byte order mark
		rawHS256(hdr, "{"+good+",}"),                              // trailing comma
		rawHS256(hdr, "{"+good+",\"aud\":[\"crm\",\"billing\"]}"), // aud as an array
		rawHS256(hdr, "{"+good+",\"aud\":[]}"),
		rawHS256(hdr, "{"+good+",\"aud\":[1]}"),
		rawHS256(hdr, "{"+good+",\"aud\":\"\"}"),
		rawHS256(hdr, "{"+good+",\"iss\":null}"),
		rawHS256(hdr, "{"+good+",\"iss\":7}"),
		rawHS256(hdr, "{"+good+",\"exp\":\""+exp+"\"}"), // exp as a string
		rawHS256(hdr, "{"+good+",\"exp\":null}"),
		rawHS256(hdr, "{"+good+",\"exp\":true}"),
		rawHS256(hdr, "{"+good+",\"exp\":0}"),
		rawHS256(hdr, "{"+good+",\"exp\":-0}"),
		rawHS256(hdr, "{"+good+",\"exp\":1e400}"), // huge numbers
		rawHS256(hdr, "{"+good+",\"exp\":1e300}"),
		rawHS256(hdr, "{"+good+",\"exp\":-1e300}"),
		rawHS256(hdr, "{"+good+",\"exp\":18000003e2}"),
		rawHS256(hdr, "{"+good+",\"exp\":1800000300.999999999}"),
		rawHS256(hdr, "{"+good+",\"exp\":01800000300}"), // not JSON numbers
		rawHS256(hdr, "{"+good+",\"exp\":+1800000300}"),
		rawHS256(hdr, "{"+good+",\"exp\":1800000300.}"),
		rawHS256(hdr, "{"+good+",\"exp\":0x6B49D42C}"),
		rawHS256(hdr, "{"+good+",\"exp\":Infinity}"),
		rawHS256(hdr, "{"+good+",\"nbf\":1e20}"),
		rawHS256(hdr, "{"+good+",\"jti\":7}"),
		rawHS256(hdr, "{"+good+",\"jti\":\"\"}"),
		rawHS256(hdr, "{"+good+",\"sha256\":null}"),
		rawHS256(hdr, "{"+good+",\"evt\":\"pay\\u006dent\"}"), // escapes
		rawHS256(hdr, "{"+good+",\"e\\u0076t\":\"payment\"}"),
		rawHS256(hdr, "{"+good+",\"evt\":\"pay\xffment\"}"),  // invalid UTF-8
		rawHS256(hdr, "{"+good+",\"evt\xed\xa0\x80\":1}"),    // a surrogate
		rawHS256(hdr, "{"+good+",\"evt\":\"\ufffd\u2028\"}"), // valid, unusual
		rawHS256(hdr, "{"+good+",\"evt\":\"tab\there\"}"),    // control character
		rawHS256(hdr, "{"+good+",\"x\":{\"y\":[1,{}]}}"),     // nested
		rawHS256(hdr, "{"+good+",\"x\":tru}"),
		rawHS256(hdr, "{"+good+",\"x\":nul}"),
		rawHS256(hdr, "{"+good+",\"x\":false,\"y\":true}"),
		rawHS256(hdr, "{"+good+" \"x\":1}"),                      // missing comma
		rawHS256(hdr, "{"+good),                                  // unterminated
		rawHS256(hdr, "{\"exp\":"+exp+"}"),                       // nothing but exp
		rawHS256(hdr, "{\"iss\":\"sidehook\",\"org\":\"demo\"}"), // webio-style, no exp
		rawHS256(hdr, "{\"org\":\"other\"}"),
		rawHS256(hdr, "{}"),
		rawHS256(hdr, "null"), // claims not an object
		rawHS256(hdr, "[]"),
		rawHS256(hdr, `"claims"`),
		rawHS256(hdr, ""),
		nonCanonicalHS256("{" + good + "}"),
		forge(map[string]any{"alg": "HS256"}, goodClaims(), hmacSign(secret)), // wrong hash
		forge(map[string]any{"alg": "EdDSA", "kid": "unknown"}, goodClaims(), nil),
		forge(map[string]any{"alg": "ES256"}, map[string]any{"exp": "x", "sha256": nil}, nil),
		"", ".", "..", "a.b.c", "a.b.c.d", "!!!.???.***", "eyJhbGciOiJub25lIn0.e30.",
	}
	return seeds
}

// FuzzVerifyFastPath checks the fast path against golang-jwt's parser: for
// every token, body and configuration, a verifier with the fast path must
// give exactly the verdict of one without it: status, scheme, reason and
// claims.
func FuzzVerifyFastPath(f *testing.F) {
	// Setup runs again in every fuzzing worker: keep seeds deterministic
	// where the algorithm allows (HMAC, Ed25519 from a fixed seed).
	ed := auth.SigningKey{Alg: auth.EdDSA, Private: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))}
	edPub, err := ed.Public()
	if err != nil {
		f.Fatal(err)
	}
	esPub, err := signingKey(f, auth.ES256).Public()
	if err != nil {
		f.Fatal(err)
	}
	std := standardSecret(f)
	jwks := newJWKSServer(f, ed, signingKey(f, auth.ES256), signingKey(f, auth.RS256))
	webio, err := auth.MintWebioToken(secret, auth.WebioClaims{Org: "demo", IssuedAt: t0, ID: "seed-webio"})
	if err != nil {
		f.Fatal(err)
	}

	// These keep no per-request state (no jti cache), so one pair serves
	// every input; their header caches carry over from input to input.
	pairs := []verifierPair{
		newVerifierPair(f, "hs256", auth.VerifyConfig{JWTSecret: secret, MaxJTIs: -1}),
		newVerifierPair(f, "hs256-strict", auth.VerifyConfig{JWTSecret: secret, Audience: "crm", Issuer: "sidehook",
			Leeway: 30 * time.Second, RequireSHA256: true, MaxJTIs: -1}),
		newVerifierPair(f, "hs256+eddsa", auth.VerifyConfig{JWTSecret: secret, JWTPublicKey: edPub, MaxJTIs: -1}),
		newVerifierPair(f, "es256", auth.VerifyConfig{JWTPublicKey: esPub, MaxJTIs: -1}),
		newVerifierPair(f, "jwks", auth.VerifyConfig{JWKS: auth.NewJWKSFetcher(jwks.URL, nil, auth.JWKSOptions{}), MaxJTIs: -1}),
		newVerifierPair(f, "webio", auth.VerifyConfig{WebioSecret: secret}),
		newVerifierPair(f, "webio-strict", auth.VerifyConfig{WebioSecret: secret, Org: "demo", WebioIssuer: "sidehook"}),
		newVerifierPair(f, "all", auth.VerifyConfig{WebioSecret: secret, Org: "demo", JWTSecret: secret, JWTPublicKey: edPub,
			StandardSecrets: [][]byte{std}, MaxJTIs: -1}),
	}

	for _, s := range fastPathSeeds(f, ed) {
		f.Add(s, s, body, false)
		f.Add(s, webio, body, false)
	}
	f.Add(attempt(f, signingKey(f, auth.HS256), []byte("q=1"), nil), webio, []byte("q=1"), true)

	f.Fuzz(func(t *testing.T, token, webioTok string, b []byte, get bool) {
		method, target := http.MethodPost, "/hook"
		if get {
			method, target = http.MethodGet, "/hook?"+string(b)
		}
		r, err := http.NewRequest(method, "http://127.0.0.1"+target, bytes.NewReader(b))
		if err != nil {
			return // not a request net/http would hand a handler
		}
		r.Header.Set("Authorization", "Bearer "+token)
		r.Header.Set("X-Webio-Token", webioTok)
		r.Header.Set("Webhook-Id", "evt_1")
		r.Header.Set("Webhook-Timestamp", strconv.FormatInt(t0.Unix(), 10))
		r.Header.Set("Webhook-Signature", auth.SignStandard(std, "evt_1", t0, b))
		for _, p := range pairs {
			p.check(t, r, b)
		}
		// The jti cache: fresh verifiers, so the first verdict does not
		// depend on earlier inputs, and a second request replays the first.
		p := newVerifierPair(t, "replay", auth.VerifyConfig{JWTSecret: secret, JWTPublicKey: edPub})
		p.check(t, r, b)
		p.check(t, r, b)
	})
}

// TestVerify_FastPathTakesCommonTokens guards the point of the fast path:
// the tokens sidehook signs are accepted without the parser, so their
// header is cached.
func TestVerify_FastPathTakesCommonTokens(t *testing.T) {
	t.Parallel()
	for _, alg := range []auth.Algorithm{auth.HS256, auth.RS256, auth.ES256, auth.EdDSA} {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			p := newVerifierPair(t, string(alg), jwtConfig(t, alg))
			k := signingKey(t, alg)
			for range 3 {
				r := request(http.MethodPost, "/hook", body, bearer(attempt(t, k, body, nil)))
				if got := p.check(t, r, body); got.Status != auth.StatusValid {
					t.Fatalf("got %+v, want valid", got)
				}
			}
			if n := p.fast.CachedHeaders(); n != 1 {
				t.Fatalf("cached headers: got %d, want 1", n)
			}
			if n := p.ref.CachedHeaders(); n != 0 {
				t.Fatalf("reference cached headers: got %d, want 0", n)
			}
		})
	}
	t.Run("webio", func(t *testing.T) {
		t.Parallel()
		p := newVerifierPair(t, "webio", auth.VerifyConfig{WebioSecret: secret, Org: "demo"})
		tok, err := auth.MintWebioToken(secret, auth.WebioClaims{Org: "demo", IssuedAt: t0})
		if err != nil {
			t.Fatal(err)
		}
		r := request(http.MethodPost, "/hook", body, http.Header{"X-Webio-Token": {tok}})
		if got := p.check(t, r, body); got.Status != auth.StatusValid {
			t.Fatalf("got %+v, want valid", got)
		}
		if n := p.fast.CachedHeaders(); n != 1 {
			t.Fatalf("cached headers: got %d, want 1", n)
		}
	})
}

// headerToken signs a valid token whose header is made distinct by n, and
// padded with pad bytes of text.
func headerToken(n, pad int) string {
	claims, _ := json.Marshal(goodClaims())
	return rawHS256(fmt.Sprintf(`{"alg":"HS256","n":%d,"pad":%q}`, n, strings.Repeat("x", pad)), string(claims))
}

func TestVerify_HeaderCacheBounded(t *testing.T) {
	t.Parallel()
	const limit = auth.MaxCachedHeaders
	tests := []struct {
		name    string
		headers int // distinct headers
		repeat  int // tokens per header
		pad     int
		want    int
	}{
		{name: "OKOne", headers: 1, repeat: 5, want: 1},
		{name: "OKFull", headers: limit, repeat: 2, want: limit},
		{name: "OKBoundedPastFull", headers: 4 * limit, repeat: 1, want: limit},
		{name: "OKOversizeNotCached", headers: 3, repeat: 2, pad: auth.MaxCachedHeaderLen, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newVerifierPair(t, tt.name, auth.VerifyConfig{JWTSecret: secret, MaxJTIs: -1})
			for i := range tt.headers {
				tok := headerToken(i, tt.pad)
				for range tt.repeat {
					if got := p.check(t, request(http.MethodPost, "/hook", body, bearer(tok)), body); got.Status != auth.StatusValid {
						t.Fatalf("header %d: got %+v, want valid", i, got)
					}
				}
			}
			if got := p.fast.CachedHeaders(); got != tt.want {
				t.Fatalf("cached headers: got %d, want %d", got, tt.want)
			}
		})
	}
}

// TestVerify_HeaderCacheConcurrent churns the cache from several
// goroutines (more headers than it holds, with the jti cache on); run it
// with -race.
func TestVerify_HeaderCacheConcurrent(t *testing.T) {
	t.Parallel()
	hs := signingKey(t, auth.HS256)
	p := newVerifierPair(t, "concurrent", auth.VerifyConfig{JWTSecret: secret})
	const workers, perWorker = 4, 100
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				// Each token is valid and new to both verifiers.
				claims, _ := json.Marshal(map[string]any{"exp": t0.Add(time.Minute).Unix(), "jti": fmt.Sprintf("w%d-%d", w, i)})
				tok := rawHS256(fmt.Sprintf(`{"alg":"HS256","n":%d}`, (w*perWorker+i)%(2*auth.MaxCachedHeaders)), string(claims))
				r := request(http.MethodPost, "/hook", body, bearer(tok))
				got := p.fast.Verify(context.Background(), r, body)
				want := p.ref.Verify(context.Background(), r, body)
				if got.Status != auth.StatusValid || !reflect.DeepEqual(got, want) {
					t.Errorf("worker %d token %d: got %+v, want %+v", w, i, got, want)
					return
				}
			}
		})
	}
	// Refusals go through the parser while the others run.
	tampered := tamperSignature(attempt(t, hs, body, nil))
	wg.Go(func() {
		for range perWorker {
			r := request(http.MethodPost, "/hook", body, bearer(tampered))
			if got := p.fast.Verify(context.Background(), r, body); got.Reason != "signature mismatch" {
				t.Errorf("tampered: got %+v, want signature mismatch", got)
				return
			}
		}
	})
	wg.Wait()
	if n := p.fast.CachedHeaders(); n > auth.MaxCachedHeaders {
		t.Fatalf("cached headers: got %d, want at most %d", n, auth.MaxCachedHeaders)
	}
}

func TestCanonicalHeaders(t *testing.T) {
	t.Parallel()
	for name, canonical := range auth.CanonicalHeaders {
		if want := http.CanonicalHeaderKey(name); canonical != want {
			t.Errorf("%s: got %q, want %q", name, canonical, want)
		}
	}
}

// FuzzDecodeClaims checks the claims decoder against encoding/json: the
// same map, or an error from both. The odd inputs are in testdata.
func FuzzDecodeClaims(f *testing.F) {
	attempt, err := json.Marshal(goodClaims())
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{string(attempt), `{}`, `{"iss":"sidehook","org":"demo","iat":1800000000,"jti":"01J"}`,
		`{"aud":["crm","billing"],"exp":1800000300}`, `{"a":[],"b":[1,"x",false,null]}`, `{"a":[1,]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var want map[string]any
		wantErr := json.Unmarshal(b, &want)
		got, err := auth.DecodeClaims(b)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("error: got %v, want %v", err, wantErr)
		}
		// On error encoding/json may leave a half-filled map; nothing
		// uses it.
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("got %#v, want %#v", got, want)
		}
		if flat, ok := auth.DecodeFlatObject(b); ok && (wantErr != nil || !reflect.DeepEqual(flat, want)) {
			t.Fatalf("flat: got %#v, want %#v, %v", flat, want, wantErr)
		}
	})
}

func TestDecodeFlatObject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want bool // taken by the flat decoder rather than encoding/json
	}{
		{name: "OKAttemptClaims", in: `{"iss":"sidehook","aud":"crm","iat":1800000000,"exp":1800000300.5,"jti":"01J","ok":true,"no":null}`, want: true},
		{name: "OKEmpty", in: ` {} `, want: true},
		{name: "OKUnicode", in: `{"evt":"reçu ✓"}`, want: true},
		{name: "FallbackEscape", in: `{"evt":"pay\u006dent"}`},
		{name: "OKAudienceArray", in: `{"aud":["crm"],"iat":1800000000}`, want: true},
		{name: "OKArrays", in: `{"a":[ "x" , 1.5,true,null ],"b":[],"c":[ ]}`, want: true},
		{name: "FallbackNestedArray", in: `{"aud":[["crm"]]}`},
		{name: "FallbackArrayOfObjects", in: `{"aud":[{}]}`},
		{name: "FallbackObject", in: `{"x":{}}`},
		{name: "ErrArrayTrailingComma", in: `{"aud":["crm",]}`},
		{name: "ErrArrayUnclosed", in: `{"aud":["crm"}`},
		{name: "FallbackInvalidUTF8", in: "{\"evt\":\"\xff\"}"},
		{name: "FallbackOverflow", in: `{"exp":1e400}`},
		{name: "FallbackNull", in: `null`},
		{name: "ErrTrailing", in: `{"exp":1}x`},
		{name: "ErrLeadingZero", in: `{"exp":01}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := auth.DecodeFlatObject([]byte(tt.in))
			if ok != tt.want {
				t.Fatalf("ok: got %v, want %v", ok, tt.want)
			}
			var want map[string]any
			if err := json.Unmarshal([]byte(tt.in), &want); ok && (err != nil || !reflect.DeepEqual(got, want)) {
				t.Fatalf("got %#v, want %#v (err %v)", got, want, err)
			}
		})
	}
}
