package receiver_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/receiver/memstore"
)

// TestGuards: on loopback, the admin API and the dashboard answer only
// loopback Host names and those allowed (DNS rebinding), and refuse
// cross-site state changes; capture paths take any request.
func TestGuards(t *testing.T) {
	srv := start(t, receiver.Config{AllowHosts: []string{"hooks.test"}})
	send(t, "POST", srv.URL()+"/keep", []byte(`{}`), nil)
	port := srv.URL()[strings.LastIndex(srv.URL(), ":"):]
	tests := []struct {
		name, method, path string
		hdr                map[string]string
		body               string
		status             int
	}{
		{"RebindList", "GET", "/_sidehook/requests", map[string]string{"Host": "evil.example" + port}, "", 421},
		{"RebindUI", "GET", "/_sidehook/ui/", map[string]string{"Host": "evil.example" + port}, "", 421},
		{"RebindWS", "GET", "/_sidehook/ws", map[string]string{"Host": "evil.example"}, "", 421},
		{"AllowedHost", "GET", "/_sidehook/requests", map[string]string{"Host": "hooks.test" + port}, "", 200},
		{"Localhost", "GET", "/_sidehook/requests", map[string]string{"Host": "localhost" + port}, "", 200},
		{"CaptureAnyHost", "POST", "/other", map[string]string{"Host": "evil.example"}, "", 200},
		{"CrossSiteReset", "POST", "/_sidehook/reset", map[string]string{"Content-Type": "text/plain", "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, "x", 403},
		{"CrossSiteNoBodyReset", "POST", "/_sidehook/reset", map[string]string{"Origin": "http://evil.example"}, "", 403},
		{"TextPlainRules", "POST", "/_sidehook/rules", map[string]string{"Content-Type": "text/plain"}, `{"respond":{"status":500}}`, 415},
		{"CrossSiteDelete", "DELETE", "/_sidehook/requests", map[string]string{"Sec-Fetch-Site": "cross-site"}, "", 403},
		{"CrossSiteWS", "GET", "/_sidehook/ws", map[string]string{"Upgrade": "websocket", "Connection": "Upgrade", "Origin": "http://evil.example"}, "", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			req, err := http.NewRequest(tt.method, srv.URL()+tt.path, strings.NewReader(string(body)))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.hdr {
				if k == "Host" {
					req.Host = v
					continue
				}
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("got %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
	caps, _ := list(t, srv, "")
	if len(caps) != 2 {
		t.Errorf("%d captures after the refused resets and deletes, want the 2 kept", len(caps))
	}
	if r := send(t, "POST", srv.URL()+"/x", nil, nil); r.status != 200 {
		t.Errorf("a refused rules POST installed a rule: capture answered %d", r.status)
	}
}

// TestNewRejectsBadAllowHost: an allowed host is a name, not a URL.
func TestNewRejectsBadAllowHost(t *testing.T) {
	_, err := receiver.New(receiver.Config{Listen: "127.0.0.1:0", Store: memstore.New(), AllowHosts: []string{"http://x"}})
	if err == nil || !strings.Contains(err.Error(), "http://x") {
		t.Errorf("New with an allowed host with a scheme: got %v, want an error naming it", err)
	}
}

// TestAPIRedactsCredentials: list, get, wait and export give the
// credential headers as the dashboard does (a JWT without its signature),
// so none of them hands out a token that verifies.
func TestAPIRedactsCredentials(t *testing.T) {
	srv := start(t, receiver.Config{})
	tok := webioToken(t, testSecret, testOrg)
	// Known by name or by a word in the name, whatever the platform.
	byName := map[string]string{"x-api-key": "k_live_SECRET1", "x-auth-token": "SECRET2", "stripe-signature": "t=1,v1=SECRET3",
		"x-hub-signature-256": "sha256=SECRET4", "x-shopify-hmac-sha256": "SECRET5", "x-gitlab-token": "SECRET6"}
	hdr := map[string]string{"x-webio-token": tok, "cookie": "s=1", "webhook-id": "evt_red", "idempotency-key": "idem_visible"}
	for k, v := range byName {
		hdr[k] = v
	}
	send(t, "POST", srv.URL()+"/x", []byte(`{}`), hdr)
	unsigned := tok[:strings.LastIndex(tok, ".")] + ".[redacted]"
	c := only(t, srv)
	for _, path := range []string{"/_sidehook/requests", "/_sidehook/requests/" + c.ID, "/_sidehook/requests/wait", "/_sidehook/requests/export", "/_sidehook/requests/export?format=har", "/_sidehook/requests/export?format=curl"} {
		body := string(send(t, "GET", srv.URL()+path, nil, nil).body)
		sig := tok[strings.LastIndex(tok, ".")+1:]
		if strings.Contains(body, sig) || strings.Contains(body, "s=1") || !strings.Contains(body, unsigned) {
			t.Errorf("%s: the token's signature or the cookie left the server, or the unsigned token is missing:\n%s", path, body)
		}
		for k, v := range byName {
			if strings.Contains(body, v) {
				t.Errorf("%s: %s left the server in the clear:\n%s", path, k, body)
			}
		}
		if !strings.Contains(body, "evt_red") || !strings.Contains(body, "idem_visible") {
			t.Errorf("%s: webhook-id or idempotency-key is not shown:\n%s", path, body)
		}
	}
}

// TestAddRulesSaysWhatContentTypeIsTaken: POST /_sidehook/rules takes a
// JSON body only (SPEC §6: state-changing calls carry JSON bodies); a YAML
// rules list, which the rules file may be, is refused 415 with a reason
// naming the content type that came and the ones that are taken, and no
// rule is added.
func TestAddRulesSaysWhatContentTypeIsTaken(t *testing.T) {
	srv := start(t, receiver.Config{})
	const yamlRules = "- match: {path: /y}\n  respond: {status: 500}\n"
	tests := []struct {
		name, contentType string
		want              string // in the reason: what came
	}{
		{"ApplicationYAML", "application/yaml", `"application/yaml"`},
		{"ApplicationXYAML", "application/x-yaml", `"application/x-yaml"`},
		{"TextYAML", "text/yaml; charset=utf-8", `"text/yaml; charset=utf-8"`},
		{"NoContentType", "", "no Content-Type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("POST", srv.URL()+"/_sidehook/rules", strings.NewReader(yamlRules))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", tt.contentType)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var ans struct{ Error, Reason string }
			if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
				t.Fatalf("answer %d: %v, want a JSON error", resp.StatusCode, err)
			}
			if resp.StatusCode != http.StatusUnsupportedMediaType || ans.Error != "unsupported_media_type" {
				t.Fatalf("got %d %+v, want 415 unsupported_media_type", resp.StatusCode, ans)
			}
			for _, want := range []string{tt.want, "application/json", "application/*+json"} {
				if !strings.Contains(ans.Reason, want) {
					t.Errorf("reason %q: want it to name %s", ans.Reason, want)
				}
			}
		})
	}
	if rules := srv.Rules(); len(rules) != 0 {
		t.Errorf("got %d rules after the refused posts, want none", len(rules))
	}
}
