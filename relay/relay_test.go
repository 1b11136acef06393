package relay_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/sidehook/sidehook/fixtures"
	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
)

func TestDeliverVerified(t *testing.T) {
	std, _ := auth.ParseStandardSecret(whsec)
	rcv := newSink(t, &auth.VerifyConfig{WebioSecret: []byte(secretKey), Org: "demo", StandardSecrets: [][]byte{std}}, nil)
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL() + "/webhooks", Auth: []string{"webio-token", "standard"}}), relay.Options{})
	payload, _ := fixtures.Default().Payload("payment")
	ans := ingest(t, r, string(payload), nil)
	if ans.Type != "payment" || len(ans.Deliveries) != 1 || ans.Deliveries[0].Endpoint != "crm" {
		t.Fatalf("answer: got %+v, want payment with one delivery to crm", ans)
	}
	c := rcv.wait(t, 5*time.Second, func(c []captured) bool { return len(c) >= 1 })[0]
	if c.Verdict.Status != "valid" {
		t.Errorf("verdict: got %+v, want valid", c.Verdict)
	}
	if string(c.Body) != string(payload) {
		t.Errorf("body: got %q, want the bytes sent %q", c.Body, payload)
	}
	want := map[string]string{
		"sidehook-event": "payment", "sidehook-delivery": ans.Deliveries[0].ID, "sidehook-attempt": "1",
		"webhook-id": ans.ID, "user-agent": "sidehook/dev", "content-type": "application/json",
	}
	for k, v := range want {
		if got := c.Header.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("header %s: got %v, want %q", k, got, v)
		}
	}
	if ts, err := strconv.ParseInt(c.Header.Get("webhook-timestamp"), 10, 64); err != nil || time.Since(time.Unix(ts, 0)) > time.Minute {
		t.Errorf("webhook-timestamp: got %v, want a Unix time within the last minute", c.Header.Get("webhook-timestamp"))
	}
	d := waitDelivery(t, r, ans.Deliveries[0].ID, "delivered", 5*time.Second)
	if len(d.Attempts) != 1 || d.Attempts[0].Status != 200 {
		t.Errorf("attempts: got %+v, want one, status 200", d.Attempts)
	}
}

func TestDeliverJWT(t *testing.T) {
	for _, alg := range []string{"HS256", "ES256", "RS256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			f := config.File{Listen: "127.0.0.1:0", Organisations: []config.RawOrg{{ID: "demo", APIKeys: []string{apiKey}, SecretKey: secretKey}}}
			f.Organisations[0].JWT.Algorithm = alg
			// The receiver's verifier needs the relay's JWKS URL, which
			// exists only once the relay listens: start the relay first
			// and add the endpoint through the API.
			cfg, err := f.Validate(nil)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Data = t.TempDir()
			r := startRelay(t, cfg, relay.Options{})
			vc := auth.VerifyConfig{Issuer: "sidehook", Audience: "crm", RequireSHA256: true}
			if alg == "HS256" {
				vc.JWTSecret = []byte(secretKey)
			} else {
				vc.JWKS = auth.NewJWKSFetcher(r.URL()+"/.well-known/jwks.json", nil, auth.JWKSOptions{})
			}
			rcv := newSink(t, &vc, nil)
			a := call(t, "POST", r.URL()+"/v1/endpoints", apiKey, []byte(`{"id":"crm","url":"`+rcv.URL()+`/hook","auth":["jwt"]}`), nil)
			if a.Status != http.StatusCreated {
				t.Fatalf("create endpoint: %d %s, want 201", a.Status, a.Body)
			}
			ans := ingest(t, r, `{"type":"inboundMessage","body":"hi"}`, nil)
			caps := rcv.wait(t, 5*time.Second, func(c []captured) bool { return len(c) >= 1 })
			if caps[0].Header.Get("webhook-id") != ans.ID {
				t.Errorf("webhook-id: got %q, want %q", caps[0].Header.Get("webhook-id"), ans.ID)
			}
			if caps[0].Verdict.Status != "valid" {
				t.Fatalf("verdict: got %+v, want valid", caps[0].Verdict)
			}
			if caps[0].Verdict.Claims["evt"] != "inbound_message" || caps[0].Verdict.Claims["wid"] != ans.ID || caps[0].Verdict.Claims["sub"] != "demo" {
				t.Errorf("claims: got %v, want evt inbound_message, wid the event id, sub demo", caps[0].Verdict.Claims)
			}
		})
	}
}

// TestDeliverConfiguredContentType: an endpoint's headers may name the
// Content-Type its receiver wants; it replaces the producer's, as the
// configuration accepted it, rather than being dropped for it.
func TestDeliverConfiguredContentType(t *testing.T) {
	rcv := newSink(t, nil, nil)
	r := startRelay(t, orgConfig(t,
		config.RawEndpoint{ID: "custom", URL: rcv.URL() + "/custom", Headers: map[string]string{"content-type": "application/vnd.acme+json"}},
		config.RawEndpoint{ID: "plain", URL: rcv.URL() + "/plain"},
	), relay.Options{})
	ingest(t, r, `{"type":"payment"}`, map[string]string{"Content-Type": "text/plain; charset=utf-8"})
	got := rcv.wait(t, 5*time.Second, func(c []captured) bool { return len(c) >= 2 })
	want := map[string]string{"/custom": "application/vnd.acme+json", "/plain": "text/plain; charset=utf-8"}
	for _, c := range got {
		if ct := c.Header.Values("Content-Type"); len(ct) != 1 || ct[0] != want[c.Path] {
			t.Errorf("%s: Content-Type %v, want %q", c.Path, ct, want[c.Path])
		}
	}
}
