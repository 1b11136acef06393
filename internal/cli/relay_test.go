package cli

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// startRelayCLI runs `sidehook relay …` in-process until the test ends and
// returns its URL.
func startRelayCLI(t *testing.T, getenv func(string) string, args ...string) string {
	t.Helper()
	url, _ := startCommand(t, getenv, append([]string{"relay"}, args...)...)
	return url
}

// hookSink records the webhook-ids it receives.
func hookSink(t *testing.T) (*httptest.Server, func() []http.Header) {
	t.Helper()
	var mu sync.Mutex
	var got []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		got = append(got, r.Header.Clone())
		mu.Unlock()
		if r.URL.Query().Has("fields") {
			io.WriteString(w, `{"fullname":"Jane Doe","arrangementamount":"50.00"}`)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []http.Header {
		mu.Lock()
		defer mu.Unlock()
		return append([]http.Header(nil), got...)
	}
}

func waitHeaders(t *testing.T, get func() []http.Header, n int) []http.Header {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if h := get(); len(h) >= n {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d requests, want %d", len(get()), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRelayCommandOneOrg(t *testing.T) {
	srv, got := hookSink(t)
	secret := "0123456789abcdef0123456789abcdef"
	env := map[string]string{"SIDEHOOK_API_KEY": "k1", "SIDEHOOK_SECRET_KEY": secret}
	url := startRelayCLI(t, func(k string) string { return env[k] },
		"--listen", "127.0.0.1:0", "--data", t.TempDir(), "--endpoint", srv.URL+"/hook", "--custom-values", srv.URL+"/values")
	code, out, stderr := runCLI(t, nil, "send", "--relay", url, "--api-key", "k1", "--event", "payment", "--id", "evt_cli_1")
	if code != 0 || !strings.Contains(out, `"id":"evt_cli_1"`) || !strings.Contains(out, `"type":"payment"`) {
		t.Fatalf("send: exit %d, out %q, err %q", code, out, stderr)
	}
	h := waitHeaders(t, got, 1)
	if h[0].Get("webhook-id") != "evt_cli_1" || h[0].Get("x-webio-token") == "" {
		t.Errorf("delivery headers: got %v", h[0])
	}
}

func TestRelayCommandConfigFile(t *testing.T) {
	srv, got := hookSink(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sidehook.yaml")
	os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\ndata: "+filepath.Join(dir, "data")+"\norganisations:\n  - id: acme\n    api_keys: [env:ACME_KEY]\n    endpoints:\n      - {id: crm, url: "+srv.URL+"/hook}\n"), 0o600)
	url := startRelayCLI(t, func(k string) string {
		if k == "ACME_KEY" {
			return "acme-key"
		}
		return ""
	}, "--config", cfg)
	code, _, stderr := runCLI(t, nil, "send", "--relay", url, "--api-key", "acme-key", "--event", "inbound_message")
	if code != 0 {
		t.Fatalf("send: exit %d: %s", code, stderr)
	}
	waitHeaders(t, got, 1)
}

func TestRelayCommandUsageErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("organisations:\n  - id: demo\n    endpoints:\n      - {id: a, url: http://x}\n      - {id: b, url: nope}\n"), 0o600)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"NoConfigNoKey", []string{"relay"}, "give --config FILE"},
		{"MissingFile", []string{"relay", "--config", filepath.Join(dir, "none.yaml")}, "no such file"},
		{"InvalidConfig", []string{"relay", "--config", bad}, "organisations[0].endpoints[1].url"},
		{"BadEndpointFlag", []string{"relay", "--api-key", "k", "--endpoint", "ftp://x"}, "not an absolute http(s) URL"},
		{"TunnelEndpoint", []string{"relay", "--api-key", "k", "--endpoint", "tunnel://laptop"}, "tunnel endpoints are not supported yet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, nil, tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("got exit %d %q, want 2 and %q", code, stderr, tt.want)
			}
		})
	}
}
