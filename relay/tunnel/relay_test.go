package tunnel_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/receiver/receivertest"
	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/relay/memstore"
	"github.com/sidehook/sidehook/relay/tunnel"
)

const (
	e2eOrg    = "demo"
	e2eSecret = "0123456789abcdef0123456789abcdef"
)

// realRelay is a relay serving tunnels, with two endpoints behind the
// tunnel testName: crm (every posted event, at /webhooks) and values (the
// custom-value GETs, at /custom-values).
type realRelay struct {
	*relay.Relay
	tunnels *tunnel.Server
	// client calls the relay's API (it trusts the relay's CA under TLS).
	client *http.Client
}

func newRealRelay(tb testing.TB, retry []string, edit ...func(*config.File)) *realRelay {
	tb.Helper()
	f := config.File{
		Listen: "127.0.0.1:0",
		Retry:  &config.RawRetry{Schedule: retry},
		Organisations: []config.RawOrg{{ID: e2eOrg, APIKeys: []string{testKey}, SecretKey: e2eSecret, Endpoints: []config.RawEndpoint{
			{ID: "crm", URL: "tunnel://" + testName + "/webhooks", Events: []string{"*"}, Timeout: "2s"},
			{ID: "values", URL: "tunnel://" + testName + "/custom-values", Events: []string{"custom_value_request"}},
		}}},
	}
	for _, e := range edit {
		e(&f)
	}
	cfg, err := f.Validate(nil)
	if err != nil {
		tb.Fatalf("config: %v", err)
	}
	cfg.InMemory = true

	st := memstore.New()
	ts := tunnel.NewServer(fastServer())
	r, err := relay.New(cfg, relay.Options{Store: st, Tunnels: ts, Logger: zerolog.Nop()})
	if err != nil {
		tb.Fatalf("relay: %v", err)
	}
	if err := r.Start(context.Background()); err != nil {
		tb.Fatalf("start relay: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Close(ctx); err != nil {
			tb.Errorf("close relay: %v", err)
		}
		if err := ts.Close(ctx); err != nil {
			tb.Errorf("close tunnels: %v", err)
		}
		st.Close()
	})
	return &realRelay{Relay: r, tunnels: ts, client: http.DefaultClient}
}

