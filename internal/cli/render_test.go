package cli

import (
	"strings"
	"testing"
)

func TestRenderCommand(t *testing.T) {
	srv, _ := hookSink(t)
	url := startRelayCLI(t, nil, "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--api-key", "k", "--custom-values", srv.URL+"/values")
	code, out, stderr := runCLI(t, nil, "render", "--relay", url, "--api-key", "k",
		"--template", "Hi <<fullname>>, you owe <<arrangementamount|an amount>> by <<duedate|Friday>> <<x>>",
		"--customer-uid", "ACC-10023", "--channel-id", "447700900123")
	if want := "Hi Jane Doe, you owe 50.00 by Friday null\n"; code != 0 || out != want {
		t.Errorf("got exit %d %q (%s), want %q", code, out, stderr, want)
	}
	code, out, _ = runCLI(t, nil, "render", "--relay", url, "--api-key", "k", "--template", "<<fullname>>", "--json")
	if code != 0 || !strings.Contains(out, `"missing":[]`) {
		t.Errorf("--json: got %d %q", code, out)
	}
	if code, _, stderr := runCLI(t, nil, "render", "--relay", url, "--api-key", "k"); code != 2 || !strings.Contains(stderr, "--template") {
		t.Errorf("no template: got %d %q", code, stderr)
	}
}

func TestRenderCommandFailure(t *testing.T) {
	url := startRelayCLI(t, nil, "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--api-key", "k", "--custom-values", "http://127.0.0.1:1/values")
	code, _, stderr := runCLI(t, nil, "render", "--relay", url, "--api-key", "k", "--template", "<<fullname>>")
	if code != 1 || !strings.Contains(stderr, "502") {
		t.Errorf("got exit %d %q, want 1 with the relay's 502", code, stderr)
	}
}
