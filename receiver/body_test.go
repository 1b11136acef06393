package receiver_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/receiver"
)

// slowUpload opens a connection and sends the headers of a POST with a
// declared length and the first part of its body, then stops.
func slowUpload(tb testing.TB, srv *receiver.Server, path string, length int, first string) net.Conn {
	tb.Helper()
	conn, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", path, srv.Addr(), length, first)
	// Only a safety net: the server answers long before.
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	return conn
}

// TestSlowBodyTimedOut: a client that stops sending its body is answered
// 408 once the read timeout has passed, its connection is closed, and the
// request is captured.
func TestSlowBodyTimedOut(t *testing.T) {
	srv := start(t, receiver.Config{ReadTimeout: 300 * time.Millisecond})
	conn := slowUpload(t, srv, "/slow", 100, "0123456789")
	rd := bufio.NewReader(conn)
	resp, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatalf("no answer to a stalled upload: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), `"error":"timeout"`) {
		t.Errorf("got %d %s, want 408 timeout", resp.StatusCode, b)
	}
	if _, err := rd.ReadByte(); err != io.EOF {
		t.Errorf("connection after the answer: %v, want closed", err)
	}
	c := only(t, srv)
	if c.Path != "/slow" || c.Response.Status != http.StatusRequestTimeout || !strings.HasPrefix(c.Verdict.Reason, "body not read") {
		t.Errorf("capture: %s %d %q, want /slow 408 \"body not read…\"", c.Path, c.Response.Status, c.Verdict.Reason)
	}
}

// TestBodyBudget: while slow uploads hold the bodies' budget, a request
// that would go over it is answered 503 with a reason and captured without
// its body, whether its length is declared or not; once the uploads end,
// the budget is whole again.
func TestBodyBudget(t *testing.T) {
	srv := start(t, receiver.Config{MaxBody: 800, MaxBodiesInFlight: 1000})
	slow := slowUpload(t, srv, "/slow", 800, strings.Repeat("a", 100))
	waitMetric(t, srv, "sidehook_receiver_body_bytes_in_flight", "800", nil)

	r := send(t, "POST", srv.URL()+"/declared", bytes.Repeat([]byte("b"), 500), nil)
	if r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), `"error":"busy"`) ||
		!strings.Contains(string(r.body), "retry later") || r.header.Get("Retry-After") != "1" {
		t.Errorf("declared length over the budget: got %d %s (Retry-After %q), want 503 busy", r.status, r.body, r.header.Get("Retry-After"))
	}
	req, _ := http.NewRequest("POST", srv.URL()+"/chunked", io.MultiReader(strings.NewReader(strings.Repeat("c", 300))))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("unknown length over the budget: got %d, want 503", resp.StatusCode)
	}
	if caps, _ := list(t, srv, "path=/chunked"); len(caps) != 1 || caps[0].Headers["content-length"] != nil || !caps[0].BodyTruncated {
		t.Errorf("the chunked request's capture: %+v, want one without content-length, its body not kept", caps)
	}
	if r := send(t, "POST", srv.URL()+"/fits", bytes.Repeat([]byte("d"), 100), nil); r.status != 200 {
		t.Errorf("within the budget: got %d %s, want 200", r.status, r.body)
	}

	fmt.Fprint(slow, strings.Repeat("a", 700))
	resp, err = http.ReadResponse(bufio.NewReader(slow), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the slow upload, completed: %v %v", resp, err)
	}
	resp.Body.Close()
	waitMetric(t, srv, "sidehook_receiver_body_bytes_in_flight", "0", nil)
	if r := send(t, "POST", srv.URL()+"/declared", bytes.Repeat([]byte("b"), 500), nil); r.status != 200 {
		t.Errorf("after the slow upload: got %d %s, want 200", r.status, r.body)
	}

	caps, _ := list(t, srv, "path=/declared")
	if len(caps) != 2 {
		t.Fatalf("captures of /declared: %d, want 2", len(caps))
	}
	refused := caps[1]
	if refused.Response.Status != 503 || !refused.BodyTruncated || len(refused.Body) != 0 || refused.BodySize != 500 {
		t.Errorf("refused capture: status %d truncated %v body %d size %d; want 503, truncated, none, 500",
			refused.Response.Status, refused.BodyTruncated, len(refused.Body), refused.BodySize)
	}
	if slowCap, _ := list(t, srv, "path=/slow"); len(slowCap) != 1 || len(slowCap[0].Body) != 800 {
		t.Errorf("the slow upload's capture: %d captures, want one of 800 bytes", len(slowCap))
	}
}
