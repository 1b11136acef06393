package receiver

import (
	"bytes"
	"encoding/json"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/replay"
)

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

// TestMatchGlobLongPath: the sender chooses the path and the receiver
// takes one of up to 1 MiB; a rule with a final '*' after other
// wildcards must still be decided in one pass. Trying every prefix with
// path.Match took minutes for this one (70 s for a third of it).
func TestMatchGlobLongPath(t *testing.T) {
	long := "/hooks/" + strings.Repeat("a", 256<<10)
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"/hooks/*/x*", long, false},
		{"/hooks/*/x*", long + "/x/y", true},
		{"/hooks/?[a-c]*b*", long, false},
		{"/hooks/[^/]*a*", long, true},
	}
	for _, tt := range tests {
		done := make(chan bool, 1)
		go func() { done <- matchGlob(tt.pattern, tt.path) }()
		select {
		case got := <-done:
			if got != tt.want {
				t.Errorf("matchGlob(%q, %d bytes): got %v, want %v", tt.pattern, len(tt.path), got, tt.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("matchGlob(%q, %d bytes): still matching after 10s", tt.pattern, len(tt.path))
		}
	}
}

// FuzzMatchGlob: a final '*' matches what path.Match of the rest of the
// pattern matches on some prefix of the path, '/' and all after it; the
// one-pass matcher must agree with trying every prefix.
func FuzzMatchGlob(f *testing.F) {
	for _, s := range [][2]string{{"/a/*/c*", "/a/b/c/d"}, {"/[^a-c]?*", "/dé/x"}, {`/\**`, "/*x"}, {"/*é*", "/xé"},
		{"/[é-ü]*", "/\xc3"}, {"/**a*", "/ba/"}, {"/?*", "/\xff\xfe"}, {"*a*", "aa"}, {"/[\\]]*", "/]"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, p string) {
		if len(p) > 64 || !strings.HasSuffix(pattern, "*") {
			return
		}
		if _, err := path.Match(pattern, ""); err != nil {
			return
		}
		base, ok := trailingStar(pattern)
		if !ok {
			return
		}
		want := false
		for i := len(p); i >= 0 && !want; i-- {
			want, _ = path.Match(base, p[:i])
		}
		if ok, _ := path.Match(pattern, p); ok {
			want = true
		}
		if got := matchGlob(pattern, p); got != want {
			t.Fatalf("matchGlob(%q, %q): got %v, want %v", pattern, p, got, want)
		}
	})
}

func TestMatchPath(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"/a%2Fb", "/a%2Fb", true},
		{"/a%2F*", "/a%2Fb/c", true},
		{"/a/b", "/a%2Fb", true},
		{"/a%2Fb", "/a/b", false},
		{"/a/*", "/a%2Fb", true},
		{"/café", "/caf%C3%A9", true},
		{"/caf%C3%A9", "/caf%C3%A9", true},
		{"/~u", "/%7Eu", true},
		{"/x", "/%zz", false},
		{"/100%", "/100%25", true},
	}
	for _, tt := range tests {
		if got := matchPath(tt.pattern, tt.path); got != tt.want {
			t.Errorf("matchPath(%q, %q): got %v, want %v", tt.pattern, tt.path, got, tt.want)
		}
	}
}

// TestSentPath: a path captured as sent goes out unchanged; one stored
// decoded, before captures kept the path as sent, is escaped again.
func TestSentPath(t *testing.T) {
	tests := []struct{ stored, want string }{
		{"/a%2Fb", "/a%2Fb"},
		{"/a%2fb", "/a%2fb"},
		{"/%7Euser", "/%7Euser"},
		{"/caf%C3%A9", "/caf%C3%A9"},
		{"/hooks/pay", "/hooks/pay"},
		{"//a/../b", "//a/../b"},
		{"/hooks?x=1#frag a", "/hooks%3Fx=1%23frag%20a"},
		{"/café", "/caf%C3%A9"},
		{"/100%", "/100%25"},
	}
	for _, tt := range tests {
		if got := replay.SentPath(tt.stored); got != tt.want {
			t.Errorf("SentPath(%q): got %q, want %q", tt.stored, got, tt.want)
		}
	}
}

func TestCaptureEncoding(t *testing.T) {
	c := Capture{
		ID: "cap_01JDX0000000000000000000000", ReceivedAt: time.Date(2026, 11, 25, 10, 0, 0, 123456000, time.UTC),
		Method: "POST", Path: "/p", Query: "a=1&b=\xff", RemoteAddr: "127.0.0.1:1",
		Headers: map[string][]string{"x-a": {"1", "2"}}, Body: []byte{0, 1, 0xff},
		Event: "payment", WebhookID: "evt_1", DuplicateOf: "cap_0",
		Verdict:  Verdict{Status: auth.StatusValid, Scheme: "jwt", Claims: map[string]any{"sub": "demo"}},
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
		t.Errorf("received_at format: %s, want 2026-11-25T10:00:00.123456Z", a)
	}
	var back Capture
	if err := json.Unmarshal(a, &back); err != nil || !bytes.Equal(back.Body, c.Body) || back.Query != c.Query {
		t.Errorf("UnmarshalJSON: %v %x %q, want the body and query back", err, back.Body, back.Query)
	}
	if got.Query != c.Query {
		t.Errorf("stored query: got %q, want %q", got.Query, c.Query)
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
		checkMetaMatchesJSON(t, &got)
	})
}

