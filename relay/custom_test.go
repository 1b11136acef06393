package relay_test

import (
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidehook/sidehook/fixtures"
	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
)

func TestCustomValues(t *testing.T) {
	rcv := newSink(t, &auth.VerifyConfig{WebioSecret: []byte(secretKey), Org: "demo"}, nil)
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "values", URL: rcv.URL() + "/values", Events: []string{"custom_value_request"}}), relay.Options{})

	t.Run("ProxyGET", func(t *testing.T) {
		q := "customerUID=ACC-10023&channelId=447700900123&conversationId=97847&fields=fullname,currency"
		a := call(t, "GET", r.URL()+"/in/demo?"+q, "", nil, nil)
		if a.Status != 200 || !strings.Contains(string(a.Body), "Jane Doe") {
			t.Fatalf("got %d %s, want 200 with Jane Doe", a.Status, a.Body)
		}
		c := rcv.requests()[len(rcv.requests())-1]
		if c.Method != "GET" || c.Query != q || c.Verdict.Status != "valid" || c.Header.Get("sidehook-event") != "custom_value_request" {
			t.Errorf("request: got %s ?%s verdict %+v, want a validly signed GET of the query with sidehook-event custom_value_request", c.Method, c.Query, c.Verdict)
		}
		// The exchange is recorded.
		var l struct {
			Events []struct{ ID, Type, Query string }
		}
		call(t, "GET", r.URL()+"/v1/events?type=custom_value_request", apiKey, nil, nil).decode(t, &l)
		if len(l.Events) == 0 || l.Events[0].Query != q {
			t.Fatalf("recorded: got %+v, want an event with the query", l.Events)
		}
		// Final, as any delivered delivery: no next attempt is shown.
		var ev struct {
			Deliveries []struct {
				Status        string
				NextAttemptAt *time.Time `json:"next_attempt_at"`
			}
		}
		call(t, "GET", r.URL()+"/v1/events/"+l.Events[0].ID, apiKey, nil, nil).decode(t, &ev)
		if len(ev.Deliveries) != 1 || ev.Deliveries[0].Status != "delivered" || ev.Deliveries[0].NextAttemptAt != nil {
			t.Errorf("recorded delivery: got %+v, want one delivered with no next_attempt_at", ev.Deliveries)
		}
	})
	t.Run("Values", func(t *testing.T) {
		a := call(t, "POST", r.URL()+"/v1/custom-values", apiKey, []byte(`{"customer_uid":"ACC-10023","channel_id":"447700900123","fields":["fullname","currency","other"]}`), nil)
		var ans struct{ Values map[string]*string }
		a.decode(t, &ans)
		if a.Status != 200 || ans.Values["fullname"] == nil || *ans.Values["fullname"] != "Jane Doe" || ans.Values["currency"] != nil || ans.Values["other"] != nil {
			t.Errorf("got %d %s, want 200 with fullname Jane Doe and no currency or other", a.Status, a.Body)
		}
		c := rcv.requests()[len(rcv.requests())-1]
		q, _ := url.ParseQuery(c.Query)
		if q.Get("customerUID") != "ACC-10023" || q.Get("channelId") != "447700900123" || q.Get("fields") != "fullname,currency,other" {
			t.Errorf("query: got %s, want customerUID ACC-10023, channelId 447700900123, fields fullname,currency,other", c.Query)
		}
	})
	t.Run("Render", func(t *testing.T) {
		a := call(t, "POST", r.URL()+"/v1/render", apiKey, []byte(`{"template":"Hi <<fullname>>, you owe <<arrangementamount|an amount>> <<currency>> by <<duedate|soon>>","customer_uid":"ACC-10023","channel_id":"447700900123"}`), nil)
		var ans relay.RenderAnswer
		a.decode(t, &ans)
		if want := "Hi Jane Doe, you owe 50.00 null by soon"; a.Status != 200 || ans.Text != want {
			t.Errorf("got %d %q, want %q", a.Status, ans.Text, want)
		}
		if strings.Join(ans.Missing, ",") != "currency,duedate" {
			t.Errorf("missing: got %v, want [currency duedate]", ans.Missing)
		}
	})
	t.Run("RenderFails502", func(t *testing.T) {
		rcv.handle(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })
		defer rcv.handle(nil)
		a := call(t, "POST", r.URL()+"/v1/render", apiKey, []byte(`{"template":"Hi <<fullname>>"}`), nil)
		var e struct{ Error, Reason string }
		a.decode(t, &e)
		if a.Status != 502 || !strings.Contains(e.Reason, "500") {
			t.Errorf("got %d %s, want 502 with the reason", a.Status, a.Body)
		}
	})
}

