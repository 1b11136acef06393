package web

import (
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// RedactedValue replaces a secret header value on the dashboard.
const RedactedValue = "[redacted]"

// RedactedHeaderNames returns the lower-case names of well-known headers
// that carry credentials. The page gets this list from the server to mark
// their cells; their values, and those of every other header IsSecretHeader
// names, are redacted by the server before anything reaches a browser.
func RedactedHeaderNames() []string { return slices.Clone(secretNames) }

// secretNames are RedactedHeaderNames.
var secretNames = []string{
	"authorization",
	"proxy-authorization",
	"x-webio-token",
	"webhook-signature",
	"svix-signature",
	"stripe-signature",
	"x-hub-signature",
	"x-hub-signature-256",
	"x-api-key",
	"x-auth-token",
	"cookie",
	"set-cookie",
}

// secretWords are parts of header names that say they carry a credential
// (x-api-key, x-gitlab-token, x-hook-secret, x-slack-signature,
// x-shopify-hmac-sha256, x-amz-security-token, …): a header named with one
// is redacted, whatever the platform, so a new provider's secret is not
// shown in the clear because its exact name is not in a list.
var secretWords = []string{"auth", "token", "secret", "password", "passwd", "credential", "signature", "hmac", "key", "cookie"}

// secretSegments are secretWords too short to match inside a name: they
// count only as a whole part between "-" or "_" (paypal-transmission-sig).
var secretSegments = []string{"sig"}

// notSecret are names that contain a secret word but carry no credential;
// redacting them would hide what a developer debugging a webhook reads:
//   - idempotency-key, x-idempotency-key: an id the sender picks so a retry
//     is not applied twice; it grants nothing, and it is what one compares
//     when a webhook seems to arrive twice;
//   - www-authenticate, proxy-authenticate: a challenge (scheme, realm,
//     error), never a credential (RFC 9110 §11.6.1, §11.7.1), and the
//     reason for a 401;
//   - signature-input: which parts of the request an RFC 9421 signature
//     covers, and with which key id; the signature is in "signature".
//
// A name ending in -timestamp (x-signature-timestamp) is a time, not a
// secret, and the first thing to check when a signature is refused as
// stale: it is shown too (isSecretName).
var notSecret = []string{"idempotency-key", "x-idempotency-key", "www-authenticate", "proxy-authenticate", "signature-input"}

// IsSecretHeader reports whether the header name (any case) carries a
// credential, so that its value never reaches a browser, a list API or an
// export: a name of RedactedHeaderNames, or one containing a secret word
// (auth, token, secret, password, credential, signature, hmac, key,
// cookie; sig as a whole part) unless it is known to carry none
// (idempotency-key, www-authenticate, proxy-authenticate,
// signature-input, *-timestamp). webhook-id, content-type and the like are
// shown.
func IsSecretHeader(name string) bool { return isSecretName(strings.ToLower(name), nil) }

// isSecretName is IsSecretHeader of a lower-case name, also true for a
// name in also (lower-case too).
func isSecretName(name string, also []string) bool {
	if slices.Contains(also, name) || slices.Contains(secretNames, name) {
		return true
	}
	if slices.Contains(notSecret, name) {
		return false
	}
	if strings.HasSuffix(name, "-timestamp") {
		return false
	}
	for _, w := range secretWords {
		if strings.Contains(name, w) {
			return true
		}
	}
	for part := range strings.FieldsFuncSeq(name, func(r rune) bool { return r == '-' || r == '_' }) {
		if slices.Contains(secretSegments, part) {
			return true
		}
	}
	return false
}

// RedactHeaders returns a copy of h with every credential replaced by
// RedactedValue; h itself is left whole (the store keeps it so). A header
// is a credential when IsSecretHeader says so or it is named in also (any
// case): an endpoint's configured headers, whose values the relay cannot
// tell from secrets. An Authorization value keeps its scheme ("Bearer
// [redacted]") because which scheme was used is what a developer debugging
// a 401 needs to see, and a JWT (there or in X-Webio-Token) its header and
// claims. Keys are kept as given.
//
// It is the one redaction: the dashboards (receiver, relay, tunnel
// inspector) redact every row they build with it, the receiver's admin API
// and exports too.
func RedactHeaders(h map[string][]string, also ...string) map[string][]string {
	if h == nil {
		return nil
	}
	if len(also) > 0 {
		lower := make([]string, len(also))
		for i, n := range also {
			lower[i] = strings.ToLower(n)
		}
		also = lower
	}
	out := make(map[string][]string, len(h))
	for k, vs := range h {
		if !isSecretName(strings.ToLower(k), also) {
			out[k] = append([]string(nil), vs...)
			continue
		}
		red := make([]string, len(vs))
		for i, v := range vs {
			red[i] = redactValue(k, v)
		}
		out[k] = red
	}
	return out
}

func redactValue(name, v string) string {
	if strings.EqualFold(name, "authorization") || strings.EqualFold(name, "proxy-authorization") {
		v = strings.TrimSpace(v)
		if scheme, rest, ok := strings.Cut(v, " "); ok && isToken(scheme) && strings.TrimSpace(rest) != "" {
			return scheme + " " + unsignedJWT(strings.TrimSpace(rest))
		}
	}
	if strings.EqualFold(name, "x-webio-token") {
		return unsignedJWT(strings.TrimSpace(v))
	}
	return RedactedValue
}

// unsignedJWT keeps a JWT's header and claims, which are not secret and are
// what a developer debugging a 401 reads, and drops its signature, without
// which the token proves nothing and cannot be replayed. Anything that is
// not a JWT is redacted whole.
func unsignedJWT(v string) string {
	parts := strings.Split(v, ".")
	if len(parts) != 3 || !isBase64URL(parts[0]) || !isBase64URL(parts[1]) || parts[0] == "" || parts[1] == "" {
		return RedactedValue
	}
	return parts[0] + "." + parts[1] + "." + RedactedValue
}

func isBase64URL(s string) bool {
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
		default:
			return false
		}
	}
	return true
}

// isToken reports whether s looks like an auth scheme name (RFC 9110
// token), so a bare secret containing a space is never half shown.
func isToken(s string) bool {
	return len(s) <= 32 && httpguts.ValidHeaderFieldName(s)
}
