package replay_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/replay"
)

func readFile(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "export", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestReadExport(t *testing.T) {
	caps, err := replay.ReadExport(bytes.NewReader(readFile(t, "captures.ndjson")))
	if err != nil {
		t.Fatal(err)
	}
	if len(caps) != 3 {
		t.Fatalf("got %d captures, want 3 (the blank line skipped)", len(caps))
	}
	pay, bin, get := caps[0], caps[1], caps[2]
	if pay.ID != "cap_01JDQ0000000000000000000A1" || pay.Method != "POST" || pay.Path != "/webhooks" ||
		pay.Event != "payment" || pay.Verdict != "valid" || pay.WebhookID != "evt_01JDQ0000000000000000000E1" ||
		string(pay.Body) != `{"type":"payment","amount":"50.00","currency":"GBP"}` ||
		!pay.ReceivedAt.Equal(time.Date(2026, 11, 25, 10, 0, 0, 123456000, time.UTC)) {
		t.Errorf("payment capture: got %+v, want the fixture's payment capture", pay)
	}
	if got := pay.Header.Get("content-type"); got != "application/json" {
		t.Errorf("content-type: got %q, want \"application/json\"", got)
	}
	if !bytes.Equal(bin.Body, []byte{0xff, 0x00, 0xfe, 0x01, 0x02}) || bin.Verdict != "invalid" {
		t.Errorf("base64 body: got %x %q, want ff00fe0102 \"invalid\"", bin.Body, bin.Verdict)
	}
	if get.Method != "GET" || get.Query != "customerUID=ACC-10023&channelId=447700900123&fields=fullname,currency" || len(get.Body) != 0 {
		t.Errorf("GET capture: got %+v, want a GET with the fixture's query and no body", get)
	}

	it := pay.Item("http://127.0.0.1:9/")
	if it.Target != "http://127.0.0.1:9/webhooks" || it.ID != pay.ID || it.WebhookID != pay.WebhookID || it.BodyMissing {
		t.Errorf("item: got %+v, want the payment capture aimed at http://127.0.0.1:9/webhooks with its body", it)
	}
	if it := get.Item(""); it.Target != "" || it.RawQuery != get.Query {
		t.Errorf("item without base: got %+v, want no target and the capture's query", it)
	}
}

func TestReadExportErrors(t *testing.T) {
	good := `{"id":"cap_1","received_at":"2026-11-25T10:00:00Z","method":"POST","path":"/a","headers":{},"body":"x"}`
	tests := []struct {
		name  string
		input string
		line  int
		want  string
	}{
		{"Truncated", good + "\n" + `{"id":"cap_2"`, 2, "not a capture"},
		{"NotObject", good + "\n\n[1,2]\n", 3, "not a JSON object"},
		{"Garbage", "hello\n", 1, "not a JSON object"},
		{"TrailingData", good + ` {"x":1}` + "\n", 1, "not a capture"},
		{"NoID", `{"received_at":"2026-11-25T10:00:00Z","method":"POST","path":"/a"}`, 1, "no id"},
		{"BadMethod", `{"id":"c","received_at":"2026-11-25T10:00:00Z","method":"PO ST","path":"/a"}`, 1, "not an HTTP method"},
		{"NoPath", `{"id":"c","received_at":"2026-11-25T10:00:00Z","method":"POST","path":"a"}`, 1, "does not start with /"},
		{"BadTime", `{"id":"c","received_at":"yesterday","method":"POST","path":"/a"}`, 1, "received_at"},
		{"NoTime", `{"id":"c","method":"POST","path":"/a"}`, 1, "no received_at"},
		{"BadBase64", `{"id":"c","received_at":"2026-11-25T10:00:00Z","method":"POST","path":"/a","body":"!!","body_encoding":"base64"}`, 1, "not valid base64"},
		{"BadEncoding", `{"id":"c","received_at":"2026-11-25T10:00:00Z","method":"POST","path":"/a","body":"x","body_encoding":"rot13"}`, 1, "unknown body_encoding"},
		{"BadHeaderName", `{"id":"c","received_at":"2026-11-25T10:00:00Z","method":"POST","path":"/a","headers":{"a b":["x"]}}`, 1, "header name"},
		{"BadHeaderValue", `{"id":"c","received_at":"2026-11-25T10:00:00Z","method":"POST","path":"/a","headers":{"x":["a\nb"]}}`, 1, "control character"},
		{"WrongType", `{"id":7}`, 1, "not a capture"},
		{"BadQueryBase64", `{"id":"c","received_at":"2026-11-25T10:00:00Z","method":"GET","path":"/a","query":"!!","query_encoding":"base64"}`, 1, "query is not valid base64"},
		{"BadQueryEncoding", `{"id":"c","received_at":"2026-11-25T10:00:00Z","method":"GET","path":"/a","query":"a=1","query_encoding":"rot13"}`, 1, "unknown query_encoding"},
		// "a=\x01" and "a= b": no request line carries them.
		{"QueryControlByte", `{"id":"c","received_at":"2026-11-25T10:00:00Z","method":"GET","path":"/a","query":"YT0B","query_encoding":"base64"}`, 1, "not a raw query string"},
		{"QuerySpace", `{"id":"c","received_at":"2026-11-25T10:00:00Z","method":"GET","path":"/a","query":"a= b"}`, 1, "not a raw query string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			caps, err := replay.ReadExport(strings.NewReader(tt.input))
			var le *replay.LineError
			if !errors.As(err, &le) {
				t.Fatalf("got %v (%d captures), want a *LineError", err, len(caps))
			}
			if le.Line != tt.line || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %q at line %d, want line %d and %q", err, le.Line, tt.line, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "line ") {
				t.Errorf("got %q, want it to start with the line", err)
			}
		})
	}
}