func TestCustomValuesTimeout(t *testing.T) {
	rcv := newSink(t, nil, func(*http.Request, int) int { time.Sleep(300 * time.Millisecond); return 200 })
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "values", URL: rcv.URL(), Events: []string{"custom_value_request"}, Timeout: "50ms"}), relay.Options{})
	a := call(t, "POST", r.URL()+"/v1/render", apiKey, []byte(`{"template":"<<fullname>>"}`), nil)
	if a.Status != 502 || !strings.Contains(string(a.Body), "timeout") {
		t.Errorf("got %d %s, want 502 timeout", a.Status, a.Body)
	}
	time.Sleep(400 * time.Millisecond)
	if n := len(rcv.requests()); n != 1 {
		t.Errorf("requests: got %d, want 1 (no retry)", n)
	}
}

func TestConnectionTest(t *testing.T) {
	rcv := newSink(t, &auth.VerifyConfig{WebioSecret: []byte(secretKey), Org: "demo"}, func(r *http.Request, _ int) int {
		if r.Header.Get("sidehook-event") == "delivery_report" {
			return 500
		}
		return 200
	})
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL()}), relay.Options{})
	a := call(t, "POST", r.URL()+"/v1/endpoints/crm/test", apiKey, nil, nil)
	var ans struct{ Results []relay.TestResult }
	a.decode(t, &ans)
	if a.Status != 200 || len(ans.Results) != 5 {
		t.Fatalf("got %d %s, want 200 with 5 results", a.Status, a.Body)
	}
	for _, res := range ans.Results {
		wantOK := res.Event != "delivery_report"
		if res.OK != wantOK {
			t.Errorf("%s: ok %v, want %v (%+v)", res.Event, res.OK, wantOK, res)
		}
		if res.Event == "custom_value_request" && (res.Values["fullname"] == nil || *res.Values["fullname"] != "Jane Doe") {
			t.Errorf("custom_value_request values: got %v, want fullname Jane Doe", res.Values)
		}
	}
	for _, c := range rcv.requests() {
		if c.Header.Get("sidehook-test") != "true" || c.Verdict.Status != "valid" {
			t.Errorf("test request: sidehook-test %q, verdict %+v; want \"true\" and a valid verdict", c.Header.Get("sidehook-test"), c.Verdict)
		}
	}
	if n := len(rcv.requests()); n != 5 {
		t.Errorf("requests: got %d, want 5 (once each, no retry)", n)
	}
	a = call(t, "POST", r.URL()+"/v1/endpoints/crm/test", apiKey, []byte(`{"event":"payment"}`), nil)
	a.decode(t, &ans)
	if len(ans.Results) != 1 || ans.Results[0].Event != "payment" || !ans.Results[0].OK {
		t.Errorf("one test: got %s, want one result, payment, ok", a.Body)
	}
	// Nothing is stored by a test.
	var l struct{ Events []any }
	call(t, "GET", r.URL()+"/v1/events", apiKey, nil, nil).decode(t, &l)
	if len(l.Events) != 0 {
		t.Errorf("events after tests: got %d, want 0", len(l.Events))
	}
}

