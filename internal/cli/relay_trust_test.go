package cli

import (
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRelayTrustFlagErrors(t *testing.T) {
	short := func(name string) string {
		if name == "SIDEHOOK_ADMIN_TOKEN" {
			return "short"
		}
		return ""
	}
	base := []string{"relay", "--in-memory", "--listen", "127.0.0.1:0", "--api-key", "k"}
	tests := []struct {
		name   string
		getenv func(string) string
		args   []string
		want   string
	}{
		{"ShortAdminToken", nil, []string{"--admin-token", "x"}, "relay: --admin-token: 1 bytes, need at least 16"},
		{"ShortAdminTokenFromEnv", short, nil, "relay: SIDEHOOK_ADMIN_TOKEN: 5 bytes, need at least 16"},
		{"BadAllowTarget", nil, []string{"--allow-target", "10.0.0.0/40"}, "relay: --allow-target: \"10.0.0.0/40\" is not a CIDR"},
		{"BadAllowHost", nil, []string{"--allow-host", "http://x"}, "allowed host \"http://x\""},
		{"DeniedEndpoint", nil, []string{"--endpoint", "http://169.254.169.254/latest"}, "organisations[0].endpoints[0].url: target 169.254.169.254:80 is not allowed"},
	}
	dir := t.TempDir()
	denied := filepath.Join(dir, "denied.yaml")
	os.WriteFile(denied, []byte("organisations:\n  - id: demo\n    api_keys: [k]\n    endpoints:\n      - {id: meta, url: 'http://169.254.169.254/'}\n"), 0o600)
	tests = append(tests, struct {
		name   string
		getenv func(string) string
		args   []string
		want   string
	}{"CheckConfigDenied", nil, []string{"--check-config", "--config", denied}, "organisations[0].endpoints[0].url: target 169.254.169.254:80 is not allowed"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(base, tt.args...)
			if strings.HasPrefix(tt.name, "CheckConfig") {
				args = append([]string{"relay"}, tt.args...)
			}
			code, _, stderr := runCLI(t, tt.getenv, args...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("got exit %d %q, want 2 and %q", code, stderr, tt.want)
			}
		})
	}
}

// TestRelayAdminTokenBeyondLoopback: --admin-token opens /metrics of a
// relay on every interface; nothing else does, and --allow-target lets a
// denied endpoint through.
func TestRelayAdminTokenBeyondLoopback(t *testing.T) {
	const admin = "admin-token-0123456789"
	raw := startRelayCLI(t, nil, "--in-memory", "--listen", "0.0.0.0:0", "--api-key", "key-of-demo",
		"--admin-token", admin, "--allow-target", "169.254.169.254", "--endpoint", "http://169.254.169.254/hooks")
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + net.JoinHostPort("127.0.0.1", u.Port())
	for _, tt := range []struct {
		token string
		want  int
	}{{"", http.StatusUnauthorized}, {"wrong-token-0123456789", http.StatusUnauthorized}, {admin, http.StatusOK}} {
		req, _ := http.NewRequest("GET", base+"/metrics", nil)
		if tt.token != "" {
			req.Header.Set("Authorization", "Bearer "+tt.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("GET /metrics with %q: got %d, want %d", tt.token, resp.StatusCode, tt.want)
		}
	}
}

// TestRelayCheckConfigAllowHintOnce: a refused endpoint's error says how
// to allow it exactly once, whether the target package's reason already
// names --allow-target (the ranges denied by default) or not (a deny rule
// of the file); it used to say it twice.
func TestRelayCheckConfigAllowHintOnce(t *testing.T) {
	tests := []struct {
		name    string
		extra   string // top-level YAML before organisations:
		url     string
		wantMsg string
	}{
		{"LinkLocal", "", "http://169.254.169.254/latest", "allow it with --allow-target 169.254.169.254"},
		{"LinkLocalIPv6", "", "http://[fe80::1]:8080/", "allow it with --allow-target fe80::1"},
		{"DenyRule", "deny_targets: [10.0.0.0/8]\n", "http://10.1.2.3:3000/webhooks", "it matches the deny rule 10.0.0.0/8; allow it with --allow-target 10.1.2.3"},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name+".yaml")
			yaml := tt.extra + "organisations:\n  - id: demo\n    api_keys: [k]\n    endpoints:\n      - {id: crm, url: '" + tt.url + "'}\n"
			if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := runCLI(t, nil, "relay", "--config", path, "--check-config")
			if code != 2 || stdout != "" {
				t.Fatalf("got exit %d, stdout %q, want 2 and nothing", code, stdout)
			}
			if n := strings.Count(stderr, "\n"); n != 1 {
				t.Errorf("got %d lines %q, want one", n, stderr)
			}
			if n := strings.Count(stderr, "--allow-target"); n != 1 {
				t.Errorf("got the --allow-target hint %d times in %q, want once", n, stderr)
			}
			if !strings.Contains(stderr, tt.wantMsg) {
				t.Errorf("got %q, want it to contain %q", stderr, tt.wantMsg)
			}
		})
	}
}
