package relay_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
)

func TestIngestErrors(t *testing.T) {
	rcv := newSink(t, nil, nil)
	cfg := orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL()})
	cfg.Limits.MaxBody = 64
	r := startRelay(t, cfg, relay.Options{})
	tests := []struct {
		name   string
		path   string
		key    string
		body   string
		header map[string]string
		status int
		code   string
	}{
		{"NoKey", "/v1/events", "", `{"type":"payment"}`, nil, 401, "unauthorized"},
		{"WrongKey", "/v1/events", "nope", `{"type":"payment"}`, nil, 401, "unauthorized"},
		{"BrokenJSON", "/v1/events", apiKey, `{"type":`, nil, 400, "invalid_json"},
		{"EmptyBody", "/v1/events", apiKey, ``, nil, 400, "empty_body"},
		{"NoType", "/v1/events", apiKey, `{"a":"b"}`, nil, 400, "no_event_type"},
		{"UnknownPayloadType", "/v1/events", apiKey, `{"type":"Nope!"}`, nil, 400, "no_event_type"},
		{"BadTypeHeader", "/v1/events", apiKey, `{}`, map[string]string{"sidehook-event": "Bad Type"}, 400, "invalid_event_type"},
		{"CustomValueRequestPosted", "/v1/events", apiKey, `{}`, map[string]string{"sidehook-event": "custom_value_request"}, 400, "invalid_event_type"},
		{"BadID", "/v1/events", apiKey, `{"type":"payment"}`, map[string]string{"webhook-id": "a/b"}, 400, "invalid_id"},
		{"Gzipped", "/v1/events", apiKey, "\x1f\x8b\x08\x00", map[string]string{"Content-Encoding": "gzip", "sidehook-event": "payment", "Content-Type": "application/octet-stream"}, 415, "unsupported_content_encoding"},
		{"GzippedPublicURL", "/in/demo", "", "\x1f\x8b\x08\x00", map[string]string{"Content-Encoding": "gzip", "sidehook-event": "payment"}, 415, "unsupported_content_encoding"},
		{"TooLarge", "/v1/events", apiKey, `{"type":"payment","x":"` + strings.Repeat("a", 100) + `"}`, nil, 413, "too_large"},
		{"UnknownOrg", "/in/nope", "", `{"type":"payment"}`, nil, 404, "unknown_organisation"},
		{"UnknownRoute", "/v2/nothing", apiKey, `{}`, nil, 404, "not_found"},
		{"WrongMethod", "/healthz", apiKey, `{}`, nil, 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := call(t, "POST", r.URL()+tt.path, tt.key, []byte(tt.body), tt.header)
			var e struct{ Error, Reason string }
			a.decode(t, &e)
			if a.Status != tt.status || e.Error != tt.code || e.Reason == "" {
				t.Errorf("got %d %s, want %d {error: %s, reason: …}", a.Status, a.Body, tt.status, tt.code)
			}
		})
	}
	t.Run("TypeFromQuery", func(t *testing.T) {
		a := call(t, "POST", r.URL()+"/v1/events?type=order.created", apiKey, []byte(`{"id":"1"}`), nil)
		var ans ingestAnswer
		a.decode(t, &ans)
		if a.Status != 202 || ans.Type != "order.created" {
			t.Errorf("got %d %s, want 202 and type order.created", a.Status, a.Body)
		}
	})
	t.Run("PublicURL", func(t *testing.T) {
		a := call(t, "POST", r.URL()+"/in/demo", "", []byte(`{"type":"messageSend"}`), nil)
		var ans ingestAnswer
		a.decode(t, &ans)
		if a.Status != 202 || ans.Type != "message_send" || len(ans.Deliveries) != 1 {
			t.Errorf("got %d %s, want 202, type message_send and one delivery", a.Status, a.Body)
		}
	})
}

// TestInboundAuth: /in/{org} takes the platform's token, signed with the
// inbound secret, and refuses the token the relay itself sends to its
// endpoints (issue 14: outbound tokens are not inbound credentials).
func TestInboundAuth(t *testing.T) {
	const platformSecret = "platform-secret-0123456789abcdefghijklmnop"
	f := config.File{Listen: "127.0.0.1:0", Data: t.TempDir(), Organisations: []config.RawOrg{{ID: "demo", APIKeys: []string{apiKey},
		SecretKey: secretKey, InboundAuth: "webio-token", InboundSecret: platformSecret}}}
	cfg, err := f.Validate(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := startRelay(t, cfg, relay.Options{})
	if a := call(t, "POST", r.URL()+"/in/demo", "", []byte(`{"type":"payment"}`), nil); a.Status != 401 {
		t.Errorf("no token: got %d %s, want 401", a.Status, a.Body)
	}
	outbound, _ := auth.MintWebioToken([]byte(secretKey), auth.WebioClaims{Org: "demo"})
	if a := call(t, "POST", r.URL()+"/in/demo", "", []byte(`{"type":"payment"}`), map[string]string{"x-webio-token": outbound}); a.Status != 401 {
		t.Errorf("the relay's own outbound token: got %d %s, want 401", a.Status, a.Body)
	}
	tok, _ := auth.MintWebioToken([]byte(platformSecret), auth.WebioClaims{Org: "demo"})
	if a := call(t, "POST", r.URL()+"/in/demo", "", []byte(`{"type":"payment"}`), map[string]string{"x-webio-token": tok}); a.Status != 202 {
		t.Errorf("the platform's token: got %d %s, want 202", a.Status, a.Body)
	}
}

func TestIdempotency(t *testing.T) {
	rcv := newSink(t, nil, nil)
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL()}), relay.Options{})
	h := map[string]string{"webhook-id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"}
	first := call(t, "POST", r.URL()+"/v1/events", apiKey, []byte(`{"type":"payment"}`), h)
	again := call(t, "POST", r.URL()+"/v1/events", apiKey, []byte(`{"type":"payment"}`), h)
	if first.Status != 202 || again.Status != 200 || string(first.Body) != string(again.Body) {
		t.Errorf("repeat: got %d %s then %d %s, want 202 then 200 with the same answer", first.Status, first.Body, again.Status, again.Body)
	}
	other := call(t, "POST", r.URL()+"/v1/events", apiKey, []byte(`{"type":"payment","x":"1"}`), map[string]string{"Idempotency-Key": h["webhook-id"]})
	if other.Status != 409 {
		t.Errorf("different body: got %d %s, want 409", other.Status, other.Body)
	}
	// Once the one delivery is final, nothing more is sent: a repeat that
	// made a second delivery would have reached the receiver by then too.
	var ans ingestAnswer
	first.decode(t, &ans)
	if len(ans.Deliveries) != 1 {
		t.Fatalf("first: got %d deliveries, want 1", len(ans.Deliveries))
	}
	waitDelivery(t, r, ans.Deliveries[0].ID, "delivered", 5*time.Second)
	waitCount(t, r, "", 1)
	reqs := rcv.requests()
	if n := len(reqs); n != 1 || reqs[0].Header.Get("webhook-id") != h["webhook-id"] {
		t.Errorf("receiver: got %d requests, want 1 with the producer's id", n)
	}
}

