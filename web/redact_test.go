package web_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/sidehook/sidehook/web"
)

func TestRedactHeaders(t *testing.T) {
	tests := []struct {
		name string
		in   map[string][]string
		want map[string][]string
	}{
		{"Nil", nil, nil},
		{"BearerKeepsSchemeAndClaims",
			map[string][]string{"authorization": {"Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig"}},
			map[string][]string{"authorization": {"Bearer eyJhbGciOiJIUzI1NiJ9.e30.[redacted]"}}},
		{"BasicKeepsScheme",
			map[string][]string{"Authorization": {"Basic dXNlcjpwYXNz"}},
			map[string][]string{"Authorization": {"Basic [redacted]"}}},
		{"BareAuthorizationValue",
			map[string][]string{"authorization": {"s3cr3t"}},
			map[string][]string{"authorization": {"[redacted]"}}},
		{"SchemeWithoutCredential",
			map[string][]string{"authorization": {"Bearer "}},
			map[string][]string{"authorization": {"[redacted]"}}},
		{"SecretWithSpaceNotHalfShown",
			map[string][]string{"authorization": {"pa=ss word"}},
			map[string][]string{"authorization": {"[redacted]"}}},
		{"WebioTokenLosesSignature",
			map[string][]string{"x-webio-token": {"eyJ.eyJ.sig"}},
			map[string][]string{"x-webio-token": {"eyJ.eyJ.[redacted]"}}},
		{"WebioTokenNotAJWT",
			map[string][]string{"x-webio-token": {"s3cr3t"}},
			map[string][]string{"x-webio-token": {"[redacted]"}}},
		{"MixedCaseNamesAndSeveralValues",
			map[string][]string{"Webhook-Signature": {"v1,abc v1,def", "v1,ghi"}, "COOKIE": {"a=b"}},
			map[string][]string{"Webhook-Signature": {"[redacted]", "[redacted]"}, "COOKIE": {"[redacted]"}}},
		{"OtherHeadersUntouched",
			map[string][]string{"content-type": {"application/json"}, "webhook-id": {"evt_1"}},
			map[string][]string{"content-type": {"application/json"}, "webhook-id": {"evt_1"}}},
		{"ByNamePattern",
			map[string][]string{"X-Api-Key": {"k_live_1"}, "x-hub-signature-256": {"sha256=abc"}, "stripe-signature": {"t=1,v1=abc"}, "x-auth-token": {"tok"}},
			map[string][]string{"X-Api-Key": {"[redacted]"}, "x-hub-signature-256": {"[redacted]"}, "stripe-signature": {"[redacted]"}, "x-auth-token": {"[redacted]"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before map[string][]string
			if tt.in != nil {
				before = deepCopy(tt.in)
			}
			got := web.RedactHeaders(tt.in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			if !reflect.DeepEqual(tt.in, before) {
				t.Fatalf("input changed to %v, want it left whole (%v)", tt.in, before)
			}
		})
	}
}

// TestIsSecretHeader: credentials are known by name or by a word in the
// name, whatever the platform; ids, times and challenges stay visible.
func TestIsSecretHeader(t *testing.T) {
	secret := []string{
		"Authorization", "proxy-authorization", "x-webio-token", "webhook-signature", "svix-signature", "cookie", "Set-Cookie",
		"x-api-key", "X-API-Key", "x-auth-token", "stripe-signature", "x-hub-signature", "x-hub-signature-256",
		"x-gitlab-token", "x-hook-secret", "x-slack-signature", "x-shopify-hmac-sha256", "x-amz-security-token",
		"x-twilio-signature", "paypal-transmission-sig", "x_api_key", "x-client-password", "x-credentials", "signature",
	}
	shown := []string{
		"webhook-id", "webhook-timestamp", "content-type", "content-length", "user-agent", "accept", "x-request-id",
		"idempotency-key", "X-Idempotency-Key", "www-authenticate", "proxy-authenticate", "signature-input",
		"x-signature-timestamp", "x-slack-request-timestamp", "sidehook-delivery", "sidehook-attempt",
		"sidehook-event", "sidehook-replay-of", "x-github-delivery", "x-github-event", "keep-alive", "x-signal",
	}
	for _, n := range secret {
		if !web.IsSecretHeader(n) {
			t.Errorf("IsSecretHeader(%q): got false, want true", n)
		}
	}
	for _, n := range shown {
		if web.IsSecretHeader(n) {
			t.Errorf("IsSecretHeader(%q): got true, want false", n)
		}
	}
	for _, n := range web.RedactedHeaderNames() {
		if !web.IsSecretHeader(n) {
			t.Errorf("IsSecretHeader(%q) of RedactedHeaderNames: got false, want true", n)
		}
	}
}

// TestRedactHeadersAlso: names given beside the known ones (an endpoint's
// configured headers) are redacted whole, in any case.
func TestRedactHeadersAlso(t *testing.T) {
	in := map[string][]string{"X-Tenant": {"acme-secret-tenant"}, "x-region": {"eu"}, "idempotency-key": {"k1"}}
	got := web.RedactHeaders(in, "x-tenant", "IDEMPOTENCY-KEY")
	want := map[string][]string{"X-Tenant": {web.RedactedValue}, "x-region": {"eu"}, "idempotency-key": {web.RedactedValue}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestRedactHeadersCopies(t *testing.T) {
	in := map[string][]string{"x-team": {"billing"}}
	out := web.RedactHeaders(in)
	out["x-team"][0] = "changed"
	if in["x-team"][0] != "billing" {
		t.Fatalf("got %q in the input after editing the output, want %q", in["x-team"][0], "billing")
	}
}

func deepCopy(h map[string][]string) map[string][]string {
	out := make(map[string][]string, len(h))
	for k, v := range h {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// FuzzRedactHeaders: header names and values come straight off the wire.
// Whatever they are, no secret value survives redaction.
func FuzzRedactHeaders(f *testing.F) {
	f.Add("authorization", "Bearer abc.def.ghi")
	f.Add("x-webio-token", "eyJ0eXAiOiJKV1QifQ.e30.x")
	f.Add("Cookie", "session=1; other=2")
	f.Add("webhook-signature", "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=")
	f.Add("content-type", "application/json")
	f.Fuzz(func(t *testing.T, name, value string) {
		got := web.RedactHeaders(map[string][]string{name: {value}})
		vs, ok := got[name]
		if !ok || len(vs) != 1 {
			t.Fatalf("got %v, want one value under %q", got, name)
		}
		if !web.IsSecretHeader(name) {
			if vs[0] != value {
				t.Fatalf("got %q for a plain header, want %q", vs[0], value)
			}
			return
		}
		if !strings.HasSuffix(vs[0], web.RedactedValue) {
			t.Fatalf("got %q, want it to end in %q", vs[0], web.RedactedValue)
		}
		// What is kept: at most a scheme name, then at most a JWT's header
		// and claims (never its signature), all taken from the input.
		kept := strings.TrimSuffix(vs[0], web.RedactedValue)
		scheme, jwtHead, hasScheme := strings.Cut(kept, " ")
		if !hasScheme {
			scheme, jwtHead = "", kept
		}
		if len(scheme) > 32 || strings.ContainsAny(jwtHead, " \t") {
			t.Fatalf("got %q: more than a scheme name and a JWT's head kept", vs[0])
		}
		if jwtHead != "" && (strings.Count(jwtHead, ".") != 2 || !strings.HasSuffix(jwtHead, ".") || !strings.Contains(value, jwtHead)) {
			t.Fatalf("got %q: kept %q, want only the input JWT's header and claims", vs[0], jwtHead)
		}
	})
}
