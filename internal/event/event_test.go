package event_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/internal/event"
)

func TestFromPayload(t *testing.T) {
	tests := []struct {
		name string
		body string
		want event.Type
		ok   bool
	}{
		{"InboundMessage", `{"type":"inboundMessage","body":"hi"}`, event.InboundMessage, true},
		{"MessageSend", `{"type":"messageSend"}`, event.MessageSend, true},
		{"DeliveryReport", `{"type":"messageStatusUpdate","statusCode":"0"}`, event.DeliveryReport, true},
		{"Payment", ` {"amount":"50.00","type":"payment"}`, event.Payment, true},
		{"SidehookName", `{"type":"payment"}`, event.Payment, true},
		{"CustomType", `{"type":"order.created"}`, event.Type("order.created"), true},
		{"ErrNoType", `{"body":"x"}`, "", false},
		{"ErrTypeNotString", `{"type":3}`, "", false},
		{"ErrInvalidName", `{"type":"Order Created"}`, "", false},
		{"ErrArray", `[{"type":"payment"}]`, "", false},
		{"ErrBroken", `{"type":"payment"`, "", false},
		{"ErrEmpty", ``, "", false},
		{"ErrBinary", "\xff\xfe", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := event.FromPayload([]byte(tt.body))
			if got != tt.want || ok != tt.ok {
				t.Errorf("got %q %v, want %q %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestTypeTable(t *testing.T) {
	if got := len(event.Builtin()); got != 5 {
		t.Fatalf("got %d builtin types, want 5", got)
	}
	for _, typ := range event.Builtin() {
		if !typ.Valid() || !typ.IsBuiltin() {
			t.Errorf("%s: not valid/builtin", typ)
		}
		if pt := typ.PayloadType(); pt != "" {
			if back, ok := event.FromPayloadType(pt); !ok || back != typ {
				t.Errorf("%s: payload type %q maps back to %q, want %q", typ, pt, back, typ)
			}
		}
	}
	if got := event.CustomValueRequest.Method(); got != "GET" {
		t.Errorf("custom_value_request method: got %s, want GET", got)
	}
	if got := event.Type("order.created").Method(); got != "POST" {
		t.Errorf("custom type method: got %s, want POST", got)
	}
	if event.Type("order.created").IsBuiltin() {
		t.Error("custom type reported as builtin")
	}
}

func TestValidName(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"payment", true},
		{"a", true},
		{"order.created_v2", true},
		{"a" + strings.Repeat("b", 63), true},
		{"a" + strings.Repeat("b", 64), false},
		{"", false},
		{"Payment", false},
		{"1payment", false},
		{"pay-ment", false},
		{"pay ment", false},
		{"*", false},
	}
	for _, tt := range tests {
		if got := event.ValidName(tt.in); got != tt.want {
			t.Errorf("ValidName(%q): got %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestMatches(t *testing.T) {
	if !event.Matches([]string{"*"}, event.Payment) {
		t.Error("wildcard does not match")
	}
	if !event.Matches([]string{"payment", "inbound_message"}, event.InboundMessage) {
		t.Error("listed type does not match")
	}
	if event.Matches([]string{"payment"}, event.InboundMessage) {
		t.Error("unlisted type matches")
	}
	if event.Matches(nil, event.Payment) {
		t.Error("empty subscription matches")
	}
}

func TestTakes(t *testing.T) {
	tests := []struct {
		name   string
		filter []string
		t      event.Type
		want   bool
	}{
		{"NoFilter", nil, event.Payment, true},
		{"Wildcard", []string{"*"}, event.InboundMessage, true},
		{"Listed", []string{"payment", "inbound_message"}, event.InboundMessage, true},
		{"Unlisted", []string{"payment"}, event.InboundMessage, false},
		{"Custom", []string{"order.created"}, event.Type("order.created"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := event.Takes(tt.filter, tt.t); got != tt.want {
				t.Errorf("Takes(%v, %s): got %v, want %v", tt.filter, tt.t, got, tt.want)
			}
		})
	}
}

func TestIDs(t *testing.T) {
	gens := []struct {
		prefix string
		gen    func() string
	}{
		{event.PrefixEvent, event.NewEventID},
		{event.PrefixDelivery, event.NewDeliveryID},
		{event.PrefixCapture, event.NewCaptureID},
	}
	for _, g := range gens {
		a, b := g.gen(), g.gen()
		if a == b {
			t.Errorf("%s: two ids equal: %s", g.prefix, a)
		}
		if a >= b {
			t.Errorf("%s: ids not increasing: %s >= %s", g.prefix, a, b)
		}
		if _, err := event.ParseID(g.prefix, a); err != nil {
			t.Errorf("ParseID(%s): %v", a, err)
		}
	}
	if _, err := event.ParseID(event.PrefixEvent, "dlv_01J00000000000000000000000"); err == nil {
		t.Error("wrong prefix accepted")
	}
	if _, err := event.ParseID(event.PrefixEvent, "evt_notaulid"); err == nil {
		t.Error("bad ulid accepted")
	}
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	id := event.NewID(event.PrefixCapture, at)
	got, err := event.IDTime(event.PrefixCapture, id)
	if err != nil || !got.Equal(at) {
		t.Errorf("IDTime: got %v %v, want %v", got, err, at)
	}
	if id := event.NewID(event.PrefixEvent, time.Unix(-5, 0)); !strings.HasPrefix(id, event.PrefixEvent) {
		t.Errorf("pre-1970 clock: got %q, want an id beginning %q", id, event.PrefixEvent)
	}
}

// fromPayloadDecode is FromPayload as a full json.Unmarshal, the
// reference the one-pass walk must agree with.
func fromPayloadDecode(body []byte) (event.Type, bool) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return "", false
	}
	var p struct {
		Type json.RawMessage `json:"type"`
	}
	if err := json.Unmarshal(body, &p); err != nil || len(p.Type) == 0 {
		return "", false
	}
	var s string
	if err := json.Unmarshal(p.Type, &s); err != nil {
		return "", false
	}
	if t, ok := event.FromPayloadType(s); ok {
		return t, true
	}
	if event.ValidName(s) {
		return event.Type(s), true
	}
	return "", false
}

// FuzzFromPayload: payloads are untrusted; FromPayload must never panic
// and must pick the type exactly as a json.Unmarshal into a struct would.
func FuzzFromPayload(f *testing.F) {
	for _, s := range []string{
		`{"type":"inboundMessage","body":"hi"}`, `{"a":{"type":"payment"},"type":"messageSend"}`,
		`{"TYPE":"payment"}`, `{"type":"payment","Type":"messageSend"}`, `{"\u0074ype":"payment"}`,
		`{"type":"pay\u006dent"}`, `{"type":"payment"} `, `{"type":null}`, `{"type":["payment"]}`,
		`{"x":"\"type\":\"payment\"","y":[1,{"type":2}],"type" : "order.created" }`,
		`{"type":"order.created","x":{"type":"payment"}}`, `{"type":"\u0070ayment"}`,
		`{"type":"payment"`, `{"type":"payment"}{}`, "{\"type\":\"\xff\"}", `{}`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := event.FromPayload(body)
		if ok && !got.Valid() {
			t.Fatalf("accepted invalid type %q", got)
		}
		want, wantOK := fromPayloadDecode(body)
		if got != want || ok != wantOK {
			t.Fatalf("FromPayload(%q) = %q, %v; json.Unmarshal gives %q, %v", body, got, ok, want, wantOK)
		}
	})
}

func BenchmarkFromPayload(b *testing.B) {
	body := []byte(`{"conversationId":"97847","communicationActionId":"ca_0001","outboundChannelAddress":"447700900123",` +
		`"body":"` + strings.Repeat("lorem ipsum ", 70) + `","type":"inboundMessage","dateCreated":"2026-11-25 10:00:00.000"}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, ok := event.FromPayload(body); !ok {
			b.Fatal("no type")
		}
	}
}