// checkMetaMatchesJSON asserts that the hand-written encoder writes what
// json.Marshal writes for the same capture, with and without the body.
func checkMetaMatchesJSON(t *testing.T, c *Capture) {
	t.Helper()
	m := c.meta()
	want, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("json.Marshal(meta): %v", err)
	}
	got, err := appendMeta(nil, c, false)
	if err != nil {
		t.Fatalf("appendMeta: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("appendMeta differs from json.Marshal:\n got %s\nwant %s", got, want)
	}
	body, enc := c.BodyText()
	m.Body, m.BodyEncoding = &body, enc
	if want, err = json.Marshal(m); err != nil {
		t.Fatalf("json.Marshal(meta with body): %v", err)
	}
	if got, err = json.Marshal(*c); err != nil {
		t.Fatalf("Capture.MarshalJSON: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("MarshalJSON differs from json.Marshal:\n got %s\nwant %s", got, want)
	}
}

func TestAppendMetaMatchesJSON(t *testing.T) {
	at := time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.FixedZone("x", 3600))
	tests := []struct {
		name string
		c    Capture
	}{
		{"empty", Capture{}},
		{"typical", Capture{
			ID: "cap_01", ReceivedAt: at, Method: "POST", Path: "/webhooks", Query: "a=1&b=<2>",
			RemoteAddr: "127.0.0.1:5000",
			Headers:    map[string][]string{"content-type": {"application/json"}, "x-b": {"1", "2"}, "a": {"z"}},
			Body:       []byte(`{"type":"inboundMessage"}`), BodySize: 25, Event: "inbound_message",
			WebhookID: "evt_1", DuplicateOf: "cap_00",
			Verdict: Verdict{Status: auth.StatusValid, Scheme: "jwt", Claims: map[string]any{
				"iss": "webio", "aud": []any{"crm", "x"}, "iat": float64(1764064800), "nbf": 1.5,
				"big": 1e21, "tiny": 1e-7, "neg": -3.25, "zero": float64(0), "ok": true, "none": nil,
				"obj": map[string]any{"k": "v&<>"}, "empty": []any{}, "nilarr": []any(nil),
				"nested": []any{[]any{1e22, "y"}, map[string]any{"a": []any{}}, nil, false},
			}},
			Response: CaptureResponse{Status: 200, Rule: "r1"},
		}},
		{"answered", Capture{
			ID: "cap_02", ReceivedAt: at,
			Response: CaptureResponse{Status: 418, Rule: "tea", Headers: map[string][]string{"content-type": {"text/plain"}, "x-<b>": {"1", "\u2028"}},
				Body: "c2hvcnQ=", BodyEncoding: EncodingBase64, BodyTruncated: true, DurationMS: 1234},
		}},
		{"escapes", Capture{
			ID: "\"quoted\" \\ back", Path: "/\u2028\u2029\x00\x1f\b\f\n\r\t", Query: "q=\xc3\x28&r=\xff",
			Headers: map[string][]string{"bad\xff": {"\xc3\x28", "\xed\xa0\x80"}, "nil": nil, "empty": {}},
			Body:    []byte{0xff, 0x00, 0x01}, BodyTruncated: true, BodySize: 1 << 40,
			Verdict:  Verdict{Status: auth.StatusInvalid, Reason: "bad\x7f<b>", Claims: map[string]any{}},
			Response: CaptureResponse{Fault: FaultReset, Error: "cut \"at\" shutdown"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkMetaMatchesJSON(t, &tt.c) })
	}
}

// FuzzAppendString: header values and claims are untrusted bytes; their
// encoding must be encoding/json's, byte for byte.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "\"\\<>&", "\x00\x1f\x7f", "\u2028\u2029", "\xff\xfe", "é€𝄞", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
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

func TestLowerName(t *testing.T) {
	for _, k := range []string{"Accept", "Accept-Encoding", "Authorization", "Content-Length", "Content-Type",
		"Sidehook-Attempt", "Sidehook-Event", "User-Agent", "Webhook-Id", "Webhook-Signature",
		"Webhook-Timestamp", "X-Webio-Token", "X-Other", "already-lower", "ÉTÉ"} {
		if got, want := lowerName(k), strings.ToLower(k); got != want {
			t.Errorf("lowerName(%q) = %q, want %q", k, got, want)
		}
	}
}

// FuzzParseFilter: a query string is untrusted; parsing never panics, and
// a refusal of a parameter names it.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"", "event=x&since=5m", "since=1700000000", "since=2026-01-01T00:00:00Z", "verdict=nope", "evnt=1", "path=/a/*&limit=3", "since=-5m", "%zz"} {
		f.Add(s)
	}
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		_, err = parseFilter(q, now, "limit", "cursor")
		if err == nil {
			return
		}
		for name := range q {
			if strings.Contains(err.Error(), strconv.Quote(name)) || slices.Contains(filterParams, name) || name == "limit" || name == "cursor" {
				return
			}
		}
		t.Errorf("parseFilter(%q): %v names no parameter of the query", raw, err)
	})
}