// A fixtures query that repeats fields is checked for every field it asks,
// as the receiver answers it, not for the first fields only.
func TestConnectionTestRepeatedFields(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "custom_value_request.query"), []byte("customerUID=ACC-10023&fields=fullname&fields=currency"), 0o600); err != nil {
		t.Fatal(err)
	}
	set, err := fixtures.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	rcv := newSink(t, &auth.VerifyConfig{WebioSecret: []byte(secretKey), Org: "demo"}, func(*http.Request, int) int { return 200 })
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "values", URL: rcv.URL(), Events: []string{"custom_value_request"}}), relay.Options{Fixtures: set})
	var ans struct{ Results []relay.TestResult }
	call(t, "POST", r.URL()+"/v1/endpoints/values/test", apiKey, []byte(`{"event":"custom_value_request"}`), nil).decode(t, &ans)
	if len(ans.Results) != 1 || !ans.Results[0].OK {
		t.Fatalf("got %+v, want one passed test", ans.Results)
	}
	if got := slices.Sorted(maps.Keys(ans.Results[0].Values)); !slices.Equal(got, []string{"currency", "fullname"}) {
		t.Errorf("values checked %v, want currency and fullname", got)
	}
}

func TestTemplate(t *testing.T) {
	v := func(s string) *string { return &s }
	vals := map[string]*string{"name": v("Jane"), "amt": v("50.00"), "empty": v("")}
	tests := []struct{ tmpl, want, missing string }{
		{"Hi <<name>>", "Hi Jane", ""},
		{"<<amt|0>> <<due|soon>>", "50.00 soon", "due"},
		{"<<gone>> and <<gone>>", "null and null", "gone"},
		{"<<empty|x>>", "", ""},
		{"no fields", "no fields", ""},
		{"<<not a field>> <<name>>", "<<not a field>> Jane", ""},
		{"<<<name>>>", "<Jane>", ""},
		{"<<name", "<<name", ""},
		{"<<|x>>", "<<|x>>", ""},
		{"<< name >>", "Jane", ""},
	}
	for _, tt := range tests {
		text, missing := relay.Render(relay.ParseTemplate(tt.tmpl), vals)
		if text != tt.want || strings.Join(missing, ",") != tt.missing {
			t.Errorf("%q: got %q missing %v, want %q missing %q", tt.tmpl, text, missing, tt.want, tt.missing)
		}
	}
}

// TestCustomValuesURLWithQuery: a custom-value endpoint whose URL has its
// own query gets the platform's query after it, and the JWT's sha256 claim
// covers the whole query it receives, so the request verifies.
func TestCustomValuesURLWithQuery(t *testing.T) {
	rcv := newSink(t, &auth.VerifyConfig{JWTSecret: []byte(secretKey)}, nil)
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "values", URL: rcv.URL() + "/values?tenant=a",
		Events: []string{"custom_value_request"}, Auth: []string{"jwt"}}), relay.Options{})
	q := "customerUID=ACC-10023&channelId=447700900123&fields=fullname"
	if a := call(t, "GET", r.URL()+"/in/demo?"+q, "", nil, nil); a.Status != http.StatusOK {
		t.Fatalf("custom values: got %d %s, want 200", a.Status, a.Body)
	}
	reqs := rcv.requests()
	if len(reqs) != 1 {
		t.Fatalf("the endpoint got %d requests, want 1", len(reqs))
	}
	if c := reqs[0]; c.Query != "tenant=a&"+q || c.Verdict.Status != "valid" {
		t.Errorf("the endpoint saw ?%s, verdict %+v; want ?tenant=a&%s, valid", c.Query, c.Verdict, q)
	}
}

