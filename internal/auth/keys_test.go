package auth_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/internal/auth"
)

func TestParseAlgorithm(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]auth.Algorithm{"HS256": auth.HS256, "rs256": auth.RS256, " ES256 ": auth.ES256, "eddsa": auth.EdDSA} {
		got, err := auth.ParseAlgorithm(in)
		if err != nil || got != want {
			t.Errorf("ParseAlgorithm(%q): got %q, %v, want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "none", "HS512", "ES384", "PS256"} {
		if _, err := auth.ParseAlgorithm(in); err == nil {
			t.Errorf("ParseAlgorithm(%q): got nil error, want one", in)
		}
	}
}

func TestGenerateKey(t *testing.T) {
	t.Parallel()
	for alg, k := range keyPairs() {
		if k.Alg != alg || k.Private == nil {
			t.Errorf("%s: got %+v, want a key of that algorithm with a private part", alg, k)
		}
		jwk, err := auth.PublicJWK(k)
		if err != nil {
			t.Fatal(err)
		}
		thumb, err := jwk.Thumbprint()
		if err != nil || k.KID != thumb || len(k.KID) != 43 {
			t.Errorf("%s: KID got %q, want thumbprint %q (%v)", alg, k.KID, thumb, err)
		}
	}
	if _, err := auth.GenerateKey(auth.HS256); err == nil {
		t.Error("HS256: got nil error, want one (it uses the organisation's secret)")
	}
	if _, err := auth.GenerateKey("none"); err == nil {
		t.Error("none: got nil error, want one")
	}
}

func TestMarshalKey_RoundTrip(t *testing.T) {
	t.Parallel()
	for alg, k := range keyPairs() {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			k.KID = "kept-" + string(alg) // a KID other than the thumbprint survives
			data, err := auth.MarshalKey(k)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(data, []byte("-----BEGIN PRIVATE KEY-----")) {
				t.Fatalf("got %s, want a PKCS#8 PEM", data)
			}
			back, err := auth.ParseKey(data)
			if err != nil {
				t.Fatal(err)
			}
			if back.Alg != alg || back.KID != k.KID {
				t.Fatalf("got alg %s kid %s, want %s %s", back.Alg, back.KID, alg, k.KID)
			}
			// The reloaded key signs tokens the original's public key verifies.
			tok, err := auth.SignAttempt(back, auth.AttemptClaims{IssuedAt: t0, SHA256: auth.BodyHash(body)})
			if err != nil {
				t.Fatal(err)
			}
			stdlibVerify(t, tok, k)
		})
	}
	hs := signingKey(t, auth.HS256)
	if _, err := auth.MarshalKey(hs); err == nil {
		t.Error("HS256: got nil error, want one")
	}
}

func TestParseKey_PlainPEMs(t *testing.T) {
	t.Parallel()
	rsaKey := keyPairs()[auth.RS256].Private.(*rsa.PrivateKey)
	ecKey := keyPairs()[auth.ES256].Private.(*ecdsa.PrivateKey)
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	ecParams := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}})
	tests := []struct {
		name string
		data []byte
		want auth.Algorithm
	}{
		{"PKCS1", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}), auth.RS256},
		{"SEC1WithParams", append(ecParams, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})...), auth.ES256},
	}
	for _, tt := range tests {
		k, err := auth.ParseKey(tt.data)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if k.Alg != tt.want || k.KID != keyPairs()[tt.want].KID {
			t.Errorf("%s: got %s %s, want %s with the thumbprint kid", tt.name, k.Alg, k.KID, tt.want)
		}
	}
}

func TestParseKey_Errors(t *testing.T) {
	t.Parallel()
	ecDER, _ := x509.MarshalPKCS8PrivateKey(keyPairs()[auth.ES256].Private)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKCS8PrivateKey(p384)
	tests := map[string][]byte{
		"ErrEmpty":         nil,
		"ErrNotPEM":        []byte("hello"),
		"ErrPublicOnly":    pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1}}),
		"ErrGarbageDER":    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}),
		"ErrEncrypted":     pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}),
		"ErrAlgHeaderLies": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{"Alg": "RS256"}, Bytes: ecDER}),
		"ErrAlgHeaderBad":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{"Alg": "none"}, Bytes: ecDER}),
		"ErrP384":          pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p384DER}),
	}
	for name, data := range tests {
		if _, err := auth.ParseKey(data); err == nil {
			t.Errorf("%s: got nil error, want one", name)
		}
	}
}