func TestQueueFull(t *testing.T) {
	rcv := newSink(t, nil, func(*http.Request, int) int { return 500 })
	cfg := orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL(), Retry: &config.RawRetry{Schedule: []string{"1h"}}})
	cfg.Limits.MaxQueue = 3
	r := startRelay(t, cfg, relay.Options{})
	for i := 0; i < 3; i++ {
		ingest(t, r, `{"type":"payment"}`, nil)
	}
	a := call(t, "POST", r.URL()+"/v1/events", apiKey, []byte(`{"type":"payment"}`), nil)
	if a.Status != 429 || a.Header.Get("Retry-After") == "" {
		t.Errorf("over max_queue: got %d %s, want 429 with Retry-After", a.Status, a.Body)
	}
}

func TestManagementAPI(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	rcv := newSink(t, nil, func(r *http.Request, n int) int {
		if failing.Load() && r.URL.Path == "/flaky" {
			return 400
		}
		return 200
	})
	r := startRelay(t, orgConfig(t,
		config.RawEndpoint{ID: "crm", URL: rcv.URL() + "/crm", Events: []string{"payment"}},
		config.RawEndpoint{ID: "flaky", URL: rcv.URL() + "/flaky", Events: []string{"*"}},
	), relay.Options{})
	var ids []string
	for i := 0; i < 5; i++ {
		typ := "payment"
		if i%2 == 1 {
			typ = "inboundMessage"
		}
		ids = append(ids, ingest(t, r, fmt.Sprintf(`{"type":%q,"n":"%d"}`, typ, i), nil).ID)
	}
	rcv.wait(t, 5*time.Second, func(c []captured) bool { return len(c) == 8 })
	waitCount(t, r, "status=dead&endpoint=flaky", 5)
	waitCount(t, r, "status=delivered", 3)

	t.Run("GetEvent", func(t *testing.T) {
		var ev struct {
			ID, Type, Organisation, Body string
			Deliveries                   []deliveryView
		}
		call(t, "GET", r.URL()+"/v1/events/"+ids[0], apiKey, nil, nil).decode(t, &ev)
		if ev.ID != ids[0] || ev.Type != "payment" || ev.Organisation != "demo" || ev.Body != `{"type":"payment","n":"0"}` || len(ev.Deliveries) != 2 {
			t.Errorf("got %+v, want the first event, payment, of demo, with its body and 2 deliveries", ev)
		}
		if a := call(t, "GET", r.URL()+"/v1/events/evt_nope", apiKey, nil, nil); a.Status != 404 {
			t.Errorf("missing event: got %d, want 404", a.Status)
		}
	})
	t.Run("ListEventsPaged", func(t *testing.T) {
		var got []string
		cursor := ""
		for page := 0; page < 5; page++ {
			var l struct {
				Events []struct{ ID string }
				Next   *string
			}
			call(t, "GET", r.URL()+"/v1/events?limit=2&cursor="+cursor, apiKey, nil, nil).decode(t, &l)
			for _, e := range l.Events {
				got = append(got, e.ID)
			}
			if l.Next == nil {
				break
			}
			cursor = *l.Next
		}
		want := []string{ids[4], ids[3], ids[2], ids[1], ids[0]}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("newest first, paged:\n got %v\nwant %v", got, want)
		}
		var l struct{ Events []struct{ Type string } }
		call(t, "GET", r.URL()+"/v1/events?type=inbound_message", apiKey, nil, nil).decode(t, &l)
		if len(l.Events) != 2 {
			t.Errorf("type filter: got %d events, want 2", len(l.Events))
		}
	})
	t.Run("ListDeliveriesFiltered", func(t *testing.T) {
		var l struct {
			Deliveries []deliveryView
			Next       *string
		}
		call(t, "GET", r.URL()+"/v1/deliveries?status=dead&endpoint=flaky", apiKey, nil, nil).decode(t, &l)
		if len(l.Deliveries) != 5 {
			t.Fatalf("dead at flaky: got %d, want 5", len(l.Deliveries))
		}
		for _, d := range l.Deliveries {
			if d.EventID == "" || d.Status != "dead" || d.Endpoint != "flaky" {
				t.Errorf("got %+v, want a dead delivery at flaky with an event id", d)
			}
		}
		var all struct {
			Deliveries []deliveryView
			Next       *string
		}
		call(t, "GET", r.URL()+"/v1/deliveries?limit=3", apiKey, nil, nil).decode(t, &all)
		if len(all.Deliveries) != 3 || all.Next == nil {
			t.Errorf("limit 3: got %d, next %v; want 3 and a next cursor", len(all.Deliveries), all.Next)
		}
		if a := call(t, "GET", r.URL()+"/v1/deliveries?status=weird", apiKey, nil, nil); a.Status != 400 {
			t.Errorf("bad status filter: got %d, want 400", a.Status)
		}
	})
	failing.Store(false)
	t.Run("Retry", func(t *testing.T) {
		var l struct{ Deliveries []deliveryView }
		call(t, "GET", r.URL()+"/v1/deliveries?status=dead&limit=1", apiKey, nil, nil).decode(t, &l)
		id := l.Deliveries[0].ID
		if a := call(t, "POST", r.URL()+"/v1/deliveries/"+id+"/retry", apiKey, nil, nil); a.Status != 202 {
			t.Fatalf("retry: got %d %s, want 202", a.Status, a.Body)
		}
		d := waitDelivery(t, r, id, "delivered", 5*time.Second)
		if len(d.Attempts) != 2 {
			t.Errorf("attempts after retry: got %d, want 2", len(d.Attempts))
		}
	})
	t.Run("ReplayToEndpoint", func(t *testing.T) {
		// Without "to", each goes once to its endpoint's URL, now, as a
		// replay: the deliveries stay dead.
		before := len(rcv.requests())
		a := call(t, "POST", r.URL()+"/v1/replay", apiKey, []byte(`{"filter":{"status":"dead","endpoint":"flaky"}}`), nil)
		var ans struct {
			Replayed int
			Results  []relay.ReplayResult
		}
		a.decode(t, &ans)
		if a.Status != 200 || ans.Replayed != 4 || len(ans.Results) != 4 {
			t.Fatalf("replay: got %d %s, want 200 with 4 replayed", a.Status, a.Body)
		}
		for _, res := range ans.Results {
			if !res.OK || res.Status != 200 {
				t.Errorf("result %+v, want ok with the endpoint's 200", res)
			}
		}
		got := rcv.requests()[before:]
		if len(got) != 4 {
			t.Fatalf("the endpoint got %d requests, want the 4 replays", len(got))
		}
		for i, c := range got {
			if c.Path != "/flaky" || c.Header.Get("sidehook-replay-of") != ans.Results[i].DeliveryID {
				t.Errorf("request %d: got %s replay-of %q, want /flaky replaying %s", i, c.Path, c.Header.Get("sidehook-replay-of"), ans.Results[i].DeliveryID)
			}
		}
		waitCount(t, r, "status=dead&endpoint=flaky", 4)
	})
	t.Run("ReplayTo", func(t *testing.T) {
		other := newSink(t, nil, nil)
		a := call(t, "POST", r.URL()+"/v1/replay", apiKey, []byte(`{"filter":{"ids":["`+ids[0]+`"],"endpoint":"crm"},"to":"`+other.URL()+`/x"}`), nil)
		var ans struct {
			Replayed int
			Results  []struct {
				OK     bool
				Status int
			}
		}
		a.decode(t, &ans)
		if a.Status != 200 || ans.Replayed != 1 || !ans.Results[0].OK {
			t.Fatalf("replay to: got %d %s, want 200 with one replay, ok", a.Status, a.Body)
		}
		c := other.requests()[0]
		if c.Header.Get("webhook-id") != ids[0] || c.Header.Get("sidehook-replay-of") == "" || string(c.Body) != `{"type":"payment","n":"0"}` {
			t.Errorf("replayed request: got headers %v body %s, want the event's webhook-id and body with sidehook-replay-of", c.Header, c.Body)
		}
	})
	t.Run("ReplayByFilterOldestFirst", func(t *testing.T) {
		// Selected by a filter, deliveries are replayed in the order their
		// events came, as the listing's pages (newest first) are not.
		other := newSink(t, nil, nil)
		a := call(t, "POST", r.URL()+"/v1/replay", apiKey, []byte(`{"filter":{"endpoint":"crm"},"to":"`+other.URL()+`/x"}`), nil)
		if a.Status != 200 {
			t.Fatalf("replay to: got %d %s, want 200", a.Status, a.Body)
		}
		var got []string
		for _, c := range other.requests() {
			got = append(got, c.Header.Get("webhook-id"))
		}
		var want []string
		for _, id := range ids {
			if slices.Contains(got, id) {
				want = append(want, id)
			}
		}
		if len(got) < 2 || !slices.Equal(got, want) {
			t.Errorf("replayed in the order %v, want the events' order %v", got, want)
		}
	})
}

