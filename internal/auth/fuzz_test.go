package auth_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sidehook/sidehook/internal/auth"
)

// FuzzVerifyJWT throws arbitrary tokens, headers and bodies at verifiers
// configured with every scheme. It must never panic, and must never call a
// token valid unless it is, byte for byte, one this test signed.
func FuzzVerifyJWT(f *testing.F) {
	// Fuzzing runs this setup again in every worker process, so the tokens
	// must come out identical each time: fixed jtis and deterministic
	// algorithms (HMAC, Ed25519 from a fixed seed).
	hs := signingKey(f, auth.HS256)
	ed := auth.SigningKey{Alg: auth.EdDSA, Private: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))}
	edPub, _ := ed.Public()
	std := standardSecret(f)
	signed := map[string]bool{}
	n := 0
	sign := func(k auth.SigningKey, b []byte) string {
		n++
		tok := attempt(f, k, b, func(c *auth.AttemptClaims) { c.ID = "fuzz-" + strconv.Itoa(n) })
		signed[tok] = true
		return tok
	}
	webio, err := auth.MintWebioToken(secret, auth.WebioClaims{Org: "demo", IssuedAt: t0, ID: "fuzz-webio"})
	if err != nil {
		f.Fatal(err)
	}
	signed[webio] = true
	stdSig := auth.SignStandard(std, "evt_1", t0, body)

	all := newVerifier(f, auth.VerifyConfig{
		WebioSecret: secret, Org: "demo", JWTSecret: secret, JWTPublicKey: edPub,
		StandardSecrets: [][]byte{std}, MaxJTIs: -1,
	})
	jwtOnly := newVerifier(f, auth.VerifyConfig{JWTSecret: secret, JWTPublicKey: edPub, MaxJTIs: -1})
	webioOnly := newVerifier(f, auth.VerifyConfig{WebioSecret: secret, MaxJTIs: -1})

	seeds := []string{
		sign(hs, body), sign(ed, body), sign(hs, nil), webio,
		"", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", tamperSignature(sign(hs, body)),
		forge(map[string]any{"alg": "HS256", "kid": 7}, map[string]any{"exp": 1e300, "jti": []int{1}}, hmacSign(secret)),
		forge(map[string]any{"alg": "ES256"}, map[string]any{"exp": "x", "sha256": nil}, nil),
	}
	for _, s := range seeds {
		f.Add(s, webio, stdSig, body, false)
	}
	f.Add(sign(hs, []byte("q=1")), "garbage", "v1,AAAA", []byte("q=1"), true)

	f.Fuzz(func(t *testing.T, token, webioTok, sig string, b []byte, get bool) {
		method, target := http.MethodPost, "/hook"
		if get {
			method, target = http.MethodGet, "/hook?"+string(b)
		}
		h := http.Header{}
		h.Set("Authorization", "Bearer "+token)
		h.Set("X-Webio-Token", webioTok)
		h.Set("Webhook-Id", "evt_1")
		h.Set("Webhook-Timestamp", strconv.FormatInt(t0.Unix(), 10))
		h.Set("Webhook-Signature", sig)
		r, err := http.NewRequest(method, "http://127.0.0.1"+target, bytes.NewReader(b))
		if err != nil {
			return // not a request net/http would hand a handler
		}
		r.Header = h
		for _, v := range []*auth.Verifier{all, jwtOnly, webioOnly} {
			got := v.Verify(context.Background(), r, b)
			if got.Status != auth.StatusValid && got.Status != auth.StatusInvalid {
				t.Fatalf("got status %q, want valid or invalid", got.Status)
			}
			if got.Status == auth.StatusInvalid && got.Reason == "" {
				t.Fatalf("invalid without a reason: %+v", got)
			}
			if _, err := json.Marshal(got); err != nil {
				t.Fatalf("verdict does not encode: %v", err)
			}
			if got.Status != auth.StatusValid {
				continue
			}
			if strings.Contains(got.Scheme, auth.SchemeJWT) && !signed[strings.TrimSpace(token)] {
				t.Fatalf("forged jwt %q accepted: %+v", token, got)
			}
			if strings.Contains(got.Scheme, auth.SchemeWebioToken) {
				w, _ := strings.CutPrefix(strings.TrimSpace(webioTok), "Bearer ")
				if !signed[strings.TrimSpace(w)] {
					t.Fatalf("forged webio token %q accepted: %+v", webioTok, got)
				}
			}
		}
	})
}

