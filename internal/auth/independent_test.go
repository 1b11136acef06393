package auth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/internal/auth"
)

func splitJWT(tb testing.TB, tok string) []string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		if tb != nil {
			tb.Helper()
			tb.Fatalf("token has %d segments, want 3", len(parts))
		}
		return []string{"", "", ""}
	}
	return parts
}

func decodeSegment(tb testing.TB, seg string) map[string]any {
	tb.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		tb.Fatalf("segment is not unpadded base64url: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		tb.Fatalf("segment is not a JSON object: %v", err)
	}
	return m
}

// stdlibVerify checks a JWS signature with the standard library alone, so
// tokens are proven to follow RFC 7515/7518/8037, not just to agree with
// the library that made them.
func stdlibVerify(tb testing.TB, tok string, k auth.SigningKey) {
	tb.Helper()
	parts := splitJWT(tb, tok)
	input := []byte(parts[0] + "." + parts[1])
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		tb.Fatalf("signature is not unpadded base64url: %v", err)
	}
	digest := sha256.Sum256(input)
	switch k.Alg {
	case auth.HS256:
		m := hmac.New(sha256.New, k.Secret)
		m.Write(input)
		if !hmac.Equal(m.Sum(nil), sig) {
			tb.Fatal("HS256: HMAC-SHA256 does not match")
		}
	case auth.RS256:
		pub := k.Private.Public().(*rsa.PublicKey)
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
			tb.Fatalf("RS256: %v", err)
		}
	case auth.ES256:
		// RFC 7518 §3.4: the signature is R || S, 32 bytes each, not ASN.1.
		if len(sig) != 64 {
			tb.Fatalf("ES256: signature is %d bytes, want 64", len(sig))
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(k.Private.Public().(*ecdsa.PublicKey), digest[:], r, s) {
			tb.Fatal("ES256: ecdsa.Verify failed")
		}
	case auth.EdDSA:
		if !ed25519.Verify(k.Private.Public().(ed25519.PublicKey), input, sig) {
			tb.Fatal("EdDSA: ed25519.Verify failed")
		}
	default:
		tb.Fatalf("unknown alg %s", k.Alg)
	}
}

func TestSignAttempt_IndependentVerification(t *testing.T) {
	t.Parallel()
	for _, alg := range []auth.Algorithm{auth.HS256, auth.RS256, auth.ES256, auth.EdDSA} {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			k := signingKey(t, alg)
			tok, err := auth.SignAttempt(k, auth.AttemptClaims{
				Issuer: "sidehook", Subject: "demo", Audience: "crm", ID: "jti-1",
				Event: "payment", WebhookID: "evt_01", SHA256: auth.BodyHash(body), IssuedAt: t0,
			})
			if err != nil {
				t.Fatal(err)
			}
			stdlibVerify(t, tok, k)
			parts := splitJWT(t, tok)
			header := decodeSegment(t, parts[0])
			if header["alg"] != string(alg) {
				t.Errorf("header alg: got %v, want %s", header["alg"], alg)
			}
			if alg.Asymmetric() {
				jwk, err := auth.PublicJWK(k)
				if err != nil {
					t.Fatal(err)
				}
				if header["kid"] != jwk.Kid || jwk.Kid == "" {
					t.Errorf("header kid: got %v, want %q", header["kid"], jwk.Kid)
				}
			} else if _, ok := header["kid"]; ok {
				t.Errorf("header kid: got %v, want none for HS256", header["kid"])
			}
			want := map[string]any{
				"iss": "sidehook", "sub": "demo", "aud": "crm", "jti": "jti-1",
				"evt": "payment", "wid": "evt_01", "sha256": auth.BodyHash(body),
				"iat": float64(t0.Unix()), "nbf": float64(t0.Unix()), "exp": float64(t0.Add(5 * time.Minute).Unix()),
			}
			claims := decodeSegment(t, parts[1])
			for name, w := range want {
				if claims[name] != w {
					t.Errorf("claim %s: got %v, want %v", name, claims[name], w)
				}
			}
			if len(claims) != len(want) {
				t.Errorf("claims: got %v, want exactly %v", claims, want)
			}
		})
	}
}