func TestEndpointsAPI(t *testing.T) {
	rcv := newSink(t, nil, nil)
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "values", URL: rcv.URL(), Events: []string{"custom_value_request"}}), relay.Options{})
	tests := []struct {
		name, method, path, body string
		status                   int
	}{
		{"Create", "POST", "/v1/endpoints", `{"id":"crm","url":"` + rcv.URL() + `/crm","events":["payment"],"rate":"10/s","timeout":"2s"}`, 201},
		{"CreateAgain", "POST", "/v1/endpoints", `{"id":"crm","url":"` + rcv.URL() + `/crm"}`, 409},
		{"InvalidURL", "POST", "/v1/endpoints", `{"id":"bad","url":"ftp://x"}`, 400},
		{"RelativeURL", "POST", "/v1/endpoints", `{"id":"bad","url":"/hook"}`, 400},
		{"Tunnel", "POST", "/v1/endpoints", `{"id":"tun","url":"tunnel://laptop"}`, 400},
		{"BadEvent", "POST", "/v1/endpoints", `{"id":"bad","url":"http://x","events":["Nope"]}`, 400},
		{"UnknownField", "POST", "/v1/endpoints", `{"id":"bad","url":"http://x","colour":"red"}`, 400},
		{"SecondCustomValues", "POST", "/v1/endpoints", `{"id":"values2","url":"http://x","events":["custom_value_request"]}`, 409},
		{"Get", "GET", "/v1/endpoints/crm", ``, 200},
		{"Update", "PUT", "/v1/endpoints/crm", `{"url":"` + rcv.URL() + `/crm2","events":["*"]}`, 200},
		{"UpdateMissing", "PUT", "/v1/endpoints/nope", `{"url":"http://x"}`, 404},
		{"UpdateFileEndpoint", "PUT", "/v1/endpoints/values", `{"url":"http://elsewhere"}`, 409},
		{"DeleteFileEndpoint", "DELETE", "/v1/endpoints/values", ``, 409},
		{"Delete", "DELETE", "/v1/endpoints/crm", ``, 204},
		{"GetDeleted", "GET", "/v1/endpoints/crm", ``, 404},
	}
	for _, tt := range tests {
		a := call(t, tt.method, r.URL()+tt.path, apiKey, []byte(tt.body), nil)
		if a.Status != tt.status {
			t.Errorf("%s: got %d %s, want %d", tt.name, a.Status, a.Body, tt.status)
		}
		if a.Status >= 400 {
			var e struct{ Error, Reason string }
			if json.Unmarshal(a.Body, &e); e.Error == "" || e.Reason == "" {
				t.Errorf("%s: error body %s, want {error, reason}", tt.name, a.Body)
			}
		}
	}
}

// TestEndpointMaxInFlight: the API takes max_in_flight as the file does:
// left out (or null) it is the default, 16; written, it is between 1 and
// 1024. A 0 was taken as 16 without a word, where -1 was refused.
func TestEndpointMaxInFlight(t *testing.T) {
	rcv := newSink(t, nil, nil)
	r := startRelay(t, orgConfig(t), relay.Options{})
	tests := []struct {
		name   string
		field  string // the max_in_flight member, or ""
		status int
		want   string // the reason's start, or the max_in_flight answered
	}{
		{"LeftOut", ``, 201, "16"},
		{"Null", `,"max_in_flight":null`, 201, "16"},
		{"One", `,"max_in_flight":1`, 201, "1"},
		{"Most", `,"max_in_flight":1024`, 201, "1024"},
		{"Zero", `,"max_in_flight":0`, 400, "max_in_flight: 0 is not between 1 and 1024 (leave it out for the default, 16)"},
		{"Negative", `,"max_in_flight":-1`, 400, "max_in_flight: -1 is not between 1 and 1024"},
		{"TooMany", `,"max_in_flight":1025`, 400, "max_in_flight: 1025 is not between 1 and 1024"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := fmt.Sprintf(`{"id":"ep%d","url":"%s"%s}`, i, rcv.URL(), tt.field)
			a := call(t, "POST", r.URL()+"/v1/endpoints", apiKey, []byte(body), nil)
			var got struct {
				Error, Reason string
				MaxInFlight   json.RawMessage `json:"max_in_flight"`
			}
			a.decode(t, &got)
			switch {
			case a.Status != tt.status:
				t.Errorf("got %d %s, want %d", a.Status, a.Body, tt.status)
			case a.Status == 201 && string(got.MaxInFlight) != tt.want:
				t.Errorf("got max_in_flight %s, want %s", got.MaxInFlight, tt.want)
			case a.Status == 400 && (got.Error != "invalid_endpoint" || !strings.HasPrefix(got.Reason, tt.want)):
				t.Errorf("got %s, want invalid_endpoint with a reason starting %q", a.Body, tt.want)
			}
		})
	}
}

// TestEndpointPutWhatGetAnswered: the usual way to change one field is to
// GET the endpoint, edit it and PUT it back; the read-only fields GET adds
// (source, disabled_reason) are accepted and ignored, not a 400. Re-enabling
// an endpoint disabled by a 410 is exactly that edit.
func TestEndpointPutWhatGetAnswered(t *testing.T) {
	rcv := newSink(t, nil, nil)
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "file", URL: rcv.URL() + "/file", Events: []string{"payment"}}), relay.Options{})
	if a := call(t, "POST", r.URL()+"/v1/endpoints", apiKey, []byte(`{"id":"api","url":"`+rcv.URL()+`/api","events":["payment"]}`), nil); a.Status != 201 {
		t.Fatalf("create: got %d %s, want 201", a.Status, a.Body)
	}
	for _, id := range []string{"file", "api"} {
		t.Run(id, func(t *testing.T) {
			// edit GETs the endpoint, sets enabled and PUTs the document back.
			edit := func(enabled bool) map[string]any {
				t.Helper()
				var doc map[string]any
				call(t, "GET", r.URL()+"/v1/endpoints/"+id, apiKey, nil, nil).decode(t, &doc)
				doc["enabled"] = enabled
				body, err := json.Marshal(doc)
				if err != nil {
					t.Fatal(err)
				}
				a := call(t, "PUT", r.URL()+"/v1/endpoints/"+id, apiKey, body, map[string]string{"Content-Type": "application/json"})
				if a.Status != 200 {
					t.Fatalf("PUT %s: got %d %s, want 200", body, a.Status, a.Body)
				}
				var got map[string]any
				a.decode(t, &got)
				return got
			}
			if got := edit(false); got["enabled"] != false {
				t.Errorf("disable: got %v, want enabled false", got)
			}
			if got := edit(true); got["enabled"] != true || got["disabled_reason"] != nil {
				t.Errorf("re-enable: got %v, want enabled true and no disabled_reason", got)
			}
		})
	}
}