// TestInboundHeadDoesNothing: HEAD /in/{org} is a 405, not a custom-value
// request: the customer's system is not called and no event is recorded.
func TestInboundHeadDoesNothing(t *testing.T) {
	rcv := newSink(t, nil, nil)
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "values", URL: rcv.URL(), Events: []string{"custom_value_request"}}), relay.Options{})
	a := call(t, "HEAD", r.URL()+"/in/demo?customerUID=ACC-10023&fields=fullname", "", nil, nil)
	if a.Status != http.StatusMethodNotAllowed || a.Header.Get("Allow") != "GET, POST, OPTIONS" {
		t.Errorf("got %d Allow %q, want 405 Allow %q", a.Status, a.Header.Get("Allow"), "GET, POST, OPTIONS")
	}
	if n := len(rcv.requests()); n != 0 {
		t.Errorf("the custom-value endpoint got %d requests, want none", n)
	}
	var l struct{ Events []struct{ ID string } }
	call(t, "GET", r.URL()+"/v1/events", apiKey, nil, nil).decode(t, &l)
	if len(l.Events) != 0 {
		t.Errorf("recorded %d events, want none", len(l.Events))
	}
}

// TestCustomAnswerWhole: a custom-value answer is used whole or not at
// all: one above maxCustomAnswer (1 MiB), or cut short by the connection,
// is a 502 saying why, recorded as failed, never a 200 with a part of it.
func TestCustomAnswerWhole(t *testing.T) {
	const limit = 1 << 20
	jsonOf := func(n int) string { return `{"fullname":"` + strings.Repeat("x", n-15) + `"}` }
	rcv := newSink(t, nil, nil)
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "values", URL: rcv.URL(), Events: []string{"custom_value_request"}}), relay.Options{})
	tests := []struct {
		name   string
		answer http.HandlerFunc
		status int
		reason string
	}{
		{"AtLimit", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, jsonOf(limit)) }, 200, ""},
		{"AboveLimit", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, jsonOf(limit+1)) }, 502, "exceeded 1048576 bytes"},
		{"AboveLimitNot2xx", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(404)
			io.WriteString(w, jsonOf(2*limit))
		}, 502, "exceeded 1048576 bytes"},
		{"CutShort", cutShort(`{"fullname":"Jane`), 502, "unexpected EOF"},
	}
	for _, tt := range tests {
		rcv.handle(tt.answer)
		t.Run(tt.name+"/InboundGET", func(t *testing.T) {
			a := call(t, "GET", r.URL()+"/in/demo?customerUID=ACC-10023&fields=fullname", "", nil, nil)
			if a.Status != tt.status {
				t.Fatalf("got %d (%d bytes), want %d", a.Status, len(a.Body), tt.status)
			}
			if tt.status == 200 {
				if len(a.Body) != limit {
					t.Errorf("got %d bytes, want the whole %d", len(a.Body), limit)
				}
				return
			}
			var e errorBody
			a.decode(t, &e)
			if e.Error != "custom_values_failed" || !strings.Contains(e.Reason, tt.reason) {
				t.Errorf("got %s, want custom_values_failed saying %q", a.Body, tt.reason)
			}
			// Recorded as failed, with the reason.
			var d deliveryView
			call(t, "GET", r.URL()+"/v1/deliveries/"+a.Header.Get("sidehook-delivery"), apiKey, nil, nil).decode(t, &d)
			if d.Status != "dead" || len(d.Attempts) != 1 || !strings.Contains(d.Attempts[0].Error, tt.reason) {
				t.Errorf("recorded %+v, want dead with the reason", d)
			}
		})
		t.Run(tt.name+"/CustomValues", func(t *testing.T) {
			a := call(t, "POST", r.URL()+"/v1/custom-values", apiKey, []byte(`{"customer_uid":"ACC-10023","fields":["fullname"]}`), nil)
			var e errorBody
			if a.Status != tt.status {
				t.Fatalf("got %d %.200s, want %d", a.Status, a.Body, tt.status)
			}
			if tt.status != 200 {
				a.decode(t, &e)
				if !strings.Contains(e.Reason, tt.reason) {
					t.Errorf("got %s, want a reason saying %q", a.Body, tt.reason)
				}
			}
		})
		t.Run(tt.name+"/ConnectionTest", func(t *testing.T) {
			var ans struct{ Results []relay.TestResult }
			call(t, "POST", r.URL()+"/v1/endpoints/values/test", apiKey, []byte(`{"event":"custom_value_request"}`), nil).decode(t, &ans)
			if len(ans.Results) != 1 || ans.Results[0].OK != (tt.status == 200) || !strings.Contains(ans.Results[0].Error, tt.reason) {
				t.Errorf("got %+v, want ok %v saying %q", ans.Results, tt.status == 200, tt.reason)
			}
		})
	}
}

