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
		t.Errorf("all pass: got exit %d, want 0 with 5 ok lines and Jane Doe\n%s%s", code, out, stderr)
	}
	for _, h := range got() {
		if h.Get("sidehook-test") != "true" {
			t.Errorf("sidehook-test header: got %q, want \"true\"", h.Get("sidehook-test"))
		}
	}
	code, out, stderr = runCLI(t, nil, "test", "--relay", url, "--api-key", "k", "--endpoint", "ep2")
	if code != 1 || !strings.Contains(out, "FAIL") || !strings.Contains(stderr, "2 of 5 connection tests failed") {
		t.Errorf("one fails: got exit %d, want 1 with FAIL and \"2 of 5 connection tests failed\"\n%s%s", code, out, stderr)
	}
	code, out, _ = runCLI(t, nil, "test", "--relay", url, "--api-key", "k", "--endpoint", "ep1", "--event", "payment", "--json")
	if code != 0 || !strings.Contains(out, `"event":"payment"`) {
		t.Errorf("--event --json: got %d %q, want 0 and a payment event", code, out)
	}
	if code, _, stderr := runCLI(t, nil, "test", "--relay", url, "--api-key", "k", "--endpoint", "nope"); code != 1 || !strings.Contains(stderr, "404") {
		t.Errorf("unknown endpoint: got %d %q, want 1 with a 404", code, stderr)
	}
	if code, _, _ := runCLI(t, nil, "test", "--relay", url, "--api-key", "k"); code != 2 {
		t.Errorf("no --endpoint: got %d, want 2", code)
	}
	// Everything from the variables: the shared relay URL and key, and the
	// test command's own endpoint.
	env := map[string]string{"SIDEHOOK_RELAY_URL": url, "SIDEHOOK_API_KEY": "k", "SIDEHOOK_TEST_ENDPOINT": "ep1", "SIDEHOOK_TEST_EVENT": "payment"}
	if code, out, stderr := runCLI(t, envOf(env), "test"); code != 0 || strings.Count(out, " ok ") != 1 {
		t.Errorf("from variables: got %d %q %q, want the payment test passed", code, out, stderr)
	}
}