// TestFileEndpointDisabledInFile: a file endpoint written enabled: false
// stays off whatever the API says, so enabling it through the API is a 409
// that says to edit the file, not a 200 that changes nothing.
func TestFileEndpointDisabledInFile(t *testing.T) {
	rcv := newSink(t, nil, nil)
	off := false
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "off", URL: rcv.URL() + "/off", Enabled: &off}), relay.Options{})
	tests := []struct {
		name    string
		enabled bool
		status  int
		code    string
	}{
		{"ErrEnable", true, http.StatusConflict, "endpoint_in_config"},
		{"DisableAgain", false, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := fmt.Sprintf(`{"url":%q,"enabled":%t}`, rcv.URL()+"/off", tt.enabled)
			a := call(t, "PUT", r.URL()+"/v1/endpoints/off", apiKey, []byte(body), map[string]string{"Content-Type": "application/json"})
			var got struct {
				Error   string
				Enabled *bool
			}
			a.decode(t, &got)
			if a.Status != tt.status || got.Error != tt.code {
				t.Errorf("got %d %s, want %d %s", a.Status, a.Body, tt.status, tt.code)
			}
			if a.Status == http.StatusOK && (got.Enabled == nil || *got.Enabled) {
				t.Errorf("got %s, want enabled false", a.Body)
			}
		})
	}
}

func TestEndpointsSurviveRestart(t *testing.T) {
	rcv := newSink(t, nil, nil)
	cfg := orgConfig(t)
	r1 := startRelay(t, cfg, relay.Options{})
	if a := call(t, "POST", r1.URL()+"/v1/endpoints", apiKey, []byte(`{"id":"crm","url":"`+rcv.URL()+`"}`), nil); a.Status != 201 {
		t.Fatalf("create: %d %s, want 201", a.Status, a.Body)
	}
	tok1 := webioToken(t, rcv, r1)
	if err := r1.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	r2 := startRelay(t, cfg, relay.Options{})
	if a := call(t, "GET", r2.URL()+"/v1/endpoints/crm", apiKey, nil, nil); a.Status != 200 {
		t.Fatalf("after restart: got %d %s, want 200", a.Status, a.Body)
	}
	if tok2 := webioToken(t, rcv, r2); tok2 != tok1 {
		t.Errorf("webio token changed across a restart")
	}
	// POST /v1/tokens regenerates it.
	a := call(t, "POST", r2.URL()+"/v1/tokens", apiKey, []byte(`{"secret_key":"`+secretKey+`"}`), nil)
	var tok struct{ Token string }
	a.decode(t, &tok)
	if a.Status != 200 || tok.Token == "" || tok.Token == tok1 {
		t.Fatalf("regenerate: got %d %s, want 200 with a new token", a.Status, a.Body)
	}
	if tok3 := webioToken(t, rcv, r2); tok3 != tok.Token {
		t.Errorf("deliveries use %q, want the regenerated token", tok3)
	}
	if a := call(t, "POST", r2.URL()+"/v1/tokens", apiKey, []byte(`{"secret_key":"wrong-wrong-wrong-wrong-wrong-wrong"}`), nil); a.Status != 403 {
		t.Errorf("wrong secret: got %d, want 403", a.Status)
	}
}

// An API endpoint with no retries (an empty schedule) keeps none, as the
// API shows it and across a restart; it came back with the relay-wide
// schedule, the empty one dropped from its stored document.
func TestEndpointNoRetriesSurviveRestart(t *testing.T) {
	cfg := orgConfig(t)
	r1 := startRelay(t, cfg, relay.Options{})
	if a := call(t, "POST", r1.URL()+"/v1/endpoints", apiKey, []byte(`{"id":"crm","url":"http://127.0.0.1:9","retry":{"schedule":[]}}`), nil); a.Status != 201 {
		t.Fatalf("create: %d %s, want 201", a.Status, a.Body)
	}
	check := func(r *relay.Relay, when string) {
		t.Helper()
		a := call(t, "GET", r.URL()+"/v1/endpoints/crm", apiKey, nil, nil)
		var e config.RawEndpoint
		a.decode(t, &e)
		if a.Status != 200 || e.Retry == nil || e.Retry.Schedule == nil || len(e.Retry.Schedule) != 0 {
			t.Fatalf("%s: got %d %s, want a retry schedule of []", when, a.Status, a.Body)
		}
	}
	check(r1, "created")
	if err := r1.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	check(startRelay(t, cfg, relay.Options{}), "after restart")
}

// webioToken delivers one event and returns the x-webio-token it carried.
func webioToken(t *testing.T, rcv *sink, r *relay.Relay) string {
	t.Helper()
	n := len(rcv.requests())
	ans := ingest(t, r, `{"type":"payment"}`, nil)
	reqs := rcv.wait(t, 5*time.Second, func(c []captured) bool { return len(c) > n })
	c := reqs[len(reqs)-1]
	if c.Header.Get("webhook-id") != ans.ID {
		t.Fatalf("unexpected request %v", c.Header)
	}
	tok := c.Header.Get("x-webio-token")
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return []byte(secretKey), nil }, jwt.WithValidMethods([]string{"HS256"})); err != nil {
		t.Fatalf("x-webio-token does not verify: %v", err)
	}
	if claims["org"] != "demo" || claims["iss"] != "sidehook" || claims["jti"] == nil || claims["iat"] == nil || claims["exp"] != nil {
		t.Errorf("claims: got %v, want org demo, iss sidehook, a jti and an iat, and no exp", claims)
	}
	return tok
}

func TestKeyRotationKeepsOldKeyPublished(t *testing.T) {
	f := config.File{Listen: "127.0.0.1:0", Data: t.TempDir(), Organisations: []config.RawOrg{{ID: "demo", APIKeys: []string{apiKey}}}}
	f.Organisations[0].JWT.Algorithm = "EdDSA"
	cfg, err := f.Validate(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := startRelay(t, cfg, relay.Options{})
	kids := func() []string {
		var set auth.JWKS
		call(t, "GET", r.URL()+"/.well-known/jwks.json", "", nil, nil).decode(t, &set)
		var out []string
		for _, k := range set.Keys {
			out = append(out, k.Kid)
		}
		return out
	}
	before := kids()
	if len(before) != 1 {
		t.Fatalf("jwks: got %v, want one key", before)
	}
	if _, err := r.RotateKey(auth.EdDSA); err != nil {
		t.Fatal(err)
	}
	after := kids()
	if len(after) != 2 || after[1] != before[0] {
		t.Errorf("after rotation: got %v, want the new key and the old %s", after, before[0])
	}
	if err := r.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	r = startRelay(t, cfg, relay.Options{})
	if again := kids(); fmt.Sprint(again) != fmt.Sprint(after) {
		t.Errorf("after restart: got %v, want %v (keys kept in the data dir)", again, after)
	}
}

func TestOperations(t *testing.T) {
	rcv := newSink(t, nil, nil)
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL()}), relay.Options{})
	ans := ingest(t, r, `{"type":"payment"}`, nil)
	waitDelivery(t, r, ans.Deliveries[0].ID, "delivered", 5*time.Second)
	for _, p := range []string{"/healthz", "/readyz"} {
		if a := call(t, "GET", r.URL()+p, "", nil, nil); a.Status != 200 {
			t.Errorf("%s: got %d, want 200", p, a.Status)
		}
	}
	wants := []string{
		`sidehook_relay_events_ingested_total{organisation="demo",type="payment"} 1`,
		`sidehook_relay_deliveries_total{endpoint="crm",organisation="demo",outcome="delivered"} 1`,
		`sidehook_relay_attempt_duration_seconds_count{endpoint="crm",organisation="demo"} 1`,
		`sidehook_relay_queue_depth{endpoint="crm",organisation="demo"} 0`,
	}
	// The metrics follow the write the API reads.
	eventually(t, 5*time.Second, func() error {
		m := string(call(t, "GET", r.URL()+"/metrics", "", nil, nil).Body)
		for _, want := range wants {
			if !strings.Contains(m, want) {
				return fmt.Errorf("metrics: missing %s in\n%s", want, m)
			}
		}
		return nil
	})
}

