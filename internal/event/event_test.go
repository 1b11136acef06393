package event_test

import (
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
				t.Errorf("%s: payload type %q maps back to %q", typ, pt, back)
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
		t.Errorf("pre-1970 clock: got %q", id)
	}
}

func FuzzFromPayload(f *testing.F) {
	f.Add([]byte(`{"type":"inboundMessage"}`))
	f.Add([]byte(`{"type":"order.created","x":{"type":"payment"}}`))
	f.Add([]byte(`{"type":"\u0070ayment"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		typ, ok := event.FromPayload(body)
		if ok && !typ.Valid() {
			t.Fatalf("accepted invalid type %q", typ)
		}
		if !ok && typ != "" {
			t.Fatalf("rejected but returned %q", typ)
		}
	})
}
