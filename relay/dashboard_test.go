package relay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/relay/relayapi"
	"github.com/sidehook/sidehook/web"
	"github.com/sidehook/sidehook/web/webtest"
)

// dashData is what the page reads of a delivery item.
type dashData struct {
	ID           string              `json:"id"`
	EventID      string              `json:"event_id"`
	Endpoint     string              `json:"endpoint"`
	Status       string              `json:"status"`
	Attempts     []json.RawMessage   `json:"attempts"`
	URL          string              `json:"url"`
	Headers      map[string][]string `json:"headers"`
	Body         string              `json:"body"`
	BodyEncoding string              `json:"body_encoding"`
	Reason       string              `json:"reason"`
}

func TestDashboardSnapshotThenLive(t *testing.T) {
	rcv := newSink(t, nil, nil)
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL() + "/hooks/crm"}), relay.Options{})
	body := `{"type":"payment",  "amount":"50.00"}`
	first := ingest(t, r, body, nil)
	dlv := first.Deliveries[0].ID
	waitDelivery(t, r, dlv, "delivered", 5*time.Second)

	c := webtest.DialWS(t, r.URL(), nil)
	snap := webtest.ReadWS(t, c)
	if snap.Type != web.MsgSnapshot || len(snap.Items) != 1 {
		t.Fatalf("got %+v, want a snapshot of 1 item", snap)
	}
	it := snap.Items[0]
	if it.Kind != web.KindDelivery || it.ID != dlv || it.Event != "payment" || it.Method != "POST" || it.Path != "/hooks/crm" || it.Status != "delivered" {
		t.Errorf("got item %+v, want the delivered payment to /hooks/crm", it)
	}
	var d dashData
	if err := json.Unmarshal(it.Data, &d); err != nil {
		t.Fatal(err)
	}
	// The delivery as GET /v1/deliveries/{id} has it…
	client, err := relayapi.New(r.URL(), apiKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	view, err := client.Delivery(t.Context(), dlv)
	if err != nil {
		t.Fatal(err)
	}
	var fromAPI, fromWS map[string]any
	_ = json.Unmarshal([]byte(mustJSON(view)), &fromAPI)
	_ = json.Unmarshal(it.Data, &fromWS)
	for k, v := range fromAPI {
		if b1, _ := json.Marshal(v); string(b1) != mustJSON(fromWS[k]) {
			t.Errorf("data %s: got %v, want %v as the API has it", k, fromWS[k], v)
		}
	}
	// …plus the request it makes.
	if d.URL != rcv.URL()+"/hooks/crm" || d.Body != body || d.BodyEncoding != "utf8" || len(d.Attempts) != 1 {
		t.Errorf("got url %q body %q (%s), %d attempts; want the endpoint's URL, the body as utf8, 1 attempt", d.URL, d.Body, d.BodyEncoding, len(d.Attempts))
	}
	for k, want := range map[string]string{"webhook-id": first.ID, "sidehook-delivery": dlv, "sidehook-event": "payment",
		"sidehook-attempt": "1", "content-type": "application/json"} {
		if got := d.Headers[k]; len(got) != 1 || got[0] != want {
			t.Errorf("header %s: got %v, want %q", k, got, want)
		}
	}
	if tok := d.Headers["x-webio-token"]; len(tok) != 1 || tok[0] == "" {
		t.Errorf("x-webio-token: got %v, want the organisation's token (the page redacts it)", tok)
	}

	// A new event arrives live: pending, then delivered, as updates of
	// one row.
	second := ingest(t, r, `{"type":"payment","n":"2"}`, nil)
	want := second.Deliveries[0].ID
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := webtest.ReadWS(t, c)
		if m.Type == web.MsgItem && m.Item.ID == want && m.Item.Status == "delivered" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no live delivered item for %s", want)
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

type dashResults struct {
	Replayed int `json:"replayed"`
	Results  []struct {
		DeliveryID string `json:"delivery_id"`
		OK         bool   `json:"ok"`
		Status     int    `json:"status"`
		Error      string `json:"error"`
	} `json:"results"`
}

func TestDashboardActions(t *testing.T) {
	flaky := newSink(t, nil, func(*http.Request, int) int { return http.StatusBadRequest })
	other := newSink(t, &auth.VerifyConfig{WebioSecret: []byte(secretKey), Org: "demo"}, nil)
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "flaky", URL: flaky.URL() + "/in"}), relay.Options{})
	ans := ingest(t, r, `{"type":"payment","amount":"1.00"}`, nil)
	dlv := ans.Deliveries[0].ID
	waitDelivery(t, r, dlv, "dead", 5*time.Second)

	t.Run("Retry", func(t *testing.T) {
		a := call(t, "POST", r.URL()+"/_sidehook/deliveries/"+dlv+"/retry", "", nil, nil)
		var v deliveryView
		a.decode(t, &v)
		if a.Status != http.StatusAccepted || v.ID != dlv {
			t.Fatalf("got %d %s, want 202 with the delivery", a.Status, a.Body)
		}
		waitDelivery(t, r, dlv, "dead", 5*time.Second)
		if n := len(flaky.requests()); n != 2 {
			t.Errorf("endpoint saw %d attempts, want 2", n)
		}
	})
	t.Run("ReplayEditedToTarget", func(t *testing.T) {
		edited := `{"type":"payment","amount":"2.00"}`
		req, _ := json.Marshal(map[string]any{"ids": []string{dlv}, "to": other.URL() + "/elsewhere", "body": edited})
		a := call(t, "POST", r.URL()+"/_sidehook/replay", "", req, jsonType)
		var res dashResults
		a.decode(t, &res)
		if a.Status != http.StatusOK || res.Replayed != 1 || len(res.Results) != 1 || !res.Results[0].OK || res.Results[0].Status != 200 {
			t.Fatalf("got %d %s, want 200 with one ok result", a.Status, a.Body)
		}
		got := other.requests()
		if len(got) != 1 {
			t.Fatalf("target got %d requests, want 1", len(got))
		}
		c := got[0]
		if string(c.Body) != edited || c.Path != "/elsewhere" || c.Header.Get("sidehook-replay-of") != dlv ||
			c.Header.Get("webhook-id") != ans.ID || c.Verdict.Status != auth.StatusValid {
			t.Errorf("target got %s %q replay-of %q webhook-id %q verdict %+v, want the edited body, re-signed, marked as a replay of %s",
				c.Path, c.Body, c.Header.Get("sidehook-replay-of"), c.Header.Get("webhook-id"), c.Verdict, dlv)
		}
	})
	// With no target and no edit, Replay is still a replay (SPEC §3, §6):
	// one new request to the endpoint's URL, re-signed, marked as a replay
	// of the delivery; not a retry, so the delivery stays dead.
	t.Run("ReplayToOriginalIsAReplay", func(t *testing.T) {
		before := waitDelivery(t, r, dlv, "dead", 5*time.Second)
		sent := len(flaky.requests())
		req, _ := json.Marshal(map[string]any{"ids": []string{dlv}})
		a := call(t, "POST", r.URL()+"/_sidehook/replay", "", req, jsonType)
		var res dashResults
		a.decode(t, &res)
		// The endpoint answers 400: the page hears the target's answer.
		if a.Status != http.StatusBadGateway || res.Replayed != 0 || len(res.Results) != 1 || res.Results[0].OK || res.Results[0].Status != 400 {
			t.Fatalf("got %d %s, want 502 with the endpoint's 400", a.Status, a.Body)
		}
		got := flaky.requests()
		if len(got) != sent+1 {
			t.Fatalf("endpoint got %d new requests, want the 1 replay", len(got)-sent)
		}
		c := got[len(got)-1]
		if c.Path != "/in" || string(c.Body) != `{"type":"payment","amount":"1.00"}` || c.Header.Get("sidehook-replay-of") != dlv ||
			c.Header.Get("webhook-id") != ans.ID || c.Header.Get("x-webio-token") == "" {
			t.Errorf("endpoint got %s %q replay-of %q webhook-id %q token %q, want the original bytes at /in, signed, marked as a replay of %s",
				c.Path, c.Body, c.Header.Get("sidehook-replay-of"), c.Header.Get("webhook-id"), c.Header.Get("x-webio-token"), dlv)
		}
		after := waitDelivery(t, r, dlv, "dead", time.Second)
		if len(after.Attempts) != len(before.Attempts) {
			t.Errorf("the delivery has %d attempts after a replay, want %d: a replay is not an attempt", len(after.Attempts), len(before.Attempts))
		}
	})
	t.Run("ReplayFailedTarget", func(t *testing.T) {
		waitDelivery(t, r, dlv, "dead", 5*time.Second)
		req, _ := json.Marshal(map[string]any{"ids": []string{dlv}, "to": flaky.URL() + "/x"})
		a := call(t, "POST", r.URL()+"/_sidehook/replay", "", req, jsonType)
		var res dashResults
		a.decode(t, &res)
		if a.Status != http.StatusBadGateway || len(res.Results) != 1 || res.Results[0].OK || res.Results[0].Status != 400 {
			t.Fatalf("got %d %s, want 502 with the target's 400", a.Status, a.Body)
		}
	})
	for _, tt := range []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"NoIDs", "/_sidehook/replay", `{"ids":[]}`, 400, "invalid_body"},
		{"NotADeliveryID", "/_sidehook/replay", `{"ids":["evt_1"]}`, 400, "invalid_id"},
		{"UnknownDelivery", "/_sidehook/replay", `{"ids":["dlv_01ARZ3NDEKTSV4RRFFQ69G5FAV"]}`, 404, "not_found"},
		{"BadTarget", "/_sidehook/replay", `{"ids":["` + dlv + `"],"to":"ftp://x"}`, 400, "invalid_to"},
		{"UnknownField", "/_sidehook/replay", `{"ids":["` + dlv + `"],"filter":{}}`, 400, "invalid_json"},
		{"RetryUnknown", "/_sidehook/deliveries/dlv_01ARZ3NDEKTSV4RRFFQ69G5FAV/retry", ``, 404, "not_found"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := call(t, "POST", r.URL()+tt.path, "", []byte(tt.body), jsonType)
			var e struct{ Error, Reason string }
			a.decode(t, &e)
			if a.Status != tt.status || e.Error != tt.code || e.Reason == "" {
				t.Errorf("got %d %s, want %d %s", a.Status, a.Body, tt.status, tt.code)
			}
		})
	}
}