func TestSubscribe(t *testing.T) {
	rcv := newSink(t, nil, nil)
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL()}), relay.Options{})
	sub := r.Subscribe(t.Context())
	defer sub.Close()
	ans := ingest(t, r, `{"type":"payment"}`, nil)
	var got []string
	timeout := time.After(5 * time.Second)
	for len(got) < 3 {
		select {
		case c := <-sub.C():
			if c.EventID != ans.ID {
				t.Fatalf("change for another event: %+v", c)
			}
			got = append(got, c.Kind+":"+c.Status)
		case <-timeout:
			t.Fatalf("changes: got %v, want 3", got)
		}
	}
	if want := "[event: delivery:pending delivery:delivered]"; fmt.Sprint(got) != want {
		t.Errorf("changes: got %v, want %s", got, want)
	}
}

// TestSubscribeOrder: under load, every event's changes come in the order
// they happened: the event, its delivery pending, then its outcome. The
// dispatcher used to be told of a delivery before ingest published it,
// so a quick attempt's outcome could come first, and a dashboard row
// showed pending after delivered.
func TestSubscribeOrder(t *testing.T) {
	rcv := newSink(t, nil, nil)
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL()}), relay.Options{})
	sub := r.Subscribe(t.Context())
	defer sub.Close()
	const events = 300
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range events / 8 {
				ingest(t, r, `{"type":"payment"}`, nil)
			}
		})
	}
	seen := map[string][]string{}
	done := 0
	timeout := time.After(30 * time.Second)
	for done < events/8*8 {
		select {
		case c := <-sub.C():
			seen[c.EventID] = append(seen[c.EventID], c.Kind+":"+c.Status)
			if c.Status == relay.StatusDelivered {
				done++
			}
		case <-timeout:
			t.Fatalf("changes: %d events delivered of %d", done, events/8*8)
		}
	}
	wg.Wait()
	want := "[event: delivery:pending delivery:delivered]"
	for id, got := range seen {
		if fmt.Sprint(got) != want {
			t.Errorf("event %s: changes %v, want %s", id, got, want)
		}
	}
}

// waitCount waits until GET /v1/deliveries?query lists n deliveries.
func waitCount(t *testing.T, r *relay.Relay, query string, n int) {
	t.Helper()
	eventually(t, 5*time.Second, func() error {
		got, cursor := 0, ""
		for {
			var l struct {
				Deliveries []deliveryView
				Next       *string
			}
			call(t, "GET", r.URL()+"/v1/deliveries?limit=1000&"+query+"&cursor="+cursor, apiKey, nil, nil).decode(t, &l)
			got += len(l.Deliveries)
			if l.Next == nil {
				break
			}
			cursor = *l.Next
		}
		if got != n {
			return fmt.Errorf("deliveries?%s: got %d, want %d", query, got, n)
		}
		return nil
	})
}

// TestReplayOnce: a delivery named more than once, by its id and by its
// event's, is replayed once (POST /v1/replay, and the dashboard's).
func TestReplayOnce(t *testing.T) {
	rcv := newSink(t, nil, nil)
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL() + "/crm", Events: []string{"payment"}}), relay.Options{})
	ans := ingest(t, r, `{"type":"payment"}`, nil)
	dlv := ans.Deliveries[0].ID
	waitDelivery(t, r, dlv, "delivered", 5*time.Second)
	other := newSink(t, nil, nil)
	tests := []struct {
		name, body string
		status     int
		count      string // the answer's field that counts what was sent
		sent       *sink  // where a replay goes
	}{
		{"DeliveryAndEvent", `{"filter":{"ids":["` + dlv + `","` + ans.ID + `"]},"to":"` + other.URL() + `"}`, 200, "replayed", other},
		{"EventAndDelivery", `{"filter":{"ids":["` + ans.ID + `","` + dlv + `"]},"to":"` + other.URL() + `"}`, 200, "replayed", other},
		{"SameDeliveryThrice", `{"filter":{"ids":["` + dlv + `","` + dlv + `","` + dlv + `"]}}`, 200, "replayed", rcv},
		{"DashboardTwiceTo", `{"ids":["` + dlv + `","` + dlv + `"],"to":"` + other.URL() + `"}`, 200, "replayed", other},
		{"DashboardTwice", `{"ids":["` + dlv + `","` + dlv + `"]}`, 200, "replayed", rcv},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before int
			if tt.sent != nil {
				before = len(tt.sent.requests())
			}
			var a answer
			if strings.HasPrefix(tt.name, "Dashboard") {
				a = call(t, "POST", r.URL()+"/_sidehook/replay", "", []byte(tt.body), jsonType)
			} else {
				a = call(t, "POST", r.URL()+"/v1/replay", apiKey, []byte(tt.body), nil)
			}
			var got map[string]any
			a.decode(t, &got)
			results, _ := got["results"].([]any)
			if a.Status != tt.status || got[tt.count] != float64(1) || len(results) != 1 {
				t.Fatalf("got %d %s, want %d with %s 1 and one result", a.Status, a.Body, tt.status, tt.count)
			}
			if tt.sent != nil {
				if n := len(tt.sent.requests()) - before; n != 1 {
					t.Errorf("requests sent: got %d, want 1", n)
				}
			}
		})
	}
}

