package receiver_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sidehook/sidehook/receiver"
)

// TestCaptureRecordsResponse: a capture keeps the answer it got (status,
// headers, the first 4 KiB of the body, the time to answer, scripted delay
// included), and the HAR export carries them.
func TestCaptureRecordsResponse(t *testing.T) {
	long := strings.Repeat("a", receiver.MaxResponseBody+10)
	srv := rulesServer(t, `[
		{"id":"teapot","match":{"path":"/tea"},"respond":{"status":418,"headers":{"X-Rule":"yes","content-type":"text/plain"},"body":"short and stout","delay":"60ms"}},
		{"id":"long","match":{"path":"/long"},"respond":{"status":200,"body":"`+long+`"}}
	]`)
	r := send(t, "POST", srv.URL()+"/tea", []byte(`{}`), nil)
	if r.status != 418 || r.header.Get("X-Rule") != "yes" {
		t.Fatalf("answer %d %v, want 418 with X-Rule yes", r.status, r.header)
	}
	send(t, "POST", srv.URL()+"/long", nil, nil)
	send(t, "POST", srv.URL()+"/default", nil, nil)
	caps, _ := list(t, srv, "")
	byPath := map[string]receiver.Capture{}
	for _, c := range caps {
		byPath[c.Path] = c
	}

	tea := byPath["/tea"].Response
	if tea.Status != 418 || tea.Rule != "teapot" || tea.Body != "short and stout" || tea.DurationMS < 60 {
		t.Errorf("/tea response: %+v, want 418 by teapot, its body, at least the 60 ms delay", tea)
	}
	for k, want := range map[string]string{"x-rule": "yes", "content-type": "text/plain", "content-length": "15"} {
		if got := tea.Headers[k]; len(got) != 1 || got[0] != want {
			t.Errorf("/tea response header %s: got %v, want %s", k, got, want)
		}
	}
	if lr := byPath["/long"].Response; len(lr.Body) != receiver.MaxResponseBody || !lr.BodyTruncated {
		t.Errorf("/long response body: %d bytes truncated %v, want %d truncated", len(lr.Body), lr.BodyTruncated, receiver.MaxResponseBody)
	}
	def := byPath["/default"].Response
	if def.Status != 200 || def.Body != `{"id":"`+byPath["/default"].ID+`"}` || def.Headers["content-type"][0] != "application/json" {
		t.Errorf("/default response: %+v, want 200 with the capture id as JSON", def)
	}

	var har struct {
		Log struct {
			Entries []struct {
				Time     float64
				Comment  string
				Response struct {
					Status  int
					Headers []struct{ Name, Value string }
					Content struct {
						Size     int
						MimeType string
						Text     string
					}
				}
				Timings struct{ Wait float64 }
			}
		}
	}
	if err := json.Unmarshal(send(t, "GET", srv.URL()+"/_sidehook/requests/export?format=har&path=/tea", nil, nil).body, &har); err != nil {
		t.Fatal(err)
	}
	if len(har.Log.Entries) != 1 {
		t.Fatalf("HAR has %d entries, want 1", len(har.Log.Entries))
	}
	e := har.Log.Entries[0]
	hdr := map[string]string{}
	for _, h := range e.Response.Headers {
		hdr[h.Name] = h.Value
	}
	if e.Response.Status != 418 || hdr["x-rule"] != "yes" || e.Response.Content.Text != "short and stout" ||
		e.Response.Content.MimeType != "text/plain" || e.Response.Content.Size != 15 || e.Timings.Wait < 60 || e.Time != e.Timings.Wait {
		t.Errorf("HAR entry: %+v, want the recorded answer and timings", e)
	}
}