// TestDashboardNeedsKeyBeyondLoopback: a relay configured to listen on
// every interface serves its dashboard and the dashboard's actions only to
// API-key holders. Its handler is served here on loopback without starting
// it: access is decided before anything is read.
func TestDashboardNeedsKeyBeyondLoopback(t *testing.T) {
	cfg := orgConfig(t)
	cfg.Listen = "0.0.0.0:8080"
	r, err := relay.New(cfg, relay.Options{Store: storeFor(t, cfg)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(srv.Close)

	tests := []struct {
		name, method, path, key, body string
		want                          int
	}{
		{"PageNoKey", "GET", web.UIPath, "", "", http.StatusUnauthorized},
		{"PageWrongKey", "GET", web.UIPath, "nope", "", http.StatusUnauthorized},
		{"PageKey", "GET", web.UIPath, apiKey, "", http.StatusOK},
		{"WebsocketNoKey", "GET", web.WSPath, "", "", http.StatusUnauthorized},
		{"WebsocketWrongKey", "GET", web.WSPath + "?token=nope", "", "", http.StatusUnauthorized},
		{"WebsocketKey", "GET", web.WSPath + "?token=" + apiKey, "", "", http.StatusUpgradeRequired},
		{"ReplayNoKey", "POST", "/_sidehook/replay", "", `{"ids":["x"]}`, http.StatusUnauthorized},
		{"ReplayWrongKey", "POST", "/_sidehook/replay", "nope", `{"ids":["x"]}`, http.StatusUnauthorized},
		{"ReplayKey", "POST", "/_sidehook/replay", apiKey, `{"ids":["x"]}`, http.StatusBadRequest},
		{"RetryNoKey", "POST", "/_sidehook/deliveries/dlv_x/retry", "", "", http.StatusUnauthorized},
		{"RetryKey", "POST", "/_sidehook/deliveries/dlv_x/retry", apiKey, "", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if a := call(t, tt.method, srv.URL+tt.path, tt.key, []byte(tt.body), jsonType); a.Status != tt.want {
				t.Errorf("%s %s: got %d %s, want %d", tt.method, tt.path, a.Status, a.Body, tt.want)
			}
		})
	}
}

// TestReplayedCountsWhatWentWell holds the API's replay and the
// dashboard's to one meaning of replayed: the replays whose target
// answered 2xx, not those sent.
func TestReplayedCountsWhatWentWell(t *testing.T) {
	good := newSink(t, nil, nil)
	bad := newSink(t, nil, func(*http.Request, int) int { return http.StatusBadRequest })
	r := startRelay(t, orgConfig(t,
		config.RawEndpoint{ID: "good", URL: good.URL() + "/in"},
		config.RawEndpoint{ID: "bad", URL: bad.URL() + "/in"},
	), relay.Options{})
	var ids []string
	for _, d := range ingest(t, r, `{"type":"payment","amount":"1.00"}`, nil).Deliveries {
		want := "delivered"
		if d.Endpoint == "bad" {
			want = "dead"
		}
		waitDelivery(t, r, d.ID, want, 5*time.Second)
		ids = append(ids, d.ID)
	}
	if len(ids) != 2 {
		t.Fatalf("got %d deliveries, want 2", len(ids))
	}
	list := `["` + strings.Join(ids, `","`) + `"]`
	tests := []struct {
		name, path, key, body string
		header                map[string]string
		status                int
	}{
		{"API", "/v1/replay", apiKey, `{"filter":{"ids":` + list + `}}`, nil, http.StatusOK},
		{"Dashboard", "/_sidehook/replay", "", `{"ids":` + list + `}`, jsonType, http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := call(t, "POST", r.URL()+tt.path, tt.key, []byte(tt.body), tt.header)
			var res dashResults
			a.decode(t, &res)
			if a.Status != tt.status || len(res.Results) != 2 {
				t.Fatalf("got %d %s, want %d with 2 results", a.Status, a.Body, tt.status)
			}
			if res.Replayed != 1 {
				t.Errorf("replayed: got %d, want 1 (one of the two targets answered 2xx): %s", res.Replayed, a.Body)
			}
		})
	}
}