// TestReplayToKeepsPath: a replay "to" a URL without a path goes to the
// endpoint's path (and query, when "to" has none), as a receiver's replay
// keeps the capture's: `sidehook replay --relay … --to http://localhost:3000`
// reaches the local app's /crm, not its root; the answer's target says so.
func TestReplayToKeepsPath(t *testing.T) {
	rcv := newSink(t, nil, nil)
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL() + "/crm?team=a", Events: []string{"payment"}}), relay.Options{})
	ans := ingest(t, r, `{"type":"payment"}`, nil)
	dlv := ans.Deliveries[0].ID
	waitDelivery(t, r, dlv, "delivered", 5*time.Second)
	other := newSink(t, nil, nil)
	tests := []struct {
		name, to, path, query string
	}{
		{"NoPath", other.URL(), "/crm", "team=a"},
		{"Root", other.URL() + "/", "/crm", "team=a"},
		{"QueryOnly", other.URL() + "?b=2", "/crm", "b=2"},
		{"Path", other.URL() + "/elsewhere", "/elsewhere", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(other.requests())
			a := call(t, "POST", r.URL()+"/v1/replay", apiKey, []byte(`{"filter":{"ids":["`+dlv+`"]},"to":"`+tt.to+`"}`), nil)
			if a.Status != 200 || !strings.Contains(string(a.Body), `"replayed":1`) {
				t.Fatalf("got %d %s, want 200 with one replayed", a.Status, a.Body)
			}
			got := other.requests()[before:]
			if len(got) != 1 || got[0].Path != tt.path || got[0].Query != tt.query {
				t.Errorf("got %+v, want one request to %s?%s", got, tt.path, tt.query)
			}
			// The answer names the URL the replay went to, not "to" as
			// given: the CLI's table shows it.
			var res struct {
				Results []relay.ReplayResult `json:"results"`
			}
			want := other.URL() + tt.path
			if tt.query != "" {
				want += "?" + tt.query
			}
			if err := json.Unmarshal(a.Body, &res); err != nil || len(res.Results) != 1 || res.Results[0].Target != want {
				t.Errorf("answer %s: got %v, want one result with target %s", a.Body, err, want)
			}
		})
	}
}

// TestReplayTooMany: a filter that selects more deliveries than one call
// replays is a 400 too_many, not the newest of them replayed as if they
// were all.
func TestReplayTooMany(t *testing.T) {
	rcv := newSink(t, nil, nil)
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL(), Events: []string{"payment", "message_send"}}), relay.Options{})
	relay.SetMaxReplay(r, 2)
	var ids []string
	for _, body := range []string{`{"type":"payment"}`, `{"type":"payment"}`, `{"type":"messageSend"}`} {
		ans := ingest(t, r, body, nil)
		waitDelivery(t, r, ans.Deliveries[0].ID, "delivered", 5*time.Second)
		ids = append(ids, ans.Deliveries[0].ID)
	}
	tests := []struct {
		name, body string
		status     int
		want       string
	}{
		{"ErrFilter", `{"filter":{"endpoint":"crm"}}`, 400, `"error":"too_many"`},
		{"ErrAll", `{"all":true}`, 400, `"error":"too_many"`},
		{"ErrIDs", `{"filter":{"ids":["` + strings.Join(ids, `","`) + `"]}}`, 400, `"error":"too_many"`},
		{"AtTheBound", `{"filter":{"type":"payment"}}`, 200, `"replayed":2`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := call(t, "POST", r.URL()+"/v1/replay", apiKey, []byte(tt.body), nil)
			if a.Status != tt.status || !strings.Contains(string(a.Body), tt.want) {
				t.Errorf("got %d %s, want %d with %s", a.Status, a.Body, tt.status, tt.want)
			}
		})
	}
}

// TestReplayToOriginalTarget: POST /v1/replay without "to" sends each
// delivery once to its original target, its endpoint's URL (SPEC §7): the
// stored bytes, re-signed with each of the endpoint's schemes, marked
// sidehook-replay-of. It is not an attempt: the deliveries keep their state
// and attempts. A tunnel endpoint's delivery and a deleted endpoint's are
// not sent, and their results say what to do instead.
func TestReplayToOriginalTarget(t *testing.T) {
	std, err := auth.ParseStandardSecret(whsec)
	if err != nil {
		t.Fatal(err)
	}
	rcv := newSink(t, &auth.VerifyConfig{WebioSecret: []byte(secretKey), Org: "demo", JWTSecret: []byte(secretKey),
		Issuer: "sidehook", Audience: "crm", RequireSHA256: true, StandardSecrets: [][]byte{std}}, nil)
	gone := newSink(t, nil, nil)
	r := startRelay(t, orgConfig(t,
		config.RawEndpoint{ID: "crm", URL: rcv.URL() + "/crm", Events: []string{"payment"}, Auth: []string{"webio-token", "jwt", "standard"}},
		config.RawEndpoint{ID: "laptop", URL: "tunnel://laptop", Events: []string{"payment"}},
	), relay.Options{})
	if a := call(t, "POST", r.URL()+"/v1/endpoints", apiKey, []byte(`{"id":"gone","url":"`+gone.URL()+`/gone","events":["payment"]}`), nil); a.Status != http.StatusCreated {
		t.Fatalf("create endpoint gone: got %d %s, want 201", a.Status, a.Body)
	}
	bodies := []string{`{"type":"payment",  "amount":"1.00"}`, "{\"type\":\"payment\",\n\"note\":\"caf\u00e9\"}"}
	var events []ingestAnswer
	for _, b := range bodies {
		events = append(events, ingest(t, r, b, nil))
	}
	byEndpoint := map[string][]string{}
	for _, ev := range events {
		for _, d := range ev.Deliveries {
			byEndpoint[d.Endpoint] = append(byEndpoint[d.Endpoint], d.ID)
		}
	}
	if len(byEndpoint["crm"]) != 2 || len(byEndpoint["laptop"]) != 2 || len(byEndpoint["gone"]) != 2 {
		t.Fatalf("deliveries: got %v, want two to each endpoint", byEndpoint)
	}
	// Each delivery settles first, so that what the replay changes shows:
	// a relay serving no tunnels fails the laptop's attempts until dead.
	for _, id := range append(byEndpoint["crm"], byEndpoint["gone"]...) {
		waitDelivery(t, r, id, relay.StatusDelivered, 5*time.Second)
	}
	for _, id := range byEndpoint["laptop"] {
		waitDelivery(t, r, id, relay.StatusDead, 5*time.Second)
	}
	if a := call(t, "DELETE", r.URL()+"/v1/endpoints/gone", apiKey, nil, nil); a.Status != http.StatusNoContent {
		t.Fatalf("delete endpoint gone: got %d %s, want 204", a.Status, a.Body)
	}
	before := map[string]deliveryView{}
	for _, ids := range byEndpoint {
		for _, id := range ids {
			var d deliveryView
			call(t, "GET", r.URL()+"/v1/deliveries/"+id, apiKey, nil, nil).decode(t, &d)
			before[id] = d
		}
	}
	sentBefore, goneBefore := len(rcv.requests()), len(gone.requests())

	a := call(t, "POST", r.URL()+"/v1/replay", apiKey, []byte(`{"filter":{"type":"payment"}}`), nil)
	var ans struct {
		Replayed int
		Results  []relay.ReplayResult
	}
	a.decode(t, &ans)
	if a.Status != http.StatusOK || ans.Replayed != 2 || len(ans.Results) != 6 {
		t.Fatalf("got %d %s, want 200 with 6 results, 2 replayed", a.Status, a.Body)
	}
	results := map[string]relay.ReplayResult{}
	for _, res := range ans.Results {
		results[res.DeliveryID] = res
	}
	for _, tt := range []struct {
		endpoint string
		ok       bool
		errs     []string // what the error says
	}{
		{"crm", true, nil},
		{"laptop", false, []string{"tunnel://laptop", `give "to"`, "POST /v1/deliveries/{id}/retry"}},
		{"gone", false, []string{"gone no longer exists", `give "to"`}},
	} {
		for _, id := range byEndpoint[tt.endpoint] {
			res, found := results[id]
			if !found {
				t.Errorf("%s: no result for %s", tt.endpoint, id)
				continue
			}
			if res.OK != tt.ok || (tt.ok && res.Status != http.StatusOK) {
				t.Errorf("%s: got %+v, want ok %v", tt.endpoint, res, tt.ok)
			}
			for _, want := range tt.errs {
				if want = strings.ReplaceAll(want, "{id}", id); !strings.Contains(res.Error, want) {
					t.Errorf("%s: error %q does not say %q", tt.endpoint, res.Error, want)
				}
			}
		}
	}

	got := rcv.requests()[sentBefore:]
	if len(got) != 2 {
		t.Fatalf("the endpoint got %d requests, want one replay of each of its 2 deliveries", len(got))
	}
	for i, c := range got {
		// Oldest first: each delivery's replay carries its event's bytes.
		id, ev := byEndpoint["crm"][i], events[i]
		if c.Path != "/crm" || c.Header.Get("sidehook-replay-of") != id || c.Header.Get("webhook-id") != ev.ID || string(c.Body) != bodies[i] {
			t.Errorf("request %d: got %s replay-of %q webhook-id %q body %q, want /crm replaying %s of %s with %q",
				i, c.Path, c.Header.Get("sidehook-replay-of"), c.Header.Get("webhook-id"), c.Body, id, ev.ID, bodies[i])
		}
		if c.Verdict.Status != auth.StatusValid || c.Verdict.Scheme != "webio-token,jwt,standard" {
			t.Errorf("request %d: verdict %+v, want valid by webio-token, jwt and standard", i, c.Verdict)
		}
	}
	if n := len(gone.requests()) - goneBefore; n != 0 {
		t.Errorf("the deleted endpoint's URL got %d requests, want none", n)
	}
	for id, d := range before {
		var after deliveryView
		call(t, "GET", r.URL()+"/v1/deliveries/"+id, apiKey, nil, nil).decode(t, &after)
		if after.Status != d.Status || len(after.Attempts) != len(d.Attempts) {
			t.Errorf("delivery %s (%s): got %s with %d attempts, want %s with %d: a replay is not an attempt",
				id, d.Endpoint, after.Status, len(after.Attempts), d.Status, len(d.Attempts))
		}
	}
}

