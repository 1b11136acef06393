package relay_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sidehook/sidehook/relay"
)

func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"Hi <<fullname>>", "<<a|b>><<c>>", "<<<x>>>", "<<", ">>", "<<a|<<b>>>>", "plain"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		segs := relay.ParseTemplate(s)
		text, _ := relay.Render(segs, nil)
		if !strings.Contains(s, "<<") && text != s {
			t.Fatalf("text without placeholders changed: %q → %q", s, text)
		}
		// Rendering each field as its own placeholder text gives back the
		// template when there are no defaults.
		for _, f := range relay.TemplateFields(segs) {
			if f == "" {
				t.Fatalf("empty field from %q", s)
			}
		}
	})
}

func FuzzParseIngest(f *testing.F) {
	f.Add(`{"type":"payment"}`, "", "", "")
	f.Add(`{"type":"inboundMessage","body":"hi"}`, "", "type=x", "evt_1")
	f.Add(`not json`, "custom.type", "", "")
	f.Add(`{"type":123}`, "", "type=%zz", "a/b")
	f.Fuzz(func(t *testing.T, body, evHeader, query, id string) {
		h := http.Header{}
		if evHeader != "" {
			h.Set("sidehook-event", evHeader)
		}
		if id != "" {
			h.Set("webhook-id", id)
		}
		typ, gotID, err := relay.ParseIngest(h, query, []byte(body))
		if err != nil {
			return
		}
		if !typ.Valid() {
			t.Fatalf("accepted invalid type %q", typ)
		}
		if id != "" && strings.TrimSpace(id) != gotID {
			t.Fatalf("id: got %q from %q, want %q", gotID, id, strings.TrimSpace(id))
		}
	})
}

// FuzzParseValues: a custom-value endpoint's answer is untrusted.
func FuzzParseValues(f *testing.F) {
	f.Add(`{"fullname":"Jane Doe","amount":50,"x":null}`, "fullname,amount,x,missing")
	f.Add(`[1,2]`, "a")
	f.Add(`{"a":{"b":1}}`, "a")
	f.Add(`{"a":"\u00e9"}`, "a,a")
	f.Fuzz(func(t *testing.T, body, fields string) {
		fs := strings.Split(fields, ",")
		vals, err := relay.ParseValues([]byte(body), fs)
		if err != nil {
			return
		}
		for _, name := range fs {
			if _, ok := vals[name]; !ok {
				t.Fatalf("field %q missing from the answer", name)
			}
		}
	})
}