func TestParsePublicKeyPEM(t *testing.T) {
	t.Parallel()
	for alg, k := range keyPairs() {
		data, err := auth.MarshalPublicKeyPEM(k.Private.Public())
		if err != nil {
			t.Fatal(err)
		}
		pub, got, err := auth.ParsePublicKeyPEM(data)
		if err != nil || got != alg {
			t.Fatalf("%s: got %s, %v", alg, got, err)
		}
		// The parsed key verifies the signer's tokens.
		v := newVerifier(t, auth.VerifyConfig{JWTPublicKey: pub})
		tok := attempt(t, k, body, nil)
		if verdict := verify(v, request(http.MethodPost, "/", body, bearer(tok)), body); verdict.Status != auth.StatusValid {
			t.Fatalf("%s: got %+v, want valid", alg, verdict)
		}
	}

	t.Run("Certificate", func(t *testing.T) {
		t.Parallel()
		k := keyPairs()[auth.ES256]
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sidehook"},
			NotBefore: t0, NotAfter: t0.Add(24 * time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Private.Public(), k.Private)
		if err != nil {
			t.Fatal(err)
		}
		pub, alg, err := auth.ParsePublicKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
		if err != nil || alg != auth.ES256 || !pub.(*ecdsa.PublicKey).Equal(k.Private.Public()) {
			t.Fatalf("got %v, %s, %v", pub, alg, err)
		}
	})

	t.Run("RSAPublicKeyPKCS1", func(t *testing.T) {
		t.Parallel()
		pub := keyPairs()[auth.RS256].Private.Public().(*rsa.PublicKey)
		_, alg, err := auth.ParsePublicKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(pub)}))
		if err != nil || alg != auth.RS256 {
			t.Fatalf("got %s, %v", alg, err)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		t.Parallel()
		small, err := rsa.GenerateKey(rand.Reader, 1024)
		if err != nil {
			t.Fatal(err)
		}
		smallDER, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
		privPEM, _ := auth.MarshalKey(keyPairs()[auth.EdDSA])
		tests := map[string][]byte{
			"ErrEmpty":      nil,
			"ErrPrivateKey": privPEM,
			"ErrGarbage":    pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("x")}),
			"ErrRSA1024":    pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: smallDER}),
		}
		for name, data := range tests {
			if _, _, err := auth.ParsePublicKeyPEM(data); err == nil {
				t.Errorf("%s: got nil error, want one", name)
			}
		}
	})
}

// RFC 7638 §3.1 and RFC 8037 appendix A.3 publish these thumbprints.
func TestJWK_ThumbprintVectors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		jwk  auth.JWK
		want string
	}{
		{auth.JWK{Kty: "RSA", E: "AQAB", Kid: "2011-04-29", Alg: "RS256",
			N: "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"},
			"NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"},
		{auth.JWK{Kty: "OKP", Crv: "Ed25519", X: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
			"kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"},
	}
	for _, tt := range tests {
		got, err := tt.jwk.Thumbprint()
		if err != nil || got != tt.want {
			t.Errorf("%s: got %q, %v, want %q", tt.jwk.Kty, got, err, tt.want)
		}
		if _, _, err := tt.jwk.PublicKey(); err != nil {
			t.Errorf("%s: PublicKey: %v", tt.jwk.Kty, err)
		}
	}
}

func TestJWK_RoundTrip(t *testing.T) {
	t.Parallel()
	for alg, k := range keyPairs() {
		j, err := auth.PublicJWK(k)
		if err != nil {
			t.Fatal(err)
		}
		if j.Alg != string(alg) || j.Use != "sig" || j.Kid != k.KID {
			t.Errorf("%s: got %+v, want that alg, use sig and the key's kid", alg, j)
		}
		raw, _ := json.Marshal(auth.JWKS{Keys: []auth.JWK{j}})
		if strings.Contains(string(raw), `"d"`) || strings.Contains(string(raw), `""`) {
			t.Errorf("%s: JSON %s has private or empty members", alg, raw)
		}
		pub, got, err := j.PublicKey()
		if err != nil || got != alg {
			t.Fatalf("%s: got %s, %v", alg, got, err)
		}
		type equaler interface{ Equal(x crypto.PublicKey) bool }
		if !pub.(equaler).Equal(k.Private.Public()) {
			t.Errorf("%s: decoded key differs", alg)
		}
	}
	if _, err := auth.PublicJWK(signingKey(t, auth.HS256)); err == nil {
		t.Error("HS256: got nil error, want one (a secret is never published)")
	}
}