// TestListDeliveringPaged: the deliveries being attempted, listed a page
// at a time, come each once, newest first, with a cursor while more
// follow.
func TestListDeliveringPaged(t *testing.T) {
	rcv := newSink(t, nil, nil)
	release := make(chan struct{})
	var arrived atomic.Int32
	rcv.handle(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "slow", URL: rcv.URL(), Events: []string{"payment"}}), relay.Options{})
	t.Cleanup(func() { close(release) }) // before the relay closes
	var want []string
	for i := 0; i < 5; i++ {
		want = append(want, ingest(t, r, fmt.Sprintf(`{"type":"payment","n":"%d"}`, i), nil).Deliveries[0].ID)
	}
	slices.Reverse(want) // newest first
	eventually(t, 5*time.Second, func() error {
		if n := arrived.Load(); n != 5 {
			return fmt.Errorf("%d deliveries at the endpoint, want 5", n)
		}
		return nil
	})
	for _, limit := range []int{1, 2, 4, 5, 50} {
		t.Run(fmt.Sprint("Limit", limit), func(t *testing.T) {
			var got []string
			cursor := ""
			for page := 0; page < 10; page++ {
				var l struct {
					Deliveries []deliveryView
					Next       *string
				}
				a := call(t, "GET", fmt.Sprintf("%s/v1/deliveries?status=delivering&endpoint=slow&limit=%d&cursor=%s", r.URL(), limit, cursor), apiKey, nil, nil)
				if a.Status != 200 {
					t.Fatalf("page %d: got %d %s, want 200", page, a.Status, a.Body)
				}
				a.decode(t, &l)
				if len(l.Deliveries) > limit {
					t.Fatalf("page %d: got %d deliveries, want at most %d", page, len(l.Deliveries), limit)
				}
				for _, d := range l.Deliveries {
					if d.Status != "delivering" {
						t.Errorf("delivery %s: got status %q, want delivering", d.ID, d.Status)
					}
					got = append(got, d.ID)
				}
				if l.Next == nil {
					break
				}
				cursor = url.QueryEscape(*l.Next)
			}
			if !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
	t.Run("OtherListingsCursor", func(t *testing.T) {
		// A cursor is a place in the listing's order, whatever the filter:
		// after the newest delivery come the four older ones.
		var l struct{ Next *string }
		call(t, "GET", r.URL()+"/v1/deliveries?limit=1", apiKey, nil, nil).decode(t, &l)
		if l.Next == nil {
			t.Fatal("no cursor after the first of 5 deliveries")
		}
		var rest struct{ Deliveries []deliveryView }
		a := call(t, "GET", r.URL()+"/v1/deliveries?status=delivering&cursor="+url.QueryEscape(*l.Next), apiKey, nil, nil)
		if a.Status != 200 {
			t.Fatalf("got %d %s, want 200", a.Status, a.Body)
		}
		a.decode(t, &rest)
		var got []string
		for _, d := range rest.Deliveries {
			got = append(got, d.ID)
		}
		if !slices.Equal(got, want[1:]) {
			t.Errorf("got %v, want %v", got, want[1:])
		}
	})
}

// A manual retry of a delivery whose attempt is in flight: the attempt is
// recorded, then the delivery is attempted again, and the queue-depth
// gauge counts it once throughout (it used to count it out twice, so the
// gauge then showed one waiting delivery fewer than there were).
func TestRetryDuringAttempt(t *testing.T) {
	var hold atomic.Bool
	hold.Store(true)
	inFlight, release := make(chan struct{}, 4), make(chan struct{})
	rcv := newSink(t, nil, func(*http.Request, int) int {
		if hold.Load() {
			inFlight <- struct{}{}
			<-release
		}
		return http.StatusOK
	})
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL()}), relay.Options{})
	id := ingest(t, r, `{"type":"payment"}`, nil).Deliveries[0].ID
	select {
	case <-inFlight:
	case <-time.After(10 * time.Second):
		t.Fatal("the first attempt did not arrive")
	}
	if a := call(t, "POST", r.URL()+"/v1/deliveries/"+id+"/retry", apiKey, nil, nil); a.Status != http.StatusAccepted {
		t.Fatalf("retry during the attempt: got %d %s, want 202", a.Status, a.Body)
	}
	hold.Store(false)
	close(release)
	eventually(t, 10*time.Second, func() error {
		var d deliveryView
		call(t, "GET", r.URL()+"/v1/deliveries/"+id, apiKey, nil, nil).decode(t, &d)
		if d.Status != "delivered" || len(d.Attempts) != 2 {
			return fmt.Errorf("delivery: got %s with %d attempts, want delivered after 2 (the attempt, then the retry)", d.Status, len(d.Attempts))
		}
		return nil
	})
	if n := len(rcv.requests()); n != 2 {
		t.Fatalf("the endpoint got %d requests, want 2", n)
	}
	if d := queueDepth(t, r, "crm"); d != 0 {
		t.Fatalf("queue depth once delivered: got %d, want 0", d)
	}
	// Both attempts count as what they were: delivered.
	m := string(call(t, "GET", r.URL()+"/metrics", "", nil, nil).Body)
	if want := `sidehook_relay_deliveries_total{endpoint="crm",organisation="demo",outcome="delivered"} 2`; !strings.Contains(m, want) || strings.Contains(m, `outcome="pending"`) {
		t.Fatalf("metrics: want %s and no pending outcome; got\n%s", want, m)
	}
	// One more event, held in flight: the gauge counts it.
	release = make(chan struct{})
	t.Cleanup(func() { close(release) })
	hold.Store(true) // after release is set: the sink reads it once it sees hold
	ingest(t, r, `{"type":"payment"}`, nil)
	select {
	case <-inFlight:
	case <-time.After(10 * time.Second):
		t.Fatal("the second event's attempt did not arrive")
	}
	if d := queueDepth(t, r, "crm"); d != 1 {
		t.Fatalf("queue depth with one delivery in flight: got %d, want 1", d)
	}
}