// TestReadExportRawQuery: a query that is not UTF-8 comes as base64 with
// "query_encoding":"base64" (as the receiver writes it); replay reads it
// back to the bytes sent and sends them as they were.
func TestReadExportRawQuery(t *testing.T) {
	caps, err := replay.ReadExport(bytes.NewReader(readFile(t, "raw-query.ndjson")))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"fields=fullname&n=Ren\xe9e", "fields=fullname&n=Ren%C3%A9e", "a=1"}
	if len(caps) != len(want) {
		t.Fatalf("got %d captures, want %d", len(caps), len(want))
	}
	sent := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// RequestURI is the request line's target, unmodified.
		sent <- r.RequestURI
	}))
	t.Cleanup(srv.Close)
	for i, c := range caps {
		t.Run(c.ID, func(t *testing.T) {
			if c.Query != want[i] {
				t.Fatalf("query: got %q, want %q", c.Query, want[i])
			}
			res := replay.Send(context.Background(), c.Item(srv.URL), replay.Options{Client: srv.Client()})
			if res.Error != "" || res.Status != 200 {
				t.Fatalf("send: got %+v, want status 200 and no error", res)
			}
			if got := <-sent; got != "/cv?"+want[i] {
				t.Errorf("sent %q, want %q", got, "/cv?"+want[i])
			}
		})
	}
}

func TestReadExportLongLine(t *testing.T) {
	long := `{"id":"c","received_at":"2026-11-25T10:00:00Z","method":"POST","path":"/a","body":"` +
		strings.Repeat("x", 1000) + `"}`
	_, err := replay.ReadExportMax(strings.NewReader("\n"+long+"\n"), 1000)
	var le *replay.LineError
	if !errors.As(err, &le) || le.Line != 2 || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("got %v, want line 2 too long", err)
	}
}

