package receiver_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/receiver/memstore"
)

// TestJWKSUnavailable: while the key server fails, a jwt cannot be checked,
// which is the receiver's failure, not the sender's: it is answered 503
// with Retry-After, which the relay retries (a 401 it would not, and the
// delivery would end undelivered), and captured with the reason. Once the
// keys can be fetched the same sender's next token is accepted.
func TestJWKSUnavailable(t *testing.T) {
	key, err := auth.GenerateKey(auth.ES256)
	if err != nil {
		t.Fatal(err)
	}
	set, err := auth.NewJWKS(key)
	if err != nil {
		t.Fatal(err)
	}
	var up atomic.Bool
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(jwks.Close)
	fetcher := auth.NewJWKSFetcher(jwks.URL, nil, auth.JWKSOptions{MinRefetch: time.Nanosecond})
	srv := start(t, receiver.Config{Store: memstore.New(), Verify: auth.VerifyConfig{JWKS: fetcher}})

	body := []byte(`{"type":"payment"}`)
	post := func(id string) response {
		h := http.Header{}
		if err := auth.SignRequest(h, []string{auth.SchemeJWT}, auth.OutboundKeys{JWT: &key, Org: "demo", Audience: "crm"},
			auth.Outbound{Method: http.MethodPost, WebhookID: id, Event: "payment", Body: body}); err != nil {
			t.Fatal(err)
		}
		return send(t, http.MethodPost, srv.URL()+"/hook", body, map[string]string{"Authorization": h.Get("Authorization"), "webhook-id": id})
	}

	r := post("evt_down")
	var e struct{ Error, Reason string }
	r.json(t, &e)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" || e.Error != "unavailable" {
		t.Fatalf("key server down: got %d (Retry-After %q) %s, want 503 unavailable with Retry-After", r.status, r.header.Get("Retry-After"), r.body)
	}
	c := only(t, srv)
	// The reason says why the keys could not be had.
	if want := auth.ReasonKeysUnavailable + ": fetch " + jwks.URL + ": status 500"; c.Verdict.Status != auth.StatusInvalid || c.Verdict.Scheme != auth.SchemeJWT || c.Verdict.Reason != want {
		t.Errorf("capture's verdict: got %+v, want invalid jwt %q", c.Verdict, want)
	}
	if c.Response.Status != http.StatusServiceUnavailable {
		t.Errorf("capture's response status: got %d, want 503", c.Response.Status)
	}

	up.Store(true)
	if r := post("evt_up"); r.status != http.StatusOK {
		t.Fatalf("key server up: got %d %s, want 200", r.status, r.body)
	}
}