// FuzzParseStandardSignature checks the webhook-signature parser and
// verifier on arbitrary headers: no panic, bounded output, and a pass only
// when the header carries the exact expected signature.
func FuzzParseStandardSignature(f *testing.F) {
	std := standardSecret(f)
	good := auth.SignStandard(std, "evt_1", t0, body)
	for _, s := range []string{"", good, good + " " + good, "v1," + strings.Repeat("A", 44), "v1a,xyz v1,", "v1,,,", " \t v1,====", strings.Repeat("v1,AAAA ", 40),
		"v2," + good[3:], good[3:], good[3:] + "," + good[3:], "v1," + good[3:20]} {
		f.Add(s, body, "1800000000")
	}
	f.Fuzz(func(t *testing.T, header string, b []byte, ts string) {
		sigs := auth.ParseStandardSignatures(header)
		if len(sigs) > 16 {
			t.Fatalf("got %d signatures, want at most 16", len(sigs))
		}
		for _, s := range sigs {
			if len(s) != 32 {
				t.Fatalf("signature of %d bytes, want 32", len(s))
			}
		}
		reason := auth.VerifyStandard([][]byte{std}, "evt_1", ts, header, b, t0, 0)
		if reason != "" {
			// A refusal names versions and counts, never a signature: no
			// part of an entry long enough to be one shows in it (the
			// shorter ones could be words of the reason).
			for _, entry := range strings.Fields(header) {
				for _, part := range strings.Split(entry, ",") {
					if len(part) >= 24 && strings.Contains(reason, part) {
						t.Fatalf("reason %q shows %q of the signature header", reason, part)
					}
				}
			}
			return
		}
		stamp, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			t.Fatalf("valid with timestamp %q", ts)
		}
		if ts != strconv.FormatInt(stamp, 10) {
			// e.g. "+1800000000": the MAC covers that text, which SignStandard
			// (always canonical) cannot produce; nothing to compare with.
			return
		}
		want := auth.SignStandard(std, "evt_1", unix(stamp), b)
		found := false
		for _, field := range strings.Fields(header) {
			found = found || field == want
		}
		if !found {
			t.Fatalf("header %q accepted without the expected signature %q", header, want)
		}
	})
}

// FuzzJWKS feeds arbitrary JWKS documents to the key decoder: untrusted
// input fetched from a URL.
func FuzzJWKS(f *testing.F) {
	for _, k := range keyPairs() {
		j, _ := auth.PublicJWK(k)
		doc, _ := json.Marshal(auth.JWKS{Keys: []auth.JWK{j}})
		f.Add(doc)
	}
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"},{"kty":"EC","crv":"P-256","x":"","y":""}]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","alg":"HS256"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		var set auth.JWKS
		if json.Unmarshal(doc, &set) != nil {
			return
		}
		for _, j := range set.Keys {
			pub, alg, err := j.PublicKey()
			if err != nil {
				continue
			}
			if pub == nil || alg == auth.HS256 || alg == "" {
				t.Fatalf("got %T, %q from %+v; want a public key and an asymmetric algorithm", pub, alg, j)
			}
			if _, err := j.Thumbprint(); err != nil {
				t.Fatalf("decodable key without a thumbprint: %v", err)
			}
		}
	})
}

// FuzzParsePublicKeyPEM covers the --jwt-public-key file parser.
func FuzzParsePublicKeyPEM(f *testing.F) {
	for _, k := range keyPairs() {
		data, _ := auth.MarshalPublicKeyPEM(k.Private.Public())
		f.Add(data)
	}
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n" + base64.StdEncoding.EncodeToString([]byte{0x30, 0x03, 0x02, 0x01, 0x01}) + "\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pub, alg, err := auth.ParsePublicKeyPEM(data)
		if err == nil && (pub == nil || alg == "" || alg == auth.HS256) {
			t.Fatalf("got %T, %q without error; want a public key and an asymmetric algorithm", pub, alg)
		}
		// The private key parser shares the PEM walking; it must not panic.
		_, _ = auth.ParseKey(data)
	})
}

// FuzzParseStandardSecret covers the whsec_ secret of config and flags:
// an accepted secret is long enough and reads back from its canonical
// form; a refused one gives no key.
func FuzzParseStandardSecret(f *testing.F) {
	for _, s := range []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", " whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa",
		"whsec_" + strings.Repeat("A", 31), "whsec_" + strings.Repeat("A", 32) + "=", "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"whsec_MfKQ9r8GKYqrTwjUPD8I\nLPZIo2LaLaSw", "whsec_", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_====", "whsec_-_-_"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		key, err := auth.ParseStandardSecret(s)
		if err != nil {
			if key != nil {
				t.Fatalf("ParseStandardSecret(%q) = %x with %v", s, key, err)
			}
			return
		}
		if len(key) < auth.MinStandardSecretLen {
			t.Fatalf("ParseStandardSecret(%q): %d bytes, want at least %d", s, len(key), auth.MinStandardSecretLen)
		}
		again, err := auth.ParseStandardSecret(auth.FormatStandardSecret(key))
		if err != nil || !bytes.Equal(again, key) {
			t.Fatalf("%q read as %x, written as %q, read back as %x, %v", s, key, auth.FormatStandardSecret(key), again, err)
		}
	})
}

