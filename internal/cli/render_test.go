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
		t.Errorf("--json: got %d %q, want 0 with `\"missing\":[]`", code, out)
	}
	// The template as the one argument, as a user first types it.
	code, out, stderr = runCLI(t, nil, "render", "--relay", url, "--api-key", "k", "--customer-uid", "ACC-10023", "Hi <<fullname>>")
	if want := "Hi Jane Doe\n"; code != 0 || out != want {
		t.Errorf("template argument: got exit %d %q (%s), want %q", code, out, stderr, want)
	}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"None", nil, "give the TEMPLATE"},
		{"Both", []string{"--template", "<<a>>", "<<b>>"}, "not both"},
		{"FlagAfter", []string{"Hi <<fullname>>", "--customer-uid", "ACC-10023"}, "with the flags before it"},
		// render "$TEMPLATE" with the variable unset printed an empty
		// line and exit 0.
		{"EmptyArgument", []string{""}, "render: the template is empty"},
		{"EmptyFlag", []string{"--template", ""}, "render: the template is empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, nil, append([]string{"render", "--relay", url, "--api-key", "k"}, tt.args...)...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("got %d %q, want 2 and %q", code, stderr, tt.want)
			}
		})
	}
	// A required flag after the template is given, only in the wrong
	// place: the error said "--api-key is required".
	code, _, stderr = runCLI(t, nil, "render", "--relay", url, "Hi <<fullname>>", "--api-key", "k")
	if want := "with the flags before it"; code != 2 || !strings.Contains(stderr, want) {
		t.Errorf("required flag after the template: got %d %q, want 2 and %q", code, stderr, want)
	}
}

func TestRenderCommandFailure(t *testing.T) {
	url := startRelayCLI(t, nil, "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--api-key", "k", "--custom-values", "http://127.0.0.1:1/values")
	code, _, stderr := runCLI(t, nil, "render", "--relay", url, "--api-key", "k", "--template", "<<fullname>>")
	if code != 1 || !strings.Contains(stderr, "502") {
		t.Errorf("got exit %d %q, want 1 with the relay's 502", code, stderr)
	}
}