// TestRetryBehindOrderedHead: a retried delivery of an ordered endpoint
// that is not at the head of its queue is due now, but waits behind the
// head: the answer says so, naming it, and keeps its fields. It said
// nothing, and the delivery looked due now while the head waited an hour
// for its retry. The head itself, retried, waits behind nothing.
func TestRetryBehindOrderedHead(t *testing.T) {
	tests := []struct {
		name string
		// hold keeps the head's attempt in flight rather than failing it.
		hold bool
	}{
		{"HeadFailed", false},
		{"HeadInFlight", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inFlight, release := make(chan struct{}, 4), make(chan struct{})
			rcv := newSink(t, nil, func(*http.Request, int) int {
				if tt.hold {
					inFlight <- struct{}{}
					<-release
				}
				return http.StatusInternalServerError
			})
			// Before the sink closes, which waits for the held request.
			t.Cleanup(func() { close(release) })
			r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL(), Ordered: true,
				Retry: &config.RawRetry{Schedule: []string{"1h"}}}), relay.Options{Grace: 10 * time.Millisecond})
			head := ingest(t, r, `{"type":"payment","n":"1"}`, nil).Deliveries[0].ID
			if tt.hold {
				select {
				case <-inFlight:
				case <-time.After(10 * time.Second):
					t.Fatal("the head's attempt did not arrive")
				}
			} else {
				waitDelivery(t, r, head, relay.StatusFailed, 5*time.Second)
			}
			next := ingest(t, r, `{"type":"payment","n":"2"}`, nil).Deliveries[0].ID

			var d struct {
				ID            string     `json:"id"`
				EventID       string     `json:"event_id"`
				Endpoint      string     `json:"endpoint"`
				Status        string     `json:"status"`
				NextAttemptAt *time.Time `json:"next_attempt_at"`
				Attempts      []any      `json:"attempts"`
				Reason        string     `json:"reason"`
			}
			a := call(t, "POST", r.URL()+"/v1/deliveries/"+next+"/retry", apiKey, nil, nil)
			a.decode(t, &d)
			if a.Status != http.StatusAccepted || d.ID != next || d.Status != relay.StatusPending || d.NextAttemptAt == nil || d.Attempts == nil {
				t.Fatalf("retry: got %d %s, want 202 with the delivery pending", a.Status, a.Body)
			}
			if !strings.Contains(d.Reason, "behind") || !strings.Contains(d.Reason, head) {
				t.Errorf("retry's reason: got %q, want it to say it waits behind the head %s", d.Reason, head)
			}
			if tt.hold {
				return
			}
			a = call(t, "POST", r.URL()+"/v1/deliveries/"+head+"/retry", apiKey, nil, nil)
			d.Reason = ""
			a.decode(t, &d)
			if a.Status != http.StatusAccepted || d.Reason != "" {
				t.Errorf("retry of the head: got %d %s, want 202 without a reason", a.Status, a.Body)
			}
		})
	}
}

// TestRetryDisabledEndpoint: a retry of a delivery whose endpoint is
// disabled (here by a 410) says so, 409, and leaves the delivery as it
// was. It answered 202 with the delivery pending, which then waited,
// unsent and unexplained, until someone enabled the endpoint. Enabled
// again, the retry is sent.
func TestRetryDisabledEndpoint(t *testing.T) {
	rcv := newSink(t, nil, func(_ *http.Request, n int) int {
		if n == 0 {
			return http.StatusGone
		}
		return http.StatusOK
	})
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL()}), relay.Options{})
	id := ingest(t, r, `{"type":"payment"}`, nil).Deliveries[0].ID
	waitDelivery(t, r, id, relay.StatusDead, 5*time.Second)

	a := call(t, "POST", r.URL()+"/v1/deliveries/"+id+"/retry", apiKey, nil, nil)
	var e errorBody
	a.decode(t, &e)
	if a.Status != http.StatusConflict || e.Error != "endpoint_disabled" || !strings.Contains(e.Reason, "410 Gone") {
		t.Fatalf("retry while disabled: got %d %s, want 409 endpoint_disabled saying why", a.Status, a.Body)
	}
	if d := waitDelivery(t, r, id, relay.StatusDead, time.Second); len(d.Attempts) != 1 {
		t.Fatalf("after the refused retry: got %d attempts, want the 1 it had", len(d.Attempts))
	}

	var doc map[string]any
	call(t, "GET", r.URL()+"/v1/endpoints/crm", apiKey, nil, nil).decode(t, &doc)
	doc["enabled"] = true
	put, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if a := call(t, "PUT", r.URL()+"/v1/endpoints/crm", apiKey, put, map[string]string{"Content-Type": "application/json"}); a.Status != http.StatusOK {
		t.Fatalf("enable: got %d %s, want 200", a.Status, a.Body)
	}
	if a := call(t, "POST", r.URL()+"/v1/deliveries/"+id+"/retry", apiKey, nil, nil); a.Status != http.StatusAccepted {
		t.Fatalf("retry once enabled: got %d %s, want 202", a.Status, a.Body)
	}
	waitDelivery(t, r, id, relay.StatusDelivered, 5*time.Second)
}

// TestReplayDisabledEndpoint: a replay to a disabled endpoint's own URL is
// not sent (the endpoint asked, with its 410, to be left alone) and its
// result says why and what to do; to another target it is sent.
func TestReplayDisabledEndpoint(t *testing.T) {
	rcv := newSink(t, nil, func(*http.Request, int) int { return http.StatusGone })
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL()}), relay.Options{})
	id := ingest(t, r, `{"type":"payment"}`, nil).Deliveries[0].ID
	waitDelivery(t, r, id, relay.StatusDead, 5*time.Second)

	var out struct {
		Replayed int                  `json:"replayed"`
		Results  []relay.ReplayResult `json:"results"`
	}
	body := []byte(`{"filter":{"ids":["` + id + `"]}}`)
	a := call(t, "POST", r.URL()+"/v1/replay", apiKey, body, map[string]string{"Content-Type": "application/json"})
	a.decode(t, &out)
	if a.Status != http.StatusOK || out.Replayed != 0 || len(out.Results) != 1 || out.Results[0].OK ||
		!strings.Contains(out.Results[0].Error, "is disabled (answered 410 Gone") || !strings.Contains(out.Results[0].Error, `give "to" a URL`) {
		t.Fatalf("replay to the disabled endpoint: got %d %s, want a result saying it is disabled, why, and what to do", a.Status, a.Body)
	}
	if n := len(rcv.requests()); n != 1 {
		t.Fatalf("the endpoint got %d requests, want only the attempt's 1", n)
	}

	other := newSink(t, nil, nil)
	body = []byte(`{"filter":{"ids":["` + id + `"]},"to":"` + other.URL() + `"}`)
	a = call(t, "POST", r.URL()+"/v1/replay", apiKey, body, map[string]string{"Content-Type": "application/json"})
	a.decode(t, &out)
	if a.Status != http.StatusOK || out.Replayed != 1 {
		t.Fatalf("replay elsewhere: got %d %s, want it sent", a.Status, a.Body)
	}
}
