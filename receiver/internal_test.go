package receiver

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/sidehook/sidehook/internal/auth"
)

func TestNeedsAdminToken(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:8081", false},
		{"127.0.0.2:0", false},
		{"[::1]:8081", false},
		{"localhost:8081", false},
		{"LOCALHOST:1", false},
		{":8081", true},
		{"0.0.0.0:8081", true},
		{"[::]:8081", true},
		{"192.168.1.10:8081", true},
		{"example.com:80", true},
		{"garbage", true},
	}
	for _, tt := range tests {
		if got := needsAdminToken(tt.addr); got != tt.want {
			t.Errorf("needsAdminToken(%q): got %v, want %v", tt.addr, got, tt.want)
		}
	}
}

func TestMatchGlob(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"", "/anything", true},
		{"/flaky*", "/flaky", true},
		{"/flaky*", "/flaky-2", true},
		{"/flaky*", "/flaky/a/b", true},
		{"/flaky*", "/other", false},
		{"/a/*", "/a/b", true},
		{"/a/*", "/a/b/c", true},
		{"/a/*/c", "/a/b/c", true},
		{"/a/*/c", "/a/b/x/c", false},
		{"/a/?", "/a/b", true},
		{"/[ab]*", "/b/x", true},
		{`/lit\*`, "/lit*", true},
		{`/lit\*`, "/litx", false},
		{"/exact", "/exact", true},
		{"/exact", "/exact/more", false},
	}
	for _, tt := range tests {
		if got := matchGlob(tt.pattern, tt.path); got != tt.want {
			t.Errorf("matchGlob(%q, %q): got %v, want %v", tt.pattern, tt.path, got, tt.want)
		}
	}
}

func TestCaptureEncoding(t *testing.T) {
	c := Capture{
		ID: "cap_01JDX0000000000000000000000", ReceivedAt: time.Date(2026, 11, 25, 10, 0, 0, 123456000, time.UTC),
		Method: "POST", Path: "/p", Query: "a=1", RemoteAddr: "127.0.0.1:1",
		Headers: map[string][]string{"x-a": {"1", "2"}}, Body: []byte{0, 1, 0xff},
		Event: "payment", WebhookID: "evt_1", DuplicateOf: "cap_0",
		Verdict:  auth.Verdict{Status: auth.StatusValid, Scheme: "jwt", Claims: map[string]any{"sub": "demo"}},
		Response: CaptureResponse{Status: 200, Rule: "r"},
	}
	enc, err := encodeCapture(&c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeCapture(enc)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(c)
	b, _ := json.Marshal(got)
	if !bytes.Equal(a, b) {
		t.Errorf("round trip:\n got %s\nwant %s", b, a)
	}
	if !bytes.Contains(a, []byte(`"received_at":"2026-11-25T10:00:00.123456Z"`)) {
		t.Errorf("received_at format: %s", a)
	}
	var back Capture
	if err := json.Unmarshal(a, &back); err != nil || !bytes.Equal(back.Body, c.Body) {
		t.Errorf("UnmarshalJSON: %v %x", err, back.Body)
	}
}

// FuzzDecodeCapture: stored bytes may be corrupt; decoding must fail
// cleanly, and what decodes must encode back to the same capture.
func FuzzDecodeCapture(f *testing.F) {
	c := Capture{ID: "cap_x", ReceivedAt: time.Unix(0, 0), Headers: map[string][]string{"a": {"b"}}, Body: []byte("hello")}
	enc, _ := encodeCapture(&c)
	f.Add(enc)
	f.Add([]byte{1})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{1, 2, '{', '}'})
	f.Add([]byte{1, 28, '{', '"', 'r', 'e', 'c', 'e', 'i', 'v', 'e', 'd', '_', 'a', 't', '"', ':', '"', '2', '0', '2', '6', '-', '1', '1', '-', '2', '5', '"', '}'})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeCapture(data)
		if err != nil {
			return
		}
		again, err := encodeCapture(&got)
		if err != nil {
			t.Fatalf("decoded capture does not encode: %v", err)
		}
		if _, err := decodeCapture(again); err != nil {
			t.Fatalf("re-encoded capture does not decode: %v", err)
		}
	})
}

// FuzzParseRules: a rules file or POST body is untrusted input; the parser
// must refuse bad input with an error, never panic, and what it accepts
// must be valid.
func FuzzParseRules(f *testing.F) {
	for _, s := range []string{
		`[{"match":{"method":"POST","path":"/flaky*","event":"payment","headers":{"x-team":"billing"}},"respond":{"status":200,"headers":{},"body":"ok","delay":"250ms","sequence":[500,503,200],"per":"webhook-id","times":0,"fault":""}}]`,
		"- match: {path: /a}\n  respond: {status: 503, fault: reset}\n",
		`{"respond":{"status":204}}`,
		`[{"respond":{"stauts":500}}]`,
		`[1, "a", null, []]`,
		"&a [*a]",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, err := ParseRules(data)
		if err != nil {
			return
		}
		for i := range rules {
			if err := rules[i].validate(); err != nil {
				t.Fatalf("accepted an invalid rule %d: %v", i, err)
			}
		}
	})
}
