package auth_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sidehook/sidehook/internal/auth"
)

func TestSignRequest(t *testing.T) {
	t.Parallel()
	k := signingKey(t, auth.ES256)
	std := standardSecret(t)
	keys := auth.OutboundKeys{WebioToken: "webio.token.value", JWT: &k, Issuer: "relay", Org: "demo", Audience: "crm", Standard: [][]byte{std, otherSecret}}

	t.Run("OKHeaders", func(t *testing.T) {
		t.Parallel()
		h := http.Header{"X-Team": {"billing"}}
		o := auth.Outbound{Method: "POST", WebhookID: "evt_1", Event: "payment", Body: body, Timestamp: t0}
		if err := auth.SignRequest(h, []string{"webio-token", "jwt", "standard"}, keys, o); err != nil {
			t.Fatal(err)
		}
		if got := h.Get("x-webio-token"); got != "webio.token.value" {
			t.Errorf("x-webio-token: got %q, want \"webio.token.value\"", got)
		}
		if got := h.Get("Authorization"); !strings.HasPrefix(got, "Bearer ") {
			t.Errorf("authorization: got %q, want a bearer token", got)
		}
		if got := h.Get("webhook-timestamp"); got != "1800000000" {
			t.Errorf("webhook-timestamp: got %q, want 1800000000", got)
		}
		if got := h.Get("webhook-id"); got != "evt_1" {
			t.Errorf("webhook-id: got %q, want \"evt_1\"", got)
		}
		if got := strings.Fields(h.Get("webhook-signature")); len(got) != 2 {
			t.Errorf("webhook-signature: got %q, want two (rotation)", got)
		}
		if h.Get("x-team") != "billing" {
			t.Error("other headers: got them changed")
		}
		claims := decodeSegment(t, splitJWT(t, strings.TrimPrefix(h.Get("Authorization"), "Bearer "))[1])
		for name, want := range map[string]any{"iss": "relay", "sub": "demo", "aud": "crm", "evt": "payment", "wid": "evt_1", "sha256": auth.BodyHash(body)} {
			if claims[name] != want {
				t.Errorf("claim %s: got %v, want %v", name, claims[name], want)
			}
		}
	})

	t.Run("OKGetHashesQuery", func(t *testing.T) {
		t.Parallel()
		h := http.Header{}
		o := auth.Outbound{Method: "get", RawQuery: "fields=fullname", Timestamp: t0}
		if err := auth.SignRequest(h, []string{"jwt"}, keys, o); err != nil {
			t.Fatal(err)
		}
		claims := decodeSegment(t, splitJWT(t, strings.TrimPrefix(h.Get("Authorization"), "Bearer "))[1])
		if claims["sha256"] != auth.BodyHash([]byte("fields=fullname")) {
			t.Errorf("sha256: got %v, want the hash of the query", claims["sha256"])
		}
	})

	t.Run("OKNoSchemes", func(t *testing.T) {
		t.Parallel()
		h := http.Header{}
		if err := auth.SignRequest(h, nil, auth.OutboundKeys{}, auth.Outbound{}); err != nil || len(h) != 0 {
			t.Fatalf("got %v, %v, want no headers and no error", h, err)
		}
	})

	errs := []struct {
		name    string
		schemes []string
		keys    auth.OutboundKeys
		o       auth.Outbound
		want    string
	}{
		{"ErrNoWebioToken", []string{"jwt", "webio-token"}, auth.OutboundKeys{JWT: &k}, auth.Outbound{}, "webio-token"},
		{"ErrNoJWTKey", []string{"jwt"}, auth.OutboundKeys{}, auth.Outbound{}, "jwt"},
		{"ErrNoStandardSecret", []string{"standard"}, auth.OutboundKeys{}, auth.Outbound{WebhookID: "evt_1"}, "standard"},
		{"ErrNoWebhookID", []string{"standard"}, keys, auth.Outbound{}, "webhook id"},
		{"ErrUnknownScheme", []string{"basic"}, keys, auth.Outbound{}, `"basic"`},
		{"ErrWeakJWTSecret", []string{"jwt"}, auth.OutboundKeys{JWT: &auth.SigningKey{Alg: auth.HS256, Secret: []byte("x")}}, auth.Outbound{}, "32 bytes"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			err := auth.SignRequest(h, tt.schemes, tt.keys, tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error naming %s", err, tt.want)
			}
			if len(h) != 0 {
				t.Errorf("headers: got %v, want none on error", h)
			}
		})
	}
}

func TestParseScheme(t *testing.T) {
	t.Parallel()
	for _, s := range auth.Schemes() {
		if got, err := auth.ParseScheme(strings.ToUpper(s)); err != nil || got != s {
			t.Errorf("%s: got %q, %v", s, got, err)
		}
	}
	if _, err := auth.ParseScheme("none"); err == nil {
		t.Error("none: got nil error, want one")
	}
}
