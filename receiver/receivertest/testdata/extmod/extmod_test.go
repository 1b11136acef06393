// Package extmod is a module of its own that uses receivertest as any
// other project would: through its exported API only, with none of
// sidehook's internal packages.
package extmod

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/sidehook/sidehook/receiver/receivertest"
)

// TestSignedRequestVerifiedWithJWKS builds signed requests with the
// exported helpers and has them verified through a JWKS, with the
// issuer, audience, leeway and body hash checked, and a Standard Webhooks
// signature on top.
func TestSignedRequestVerifiedWithJWKS(t *testing.T) {
	key, err := receivertest.GenerateKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	whsec := receivertest.NewStandardSecret()
	rcv := receivertest.NewServer(t,
		receivertest.WithJWKSURL(receivertest.ServeJWKS(t, key)),
		receivertest.WithIssuer("acme"),
		receivertest.WithAudience("ep_orders"),
		receivertest.WithLeeway(5*time.Second),
		receivertest.WithRequireSHA256(),
		receivertest.WithStandardSecret(whsec),
	)
	claims := receivertest.JWTClaims{Issuer: "acme", Audience: "ep_orders", Subject: "org_1", Event: "payment"}
	body := []byte(`{"type":"payment","amount":"12.00"}`)

	req := receivertest.NewRequest(t, http.MethodPost, rcv.URL+"/orders", body,
		receivertest.JWT(key, claims), receivertest.StandardWebhooks(whsec, "msg_ext_1"))
	if status := send(t, rcv, req); status != http.StatusOK {
		t.Fatalf("signed request: got %d, want 200", status)
	}

	// The same token on another body fails its sha256 claim.
	forged := receivertest.NewRequest(t, http.MethodPost, rcv.URL+"/orders", []byte(`{"amount":"9999.00"}`),
		receivertest.JWT(key, claims), receivertest.StandardWebhooks(whsec, "msg_ext_2"))
	forged.Header.Set("Authorization", req.Header.Get("Authorization"))
	if status := send(t, rcv, forged); status != http.StatusUnauthorized {
		t.Fatalf("token of another body: got %d, want 401", status)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	caps, err := rcv.Wait(ctx, receivertest.Filter{Path: "/orders"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	var ok, refused receivertest.Verdict = caps[1].Verdict, caps[0].Verdict
	if ok.Status != receivertest.VerdictValid || ok.Scheme != "jwt,standard" {
		t.Errorf("signed request: verdict %+v, want valid by jwt,standard", ok)
	}
	if exp, isInt := ok.Claims["exp"].(int64); !isInt || exp <= time.Now().Unix() {
		t.Errorf("exp claim: got %T %v, want a future int64", ok.Claims["exp"], ok.Claims["exp"])
	}
	if refused.Status != receivertest.VerdictInvalid || refused.Scheme != "jwt" {
		t.Errorf("forged request: verdict %+v, want invalid by jwt", refused)
	}
	if caps[1].WebhookID != "msg_ext_1" {
		t.Errorf("webhook-id: got %q, want \"msg_ext_1\"", caps[1].WebhookID)
	}
}

func send(t *testing.T, rcv *receivertest.Server, req *http.Request) int {
	t.Helper()
	resp, err := rcv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestScriptedFailures scripts failures with receivertest's own names, no
// import of the receiver package: a webhook-id that fails twice then
// succeeds, and a reset connection once.
func TestScriptedFailures(t *testing.T) {
	rcv := receivertest.NewServer(t, receivertest.WithRules(
		receivertest.Rule{
			Match:   receivertest.Match{Path: "/flaky"},
			Respond: receivertest.Respond{Sequence: []int{503, 503, 200}, Per: receivertest.PerWebhookID},
		},
		receivertest.Rule{
			Match:   receivertest.Match{Path: "/drop"},
			Respond: receivertest.Respond{Fault: receivertest.FaultReset, Times: 1},
		},
	))
	var got []int
	for range 3 {
		req := receivertest.NewRequest(t, http.MethodPost, rcv.URL+"/flaky", []byte(`{}`))
		req.Header.Set("webhook-id", "evt_1")
		got = append(got, send(t, rcv, req))
	}
	if got[0] != 503 || got[1] != 503 || got[2] != 200 {
		t.Errorf("sequence: got %v, want [503 503 200]", got)
	}
	if _, err := rcv.Client().Do(receivertest.NewRequest(t, http.MethodPost, rcv.URL+"/drop", nil)); err == nil {
		t.Error("reset fault: got an answer, want a connection error")
	}
	caps := rcv.Expect(receivertest.Filter{Path: "/drop"}, 1, 5*time.Second)
	if caps[0].Response.Fault != receivertest.FaultReset {
		t.Errorf("fault: got %q, want %q", caps[0].Response.Fault, receivertest.FaultReset)
	}
}

// TestParallelSubtestsShareOneReceiver: parallel subtests share one
// receiver, each scripting its own path with AddRules and reading its own
// captures, with the exported API only.
func TestParallelSubtestsShareOneReceiver(t *testing.T) {
	rcv := receivertest.NewServer(t, receivertest.WithValuesJSON(`{"default":{"fullname":"there"}}`))
	for _, status := range []int{200, 503} {
		name := http.StatusText(status)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rcv := rcv.In(t)
			path := "/" + strconv.Itoa(status)
			rcv.AddRules(receivertest.Rule{Match: receivertest.Match{Path: path}, Respond: receivertest.Respond{Status: status}})
			req := receivertest.NewRequest(t, http.MethodPost, rcv.URL+path, []byte(`{"type":"payment"}`))
			req.Header.Set("Webhook-Id", "evt_"+name)
			if got := send(t, rcv, req); got != status {
				t.Errorf("got %d, want %d", got, status)
			}
			c := rcv.Expect(receivertest.Filter{Path: path, Event: "payment"}, 1, 5*time.Second)[0]
			if c.Header("webhook-id") != "evt_"+name {
				t.Errorf("webhook-id: got %q, want %q", c.Header("webhook-id"), "evt_"+name)
			}
		})
	}
}
