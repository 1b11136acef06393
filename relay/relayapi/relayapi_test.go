package relayapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/receiver/receivertest"
	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/relay/memstore"
	"github.com/sidehook/sidehook/relay/relayapi"
)

const (
	apiKey = "relayapi-test-key"
	secret = "0123456789abcdef0123456789abcdef"
)

// startRelay starts a one-organisation relay delivering everything to
// endpoints, closed by t.Cleanup.
func startRelay(t *testing.T, endpoints ...string) *relay.Relay {
	t.Helper()
	cfg, err := config.FromOneOrg(config.OneOrg{Listen: "127.0.0.1:0", Data: t.TempDir(), APIKeys: []string{apiKey},
		SecretKey: secret, Endpoints: endpoints, Schedule: []string{"10ms"}})
	if err != nil {
		t.Fatal(err)
	}
	st := memstore.New()
	t.Cleanup(func() { st.Close() })
	r, err := relay.New(cfg, relay.Options{Store: st, Grace: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(context.Background()); err != nil {
			t.Errorf("close relay: %v", err)
		}
	})
	return r
}

func TestNew(t *testing.T) {
	tests := []struct{ name, base, key, want string }{
		{"NoScheme", "localhost:8080", "k", "want an http"},
		{"FTP", "ftp://x", "k", "want an http"},
		{"NoKey", "http://127.0.0.1:1", "", "API key is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := relayapi.New(tt.base, tt.key, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestFilterJSON(t *testing.T) {
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	b, err := json.Marshal(relayapi.Filter{IDs: []string{"dlv_1"}, Status: "dead", Since: since})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"ids":["dlv_1"],"status":"dead","since":"2026-01-02T02:04:05Z"}`; string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
	if b, _ := json.Marshal(relayapi.ReplayRequest{}); string(b) != `{"filter":{}}` {
		t.Errorf("empty request: got %s, want `{\"filter\":{}}`", b)
	}
}

