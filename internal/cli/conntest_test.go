package cli

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestTestCommand(t *testing.T) {
	srv, got := hookSink(t)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// payment fails with a 500, custom values with an empty answer.
		if r.Header.Get("sidehook-event") == "payment" {
			w.WriteHeader(500)
		}
	}))
	t.Cleanup(broken.Close)
	url := startRelayCLI(t, nil, "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--api-key", "k", "--endpoint", srv.URL, "--endpoint", broken.URL)

	code, out, stderr := runCLI(t, nil, "test", "--relay", url, "--api-key", "k", "--endpoint", "ep1")
	if code != 0 || strings.Count(out, " ok ") != 5 || !strings.Contains(out, "Jane Doe") {
		t.Errorf("all pass: got exit %d\n%s%s", code, out, stderr)
	}
	for _, h := range got() {
		if h.Get("sidehook-test") != "true" {
			t.Errorf("sidehook-test header: got %q", h.Get("sidehook-test"))
		}
	}
	code, out, stderr = runCLI(t, nil, "test", "--relay", url, "--api-key", "k", "--endpoint", "ep2")
	if code != 1 || !strings.Contains(out, "FAIL") || !strings.Contains(stderr, "2 of 5 connection tests failed") {
		t.Errorf("one fails: got exit %d\n%s%s", code, out, stderr)
	}
	code, out, _ = runCLI(t, nil, "test", "--relay", url, "--api-key", "k", "--endpoint", "ep1", "--event", "payment", "--json")
	if code != 0 || !strings.Contains(out, `"event":"payment"`) {
		t.Errorf("--event --json: got %d %q", code, out)
	}
	if code, _, stderr := runCLI(t, nil, "test", "--relay", url, "--api-key", "k", "--endpoint", "nope"); code != 1 || !strings.Contains(stderr, "404") {
		t.Errorf("unknown endpoint: got %d %q", code, stderr)
	}
	if code, _, _ := runCLI(t, nil, "test", "--relay", url, "--api-key", "k"); code != 2 {
		t.Errorf("no --endpoint: got %d, want 2", code)
	}
}
