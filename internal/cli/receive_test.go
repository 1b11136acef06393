package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startReceive runs `sidehook receive` in-process on a free port.
func startReceive(t *testing.T, getenv func(string) string, args ...string) (url string, stop func() error) {
	t.Helper()
	return startCommand(t, getenv, append([]string{"receive", "--listen", "127.0.0.1:0"}, args...)...)
}

func TestReceiveCommand(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	os.WriteFile(rules, []byte("- match: {path: /flaky}\n  respond: {status: 503}\n"), 0o600)
	env := map[string]string{"SIDEHOOK_RECEIVE_MAX_BODY": "64B"}
	url, stop := startReceive(t, func(k string) string { return env[k] },
		"--data", filepath.Join(dir, "data"), "--rules", rules, "--secret-key", "0123456789abcdef0123456789abcdef", "--org", "demo")

	post := func(path string, body string) int {
		resp, err := http.Post(url+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := post("/hooks", `{"type":"payment"}`); s != 401 {
		t.Errorf("no token: got %d, want 401", s)
	}
	code, tok, _ := runCLI(t, nil, "token", "--secret-key", "0123456789abcdef0123456789abcdef", "--org", "demo")
	if code != 0 {
		t.Fatal("token command failed")
	}
	req, _ := http.NewRequest("POST", url+"/flaky", strings.NewReader(`{}`))
	req.Header.Set("x-webio-token", strings.TrimSpace(tok))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("rules file: got %d, want 503", resp.StatusCode)
	}
	if s := post("/big", strings.Repeat("x", 65)); s != 413 {
		t.Errorf("SIDEHOOK_RECEIVE_MAX_BODY=64B: got %d, want 413", s)
	}
	resp, err = http.Get(url + "/_sidehook/requests/count")
	if err != nil {
		t.Fatal(err)
	}
	var n map[string]int
	json.NewDecoder(resp.Body).Decode(&n)
	resp.Body.Close()
	if n["count"] != 3 {
		t.Errorf("count: got %d, want 3", n["count"])
	}
	if err := stop(); err != nil {
		t.Errorf("stop: got %v, want a clean exit", err)
	}
}

func TestReceiveUsageErrors(t *testing.T) {
	dir := t.TempDir()
	badRules := filepath.Join(dir, "rules.json")
	os.WriteFile(badRules, []byte(`[{"respond":{"status":700}}]`), 0o600)
	badValues := filepath.Join(dir, "values.yaml")
	os.WriteFile(badValues, []byte("defaults: {}\n"), 0o600)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"BadRules", []string{"--rules", badRules}, badRules + ": rule 1: respond.status: 700"},
		{"MissingRules", []string{"--rules", filepath.Join(dir, "nope.yaml")}, "nope.yaml"},
		{"BadValues", []string{"--values", badValues}, badValues},
		{"BadMaxBody", []string{"--max-body", "lots"}, "--max-body"},
		// The flag, as relay and token name it, not the receiver's
		// internals ("receiver: webio secret: auth: …").
		{"WeakSecret", []string{"--secret-key", "short"}, "receive: --secret-key: 5 bytes, need at least 32"},
		{"WeakJWTSecret", []string{"--jwt-secret", "short"}, "receive: --jwt-secret: 5 bytes, need at least 32"},
		{"BadStandardSecret", []string{"--standard-secret", "nope"}, `receive: --standard-secret: must start with "whsec_"`},
		{"BadSecondStandardSecret", []string{"--standard-secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "--standard-secret", "nope"}, `receive: --standard-secret (2 of 2): must start with "whsec_"`},
		{"AdminTokenBeyondLoopback", []string{"--listen", "0.0.0.0:0"}, `receive: --listen "0.0.0.0:0" is beyond loopback, where the admin API needs a token: give --admin-token (or SIDEHOOK_ADMIN_TOKEN), at least 16 bytes`},
		{"OrgWithoutSecret", []string{"--org", "demo"}, "--org needs --secret-key"},
		{"EmptyJWTSecret", []string{"--jwt-secret", ""}, "receive: --jwt-secret is empty"},
		{"EmptySecretKey", []string{"--secret-key", ""}, "receive: --secret-key is empty"},
		{"EmptyOldSecretName", []string{"--webio-secret", ""}, "receive: --webio-secret is empty"},
		{"BadJWKS", []string{"--jwks-url", "file:///etc/passwd"}, "--jwks-url"},
		{"MissingKeyFile", []string{"--jwt-public-key", filepath.Join(dir, "none.pem")}, "--jwt-public-key"},
		// Named by its flag, not as "receiver: allowed host …".
		{"BadAllowHost", []string{"--allow-host", "http://app.test"}, `receive: --allow-host: allowed host "http://app.test": want a host name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"receive", "--in-memory", "--listen", "127.0.0.1:0"}, tt.args...)
			code, _, stderr := runCLI(t, nil, args...)
			if code != 2 {
				t.Errorf("exit code: got %d, want 2 (stderr %q)", code, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr: got %q, want it to contain %q", stderr, tt.want)
			}
			if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 0 {
				t.Errorf("stderr: got %d lines, want one: %q", n+1, stderr)
			}
		})
	}
}

// TestReceiveMaxBodyOverTheStore: a --max-body the Badger capture store
// cannot hold is a usage error in one line naming where it came from and
// the limit (such a body was a 503 "capture not stored" at every try); in
// memory there is no such limit.
func TestReceiveMaxBodyOverTheStore(t *testing.T) {
	want := "is more than the Badger store holds of one capture: at most 62 MiB"
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		source string
	}{
		{"Flag", []string{"--max-body", "100MiB"}, nil, "receive: --max-body: 100 MiB "},
		{"Variable", nil, map[string]string{"SIDEHOOK_RECEIVE_MAX_BODY": "100MiB"}, "receive: SIDEHOOK_RECEIVE_MAX_BODY: 100 MiB "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"receive", "--listen", "127.0.0.1:0", "--data", t.TempDir()}, tt.args...)
			code, _, stderr := runCLI(t, envOf(tt.env), args...)
			if code != 2 || !strings.Contains(stderr, tt.source+want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("got %d %q, want 2 and one line with %q", code, stderr, tt.source+want)
			}
		})
	}
	t.Run("InMemory", func(t *testing.T) {
		_, stop := startReceive(t, nil, "--in-memory", "--max-body", "100MiB")
		if err := stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"1MiB", 1 << 20}, {"512KiB", 512 << 10}, {"2MB", 2_000_000}, {"65536", 65536},
		{"64B", 64}, {"1.5kib", 1536}, {"1 mib", 1 << 20}, {"1g", 1_000_000_000}, {"1GiB", 1 << 30},
	}
	for _, tt := range tests {
		if got, err := parseSize(tt.in); err != nil || got != tt.want {
			t.Errorf("parseSize(%q): got %d %v, want %d", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "0", "1XB", "1e3", "2TiB"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q): want an error", bad)
		}
	}
}

// TestReceiveWarnsWithoutOrg: a Webio secret without --org accepts any
// organisation's token; the receiver says so when it starts.
func TestReceiveWarnsWithoutOrg(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"sidehook", "--log-format", "json", "receive", "--listen", "127.0.0.1:0", "--in-memory",
			"--secret-key", "0123456789abcdef0123456789abcdef"}, func(string) string { return "" }, strings.NewReader(""), io.Discard, logs)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), `"ready"`) {
		if time.Now().After(deadline) {
			t.Fatalf("not ready within 10s: %s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if !strings.Contains(logs.String(), "without --org") {
		t.Fatalf("got logs %s, want a warning that any organisation is accepted", logs.String())
	}
}

// TestReceiveDiskReserve: a data directory whose disk has less free space
// than --min-free-disk is refused at start, in one line, exit 1: the
// receiver never starts filling a disk it cannot flush on.
func TestReceiveDiskReserve(t *testing.T) {
	code, _, stderr := runCLI(t, nil, "receive", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--min-free-disk", "1TiB")
	if code != 1 || !strings.Contains(stderr, "disk full") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("got exit %d, stderr %q; want 1 and one line saying disk full", code, stderr)
	}
	if code, _, stderr := runCLI(t, nil, "receive", "--in-memory", "--min-free-disk", "lots"); code != 2 || !strings.Contains(stderr, "--min-free-disk") {
		t.Fatalf("got exit %d, stderr %q; want a usage error naming the flag", code, stderr)
	}
}

// TestTwoReceiversOneDataDir: a second receiver given a data directory
// another holds says so in one line, what to do, and exits 1, not
// Badger's "Cannot acquire directory lock on …" with the path twice.
func TestTwoReceiversOneDataDir(t *testing.T) {
	dir := t.TempDir()
	startCommand(t, nil, "receive", "--data", dir, "--listen", "127.0.0.1:0")
	code, out, stderr := runCLI(t, nil, "receive", "--data", dir, "--listen", "127.0.0.1:0")
	want := "sidehook: receive: " + dir + " is in use by another receiver: stop it, or give this one another data directory with --data (or SIDEHOOK_RECEIVE_DATA), or --in-memory\n"
	if code != 1 || out != "" || stderr != want {
		t.Errorf("got %d %q %q, want 1 and %q", code, out, stderr, want)
	}
}
