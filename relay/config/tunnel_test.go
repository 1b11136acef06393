package config_test

import (
	"strings"
	"testing"

	"github.com/sidehook/sidehook/relay/config"
)

func TestTunnelEndpoint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url, name, path string
		want            string // error substring; "" valid
	}{
		{url: "tunnel://laptop", name: "laptop"},
		{url: "tunnel://laptop/", name: "laptop", path: "/"},
		{url: "tunnel://dev-1.team_a/webhooks/in", name: "dev-1.team_a", path: "/webhooks/in"},
		{url: "TUNNEL://laptop/x", name: "laptop", path: "/x"},
		{url: "tunnel://l/a%20b", name: "l", path: "/a%20b"},
		{url: "tunnel://" + strings.Repeat("a", 63), name: strings.Repeat("a", 63)},
		{url: "tunnel://" + strings.Repeat("a", 64), want: "tunnel name"},
		{url: "tunnel://", want: "tunnel name \"\""},
		{url: "tunnel:///x", want: "tunnel name \"\""},
		{url: "tunnel://Laptop", want: "tunnel name \"Laptop\""},
		{url: "tunnel://-laptop", want: "tunnel name"},
		{url: "tunnel://laptop:8080", want: "tunnel name \"laptop:8080\""},
		{url: "tunnel://user@laptop", want: "tunnel name"},
		{url: "tunnel://laptop?x=1", want: "tunnel name"},
		{url: "tunnel://laptop/x?y=1", want: "no query or fragment"},
		{url: "tunnel://laptop/x#y", want: "no query or fragment"},
		{url: "tunnel://laptop/a b", want: "percent-encode"},
		{url: "tunnel://laptop/é", want: "percent-encode"},
		{url: "tunnel://laptop/a%zz", want: "bad percent-encoding"},
		{url: "tunnel://laptop/../admin", want: `no "." or ".." segments`},
		{url: "tunnel://laptop/a/./b", want: `no "." or ".." segments`},
		// Percent-encoded dots and separators are what the local app
		// reads after decoding: "/%2e%2e/admin" climbs out of --forward.
		{url: "tunnel://laptop/%2e%2e/admin", want: `no "." or ".." segments`},
		{url: "tunnel://laptop/a/%2E%2e/b", want: `no "." or ".." segments`},
		{url: "tunnel://laptop/.%2e", want: `no "." or ".." segments`},
		{url: "tunnel://laptop/%2e/b", want: `no "." or ".." segments`},
		{url: "tunnel://laptop/a%2f..%2fb", want: `no "." or ".." segments`},
		{url: "tunnel://laptop/a%5c..%5cb", want: `no "." or ".." segments`},
		{url: "tunnel://laptop/..;/admin", want: `no "." or ".." segments`},
		{url: "tunnel://laptop/a/%2e%2e%3bjsessionid=1/b", want: `no "." or ".." segments`},
		{url: "tunnel://laptop/a..b/%2e%2ex/.well-known", name: "laptop", path: "/a..b/%2e%2ex/.well-known"},
		{url: "tunnel://laptop/v1;a=1/x", name: "laptop", path: "/v1;a=1/x"},
		{url: "tunnel://laptop/" + strings.Repeat("a", 1100), want: "longer than 1024"},
	}
	o := &config.Org{ID: "demo"}
	for _, tt := range tests {
		e, err := config.RawEndpoint{ID: "t", URL: tt.url}.Validate("", o)
		if tt.want != "" {
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "url: ") {
				t.Errorf("%.40q: got %v, want a url error containing %q", tt.url, err, tt.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: got %v, want valid", tt.url, err)
			continue
		}
		name, path, ok := e.Tunnel()
		if !ok || name != tt.name || path != tt.path {
			t.Errorf("%q: Tunnel() got %q, %q, %v, want %q, %q", tt.url, name, path, ok, tt.name, tt.path)
		}
	}
	e, err := config.RawEndpoint{ID: "h", URL: "https://example.com/tunnel://x"}.Validate("", o)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := e.Tunnel(); ok {
		t.Error("http endpoint: Tunnel() got ok, want false")
	}
}

func TestTunnelEndpointInFile(t *testing.T) {
	t.Parallel()
	c, err := config.Parse([]byte(org+"    endpoints:\n      - {id: a, url: 'tunnel://laptop/hooks'}\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	e := c.Organisations[0].Endpoints[0]
	if name, path, ok := e.Tunnel(); !ok || name != "laptop" || path != "/hooks" {
		t.Fatalf("got %q %q %v, want \"laptop\" \"/hooks\" true", name, path, ok)
	}
	if back, err := e.Raw().Validate("", &c.Organisations[0]); err != nil || back.URL != e.URL {
		t.Fatalf("round trip: got %+v, %v", back, err)
	}
}

func TestEndpointURLCredentials(t *testing.T) {
	t.Parallel()
	_, err := config.RawEndpoint{ID: "a", URL: "https://user:pass@example.com/"}.Validate("", &config.Org{ID: "demo"})
	if err == nil || strings.Contains(err.Error(), "pass") {
		t.Fatalf("got %v, want an error that does not repeat the password", err)
	}
}