func TestClient(t *testing.T) {
	rcv := receivertest.NewServer(t, receivertest.WithWebioSecret(secret, "demo"))
	r := startRelay(t, rcv.URL+"/hooks")
	c, err := relayapi.New(r.URL()+"/", apiKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	ing, raw, err := c.Ingest(ctx, "payment", "evt_01JDQ00000000000000000000A", []byte(`{"amount":"1.00"}`))
	if err != nil || ing.ID != "evt_01JDQ00000000000000000000A" || ing.Type != "payment" || len(ing.Deliveries) != 1 || !json.Valid(raw) {
		t.Fatalf("ingest: got %+v %s %v", ing, raw, err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := rcv.Wait(waitCtx, receivertest.Filter{WebhookID: ing.ID}, 1); err != nil {
		t.Fatal(err)
	}

	ev, err := c.Event(ctx, ing.ID)
	if err != nil || ev.Body != `{"amount":"1.00"}` || len(ev.Deliveries) != 1 {
		t.Errorf("event: got %+v %v", ev, err)
	}
	evs, err := c.Events(ctx, "payment", time.Now().Add(-time.Hour), time.Time{}, relayapi.Page{Limit: 10})
	if err != nil || len(evs.Events) != 1 || evs.Events[0].ID != ing.ID {
		t.Errorf("events: got %+v %v", evs, err)
	}
	ds, err := c.Deliveries(ctx, relayapi.Filter{Endpoint: "ep1", Type: "payment"}, relayapi.Page{})
	if err != nil || len(ds.Deliveries) != 1 || ds.Deliveries[0].ID != ing.Deliveries[0].ID {
		t.Errorf("deliveries: got %+v %v", ds, err)
	}
	if ds, err := c.Deliveries(ctx, relayapi.Filter{Endpoint: "nope"}, relayapi.Page{}); err != nil || len(ds.Deliveries) != 0 {
		t.Errorf("deliveries of another endpoint: got %+v %v", ds, err)
	}
	d, err := c.Delivery(ctx, ing.Deliveries[0].ID)
	if err != nil || d.EventID != ing.ID || d.Endpoint != "ep1" {
		t.Errorf("delivery: got %+v %v", d, err)
	}

	// Replay elsewhere, signed by the relay.
	dst := receivertest.NewServer(t, receivertest.WithWebioSecret(secret, "demo"))
	ans, err := c.Replay(ctx, relayapi.ReplayRequest{Filter: relayapi.Filter{IDs: []string{ing.ID}}, To: dst.URL + "/x"})
	if err != nil || ans.Replayed != 1 || len(ans.Results) != 1 || !ans.Results[0].OK || ans.Results[0].Status != 200 {
		t.Fatalf("replay: got %+v %v", ans, err)
	}
	caps, err := dst.Wait(waitCtx, receivertest.Filter{}, 1)
	if err != nil || caps[0].Verdict.Status != "valid" || caps[0].Path != "/x" {
		t.Errorf("replayed: got %+v %v", caps, err)
	}
	// Replay to the original target: the endpoint gets it again, marked
	// as a replay, and the delivery keeps its one attempt.
	ans, err = c.Replay(ctx, relayapi.ReplayRequest{Filter: relayapi.Filter{IDs: []string{ing.Deliveries[0].ID}}})
	if err != nil || ans.Replayed != 1 || len(ans.Results) != 1 || !ans.Results[0].OK || ans.Results[0].Status != 200 {
		t.Fatalf("replay to the endpoint: got %+v %v", ans, err)
	}
	caps, err = rcv.Wait(waitCtx, receivertest.Filter{WebhookID: ing.ID}, 2)
	if err != nil {
		t.Fatal(err)
	}
	replays := 0
	for _, c := range caps {
		if of := c.Headers["sidehook-replay-of"]; len(of) == 1 && of[0] == ing.Deliveries[0].ID && c.Path == "/hooks" && c.Verdict.Status == "valid" {
			replays++
		}
	}
	if replays != 1 {
		t.Errorf("the endpoint got %d valid replays of %s, want 1: %+v", replays, ing.Deliveries[0].ID, caps)
	}
	if d, err := c.Delivery(ctx, ing.Deliveries[0].ID); err != nil || len(d.Attempts) != 1 {
		t.Errorf("after the replay: got %+v %v, want the one attempt", d, err)
	}
	// An empty filter is refused before it is sent.
	if _, err := c.Replay(ctx, relayapi.ReplayRequest{To: dst.URL}); !errors.Is(err, relayapi.ErrEmptyFilter) {
		t.Errorf("empty filter: got %v", err)
	}

	eps, err := c.Endpoints(ctx)
	if err != nil || len(eps) != 1 || eps[0].ID != "ep1" {
		t.Errorf("endpoints: got %+v %v", eps, err)
	}
	tests, _, err := c.Test(ctx, "ep1", "payment")
	if err != nil || len(tests.Results) != 1 || !tests.Results[0].OK {
		t.Errorf("test: got %+v %v", tests, err)
	}
	if tok, err := c.Token(ctx, secret); err != nil || strings.Count(tok, ".") != 2 {
		t.Errorf("token: got %q %v", tok, err)
	}
}

// Error answers come back as *Error with the relay's code and reason.
func TestClientErrors(t *testing.T) {
	r := startRelay(t, "http://127.0.0.1:9/hooks")
	ctx := context.Background()
	c, err := relayapi.New(r.URL(), apiKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Delivery(ctx, "dlv_01JDQ0000000000000000000ZZ")
	var ae *relayapi.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound || ae.Code != "not_found" || !relayapi.IsNotFound(err) {
		t.Errorf("unknown delivery: got %v", err)
	}
	if _, err := c.Deliveries(ctx, relayapi.Filter{Status: "lost"}, relayapi.Page{}); !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(ae.Reason, "lost") {
		t.Errorf("bad status: got %v", err)
	}
	if _, err := c.Token(ctx, "wrong"); !errors.As(err, &ae) || ae.Code != "invalid_secret_key" {
		t.Errorf("wrong secret: got %v", err)
	}
	bad, _ := relayapi.New(r.URL(), "wrong-key", nil)
	if _, err := bad.Endpoints(ctx); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Errorf("wrong key: got %v", err)
	}
}

// TestClientNotARelay: a mock receiver answers every path 200
// {"id":"cap_…"}, which decoded as an accepted event, an empty page, no
// test results. Each call finds the field its route always answers
// missing, and says the server is not a relay.
func TestClientNotARelay(t *testing.T) {
	rcv := receivertest.NewServer(t)
	c, err := relayapi.New(rcv.URL, apiKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
	}{
		{"Ingest", func() error { _, _, err := c.Ingest(ctx, "payment", "", []byte(`{}`)); return err }},
		{"Events", func() error { _, err := c.Events(ctx, "", time.Time{}, time.Time{}, relayapi.Page{}); return err }},
		{"Event", func() error { _, err := c.Event(ctx, "evt_1"); return err }},
		{"Deliveries", func() error { _, err := c.Deliveries(ctx, relayapi.Filter{}, relayapi.Page{}); return err }},
		{"Delivery", func() error { _, err := c.Delivery(ctx, "dlv_1"); return err }},
		{"Retry", func() error { _, err := c.Retry(ctx, "dlv_1"); return err }},
		{"Replay", func() error { _, err := c.Replay(ctx, relayapi.ReplayRequest{All: true}); return err }},
		{"Endpoints", func() error { _, err := c.Endpoints(ctx); return err }},
		{"Endpoint", func() error { _, err := c.Endpoint(ctx, "crm"); return err }},
		{"CreateEndpoint", func() error { _, err := c.CreateEndpoint(ctx, config.RawEndpoint{ID: "crm"}); return err }},
		{"PutEndpoint", func() error { _, err := c.PutEndpoint(ctx, "crm", config.RawEndpoint{ID: "crm"}); return err }},
		{"Test", func() error { _, _, err := c.Test(ctx, "crm", ""); return err }},
		{"Render", func() error { _, _, err := c.Render(ctx, "Hi", relayapi.Customer{}); return err }},
		{"CustomValues", func() error { _, err := c.CustomValues(ctx, relayapi.Customer{}, []string{"a"}); return err }},
		{"Token", func() error { _, err := c.Token(ctx, secret); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, relayapi.ErrNotRelay) || !strings.Contains(err.Error(), `{"id":"cap_`) {
				t.Errorf("got %v, want ErrNotRelay with the answer", err)
			}
		})
	}
}
