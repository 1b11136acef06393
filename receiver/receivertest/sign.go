package receivertest

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/sidehook/sidehook/internal/auth"
)

// A Signer adds one scheme's authentication headers to a request whose body
// is body. Signers are made by WebioToken, JWT and StandardWebhooks.
type Signer func(req *http.Request, body []byte) error

// NewRequest returns a request with the body, signed by each signer in
// turn. An error fails the test.
func NewRequest(tb testing.TB, method, url string, body []byte, signers ...Signer) *http.Request {
	tb.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		tb.Fatalf("receivertest: new request: %v", err)
	}
	if err := Sign(req, body, signers...); err != nil {
		tb.Fatalf("receivertest: %v", err)
	}
	return req
}

// Sign applies the signers to req, whose body is body.
func Sign(req *http.Request, body []byte, signers ...Signer) error {
	for _, s := range signers {
		if err := s(req, body); err != nil {
			return err
		}
	}
	return nil
}

// WebioToken signs with a Webio-style token in x-webio-token: HS256 by the
// organisation's secret over iss "sidehook" (the relay's default issuer),
// org, iat now and a fresh jti.
func WebioToken(secret, org string) Signer {
	return func(req *http.Request, _ []byte) error {
		tok, err := auth.MintWebioToken([]byte(secret), auth.WebioClaims{Org: org})
		if err != nil {
			return fmt.Errorf("sign webio-token: %w", err)
		}
		req.Header.Set(auth.HeaderWebioToken, tok)
		return nil
	}
}

// JWTClaims are the claims of a per-attempt JWT as sidehook's relay sends
// it. The sha256 claim is always the body's hash (the raw query's for a
// GET); iat and nbf are IssuedAt, exp is IssuedAt+TTL.
type JWTClaims struct {
	Issuer    string // iss; "sidehook", the relay's default issuer, when empty
	Subject   string // sub: the organisation
	Audience  string // aud: the endpoint id
	Event     string // evt
	WebhookID string // wid
	// IssuedAt is now when zero; TTL is 5 minutes when zero.
	IssuedAt time.Time
	TTL      time.Duration
}

// JWT signs with a per-attempt JWT in Authorization: Bearer, signed by key
// (its kid in the header when key is a key pair).
func JWT(key Key, c JWTClaims) Signer {
	return func(req *http.Request, body []byte) error {
		covered := body
		if strings.EqualFold(req.Method, http.MethodGet) {
			covered = []byte(req.URL.RawQuery)
		}
		tok, err := auth.SignAttempt(key.k, auth.AttemptClaims{
			Issuer: c.Issuer, Subject: c.Subject, Audience: c.Audience,
			Event: c.Event, WebhookID: c.WebhookID, SHA256: auth.BodyHash(covered),
			IssuedAt: c.IssuedAt, TTL: c.TTL,
		})
		if err != nil {
			return fmt.Errorf("sign jwt: %w", err)
		}
		req.Header.Set(auth.HeaderAuthorization, "Bearer "+tok)
		return nil
	}
}

// StandardWebhooks signs as Standard Webhooks does, with a "whsec_…"
// secret: it sets webhook-id (webhookID, or a fresh msg_ id when empty),
// webhook-timestamp (now) and webhook-signature over the three.
func StandardWebhooks(secret, webhookID string) Signer {
	return func(req *http.Request, body []byte) error {
		key, err := auth.ParseStandardSecret(secret)
		if err != nil {
			return fmt.Errorf("sign standard: %w", err)
		}
		// A fresh id per request: assigning to webhookID would keep the
		// first one for every later request signed by this Signer.
		id := webhookID
		if id == "" {
			id = "msg_" + ulid.Make().String()
		}
		now := time.Now()
		req.Header.Set(auth.HeaderWebhookID, id)
		req.Header.Set(auth.HeaderTimestamp, fmt.Sprint(now.Unix()))
		req.Header.Set(auth.HeaderSignature, auth.SignStandard(key, id, now, body))
		return nil
	}
}

// NewStandardSecret returns a fresh "whsec_…" secret of 32 random bytes.
func NewStandardSecret() string {
	key := make([]byte, 32)
	rand.Read(key) // never fails (crypto/rand)
	return auth.FormatStandardSecret(key)
}

// Key signs JWTs: an HS256 secret or a key pair.
type Key struct{ k auth.SigningKey }

// SecretKey is an HS256 key: the secret of WithJWTSecret.
func SecretKey(secret string) Key {
	return Key{auth.SigningKey{Alg: auth.HS256, Secret: []byte(secret)}}
}

// GenerateKey makes a key pair for alg: "RS256", "ES256" or "EdDSA".
func GenerateKey(alg string) (Key, error) {
	a, err := auth.ParseAlgorithm(alg)
	if err != nil {
		return Key{}, err
	}
	k, err := auth.GenerateKey(a)
	if err != nil {
		return Key{}, err
	}
	return Key{k}, nil
}

// KID is the key's id, as JWTs signed by it and its JWKS entry carry it
// ("" for an HS256 key).
func (k Key) KID() string {
	if !k.k.Alg.Asymmetric() {
		return ""
	}
	j, err := auth.PublicJWK(k.k)
	if err != nil {
		return ""
	}
	return j.Kid
}

// PublicKeyPEM is the public half of a key pair, for WithJWTPublicKey.
func (k Key) PublicKeyPEM() ([]byte, error) {
	if !k.k.Alg.Asymmetric() {
		return nil, errors.New("receivertest: an HS256 key has no public key")
	}
	return auth.MarshalPublicKeyPEM(k.k.Private.Public())
}

// JWKS is the JSON Web Key Set document of the key pairs' public halves.
func JWKS(keys ...Key) ([]byte, error) {
	ks := make([]auth.SigningKey, len(keys))
	for i, k := range keys {
		ks[i] = k.k
	}
	set, err := auth.NewJWKS(ks...)
	if err != nil {
		return nil, err
	}
	return json.Marshal(set)
}

// ServeJWKS serves the keys' JWKS on a loopback port until the test ends
// and returns its URL, for WithJWKSURL. An error fails the test.
func ServeJWKS(tb testing.TB, keys ...Key) string {
	tb.Helper()
	doc, err := JWKS(keys...)
	if err != nil {
		tb.Fatalf("receivertest: jwks: %v", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	}))
	tb.Cleanup(srv.Close)
	return srv.URL + "/.well-known/jwks.json"
}
