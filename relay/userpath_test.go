package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
)

// errorBody is the {"error","reason"} shape of every refusal.
type errorBody struct{ Error, Reason string }

func TestBearerScheme(t *testing.T) {
	r := startRelay(t, orgConfig(t), relay.Options{})
	tests := []struct {
		name   string
		header string
		status int
		reason string
	}{
		{"Canonical", "Bearer " + apiKey, 200, ""},
		{"Lower", "bearer " + apiKey, 200, ""},
		{"Upper", "BEARER " + apiKey, 200, ""},
		{"ExtraSpace", "Bearer   " + apiKey + " ", 200, ""},
		{"OtherScheme", "Basic " + apiKey, 401, "missing API key"},
		{"NoToken", "Bearer ", 401, "missing API key"},
		{"WrongKey", "bearer nope", 401, "invalid API key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := call(t, "GET", r.URL()+"/v1/endpoints", "", nil, map[string]string{"Authorization": tt.header})
			if a.Status != tt.status {
				t.Fatalf("got %d %s, want %d", a.Status, a.Body, tt.status)
			}
			// A 401 says how to authenticate (RFC 9110 §11.6.1).
			if got := a.Header.Get("WWW-Authenticate"); tt.status == 401 && !strings.HasPrefix(got, "Bearer ") {
				t.Errorf("WWW-Authenticate: got %q, want a Bearer challenge", got)
			}
			if tt.reason != "" {
				var e errorBody
				a.decode(t, &e)
				if e.Error != "unauthorized" || !strings.Contains(e.Reason, tt.reason) {
					t.Errorf("got %s, want unauthorized: %s", a.Body, tt.reason)
				}
			}
		})
	}
}

func TestListUnknownParameters(t *testing.T) {
	r := startRelay(t, orgConfig(t), relay.Options{})
	tests := []struct {
		path  string
		names string // what the reason must contain
	}{
		{"/v1/events?typo=1", `"typo"`},
		{"/v1/events?type=a&status=dead", `"status"`},
		{"/v1/deliveries?evnt=payment", `"evnt"`},
		{"/v1/deliveries?event=a&type=b", "alias"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			a := call(t, "GET", r.URL()+tt.path, apiKey, nil, nil)
			var e errorBody
			a.decode(t, &e)
			if a.Status != http.StatusBadRequest || e.Error != "invalid_query" || !strings.Contains(e.Reason, tt.names) {
				t.Errorf("got %d %s, want 400 invalid_query naming %s", a.Status, a.Body, tt.names)
			}
		})
	}
}

// TestTimeBoundsRefused: since and until outside the years 1 to 9999 are
// a 400, not a time.Unix that wraps around into a filter nobody asked
// for; so is a since after the until, naming both as given and as read,
// not an empty 200 that reads as nothing stored. Equal bounds and an
// absent until are no error.
func TestTimeBoundsRefused(t *testing.T) {
	r := startRelay(t, orgConfig(t), relay.Options{})
	tests := []struct {
		name, method, path, body string
		code, reason             string // "" for a 200
	}{
		{"EventsSince", "GET", "/v1/events?since=9223372036854775807", "", "invalid_query", "9999"},
		{"DeliveriesUntil", "GET", "/v1/deliveries?until=253402300800", "", "invalid_query", "9999"},
		{"ReplaySince", "POST", "/v1/replay", `{"filter":{"since":"9223372036854775807"}}`, "invalid_filter", "9999"},
		{"EventsSinceAfterUntil", "GET", "/v1/events?since=1h&until=2h", "", "invalid_query", "is after until"},
		{"DeliveriesSinceAfterUntil", "GET", "/v1/deliveries?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", "", "invalid_query", "is after until"},
		{"ReplaySinceAfterUntil", "POST", "/v1/replay", `{"filter":{"since":"1h","until":"2h"}}`, "invalid_filter", "is after until"},
		{"Equal", "GET", "/v1/events?since=2026-01-01T00:00:00Z&until=2026-01-01T00:00:00Z", "", "", ""},
		{"InOrder", "GET", "/v1/deliveries?since=2h&until=1h", "", "", ""},
		{"SinceAlone", "GET", "/v1/events?since=1h", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			a := call(t, tt.method, r.URL()+tt.path, apiKey, body, nil)
			if tt.code == "" {
				if a.Status != http.StatusOK {
					t.Errorf("got %d %s, want 200", a.Status, a.Body)
				}
				return
			}
			var e errorBody
			a.decode(t, &e)
			if a.Status != http.StatusBadRequest || e.Error != tt.code || !strings.Contains(e.Reason, tt.reason) {
				t.Errorf("got %d %s, want 400 %s saying %q", a.Status, a.Body, tt.code, tt.reason)
			}
		})
	}
}

