// Package auth signs and verifies the three authentication schemes a
// sidehook delivery may carry (SPEC §3):
//
//   - webio-token: Webio's long-lived HS256 token in x-webio-token;
//   - jwt: a fresh token per attempt in Authorization: Bearer, signed HS256
//     with the organisation's secret or RS256/ES256/EdDSA with the relay's
//     key pair, binding the body through its sha256 claim;
//   - standard: Standard Webhooks HMAC signatures in webhook-signature.
//
// The relay signs outbound deliveries and verifies inbound platform tokens,
// the mock receiver verifies, replay re-signs. Every verification pins the
// algorithm to the key type (never the token's choice), never accepts
// alg "none", and compares secrets in constant time.
package auth

import (
	"errors"
	"fmt"
	"strings"
)

// Scheme names, as written in an endpoint's auth list and in a Verdict.
const (
	SchemeWebioToken = "webio-token"
	SchemeJWT        = "jwt"
	SchemeStandard   = "standard"
)

// Header names, lower case as the capture store keeps them; net/http
// canonicalises them on the wire.
const (
	HeaderWebioToken    = "x-webio-token"
	HeaderSignature     = "webhook-signature"
	HeaderWebhookID     = "webhook-id"
	HeaderTimestamp     = "webhook-timestamp"
	HeaderAuthorization = "authorization"
	// Svix's names for webhook-id, webhook-timestamp and webhook-signature.
	HeaderSvixID        = "svix-id"
	HeaderSvixTimestamp = "svix-timestamp"
	HeaderSvixSignature = "svix-signature"
)

// MinSecretLen is the shortest secret key accepted for HMAC tokens: HS256
// with a key shorter than its 32-byte output is brute-forceable offline from
// a single captured token.
const MinSecretLen = 32

// MinStandardSecretLen is the shortest Standard Webhooks secret accepted;
// the Standard Webhooks specification asks for 24 to 64 random bytes.
const MinStandardSecretLen = 24

// DefaultIssuer is the iss claim of tokens minted without an explicit issuer.
const DefaultIssuer = "sidehook"

// ErrWeakSecret is returned wherever a secret key shorter than MinSecretLen
// would sign or verify an HMAC token.
var ErrWeakSecret = errors.New("auth: secret key must be at least 32 bytes")

// Schemes lists the scheme names in the order a Verifier checks them.
func Schemes() []string {
	return []string{SchemeWebioToken, SchemeJWT, SchemeStandard}
}

// ParseScheme validates a scheme name from configuration or a flag.
func ParseScheme(s string) (string, error) {
	switch v := strings.ToLower(strings.TrimSpace(s)); v {
	case SchemeWebioToken, SchemeJWT, SchemeStandard:
		return v, nil
	}
	return "", fmt.Errorf("auth: unknown scheme %q (want %s, %s or %s)", s, SchemeWebioToken, SchemeJWT, SchemeStandard)
}
