package web

import (
	"strings"

	"golang.org/x/net/http/httpguts"
)

// RedactedValue replaces a secret header value on the dashboard.
const RedactedValue = "[redacted]"

// RedactedHeaderNames returns the lower-case names of the headers that
// carry credentials. The page gets this list from the server, so the browser
// and RedactHeaders never disagree.
func RedactedHeaderNames() []string {
	return []string{
		"authorization",
		"proxy-authorization",
		"x-webio-token",
		"webhook-signature",
		"svix-signature",
		"cookie",
		"set-cookie",
	}
}

func isRedacted(name string) bool {
	for _, n := range RedactedHeaderNames() {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// RedactHeaders returns a copy of h with every credential replaced by
// RedactedValue; h itself is left whole (the store keeps it so). An
// Authorization value keeps its scheme ("Bearer [redacted]") because which
// scheme was used is what a developer debugging a 401 needs to see. Keys are
// kept as given.
func RedactHeaders(h map[string][]string) map[string][]string {
	if h == nil {
		return nil
	}
	out := make(map[string][]string, len(h))
	for k, vs := range h {
		if !isRedacted(k) {
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