// TestZeroTimeBounds: a since or until of the zero time
// (0001-01-01T00:00:00Z) bounds as any other given time does: an until
// that early selects nothing, where it read as no bound and selected
// everything; an absent one still bounds nothing.
func TestZeroTimeBounds(t *testing.T) {
	rcv := newSink(t, nil, nil)
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL()}), relay.Options{})
	ev := ingest(t, r, `{"type":"payment"}`, nil)
	waitDelivery(t, r, ev.Deliveries[0].ID, relay.StatusDelivered, 5*time.Second)
	const zero = "0001-01-01T00:00:00Z"
	tests := []struct {
		name, method, path, body string
		want                     int // events, deliveries or replay results
	}{
		{"EventsUntilZero", "GET", "/v1/events?until=" + zero, "", 0},
		{"EventsSinceZero", "GET", "/v1/events?since=" + zero, "", 1},
		{"EventsUnbounded", "GET", "/v1/events", "", 1},
		{"DeliveriesUntilZero", "GET", "/v1/deliveries?until=" + zero, "", 0},
		{"DeliveringUntilZero", "GET", "/v1/deliveries?status=delivering&until=" + zero, "", 0},
		{"DeliveriesSinceZero", "GET", "/v1/deliveries?since=" + zero, "", 1},
		{"ReplayUntilZero", "POST", "/v1/replay", `{"filter":{"type":"payment","until":"` + zero + `"}}`, 0},
		{"ReplayOnlyUntilZero", "POST", "/v1/replay", `{"filter":{"until":"` + zero + `"}}`, 0},
		{"ReplayIDsUntilZero", "POST", "/v1/replay", `{"filter":{"ids":["` + ev.ID + `"],"until":"` + zero + `"}}`, 0},
		{"ReplaySinceZero", "POST", "/v1/replay", `{"filter":{"type":"payment","since":"` + zero + `"}}`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			a := call(t, tt.method, r.URL()+tt.path, apiKey, body, nil)
			var ans struct {
				Events     []json.RawMessage
				Deliveries []json.RawMessage
				Results    []json.RawMessage
			}
			a.decode(t, &ans)
			got := len(ans.Events) + len(ans.Deliveries) + len(ans.Results)
			if a.Status != http.StatusOK || got != tt.want {
				t.Errorf("got %d with %d items, want 200 with %d: %s", a.Status, got, tt.want, a.Body)
			}
		})
	}
}

func TestDeliveriesEventFilter(t *testing.T) {
	rcv := newSink(t, nil, nil)
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL()}), relay.Options{})
	pay := ingest(t, r, `{"type":"payment"}`, nil)
	ingest(t, r, `{"type":"order.created"}`, nil)
	for _, q := range []string{"event=payment", "type=payment", "event=payment&type=payment"} {
		t.Run(q, func(t *testing.T) {
			var l struct{ Deliveries []deliveryView }
			a := call(t, "GET", r.URL()+"/v1/deliveries?"+q, apiKey, nil, nil)
			if a.Status != http.StatusOK {
				t.Fatalf("got %d %s, want 200", a.Status, a.Body)
			}
			a.decode(t, &l)
			if len(l.Deliveries) != 1 || l.Deliveries[0].EventID != pay.ID {
				t.Errorf("got %+v, want the one delivery of %s", l.Deliveries, pay.ID)
			}
		})
	}
}