func TestFileSource(t *testing.T) {
	path := filepath.Join("testdata", "export", "captures.ndjson")
	tests := []struct {
		name string
		sel  replay.Selection
		want []string
	}{
		{"All", replay.Selection{}, []string{"cap_01JDQ0000000000000000000A1", "cap_01JDQ0000000000000000000A2", "cap_01JDQ0000000000000000000A3"}},
		{"Event", replay.Selection{Event: "payment"}, []string{"cap_01JDQ0000000000000000000A1"}},
		{"Verdict", replay.Selection{Verdict: "invalid"}, []string{"cap_01JDQ0000000000000000000A2"}},
		{"Since", replay.Selection{Since: time.Date(2026, 11, 25, 10, 0, 1, 0, time.UTC)}, []string{"cap_01JDQ0000000000000000000A2", "cap_01JDQ0000000000000000000A3"}},
		{"Until", replay.Selection{Until: time.Date(2026, 11, 25, 10, 0, 1, 0, time.UTC)}, []string{"cap_01JDQ0000000000000000000A1", "cap_01JDQ0000000000000000000A2"}},
		{"IDsInOrderGiven", replay.Selection{IDs: []string{"cap_01JDQ0000000000000000000A3", "cap_01JDQ0000000000000000000A1", "cap_01JDQ0000000000000000000A3"}},
			[]string{"cap_01JDQ0000000000000000000A3", "cap_01JDQ0000000000000000000A1"}},
		{"IDsAndFilter", replay.Selection{IDs: []string{"cap_01JDQ0000000000000000000A3", "cap_01JDQ0000000000000000000A1"}, Event: "payment"}, []string{"cap_01JDQ0000000000000000000A1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, err := (&replay.FileSource{Path: path}).Select(context.Background(), tt.sel)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, it := range items {
				got = append(got, it.ID)
				if it.Target != "" {
					t.Errorf("%s: a file item has target %q, want none", it.ID, it.Target)
				}
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFileSourceErrors(t *testing.T) {
	path := filepath.Join("testdata", "export", "captures.ndjson")
	tests := []struct {
		name string
		src  replay.FileSource
		sel  replay.Selection
		want string
	}{
		{"UnknownIDs", replay.FileSource{Path: path}, replay.Selection{IDs: []string{"cap_nope", "cap_01JDQ0000000000000000000A1", "cap_gone"}}, "2 unknown ids: cap_nope, cap_gone"},
		{"BadLine", replay.FileSource{Path: filepath.Join("testdata", "export", "bad-line2.ndjson")}, replay.Selection{}, "bad-line2.ndjson: line 2:"},
		{"Missing", replay.FileSource{Path: filepath.Join(t.TempDir(), "none.ndjson")}, replay.Selection{}, "no such file"},
		{"Status", replay.FileSource{Path: path}, replay.Selection{Status: "dead"}, "not supported"},
		{"TooMany", replay.FileSource{Path: path}, replay.Selection{Max: 2}, "more than 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, err := tt.src.Select(context.Background(), tt.sel)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v (%d items), want an error containing %q", err, len(items), tt.want)
			}
		})
	}
	var unknown *replay.UnknownIDsError
	_, err := (&replay.FileSource{Path: path}).Select(context.Background(), replay.Selection{IDs: []string{"x"}})
	if !errors.As(err, &unknown) || len(unknown.IDs) != 1 {
		t.Errorf("got %v, want an *UnknownIDsError", err)
	}
}

// FuzzReadExport feeds arbitrary files to the export reader: it must never
// panic, an error must name a line that exists, and every capture it
// accepts must build into a request without error.
func FuzzReadExport(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "export", "*.ndjson"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata/export: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("\n\n"))
	f.Add([]byte(`{"id":"c","received_at":"2026-11-25T10:00:00Z","method":"GET","path":"/","query":"a=1","headers":{"X":["\t"]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		caps, err := replay.ReadExport(bytes.NewReader(data))
		if err != nil {
			var le *replay.LineError
			if !errors.As(err, &le) {
				t.Fatalf("error %v is not a *LineError", err)
			}
			if lines := bytes.Count(data, []byte("\n")) + 1; le.Line < 1 || le.Line > lines {
				t.Fatalf("line %d of %d, want a line of the data", le.Line, lines)
			}
			return
		}
		for _, c := range caps {
			it := c.Item("")
			if it.BodyMissing {
				continue
			}
			if _, err := replay.Build(context.Background(), it, replay.Options{To: "http://127.0.0.1:9"}); err != nil {
				t.Fatalf("accepted capture %q does not build: %v", c.ID, err)
			}
		}
	})
}