// api calls the relay's API with the key and decodes a JSON answer.
func (rr *realRelay) api(tb testing.TB, method, path, body string, out any) int {
	tb.Helper()
	req, err := http.NewRequest(method, rr.URL()+path, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := rr.client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			tb.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

func (rr *realRelay) post(tb testing.TB, typ string, n int) {
	tb.Helper()
	for i := range n {
		body := fmt.Sprintf(`{"type":%q,"conversationId":"%d","communicationActionId":"ca-%d"}`, typ, i, i)
		if code := rr.api(tb, http.MethodPost, "/v1/events?type="+typ, body, nil); code != http.StatusAccepted {
			tb.Fatalf("POST /v1/events: got %d, want 202", code)
		}
	}
}

// receiverApp is the mock receiver as the developer's local app: it checks
// the relay's Webio token, so a delivery it calls valid crossed the tunnel
// with its signature intact.
func receiverApp(tb testing.TB) *receivertest.Server {
	tb.Helper()
	return receivertest.NewServer(tb, receivertest.WithWebioSecret(e2eSecret, e2eOrg))
}

func TestRelayDeliversThroughTunnel(t *testing.T) {
	rr := newRealRelay(t, []string{"50ms", "100ms"})
	app := receiverApp(t)
	startClient(t, clientConfig(rr.URL(), app.URL))
	rr.post(t, "payment", 3)
	caps := app.Expect(receivertest.Filter{Event: "payment", Path: "/webhooks"}, 3, 10*time.Second)
	for _, c := range caps {
		if c.Verdict.Status != "valid" {
			t.Errorf("capture %s: verdict %+v, want valid (the signature crossed the tunnel)", c.ID, c.Verdict)
		}
	}
	var list struct {
		Deliveries []struct {
			Status string `json:"status"`
		} `json:"deliveries"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rr.api(t, http.MethodGet, "/v1/deliveries?status=delivered", "", &list)
		if len(list.Deliveries) == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // polling the relay's API: it has no wait call
	}
	if len(list.Deliveries) != 3 {
		t.Errorf("delivered deliveries: got %d, want 3", len(list.Deliveries))
	}
}

func TestRelayRetriesAppErrorsThroughTunnel(t *testing.T) {
	rr := newRealRelay(t, []string{"50ms", "100ms"})
	app := receiverApp(t)
	app.SetRules(receiver.Rule{Respond: receiver.Respond{Sequence: []int{500, 200}}})
	rc := startClient(t, clientConfig(rr.URL(), app.URL))
	rr.post(t, "payment", 1)
	app.Expect(receivertest.Filter{Event: "payment"}, 2, 10*time.Second)
	rc.out.wait(t, "two delivery lines", func() bool { return len(rc.out.jsonLines(t, "delivery")) == 2 })
	lines := rc.out.jsonLines(t, "delivery")
	if lines[0]["status"] != float64(500) || lines[1]["status"] != float64(200) || lines[1]["attempt"] != float64(2) {
		t.Errorf("delivery lines: got %v, want 500 then 200 on attempt 2", lines)
	}
}

func TestRelayClientRestart(t *testing.T) {
	// A second attempt 30 s after the first: without a client the first
	// fails at once, and the retry waits; a reconnect must make it due.
	rr := newRealRelay(t, []string{"30s", "30s"})
	app := receiverApp(t)
	rc := startClient(t, clientConfig(rr.URL(), app.URL))
	rr.post(t, "inbound_message", 1)
	app.Expect(receivertest.Filter{Event: "inbound_message"}, 1, 10*time.Second)

	rc.stop(t)
	// Gone from the relay's list: deliveries now fail (no client) and wait.
	deadline := time.Now().Add(10 * time.Second)
	for len(rr.tunnels.Tunnels(e2eOrg)) != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	rr.post(t, "payment", 5)
	var list struct {
		Deliveries []json.RawMessage `json:"deliveries"`
	}
	for {
		rr.api(t, http.MethodGet, "/v1/deliveries?status=failed&type=payment", "", &list)
		if len(list.Deliveries) == 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // polling the relay's API: it has no wait call
	}
	if len(list.Deliveries) != 5 {
		t.Fatalf("failed deliveries while no client: got %d, want 5 waiting 30 s for their retry", len(list.Deliveries))
	}
	if n := len(app.Requests(receivertest.Filter{Event: "payment"})); n != 0 {
		t.Fatalf("app got %d payments with no tunnel client", n)
	}

	start := time.Now()
	startClient(t, clientConfig(rr.URL(), app.URL))
	caps := app.Expect(receivertest.Filter{Event: "payment"}, 5, 10*time.Second)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("waiting retries arrived %v after the reconnect, want within seconds (not the 30 s schedule)", d)
	}
	seen := map[string]bool{}
	for _, c := range caps {
		if seen[c.WebhookID] {
			t.Errorf("event %s delivered twice", c.WebhookID)
		}
		seen[c.WebhookID] = true
	}
}

func TestRelayCustomValuesThroughTunnel(t *testing.T) {
	rr := newRealRelay(t, []string{"50ms"})
	app := receiverApp(t)
	startClient(t, clientConfig(rr.URL(), app.URL))

	resp, err := http.Get(rr.URL() + "/in/" + e2eOrg + "?customerUID=ACC-10023&channelId=447700900123&conversationId=1&fields=fullname,currency")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var values map[string]any
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &values) != nil || values["fullname"] != "Jane Doe" {
		t.Fatalf("custom-value GET through the tunnel: got %d %s, want the receiver's values", resp.StatusCode, b)
	}
	caps := app.Requests(receivertest.Filter{Path: "/custom-values"})
	if len(caps) != 1 || caps[0].Method != http.MethodGet || caps[0].Verdict.Status != "valid" {
		t.Fatalf("app's custom-value captures: got %+v, want one valid GET", caps)
	}

	var rendered struct {
		Text    string   `json:"text"`
		Missing []string `json:"missing"`
	}
	code := rr.api(t, http.MethodPost, "/v1/render", `{"template":"Hi <<fullname>>, <<nothing|friend>>","customer_uid":"ACC-10023","channel_id":"447700900123"}`, &rendered)
	if code != http.StatusOK || rendered.Text != "Hi Jane Doe, friend" {
		t.Fatalf("/v1/render through the tunnel: got %d %+v, want \"Hi Jane Doe, friend\"", code, rendered)
	}
}

func TestRelayRecordsNoClient(t *testing.T) {
	rr := newRealRelay(t, []string{"30s"})
	rr.post(t, "payment", 1)
	var list struct {
		Deliveries []struct {
			Attempts []struct {
				Error string `json:"error"`
			} `json:"attempts"`
		} `json:"deliveries"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rr.api(t, http.MethodGet, "/v1/deliveries?status=failed", "", &list)
		if len(list.Deliveries) == 1 && len(list.Deliveries[0].Attempts) == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // polling the relay's API: it has no wait call
	}
	if len(list.Deliveries) != 1 || len(list.Deliveries[0].Attempts) != 1 {
		t.Fatalf("failed deliveries: got %+v, want one with its attempt", list.Deliveries)
	}
	if got := list.Deliveries[0].Attempts[0].Error; got != "no tunnel client connected for "+testName {
		t.Errorf("attempt error: got %q, want %q", got, "no tunnel client connected for "+testName)
	}
}

// TestRelayListsTunnels: the API and the dashboard list the connected
// clients (name, client address, since, in flight).
func TestRelayListsTunnels(t *testing.T) {
	rr := newRealRelay(t, []string{"50ms"})
	app := receiverApp(t)
	startClient(t, clientConfig(rr.URL(), app.URL))
	var got struct {
		Tunnels []relay.TunnelInfo `json:"tunnels"`
	}
	for _, path := range []string{"/v1/tunnels", "/_sidehook/tunnels"} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			if code := rr.api(t, http.MethodGet, path, "", &got); code != http.StatusOK {
				t.Fatalf("GET %s: %d, want 200", path, code)
			}
			if len(got.Tunnels) == 1 || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond) // the client is still saying hello
		}
		if len(got.Tunnels) != 1 || got.Tunnels[0].Name != testName || got.Tunnels[0].Org != e2eOrg ||
			got.Tunnels[0].RemoteAddr == "" || got.Tunnels[0].Since.IsZero() {
			t.Errorf("GET %s: got %+v, want the one client of %s", path, got.Tunnels, testName)
		}
	}
}