func TestReplayNeedsAll(t *testing.T) {
	rcv := newSink(t, nil, nil)
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL()}), relay.Options{})
	ev := ingest(t, r, `{"type":"payment"}`, nil)
	waitDelivery(t, r, ev.Deliveries[0].ID, relay.StatusDelivered, 10*time.Second)

	for _, body := range []string{``, `{}`, `{"filter":{}}`, `{"filter":{},"all":false}`, `{"filter":{"since":" ","until":"\t"}}`} {
		a := call(t, "POST", r.URL()+"/v1/replay", apiKey, []byte(body), nil)
		var e errorBody
		a.decode(t, &e)
		if a.Status != http.StatusBadRequest || e.Error != "invalid_filter" || !strings.Contains(e.Reason, `"all": true`) {
			t.Errorf("body %q: got %d %s, want 400 asking for \"all\": true", body, a.Status, a.Body)
		}
	}
	a := call(t, "POST", r.URL()+"/v1/replay", apiKey, []byte(`{"all":true}`), nil)
	var ans struct {
		Replayed int
		Results  []relay.ReplayResult
	}
	a.decode(t, &ans)
	if a.Status != http.StatusOK || ans.Replayed != 1 || len(ans.Results) != 1 || ans.Results[0].DeliveryID != ev.Deliveries[0].ID || !ans.Results[0].OK {
		t.Fatalf("all: got %d %s, want the one delivery replayed", a.Status, a.Body)
	}
	if n := len(rcv.requests()); n != 2 {
		t.Errorf("the endpoint got %d requests, want the delivery and its replay", n)
	}
	d := waitDelivery(t, r, ev.Deliveries[0].ID, relay.StatusDelivered, 10*time.Second)
	if len(d.Attempts) != 1 {
		t.Errorf("after the replay: got %d attempts, want 1: a replay is not an attempt", len(d.Attempts))
	}
}

func TestReplayRefusesCustomValues(t *testing.T) {
	rcv := newSink(t, &auth.VerifyConfig{WebioSecret: []byte(secretKey), Org: "demo"}, nil)
	r := startRelay(t, orgConfig(t,
		config.RawEndpoint{ID: "values", URL: rcv.URL() + "/values", Events: []string{"custom_value_request"}},
		config.RawEndpoint{ID: "crm", URL: rcv.URL(), Events: []string{"payment"}}), relay.Options{})
	if a := call(t, "GET", r.URL()+"/in/demo?customerUID=ACC-1&fields=fullname", "", nil, nil); a.Status != http.StatusOK {
		t.Fatalf("custom value: got %d %s, want 200", a.Status, a.Body)
	}
	var l struct{ Deliveries []deliveryView }
	call(t, "GET", r.URL()+"/v1/deliveries?event=custom_value_request", apiKey, nil, nil).decode(t, &l)
	if len(l.Deliveries) != 1 {
		t.Fatalf("custom-value deliveries: got %+v, want one", l.Deliveries)
	}
	custom := l.Deliveries[0].ID
	pay := ingest(t, r, `{"type":"payment"}`, nil)
	waitDelivery(t, r, pay.Deliveries[0].ID, relay.StatusDelivered, 10*time.Second)

	t.Run("ByID", func(t *testing.T) {
		for _, to := range []string{"", rcv.URL() + "/again"} {
			body, _ := json.Marshal(map[string]any{"filter": map[string]any{"ids": []string{custom, pay.Deliveries[0].ID}}, "to": to})
			a := call(t, "POST", r.URL()+"/v1/replay", apiKey, body, nil)
			var e errorBody
			a.decode(t, &e)
			if a.Status != http.StatusBadRequest || e.Error != "not_replayable" || !strings.Contains(e.Reason, custom) ||
				strings.Contains(e.Reason, pay.Deliveries[0].ID) {
				t.Errorf("to %q: got %d %s, want 400 not_replayable naming %s only", to, a.Status, a.Body, custom)
			}
		}
	})
	t.Run("SweptByFilterIsLeftOut", func(t *testing.T) {
		a := call(t, "POST", r.URL()+"/v1/replay", apiKey, []byte(`{"all":true}`), nil)
		var ans struct{ Results []relay.ReplayResult }
		a.decode(t, &ans)
		if a.Status != http.StatusOK || len(ans.Results) != 1 || ans.Results[0].DeliveryID != pay.Deliveries[0].ID {
			t.Errorf("got %d %s, want only %s replayed", a.Status, a.Body, pay.Deliveries[0].ID)
		}
	})
}