func TestJWK_PublicKeyErrors(t *testing.T) {
	t.Parallel()
	ec, _ := auth.PublicJWK(keyPairs()[auth.ES256])
	ed, _ := auth.PublicJWK(keyPairs()[auth.EdDSA])
	rs, _ := auth.PublicJWK(keyPairs()[auth.RS256])
	edit := func(j auth.JWK, f func(*auth.JWK)) auth.JWK { f(&j); return j }
	tests := map[string]auth.JWK{
		"ErrAlgLies":        edit(ec, func(j *auth.JWK) { j.Alg = "RS256" }),
		"ErrAlgHS256":       edit(rs, func(j *auth.JWK) { j.Alg = "HS256" }),
		"ErrUseEnc":         edit(ed, func(j *auth.JWK) { j.Use = "enc" }),
		"ErrOct":            {Kty: "oct", Kid: "s"},
		"ErrOffCurve":       edit(ec, func(j *auth.JWK) { j.Y = j.X }),
		"ErrP384":           edit(ec, func(j *auth.JWK) { j.Crv = "P-384" }),
		"ErrShortX":         edit(ed, func(j *auth.JWK) { j.X = "AAAA" }),
		"ErrX25519":         edit(ed, func(j *auth.JWK) { j.Crv = "X25519" }),
		"ErrEvenExponent":   edit(rs, func(j *auth.JWK) { j.E = "AAI" }),
		"ErrHugeExponent":   edit(rs, func(j *auth.JWK) { j.E = "AQAAAAAB" }),
		"ErrShortModulus":   edit(rs, func(j *auth.JWK) { j.N = "AQAB" }),
		"ErrBadBase64":      edit(rs, func(j *auth.JWK) { j.N = "!!" }),
		"ErrEmpty":          {},
		"ErrEd25519AsEC":    edit(ed, func(j *auth.JWK) { j.Kty = "EC" }),
		"ErrPaddedBase64X":  edit(ed, func(j *auth.JWK) { j.X += "=" }),
		"ErrRSAMissingE":    edit(rs, func(j *auth.JWK) { j.E = "" }),
		"ErrECMissingCoord": edit(ec, func(j *auth.JWK) { j.Y = "" }),
	}
	for name, j := range tests {
		if _, _, err := j.PublicKey(); err == nil {
			t.Errorf("%s: got nil error, want one", name)
		}
	}
}

func TestSigningKey_Errors(t *testing.T) {
	t.Parallel()
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	tests := map[string]auth.SigningKey{
		"ErrWeakSecret":    {Alg: auth.HS256, Secret: []byte("short")},
		"ErrNoAlg":         {Secret: secret},
		"ErrUnknownAlg":    {Alg: "HS512", Secret: secret},
		"ErrNoPrivate":     {Alg: auth.RS256},
		"ErrKeyAlgMismath": {Alg: auth.ES256, Private: edPriv},
	}
	for name, k := range tests {
		if _, err := auth.SignAttempt(k, auth.AttemptClaims{}); err == nil {
			t.Errorf("%s: got nil error, want one", name)
		}
	}
	if _, err := auth.SignAttempt(signingKey(t, auth.HS256), auth.AttemptClaims{TTL: -time.Second}); err == nil {
		t.Error("negative TTL: got nil error, want one")
	}
	if _, err := auth.HMACKey([]byte("short")); !errors.Is(err, auth.ErrWeakSecret) {
		t.Errorf("HMACKey: got %v, want ErrWeakSecret", err)
	}
	if _, err := auth.MintWebioToken(secret[:31], auth.WebioClaims{Org: "demo"}); !errors.Is(err, auth.ErrWeakSecret) {
		t.Errorf("MintWebioToken: got %v, want ErrWeakSecret", err)
	}
	if _, err := auth.MintWebioToken(secret, auth.WebioClaims{}); err == nil {
		t.Error("MintWebioToken without org: got nil error, want one")
	}
}
