package tunnel

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDeliveryLineClock: the text line shows the time on the user's
// clock, as the console log beside it does; the JSON line is UTC.
func TestDeliveryLineClock(t *testing.T) {
	nyc := time.FixedZone("EST", -5*60*60)
	at := time.Date(2026, 12, 5, 11, 48, 17, 294e6, time.UTC)
	tests := []struct {
		name string
		json bool
		want string
	}{
		{"Text", false, "06:48:17.294  payment"},
		{"JSON", true, `"time":"2026-12-05T11:48:17.294Z"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			p := &printer{w: &out, json: tt.json, loc: nyc}
			p.delivery(deliveryLine{Time: at, Event: "payment", DeliveryID: "dlv_1", Attempt: 1, Method: "POST", Path: "/webhooks", Status: 200})
			if got := out.String(); !strings.Contains(got, tt.want) {
				t.Errorf("got %q, want it to hold %q", got, tt.want)
			}
			if tt.json && !json.Valid(out.Bytes()) {
				t.Errorf("got %q, want a JSON line", out.String())
			}
		})
	}
}

// TestReadyLineSkipVerify: a tunnel that checks no certificate of the
// local app says so where it says where it forwards, so a flag left in a
// script does not go unnoticed.
func TestReadyLineSkipVerify(t *testing.T) {
	tests := []struct {
		name       string
		json, skip bool
		want       string
		wantNot    string
	}{
		{"Text", false, true, "forwarding to https://localhost:3443 (its certificate not checked: --skip-verify)", ""},
		{"JSON", true, true, `"skip_verify":true`, ""},
		{"TextChecked", false, false, "forwarding to https://localhost:3443\n", "not checked"},
		{"JSONChecked", true, false, `"forward":"https://localhost:3443"`, "skip_verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			p := &printer{w: &out, json: tt.json}
			p.ready(ReadyLine{Name: "laptop", Org: "acme", Relay: "http://relay", Forward: "https://localhost:3443", SkipVerify: tt.skip, PublicURL: "http://relay/in/acme"})
			if got := out.String(); !strings.Contains(got, tt.want) || (tt.wantNot != "" && strings.Contains(got, tt.wantNot)) {
				t.Errorf("got %q, want it to hold %q and not %q", got, tt.want, tt.wantNot)
			}
		})
	}
}

// TestReadyLineAgain: a reconnect that finds everything as before says so
// in one text line; it printed the whole block again (public URL, each
// endpoint, the inspector) at every reconnect of a flaky network. What
// changed (an endpoint added meanwhile) prints the block, and --json
// prints every ready line whole, for the programs that read them.
func TestReadyLineAgain(t *testing.T) {
	r := ReadyLine{Name: "laptop", Org: "acme", Relay: "http://relay", Forward: "http://localhost:3000", PublicURL: "http://relay/in/acme",
		Endpoints: []EndpointAuth{{ID: "crm", URL: "sidehook-tunnel://laptop/webhooks", Verify: []string{"jwt"}}}}
	added := r
	added.Endpoints = append(slices.Clone(r.Endpoints), EndpointAuth{ID: "erp", URL: "sidehook-tunnel://laptop/erp", Verify: []string{"jwt"}})

	var out bytes.Buffer
	p := &printer{w: &out}
	p.ready(r)
	out.Reset()
	p.ready(r)
	if got, want := out.String(), "ready  reconnected to http://relay, as before: platforms post to POST http://relay/in/acme\n"; got != want {
		t.Errorf("again: got %q, want %q", got, want)
	}
	out.Reset()
	p.ready(added)
	if got := out.String(); !strings.Contains(got, "platforms post to") || !strings.Contains(got, "endpoint erp") {
		t.Errorf("changed: got %q, want the whole block", got)
	}

	out.Reset()
	p = &printer{w: &out, json: true}
	p.ready(r)
	p.ready(r)
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 2 || lines[0] != lines[1] {
		t.Errorf("JSON: got %q, want the same whole line twice", out.String())
	}
}

// TestReplayLineTo: the line of a replay sent to another URL ("to") shows
// that URL where the path would be; other lines show the path.
func TestReplayLineTo(t *testing.T) {
	tests := []struct {
		name, to string
		json     bool
		want     string
	}{
		{"Text", "http://localhost:4000/v2/in", false, "replay of req_1  POST http://localhost:4000/v2/in  dlv_1"},
		{"JSON", "http://localhost:4000/v2/in", true, `"to":"http://localhost:4000/v2/in"`},
		{"TextNoTo", "", false, "replay of req_1  POST /webhooks  dlv_1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			p := &printer{w: &out, json: tt.json}
			p.delivery(deliveryLine{Time: time.Now(), Event: "payment", DeliveryID: "dlv_1", Attempt: 1, ReplayOf: "req_1", Method: "POST",
				Path: "/webhooks", To: tt.to, Status: 200})
			if got := out.String(); !strings.Contains(got, tt.want) {
				t.Errorf("got %q, want it to hold %q", got, tt.want)
			}
		})
	}
}

// TestResultLostLine: an answer that never reached the relay is said on
// the line, which else reads as a delivery done.
func TestResultLostLine(t *testing.T) {
	tests := []struct {
		name string
		json bool
		want string
	}{
		{"Text", false, "dlv_1  (answer not sent back: the connection to the relay was lost, so it sends the delivery again)"},
		{"JSON", true, `"result_lost":true`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			p := &printer{w: &out, json: tt.json}
			p.delivery(deliveryLine{Time: time.Now(), Event: "payment", DeliveryID: "dlv_1", Attempt: 1, Method: "POST", Path: "/webhooks", Status: 200, ResultLost: true})
			if got := out.String(); !strings.Contains(got, tt.want) {
				t.Errorf("got %q, want it to hold %q", got, tt.want)
			}
		})
	}
}

// TestGoneLine: a delivery the app answers 410 disables its endpoint on
// the relay (SPEC §4), after which nothing comes: the line says so. A
// replay, a test or a custom-value GET disables nothing.
func TestGoneLine(t *testing.T) {
	const note = "(410 Gone: the relay disables this endpoint; nothing more comes until it is enabled again)"
	tests := []struct {
		name string
		line deliveryLine
		want bool
	}{
		{"Delivery", deliveryLine{Event: "payment", Status: 410}, true},
		{"OtherStatus", deliveryLine{Event: "payment", Status: 404}, false},
		{"Replay", deliveryLine{Event: "payment", Status: 410, ReplayOf: "dlv_0"}, false},
		{"Test", deliveryLine{Event: "payment", Status: 410, Test: true}, false},
		{"CustomValues", deliveryLine{Event: "custom_value_request", Method: "GET", Status: 410}, false},
		{"NotSentBack", deliveryLine{Event: "payment", Status: 410, ResultLost: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			p := &printer{w: &out}
			tt.line.Time, tt.line.DeliveryID, tt.line.Attempt = time.Now(), "dlv_1", 1
			p.delivery(tt.line)
			if got := strings.Contains(out.String(), note); got != tt.want {
				t.Errorf("line %q: holds the 410 note %v, want %v", out.String(), got, tt.want)
			}
		})
	}
}

// TestRetryLineSeconds: the JSON retry line gives the wait in whole
// milliseconds, as the text line does, not a float's noise.
func TestRetryLineSeconds(t *testing.T) {
	var out bytes.Buffer
	p := &printer{w: &out, json: true}
	p.retrying(errors.New("connection refused"), 2373583765*time.Nanosecond, true)
	if got, want := out.String(), `"retry_in_s":2.374`; !strings.Contains(got, want+"}") {
		t.Errorf("got %q, want it to hold %s", got, want)
	}
}

// TestReplayLineNoAttempt: a replay (the relay's, named by
// sidehook-replay-of, or the inspector's) and an endpoint test carry the
// number of the delivery's next attempt but are none: their lines, text
// or JSON, show no attempt; a delivery's shows its own.
func TestReplayLineNoAttempt(t *testing.T) {
	tests := []struct {
		name     string
		header   http.Header
		replayOf string // the inspector's record
		typ      string
		text     string // what the text line says of it
		attempt  bool   // the lines show the attempt
	}{
		{"Delivery", http.Header{}, "", "delivery", "attempt 3", true},
		{"RelayReplay", http.Header{"Sidehook-Replay-Of": {"dlv_1"}}, "", "replay", "replay of dlv_1", false},
		{"InspectorReplay", http.Header{}, "req_1", "replay", "replay of req_1", false},
		{"Test", http.Header{"Sidehook-Test": {"true"}}, "", "test", "test", false},
	}
	for _, tt := range tests {
		for _, asJSON := range []bool{false, true} {
			name := tt.name + "/Text"
			if asJSON {
				name = tt.name + "/JSON"
			}
			t.Run(name, func(t *testing.T) {
				var out bytes.Buffer
				c := &Client{out: &printer{w: &out, json: asJSON}}
				m := &Message{Type: TypeDelivery, DeliveryID: "dlv_1", Attempt: 3, Method: "POST", Path: "/webhooks", Headers: tt.header}
				c.printForward(m, forwarded{start: time.Now(), status: 200}, "", tt.replayOf, "")
				line := out.String()
				if !asJSON {
					if !strings.Contains(line, "  "+tt.text+"  ") || strings.Contains(line, "attempt") != tt.attempt {
						t.Errorf("got %q, want %q and an attempt %v", line, tt.text, tt.attempt)
					}
					return
				}
				var v map[string]any
				if err := json.Unmarshal([]byte(line), &v); err != nil {
					t.Fatalf("%q: %v", line, err)
				}
				if _, has := v["attempt"]; v["type"] != tt.typ || has != tt.attempt || (has && v["attempt"] != 3.0) {
					t.Errorf("got %s, want type %s and an attempt %v", line, tt.typ, tt.attempt)
				}
			})
		}
	}
}