func TestIngestMetrics(t *testing.T) {
	rcv := newSink(t, nil, nil)
	cfg := orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL()})
	cfg.Limits.MaxBody = 64
	r := startRelay(t, cfg, relay.Options{})
	ingest(t, r, `{"type":"payment"}`, nil)
	ingest(t, r, `{"type":"payment"}`, nil)
	call(t, "POST", r.URL()+"/v1/events", "", []byte(`{"type":"payment"}`), nil)
	call(t, "POST", r.URL()+"/v1/events", apiKey, []byte(`{"type":"payment","x":"`+strings.Repeat("a", 100)+`"}`), nil)
	call(t, "POST", r.URL()+"/in/nobody", "", []byte(`{"type":"payment"}`), nil)

	a := call(t, "GET", r.URL()+"/metrics", "", nil, nil)
	if a.Status != http.StatusOK {
		t.Fatalf("metrics: got %d, want 200", a.Status)
	}
	for _, want := range []string{
		`sidehook_relay_ingest_requests_total{code="202",route="events"} 2`,
		`sidehook_relay_ingest_requests_total{code="401",route="events"} 1`,
		`sidehook_relay_ingest_requests_total{code="413",route="events"} 1`,
		`sidehook_relay_ingest_requests_total{code="404",route="inbound"} 1`,
		`sidehook_relay_ingest_duration_seconds_count{code="202",route="events"} 2`,
		`sidehook_relay_ingest_duration_seconds_count{code="413",route="events"} 1`,
	} {
		if !bytes.Contains(a.Body, []byte(want+"\n")) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// A test binary carries no module version: "dev" is what it reports.
	if !regexp.MustCompile(`(?m)^sidehook_build_info\{revision="[0-9a-f]*",version="dev"\} 1$`).Match(a.Body) {
		t.Errorf("metrics lack sidehook_build_info{revision,version} 1:\n%s", grepLines(a.Body, "build_info"))
	}
}

// TestAbortedUploadMetric: a producer that hangs up before its body has
// arrived is counted as 499 (nginx's "client closed request"), not as a
// 400 that would read as a producer sending bad requests.
func TestAbortedUploadMetric(t *testing.T) {
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: newSink(t, nil, nil).URL()}), relay.Options{})
	conn, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"type\":", apiKey)
	conn.Close()
	want := `sidehook_relay_ingest_requests_total{code="499",route="events"} 1`
	var body []byte
	eventually(t, 10*time.Second, func() error { // the handler ends after the hang-up
		body = call(t, "GET", r.URL()+"/metrics", "", nil, nil).Body
		if !bytes.Contains(body, []byte(want+"\n")) {
			return fmt.Errorf("metrics lack %s:\n%s", want, grepLines(body, "ingest_requests_total"))
		}
		return nil
	})
	if bytes.Contains(body, []byte(`code="400"`)) {
		t.Errorf("the hang-up is also counted as a 400:\n%s", grepLines(body, "ingest_requests_total"))
	}
}