// cutShort answers 200 promising more than body, sends body and hangs up.
func cutShort(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "100000")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}
}

// TestDeliveryAnswer: a delivery keeps the first 4 KiB of an answer of any
// size and is delivered; a 2xx cut short by the connection is not.
func TestDeliveryAnswer(t *testing.T) {
	rcv := newSink(t, nil, nil)
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL(), Events: []string{"payment"}}), relay.Options{})

	rcv.handle(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, strings.Repeat("y", 3<<20)) })
	d := waitDelivery(t, r, ingest(t, r, `{"type":"payment"}`, nil).Deliveries[0].ID, "delivered", 5*time.Second)
	if len(d.Attempts) != 1 || d.Attempts[0].Response != strings.Repeat("y", 4096) {
		t.Errorf("large answer: got %d attempts, response of %d bytes; want 1, 4096", len(d.Attempts), len(d.Attempts[0].Response))
	}

	var n atomic.Int32
	rcv.handle(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			cutShort(`{"ok`)(w, r)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	})
	d = waitDelivery(t, r, ingest(t, r, `{"type":"payment"}`, nil).Deliveries[0].ID, "delivered", 5*time.Second)
	if len(d.Attempts) != 2 || !strings.Contains(d.Attempts[0].Error, "unexpected EOF") {
		t.Errorf("answer cut short: got %+v, want a failed attempt then a delivered one", d.Attempts)
	}
}

// TestDeliveryFailedAnswerSaysWhy: an attempt that got no whole answer
// fails saying what happened in the operator's words, then the next is
// delivered. A connection closed unanswered said a bare "EOF"; a 2xx whose
// body did not end within the timeout said "no answer within" it, though
// the endpoint's own log shows it answered (an answer cut short is no
// answer, whatever its status said).
func TestDeliveryFailedAnswerSaysWhy(t *testing.T) {
	tests := []struct {
		name  string
		first http.HandlerFunc
		want  string
	}{
		{"ClosedUnanswered", func(w http.ResponseWriter, _ *http.Request) {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
		}, "the connection closed before an answer (EOF)"},
		{"BodyOutlastsTimeout", func(w http.ResponseWriter, req *http.Request) {
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, `{"ok`)
			http.NewResponseController(w).Flush()
			<-req.Context().Done() // the rest never comes
		}, "timeout: the HTTP 200 answer's body did not end within 200ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := newSink(t, nil, nil)
			r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL(), Events: []string{"payment"}, Timeout: "200ms"}), relay.Options{})
			var n atomic.Int32
			rcv.handle(func(w http.ResponseWriter, req *http.Request) {
				if n.Add(1) == 1 {
					tt.first(w, req)
					return
				}
				io.WriteString(w, `{"ok":true}`)
			})
			d := waitDelivery(t, r, ingest(t, r, `{"type":"payment"}`, nil).Deliveries[0].ID, "delivered", 5*time.Second)
			if len(d.Attempts) != 2 || d.Attempts[0].Error != tt.want {
				t.Errorf("got %+v, want a failed attempt saying %q, then a delivered one", d.Attempts, tt.want)
			}
		})
	}
}