func TestDashboardMetrics(t *testing.T) {
	r := startRelay(t, orgConfig(t), relay.Options{})
	c := webtest.DialWS(t, r.URL(), nil)
	if m := webtest.ReadWS(t, c); m.Type != web.MsgSnapshot {
		t.Fatalf("got %+v, want a snapshot", m)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		a := call(t, "GET", r.URL()+"/metrics", "", nil, nil)
		body := string(a.Body)
		if strings.Contains(body, "\nsidehook_websocket_clients 1\n") && strings.Contains(body, "\nsidehook_dashboard_dropped_messages_total 0\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics lack the dashboard's series:\n%s", body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDashboardReplayTunnelEndpoint: a tunnel endpoint has no URL a replay
// can go to; without a Target URL the page is told to give one (or to
// retry), and nothing is requeued.
func TestDashboardReplayTunnelEndpoint(t *testing.T) {
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "laptop", URL: "tunnel://laptop"}), relay.Options{})
	dlv := ingest(t, r, `{"type":"payment"}`, nil).Deliveries[0].ID
	req, _ := json.Marshal(map[string]any{"ids": []string{dlv}})
	a := call(t, "POST", r.URL()+"/_sidehook/replay", "", req, jsonType)
	var res dashResults
	a.decode(t, &res)
	if a.Status != http.StatusBadGateway || len(res.Results) != 1 || res.Results[0].OK || !strings.Contains(res.Results[0].Error, "give a Target URL") {
		t.Errorf("got %d %s, want 502 saying to give a Target URL", a.Status, a.Body)
	}
}