func grepLines(b []byte, s string) string {
	var out []string
	for l := range strings.Lines(string(b)) {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

// logLines reads the JSON log lines in b.
func logLines(b []byte) []map[string]any {
	var out []map[string]any
	for l := range strings.Lines(string(b)) {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func TestAttemptLogLine(t *testing.T) {
	rcv := newSink(t, nil, func(_ *http.Request, n int) int {
		if n == 0 { // the first request fails
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	cfg := orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL()})
	var logs bytes.Buffer
	// runRelay, not startRelay, which logs to the test when verbose: this
	// test reads the log.
	r := runRelay(t, cfg, relay.Options{Logger: zerolog.New(zerolog.SyncWriter(&logs)).Level(zerolog.InfoLevel)})
	ev := ingest(t, r, `{"type":"payment"}`, nil)
	id := ev.Deliveries[0].ID
	waitDelivery(t, r, id, relay.StatusDelivered, 10*time.Second)
	// Stopped, the relay writes no more: the log can be read.
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	var attempts []map[string]any
	for _, l := range logLines(logs.Bytes()) {
		if l["message"] == "attempt" && l["delivery"] == id {
			attempts = append(attempts, l)
		}
	}
	if len(attempts) != 2 {
		t.Fatalf("got %d attempt lines for %s, want 2 (one per attempt): %v", len(attempts), id, attempts)
	}
	for i, want := range []struct {
		status  float64
		outcome string
		retry   bool
	}{{503, relay.StatusFailed, true}, {200, relay.StatusDelivered, false}} {
		l := attempts[i]
		_, hasRetry := l["next_retry"]
		_, hasLatency := l["latency_ms"].(float64)
		if l["level"] != "info" || l["at"] == nil || l["event"] != "payment" || l["endpoint"] != "crm" ||
			l["status"] != want.status || l["attempt"] != float64(i+1) || l["outcome"] != want.outcome || !hasLatency || hasRetry != want.retry {
			t.Errorf("attempt %d: got %v, want info, at, event payment, endpoint crm, status %v, attempt %d, outcome %s, latency_ms, next_retry %v",
				i+1, l, want.status, i+1, want.outcome, want.retry)
		}
	}
}

// TestAllow: a known path asked with a method it does not serve is a 405
// whose Allow header lists the methods it does (RFC 9110 §15.5.6), in the
// {"error","reason"} shape; OPTIONS answers 204 with the same Allow; an
// unknown path is a 404 either way.
func TestAllow(t *testing.T) {
	r := startRelay(t, orgConfig(t), relay.Options{})
	tests := []struct {
		method, path string
		status       int
		allow        string
	}{
		{"DELETE", "/v1/events", 405, "GET, HEAD, POST, OPTIONS"},
		{"PATCH", "/v1/endpoints/crm", 405, "GET, HEAD, PUT, DELETE, OPTIONS"},
		{"GET", "/v1/deliveries/dlv_1/retry", 405, "POST, OPTIONS"},
		{"PUT", "/healthz", 405, "GET, HEAD, OPTIONS"},
		{"OPTIONS", "/v1/events", 204, "GET, HEAD, POST, OPTIONS"},
		{"OPTIONS", "/v1/replay", 204, "POST, OPTIONS"},
		// HEAD runs a GET handler; where GET does something it is refused.
		{"HEAD", "/in/demo", 405, "GET, POST, OPTIONS"},
		{"DELETE", "/in/demo", 405, "GET, POST, OPTIONS"},
		{"HEAD", "/v1/tunnel", 405, "GET, OPTIONS"},
		{"HEAD", "/healthz", 200, ""},
		// The dashboard's page and websocket are GET only.
		{"POST", "/_sidehook/ui", 405, "GET, HEAD, OPTIONS"},
		{"DELETE", "/_sidehook/ui/", 405, "GET, HEAD, OPTIONS"},
		{"PUT", "/_sidehook/ws", 405, "GET, HEAD, OPTIONS"},
		{"OPTIONS", "/nope", 404, ""},
		{"DELETE", "/nope", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			a := call(t, tt.method, r.URL()+tt.path, "", nil, nil)
			if a.Status != tt.status || a.Header.Get("Allow") != tt.allow {
				t.Fatalf("got %d Allow %q %s, want %d Allow %q", a.Status, a.Header.Get("Allow"), a.Body, tt.status, tt.allow)
			}
			if tt.method != "HEAD" && (tt.status == 405 || tt.status == 404) {
				var e errorBody
				a.decode(t, &e)
				if e.Error == "" || e.Reason == "" {
					t.Errorf("got %s, want {error, reason}", a.Body)
				}
			}
		})
	}
}