// TestReplayThroughTunnel: a replay to a tunnel endpoint's original
// target (POST /v1/replay without "to", as `sidehook replay --relay` and
// the dashboard send it) crosses the tunnel once, signed afresh and
// marked sidehook-replay-of, so a local app that refuses a used jti
// accepts it; the delivery keeps its one attempt.
func TestReplayThroughTunnel(t *testing.T) {
	rr := newRealRelay(t, []string{"50ms", "100ms"}, func(f *config.File) {
		f.Organisations[0].Endpoints[0].Auth = []string{"jwt"}
	})
	app := receivertest.NewServer(t, receivertest.WithJWTSecret(e2eSecret))
	cl := startClient(t, clientConfig(rr.URL(), app.URL))
	rr.post(t, "payment", 1)
	first := app.Expect(receivertest.Filter{Event: "payment"}, 1, 10*time.Second)[0]
	if first.Verdict.Status != receivertest.VerdictValid {
		t.Fatalf("delivery: verdict %+v, want valid", first.Verdict)
	}
	var list struct {
		Deliveries []struct {
			ID       string
			Status   string
			Attempts []json.RawMessage
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rr.api(t, http.MethodGet, "/v1/deliveries?endpoint=crm", "", &list)
		if len(list.Deliveries) == 1 && list.Deliveries[0].Status == relay.StatusDelivered {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries: got %+v, want one delivered", list.Deliveries)
		}
		time.Sleep(10 * time.Millisecond) // polling the relay's API: it has no wait call
	}
	id := list.Deliveries[0].ID

	var ans struct {
		Replayed int
		Results  []relay.ReplayResult
	}
	if code := rr.api(t, http.MethodPost, "/v1/replay", `{"filter":{"ids":["`+id+`"]}}`, &ans); code != http.StatusOK ||
		ans.Replayed != 1 || len(ans.Results) != 1 || !ans.Results[0].OK || ans.Results[0].Status != http.StatusOK {
		t.Fatalf("replay: got %d %+v, want 200 with one ok result", code, ans)
	}
	caps := app.Expect(receivertest.Filter{Event: "payment"}, 2, 10*time.Second)
	again := caps[0]
	if again.Headers["sidehook-replay-of"][0] != id || again.WebhookID != first.WebhookID || string(again.Body) != string(first.Body) {
		t.Errorf("replay: got replay-of %v, webhook-id %q, body %q; want %s, %q, %q",
			again.Headers["sidehook-replay-of"], again.WebhookID, again.Body, id, first.WebhookID, first.Body)
	}
	if again.Verdict.Status != receivertest.VerdictValid {
		t.Errorf("replay: verdict %+v, want valid: a fresh token, not the delivery's used jti", again.Verdict)
	}
	rr.api(t, http.MethodGet, "/v1/deliveries?endpoint=crm", "", &list)
	if len(list.Deliveries) != 1 || len(list.Deliveries[0].Attempts) != 1 {
		t.Errorf("after the replay: got %+v, want the delivery with its one attempt", list.Deliveries)
	}
	// The client's line says it is a replay, not a second attempt.
	cl.out.wait(t, "the replay's line", func() bool { return len(cl.out.jsonLines(t, "replay")) > 0 })
	if got := cl.out.jsonLines(t, "replay")[0]; got["replay_of"] != id || got["attempt"] != nil {
		t.Errorf("replay line: got %v, want replay_of %s and no attempt", got, id)
	}
	if got := cl.out.jsonLines(t, "delivery"); len(got) != 1 {
		t.Errorf("delivery lines: got %v, want the one attempt", got)
	}

	// So does an endpoint test's.
	if code := rr.api(t, http.MethodPost, "/v1/endpoints/crm/test", `{"event":"payment"}`, nil); code != http.StatusOK {
		t.Fatalf("endpoint test: got %d, want 200", code)
	}
	cl.out.wait(t, "the test's line", func() bool { return len(cl.out.jsonLines(t, "test")) > 0 })
	if got := cl.out.jsonLines(t, "delivery"); len(got) != 1 {
		t.Errorf("delivery lines: got %v, want the one attempt", got)
	}
}

// tunnelDelivery is a delivery as GET /v1/deliveries lists it.
type tunnelDelivery struct {
	ID            string     `json:"id"`
	Type          string     `json:"type"`
	Status        string     `json:"status"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	Attempts      []struct {
		Error string `json:"error"`
	} `json:"attempts"`
}

// deliveries waits until the deliveries of type typ, as the API lists
// them, satisfy cond, and returns them; after 10 s it fails saying what.
func (rr *realRelay) deliveries(tb testing.TB, typ, what string, cond func([]tunnelDelivery) bool) []tunnelDelivery {
	tb.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond) // the API has no wait call: look again on a tick
	defer tick.Stop()
	for {
		var list struct{ Deliveries []tunnelDelivery }
		if code := rr.api(tb, http.MethodGet, "/v1/deliveries?type="+typ, "", &list); code != http.StatusOK {
			tb.Fatalf("GET /v1/deliveries: got %d, want 200", code)
		}
		if cond(list.Deliveries) {
			return list.Deliveries
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			tb.Fatalf("timed out waiting for %s; %s deliveries: %+v", what, typ, list.Deliveries)
		}
	}
}

// settled reports whether ds are n deliveries, none being attempted now,
// each with at least one attempt.
func settled(ds []tunnelDelivery, n int) bool {
	if len(ds) != n {
		return false
	}
	for _, d := range ds {
		if d.Status == relay.StatusDelivering || d.Status == relay.StatusPending || len(d.Attempts) == 0 {
			return false
		}
	}
	return true
}

// TestTunnelEventsFilterKeepsOthersWaiting: a tunnel client that takes
// only some event types (sidehook tunnel --events payment) on an endpoint
// subscribed to every type leaves the deliveries of the other types
// waiting as they would with no client: their attempts fail, say why,
// and wait for the schedule's next retry, and a client that takes them
// gets them at once. Its connect made them due at once with the ones it
// takes, so each (re)connect of the filtered client burned an attempt of
// each of them against a client that refuses them, until they were dead
// before any client could take them.
func TestTunnelEventsFilterKeepsOthersWaiting(t *testing.T) {
	rr := newRealRelay(t, []string{"1h"}) // one retry, an hour after the first attempt
	app := receiverApp(t)
	rr.post(t, "payment", 1)
	rr.post(t, "inbound_message", 1)
	rr.deliveries(t, "payment", "the payment to fail with no client", func(ds []tunnelDelivery) bool { return settled(ds, 1) })
	rr.deliveries(t, "inbound_message", "the message to fail with no client", func(ds []tunnelDelivery) bool { return settled(ds, 1) })

	payments := clientConfig(rr.URL(), app.URL)
	payments.Events = []string{"payment"}
	startClient(t, payments)
	// The waiting payment goes at once. What the connect made due went
	// in the same take: once the payment is delivered, a message made
	// due with it has been attempted too.
	app.Expect(receivertest.Filter{Event: "payment"}, 1, 10*time.Second)
	rr.deliveries(t, "payment", "the payment to be delivered", func(ds []tunnelDelivery) bool {
		return len(ds) == 1 && ds[0].Status == relay.StatusDelivered
	})
	msgs := rr.deliveries(t, "inbound_message", "the message to settle", func(ds []tunnelDelivery) bool { return settled(ds, 1) })
	if m := msgs[0]; m.Status != relay.StatusFailed || len(m.Attempts) != 1 || m.NextAttemptAt == nil || time.Until(*m.NextAttemptAt) < 30*time.Minute {
		t.Fatalf("the message after a payment-only client connected: got %s, %d attempts, next at %v; want failed, its one attempt, the retry in an hour",
			m.Status, len(m.Attempts), m.NextAttemptAt)
	}

	// A message that arrives while only the filtered client is connected
	// fails as with no client, saying why, and waits.
	rr.post(t, "inbound_message", 1)
	msgs = rr.deliveries(t, "inbound_message", "the second message to fail", func(ds []tunnelDelivery) bool { return settled(ds, 2) })
	for _, m := range msgs {
		if m.Status != relay.StatusFailed || len(m.Attempts) != 1 {
			t.Fatalf("message %s: got %s with %d attempts, want failed with its one attempt", m.ID, m.Status, len(m.Attempts))
		}
	}
	if got := msgs[0].Attempts[0].Error; !strings.Contains(got, `takes event "inbound_message"`) {
		t.Errorf("attempt of the message sent while the filtered client was connected: error %q, want it to say no client takes inbound_message", got)
	}

	// A client that takes them gets both at once, not in an hour.
	startClient(t, clientConfig(rr.URL(), app.URL))
	app.Expect(receivertest.Filter{Event: "inbound_message"}, 2, 10*time.Second)
	rr.deliveries(t, "inbound_message", "the messages to be delivered on their second attempt", func(ds []tunnelDelivery) bool {
		return len(ds) == 2 && ds[0].Status == relay.StatusDelivered && ds[1].Status == relay.StatusDelivered &&
			len(ds[0].Attempts) == 2 && len(ds[1].Attempts) == 2
	})
}