// FuzzParseKey covers the private key files the relay signs with: a key
// read is a usable key pair with a kid, and reads back the same, algorithm
// and kid included, from what MarshalKey writes of it.
func FuzzParseKey(f *testing.F) {
	ed := auth.SigningKey{Alg: auth.EdDSA, KID: "k1", Private: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))}
	if data, err := auth.MarshalKey(ed); err == nil {
		f.Add(data)
		f.Add(bytes.Replace(data, []byte("Alg: EdDSA"), []byte("Alg: eddsa"), 1))
		f.Add(bytes.Replace(data, []byte("Alg: EdDSA"), []byte("Alg: RS256"), 1))
		f.Add(bytes.Replace(data, []byte("Kid: k1"), []byte("Kid:   "), 1))
	}
	for _, k := range keyPairs() {
		data, _ := auth.MarshalKey(k)
		f.Add(data)
	}
	rsaKey := keyPairs()[auth.RS256].Private.(*rsa.PrivateKey)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}))
	if sec1, err := x509.MarshalECPrivateKey(keyPairs()[auth.ES256].Private.(*ecdsa.PrivateKey)); err == nil {
		f.Add(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}))
	}
	f.Add([]byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAQID\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAQ==\n-----END ENCRYPTED PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := auth.ParseKey(data)
		if err != nil {
			if k.Alg != "" || k.KID != "" || k.Private != nil || k.Secret != nil {
				t.Fatalf("got %+v with %v", k, err)
			}
			return
		}
		if !k.Alg.Asymmetric() || k.KID == "" || k.Private == nil {
			t.Fatalf("got %s key, kid %q, private %T; want an asymmetric key with a kid and a private part", k.Alg, k.KID, k.Private)
		}
		pub, err := k.Public()
		if err != nil {
			t.Fatalf("%s key read but not usable: %v", k.Alg, err)
		}
		out, err := auth.MarshalKey(k)
		if err != nil {
			t.Fatalf("%s key read but not written: %v", k.Alg, err)
		}
		again, err := auth.ParseKey(out)
		if err != nil || again.Alg != k.Alg || again.KID != k.KID {
			t.Fatalf("%s %q written and read back as %s %q, %v", k.Alg, k.KID, again.Alg, again.KID, err)
		}
		if p, ok := pub.(interface{ Equal(crypto.PublicKey) bool }); !ok || !p.Equal(again.Private.Public()) {
			t.Fatalf("%s key written and read back as another key", k.Alg)
		}
	})
}

// FuzzParseNames covers the short names read from flags, YAML and headers:
// algorithms, schemes and the Authorization header's bearer token. What is
// read is canonical and reads back as itself.
func FuzzParseNames(f *testing.F) {
	for _, s := range []string{"HS256", " es256 ", "EdDSA", "none", "RS512", "jwt", " Standard ", "webio_token", "webio-token",
		"Bearer abc", "bearer abc", "BEARER  abc ", "Basic abc", "Bearer ", "Bearerabc", "Bearer\tabc", "Bearer a b", "\u00a0Bearer x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if a, err := auth.ParseAlgorithm(s); err == nil {
			if !slices.Contains([]auth.Algorithm{auth.HS256, auth.RS256, auth.ES256, auth.EdDSA}, a) || !strings.EqualFold(strings.TrimSpace(s), string(a)) {
				t.Fatalf("ParseAlgorithm(%q) = %q", s, a)
			}
		} else if a != "" {
			t.Fatalf("ParseAlgorithm(%q) = %q with %v", s, a, err)
		}
		if v, err := auth.ParseScheme(s); err == nil {
			if again, err := auth.ParseScheme(v); !slices.Contains(auth.Schemes(), v) || err != nil || again != v {
				t.Fatalf("ParseScheme(%q) = %q, read back as %q, %v", s, v, again, err)
			}
		} else if v != "" {
			t.Fatalf("ParseScheme(%q) = %q with %v", s, v, err)
		}
		tok, ok := auth.Bearer(s)
		if !ok {
			if tok != "" {
				t.Fatalf("Bearer(%q) = %q, false; want \"\" when false", s, tok)
			}
			return
		}
		if tok == "" || tok != strings.TrimSpace(tok) || !strings.HasSuffix(strings.TrimSpace(s), tok) {
			t.Fatalf("Bearer(%q) = %q, want a trimmed, non-empty token ending the input", s, tok)
		}
		if again, ok := auth.Bearer("Bearer " + tok); !ok || again != tok {
			t.Fatalf("Bearer(%q) = %q, but Bearer(%q) = %q, %v", s, tok, "Bearer "+tok, again, ok)
		}
	})
}