func TestMintWebioToken_IndependentVerification(t *testing.T) {
	t.Parallel()
	tok, err := auth.MintWebioToken(secret, auth.WebioClaims{Org: "demo", IssuedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	stdlibVerify(t, tok, signingKey(t, auth.HS256))
	parts := splitJWT(t, tok)
	if h := decodeSegment(t, parts[0]); h["alg"] != "HS256" {
		t.Errorf("header: got %v, want alg HS256", h)
	}
	claims := decodeSegment(t, parts[1])
	if claims["iss"] != auth.DefaultIssuer || claims["org"] != "demo" || claims["iat"] != float64(t0.Unix()) {
		t.Errorf("claims: got %v, want iss sidehook, org demo, iat %d", claims, t0.Unix())
	}
	if jti, _ := claims["jti"].(string); len(jti) != 26 {
		t.Errorf("jti: got %v, want a ULID", claims["jti"])
	}
	if _, ok := claims["exp"]; ok {
		t.Errorf("exp: got %v, want none without a TTL", claims["exp"])
	}
	again, _ := auth.MintWebioToken(secret, auth.WebioClaims{Org: "demo", IssuedAt: t0})
	if again == tok {
		t.Error("two mints: got the same token, want distinct jtis")
	}
	withTTL, _ := auth.MintWebioToken(secret, auth.WebioClaims{Org: "demo", IssuedAt: t0, TTL: time.Hour, Issuer: "webio", ID: "fixed"})
	c := decodeSegment(t, splitJWT(t, withTTL)[1])
	if c["exp"] != float64(t0.Add(time.Hour).Unix()) || c["iss"] != "webio" || c["jti"] != "fixed" {
		t.Errorf("claims with TTL: got %v, want exp an hour after t0, iss webio, jti fixed", c)
	}
}

// TestVerify_IndependentlySignedTokens goes the other way: tokens built
// with the standard library alone verify, so a producer using any JOSE
// library interoperates.
func TestVerify_IndependentlySignedTokens(t *testing.T) {
	t.Parallel()
	claims := goodClaims()
	enc := base64.RawURLEncoding
	build := func(alg, kid string, sign func(input []byte) []byte) string {
		h := map[string]any{"alg": alg, "typ": "JWT"}
		if kid != "" {
			h["kid"] = kid
		}
		hb, _ := json.Marshal(h)
		cb, _ := json.Marshal(claims)
		input := enc.EncodeToString(hb) + "." + enc.EncodeToString(cb)
		return input + "." + enc.EncodeToString(sign([]byte(input)))
	}
	tokens := map[auth.Algorithm]string{
		auth.HS256: build("HS256", "", func(in []byte) []byte {
			m := hmac.New(sha256.New, secret)
			m.Write(in)
			return m.Sum(nil)
		}),
		auth.RS256: build("RS256", "", func(in []byte) []byte {
			d := sha256.Sum256(in)
			s, err := rsa.SignPKCS1v15(rand.Reader, keyPairs()[auth.RS256].Private.(*rsa.PrivateKey), crypto.SHA256, d[:])
			if err != nil {
				t.Fatal(err)
			}
			return s
		}),
		auth.ES256: build("ES256", "", func(in []byte) []byte {
			d := sha256.Sum256(in)
			r, s, err := ecdsa.Sign(rand.Reader, keyPairs()[auth.ES256].Private.(*ecdsa.PrivateKey), d[:])
			if err != nil {
				t.Fatal(err)
			}
			out := make([]byte, 64)
			r.FillBytes(out[:32])
			s.FillBytes(out[32:])
			return out
		}),
		auth.EdDSA: build("EdDSA", "", func(in []byte) []byte {
			return ed25519.Sign(keyPairs()[auth.EdDSA].Private.(ed25519.PrivateKey), in)
		}),
	}
	for alg, tok := range tokens {
		got := verify(newVerifier(t, jwtConfig(t, alg)), request(http.MethodPost, "/", body, bearer(tok)), body)
		if got.Status != auth.StatusValid {
			t.Errorf("%s: got %+v, want valid", alg, got)
		}
	}
}