// TestDashboardFeedThatLostTellsBrowsers: when the dashboard's feed falls
// behind the change hub and loses changes, the browser is told how many and
// sent a fresh snapshot, and the loss is counted. The loss is made, not
// waited for: a feed whose subscription has one slot starts after three
// changes.
func TestDashboardFeedThatLostTellsBrowsers(t *testing.T) {
	r := startRelay(t, orgConfig(t), relay.Options{})
	c := webtest.DialWS(t, r.URL(), nil)
	if m := webtest.ReadWS(t, c); m.Type != web.MsgSnapshot {
		t.Fatalf("got %+v, want a snapshot", m)
	}
	sub := relay.SubscribeBuffer(t.Context(), r, 1)
	for i := range 3 {
		relay.PublishChanges(r, relay.Change{Kind: relay.ChangeEvent, Org: "demo", EventID: fmt.Sprintf("evt_%d", i), Type: "payment"})
	}
	done := relay.FeedDashboard(r, sub)
	if m := webtest.ReadWS(t, c); m.Type != web.MsgDropped || m.Count != 2 {
		t.Fatalf("got %+v, want dropped with count 2", m)
	}
	if m := webtest.ReadWS(t, c); m.Type != web.MsgSnapshot {
		t.Fatalf("got %+v, want a fresh snapshot", m)
	}
	sub.Close()
	<-done
	a := call(t, "GET", r.URL()+"/metrics", "", nil, nil)
	if !strings.Contains(string(a.Body), "\nsidehook_relay_subscriber_dropped_total 2\n") {
		t.Errorf("metrics: want sidehook_relay_subscriber_dropped_total 2, got:\n%s", a.Body)
	}
}
