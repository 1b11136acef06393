package auth

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oklog/ulid/v2"
)

// DefaultAttemptTTL is the lifetime of a per-attempt JWT (SPEC §3: exp is
// iat + 5 min).
const DefaultAttemptTTL = 5 * time.Minute

// WebioClaims are the claims of a Webio-style token.
type WebioClaims struct {
	Issuer   string        // iss; DefaultIssuer when empty
	Org      string        // org: the organisation id (required)
	ID       string        // jti; a fresh ULID when empty
	IssuedAt time.Time     // iat; now when zero
	TTL      time.Duration // exp = iat + TTL when > 0; no exp otherwise, as Webio's tokens have none
}

// webioClaims is the wire form: a struct rather than a map so the claim
// order is fixed and signing allocates little.
type webioClaims struct {
	Iss string `json:"iss,omitempty"`
	Org string `json:"org"`
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp,omitempty"`
	Jti string `json:"jti"`
}

// MintWebioToken makes the organisation's long-lived token: HS256 over
// iss, org, iat, jti (and exp when a lifetime is asked for).
func MintWebioToken(secret []byte, c WebioClaims) (string, error) {
	if len(secret) < MinSecretLen {
		return "", ErrWeakSecret
	}
	if c.Org == "" {
		return "", errors.New("auth: mint webio token: org is required")
	}
	if c.TTL < 0 {
		return "", errors.New("auth: mint webio token: negative lifetime")
	}
	iat := c.IssuedAt
	if iat.IsZero() {
		iat = time.Now()
	}
	w := webioClaims{Iss: c.Issuer, Org: c.Org, Iat: iat.Unix(), Jti: c.ID}
	if w.Iss == "" {
		w.Iss = DefaultIssuer
	}
	if w.Jti == "" {
		w.Jti = ulid.Make().String()
	}
	if c.TTL > 0 {
		w.Exp = iat.Add(c.TTL).Unix()
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, w).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("auth: mint webio token: %w", err)
	}
	return s, nil
}

// AttemptClaims are the claims of a per-attempt JWT.
type AttemptClaims struct {
	Issuer    string // iss; DefaultIssuer when empty
	Subject   string // sub: organisation id
	Audience  string // aud: endpoint id
	ID        string // jti; a fresh ULID when empty (unique per attempt)
	Event     string // evt: event type
	WebhookID string // wid: the webhook-id header
	SHA256    string // sha256: BodyHash of the body (POST) or raw query (GET)
	IssuedAt  time.Time
	TTL       time.Duration // exp = iat + TTL; DefaultAttemptTTL when zero
}

type attemptClaims struct {
	Iss    string `json:"iss,omitempty"`
	Sub    string `json:"sub,omitempty"`
	Aud    string `json:"aud,omitempty"`
	Iat    int64  `json:"iat"`
	Nbf    int64  `json:"nbf"`
	Exp    int64  `json:"exp"`
	Jti    string `json:"jti"`
	Evt    string `json:"evt,omitempty"`
	Wid    string `json:"wid,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
}

// SignAttempt signs a per-attempt JWT with k. Tokens from key pairs carry
// the key's kid so a verifier can pick the key from the JWKS.
func SignAttempt(k SigningKey, c AttemptClaims) (string, error) {
	if err := k.validate(); err != nil {
		return "", err
	}
	if c.TTL < 0 {
		return "", errors.New("auth: sign attempt: negative lifetime")
	}
	ttl := c.TTL
	if ttl == 0 {
		ttl = DefaultAttemptTTL
	}
	iat := c.IssuedAt
	if iat.IsZero() {
		iat = time.Now()
	}
	a := attemptClaims{
		Iss: c.Issuer, Sub: c.Subject, Aud: c.Audience,
		Iat: iat.Unix(), Nbf: iat.Unix(), Exp: iat.Add(ttl).Unix(),
		Jti: c.ID, Evt: c.Event, Wid: c.WebhookID, SHA256: c.SHA256,
	}
	if a.Iss == "" {
		a.Iss = DefaultIssuer
	}
	if a.Jti == "" {
		a.Jti = ulid.Make().String()
	}
	var (
		method jwt.SigningMethod
		key    any = k.Private
	)
	switch k.Alg {
	case HS256:
		method, key = jwt.SigningMethodHS256, k.Secret
	case RS256:
		method = jwt.SigningMethodRS256
	case ES256:
		method = jwt.SigningMethodES256
	case EdDSA:
		method = jwt.SigningMethodEdDSA
	}
	t := jwt.NewWithClaims(method, a)
	if k.Alg.Asymmetric() {
		kid := k.KID
		if kid == "" {
			jwk, err := PublicJWK(k)
			if err != nil {
				return "", err
			}
			kid = jwk.Kid
		}
		t.Header["kid"] = kid
	}
	s, err := t.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("auth: sign attempt: %w", err)
	}
	return s, nil
}

// BodyHash is the sha256 claim of a body: base64url, unpadded, SHA-256 of
// the exact bytes (no re-serialisation, so any byte change shows).
func BodyHash(b []byte) string {
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// jwt.Claims for the wire structs; only signing uses them, verification
// goes through MapClaims so unknown claims reach the verdict too.

func (w webioClaims) GetExpirationTime() (*jwt.NumericDate, error) { return unixDate(w.Exp), nil }
func (w webioClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return unixDate(w.Iat), nil }
func (w webioClaims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (w webioClaims) GetIssuer() (string, error)                   { return w.Iss, nil }
func (w webioClaims) GetSubject() (string, error)                  { return "", nil }
func (w webioClaims) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

func (a attemptClaims) GetExpirationTime() (*jwt.NumericDate, error) { return unixDate(a.Exp), nil }
func (a attemptClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return unixDate(a.Iat), nil }
func (a attemptClaims) GetNotBefore() (*jwt.NumericDate, error)      { return unixDate(a.Nbf), nil }
func (a attemptClaims) GetIssuer() (string, error)                   { return a.Iss, nil }
func (a attemptClaims) GetSubject() (string, error)                  { return a.Sub, nil }
func (a attemptClaims) GetAudience() (jwt.ClaimStrings, error) {
	if a.Aud == "" {
		return nil, nil
	}
	return jwt.ClaimStrings{a.Aud}, nil
}

func unixDate(sec int64) *jwt.NumericDate {
	if sec == 0 {
		return nil
	}
	return jwt.NewNumericDate(time.Unix(sec, 0))
}
