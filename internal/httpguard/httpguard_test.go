package httpguard_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/sidehook/sidehook/internal/httpguard"
)

func newGuard(tb testing.TB, o httpguard.Options) *httpguard.Guard {
	tb.Helper()
	g, err := httpguard.New(o)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return g
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })

func TestGuard(t *testing.T) {
	t.Parallel()
	loopback := httpguard.Options{Loopback: true, AllowedHosts: []string{"Dev.Test"}}
	tests := []struct {
		name    string
		opts    httpguard.Options
		method  string
		host    string
		body    string
		headers map[string]string
		want    int
		code    string
	}{
		// (a) DNS rebinding on a loopback listener.
		{name: "OKLocalhost", opts: loopback, host: "localhost:8081", want: 204},
		{name: "OKLocalhostNoPort", opts: loopback, host: "localhost", want: 204},
		{name: "OKLocalhostTrailingDot", opts: loopback, host: "LOCALHOST.:8081", want: 204},
		{name: "OKUnderLocalhost", opts: loopback, host: "app.localhost:8081", want: 204},
		{name: "OKIPv4", opts: loopback, host: "127.0.0.1:8081", want: 204},
		{name: "OKOtherLoopbackIPv4", opts: loopback, host: "127.0.0.2", want: 204},
		{name: "OKIPv6", opts: loopback, host: "[::1]:8081", want: 204},
		{name: "OKAllowedName", opts: loopback, host: "dev.test:9000", want: 204},
		{name: "ErrRebound", opts: loopback, host: "attacker.example:8081", want: 421, code: "misdirected_request"},
		{name: "ErrRebindLookalike", opts: loopback, host: "localhost.attacker.example", want: 421, code: "misdirected_request"},
		{name: "ErrPublicIP", opts: loopback, host: "203.0.113.7:8081", want: 421, code: "misdirected_request"},
		{name: "ErrRebindPost", opts: loopback, method: "POST", host: "attacker.example", body: `{}`,
			headers: map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-origin"}, want: 421, code: "misdirected_request"},
		{name: "OKAnyHostBeyondLoopback", opts: httpguard.Options{}, host: "relay.example.com", want: 204},

		// (b) Cross-site state changes.
		{name: "OKSameOriginPost", opts: loopback, method: "POST", host: "localhost:8081", body: `{"to":"x"}`,
			headers: map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-origin", "Origin": "http://localhost:8081"}, want: 204},
		{name: "OKOriginMatchesHostOldBrowser", opts: loopback, method: "DELETE", host: "localhost:8081",
			headers: map[string]string{"Origin": "http://localhost:8081"}, want: 204},
		{name: "OKToolNoBrowserHeaders", opts: loopback, method: "POST", host: "127.0.0.1:8081", body: `{}`,
			headers: map[string]string{"Content-Type": "application/json; charset=utf-8"}, want: 204},
		{name: "OKEmptyPostNoContentType", opts: loopback, method: "POST", host: "localhost:8081",
			headers: map[string]string{"Sec-Fetch-Site": "same-origin"}, want: 204},
		{name: "OKJSONSuffix", opts: loopback, method: "PATCH", host: "localhost", body: `{}`,
			headers: map[string]string{"Content-Type": "application/merge-patch+json"}, want: 204},
		{name: "ErrCrossSiteTextPlain", opts: loopback, method: "POST", host: "localhost:8081", body: `{"x":1}`,
			headers: map[string]string{"Content-Type": "text/plain", "Sec-Fetch-Site": "cross-site", "Origin": "https://attacker.example"}, want: 403, code: "cross_site_request"},
		{name: "ErrCrossSiteEvenAsJSON", opts: loopback, method: "POST", host: "localhost:8081", body: `{}`,
			headers: map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, want: 403, code: "cross_site_request"},
		{name: "ErrSameSiteOtherPort", opts: loopback, method: "POST", host: "localhost:8081", body: `{}`,
			headers: map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-site", "Origin": "http://localhost:8080"}, want: 403, code: "cross_site_request"},
		{name: "ErrOriginMismatchOldBrowser", opts: loopback, method: "PUT", host: "localhost:8081", body: `{}`,
			headers: map[string]string{"Content-Type": "application/json", "Origin": "http://localhost:8080"}, want: 403, code: "cross_site_request"},
		{name: "ErrOriginNull", opts: loopback, method: "POST", host: "localhost:8081",
			headers: map[string]string{"Origin": "null"}, want: 403, code: "cross_site_request"},
		{name: "ErrCrossSiteBeyondLoopback", opts: httpguard.Options{}, method: "POST", host: "relay.example.com",
			headers: map[string]string{"Sec-Fetch-Site": "cross-site"}, want: 403, code: "cross_site_request"},
		{name: "OKTrustedOrigin", opts: httpguard.Options{TrustedOrigins: []string{"https://dash.example.com"}}, method: "POST", host: "relay.internal:8080",
			headers: map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://dash.example.com"}, want: 204},
		{name: "ErrTextPlainFromTool", opts: loopback, method: "POST", host: "localhost:8081", body: "reset",
			headers: map[string]string{"Content-Type": "text/plain"}, want: 415, code: "unsupported_media_type"},
		{name: "ErrFormFromTool", opts: loopback, method: "POST", host: "localhost:8081", body: "a=1",
			headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, want: 415, code: "unsupported_media_type"},
		{name: "ErrNoContentType", opts: loopback, method: "POST", host: "localhost:8081", body: "{}", want: 415, code: "unsupported_media_type"},
		{name: "OKCrossSiteGet", opts: loopback, host: "localhost:8081",
			headers: map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://attacker.example"}, want: 204},

		// Websocket handshakes are checked like state changes.
		{name: "OKWebsocketSameOrigin", opts: loopback, host: "localhost:8081",
			headers: map[string]string{"Upgrade": "websocket", "Connection": "Upgrade", "Origin": "http://localhost:8081"}, want: 204},
		{name: "ErrWebsocketCrossOrigin", opts: loopback, host: "localhost:8081",
			headers: map[string]string{"Upgrade": "WebSocket", "Connection": "Upgrade", "Origin": "https://attacker.example"}, want: 403, code: "cross_site_request"},
		{name: "ErrWebsocketCrossSite", opts: loopback, host: "localhost:8081",
			headers: map[string]string{"Upgrade": "websocket", "Sec-Fetch-Site": "cross-site"}, want: 403, code: "cross_site_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			r := httptest.NewRequest(method, "/_sidehook/reset", body)
			r.Host = tt.host
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			newGuard(t, tt.opts).Handler(ok).ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, tt.want)
			}
			if tt.code == "" {
				return
			}
			var ans struct{ Error, Reason string }
			if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil || ans.Error != tt.code || ans.Reason == "" {
				t.Fatalf("got %s (%v), want JSON error %q with a reason", w.Body, err, tt.code)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type: got %q, want application/json", ct)
			}
		})
	}
}

func TestNew_BadOptions(t *testing.T) {
	t.Parallel()
	for _, o := range []httpguard.Options{
		{AllowedHosts: []string{"http://x"}},
		{AllowedHosts: []string{"x:80"}},
		{AllowedHosts: []string{""}},
		{TrustedOrigins: []string{"not an origin/path"}},
	} {
		if _, err := httpguard.New(o); err == nil {
			t.Errorf("%+v: got nil error, want one", o)
		}
	}
}

func TestLoopbackAddr(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "[::1]:0": true, "localhost:8081": true, "127.1.2.3:1": true,
		":8080": false, "0.0.0.0:8080": false, "[::]:8080": false, "192.168.1.2:80": false, "example.com:80": false,
	} {
		if got := httpguard.LoopbackAddr(addr); got != want {
			t.Errorf("%q: got %v, want %v", addr, got, want)
		}
	}
}

// TestGuard_RealWebsocket dials a guarded websocket over a real loopback
// connection, as a browser on another origin and as the page itself.
func TestGuard_RealWebsocket(t *testing.T) {
	t.Parallel()
	upgrader := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }} // the guard decides
	srv := httptest.NewServer(newGuard(t, httpguard.Options{Loopback: true}).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		_ = c.WriteMessage(websocket.TextMessage, []byte("feed"))
		c.Close()
	})))
	t.Cleanup(srv.Close)
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http")

	c, resp, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Origin": {"https://attacker.example"}})
	if err == nil {
		c.Close()
		t.Fatal("cross-origin handshake: got a connection, want 403")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin handshake: got %v, %v, want 403", resp, err)
	}

	c, _, err = websocket.DefaultDialer.Dial(wsURL, http.Header{"Origin": {srv.URL}})
	if err != nil {
		t.Fatalf("same-origin handshake: %v", err)
	}
	defer c.Close()
	if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "feed" {
		t.Fatalf("same-origin read: got %q, %v", msg, err)
	}
}
