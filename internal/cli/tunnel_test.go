package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/memstore"
	"github.com/sidehook/sidehook/relay/tunnel"
)

// tunnelRelay is the relay's tunnel side as the relay mounts it, for the
// tunnel command to dial: API key "k", organisation "demo".
func tunnelRelay(t *testing.T) (*httptest.Server, *tunnel.Server) {
	t.Helper()
	ts := tunnel.NewServer(tunnel.ServerOptions{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/tunnel", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k" {
			http.Error(w, `{"error":"unauthorized","reason":"invalid API key"}`, http.StatusUnauthorized)
			return
		}
		ts.Serve(w, r, "demo", r.URL.Query().Get("name"), nil)
	})
	mux.HandleFunc("GET /v1/endpoints", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"endpoints":[{"id":"crm","url":"tunnel://laptop/hooks","events":["*"],"auth":["standard"]}]}`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ts.Close(ctx)
		srv.Close()
	})
	return srv, ts
}

// startTunnel runs the tunnel command with args (and --json) until the
// test ends and returns its ready line; stop cancels it and returns its
// exit code.
func startTunnel(t *testing.T, args ...string) (ready map[string]any, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	var runErr error
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		runErr = Run(ctx, append([]string{"sidehook", "tunnel", "--json"}, args...), func(string) string { return "" }, strings.NewReader(""), out, io.Discard)
	}()
	var once sync.Once
	code := -1
	stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case <-exited:
				code = ExitCode(runErr, io.Discard)
			case <-time.After(10 * time.Second):
				t.Error("tunnel did not stop within 10s")
			}
		})
		return code
	}
	t.Cleanup(func() { stop() })
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, l := range strings.Split(out.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["type"] == "ready" {
				return m, stop
			}
		}
		select {
		case <-exited:
			t.Fatalf("tunnel exited: %v; output %q", runErr, out.String())
		case <-deadline.C:
			t.Fatalf("no ready line within 10s: %q", out.String())
		case <-tick.C:
		}
	}
}

func TestTunnelCommand(t *testing.T) {
	srv, ts := tunnelRelay(t)
	app, got := hookSink(t)
	ctx := context.Background()
	ready, stop := startTunnel(t, "--relay", srv.URL, "--api-key", "k", "--name", "laptop",
		"--forward", app.URL, "--events", "payment,inbound_message")
	if ready["public_url"] != srv.URL+"/in/demo" || !strings.HasPrefix(ready["inspector"].(string), "http://127.0.0.1:") {
		t.Errorf("ready line: got %v, want the public URL and an inspector on loopback", ready)
	}
	res, err := ts.Send(ctx, &relay.OutboundRequest{Method: http.MethodPost, URL: "tunnel://laptop/hooks", Org: "demo",
		Header: http.Header{"Sidehook-Event": {"payment"}}, Body: []byte(`{"type":"payment"}`), DeliveryID: "dlv_1", Attempt: 1}, 4096)
	if err != nil || res.Status != http.StatusOK {
		t.Fatalf("Send through the tunnel command: got %v %v, want 200", res, err)
	}
	if h := waitHeaders(t, got, 1); h[0].Get("Sidehook-Event") != "payment" {
		t.Errorf("app got %v, want Sidehook-Event payment", h[0])
	}
	if _, err := ts.Send(ctx, &relay.OutboundRequest{Method: http.MethodPost, URL: "tunnel://laptop/hooks", Org: "demo",
		Header: http.Header{"Sidehook-Event": {"delivery_report"}}, Body: []byte(`{}`)}, 4096); err == nil {
		t.Errorf("a delivery_report reached a tunnel started with --events payment,inbound_message")
	}
	if code := stop(); code != 0 {
		t.Errorf("tunnel after a signal: exit %d, want 0", code)
	}
}

// TestTunnelCommandForwardTLS: an app serving HTTPS with a certificate of
// its own is reached with --forward-ca or --skip-verify; without either,
// the attempt's error names them.
func TestTunnelCommandForwardTLS(t *testing.T) {
	app := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) }))
	app.Config.ErrorLog = log.New(io.Discard, "", 0)
	t.Cleanup(app.Close)
	caFile := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: app.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string // the attempt's error; "" for 200
	}{
		{"ForwardCA", []string{"--forward-ca", caFile}, ""},
		{"SkipVerify", []string{"--skip-verify"}, ""},
		{"Neither", nil, "--forward-ca FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, ts := tunnelRelay(t)
			startTunnel(t, append([]string{"--relay", srv.URL, "--api-key", "k", "--name", "laptop", "--forward", app.URL, "--inspect=false"}, tt.args...)...)
			res, err := ts.Send(context.Background(), &relay.OutboundRequest{Method: http.MethodPost, URL: "tunnel://laptop/hooks", Org: "demo",
				Header: http.Header{"Sidehook-Event": {"payment"}}, Body: []byte(`{}`), DeliveryID: "dlv_1", Attempt: 1}, 4096)
			switch {
			case tt.want == "" && (err != nil || res.Status != http.StatusOK):
				t.Errorf("got %+v %v, want 200", res, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %+v %v, want an error naming %s", res, err, tt.want)
			}
		})
	}
}

func TestTunnelCommandErrors(t *testing.T) {
	srv, _ := tunnelRelay(t)
	notPEM := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
		env  map[string]string
	}{
		{"WrongKey", []string{"--api-key", "wrong", "--name", "laptop", "--forward", "http://127.0.0.1:1"}, 1, "401 from http://127.0.0.1:", nil},
		{"NoForward", []string{"--api-key", "k", "--name", "laptop"}, 2, "--forward is required", nil},
		{"NoName", []string{"--api-key", "k", "--forward", "http://127.0.0.1:1"}, 2, "--name is required", nil},
		{"BadForward", []string{"--api-key", "k", "--name", "laptop", "--forward", "localhost:3000"}, 2, `tunnel: --forward: forward URL "localhost:3000"`, nil},
		// Named by the variable it came from, as every other flag's value.
		{"BadForwardFromEnv", []string{"--api-key", "k", "--name", "laptop"}, 2, `tunnel: SIDEHOOK_FORWARD: forward URL "localhost:3000"`,
			map[string]string{"SIDEHOOK_FORWARD": "localhost:3000"}},
		{"BadRelay", []string{"--api-key", "k", "--name", "laptop", "--forward", "http://127.0.0.1:1", "--relay", "relay:8080"}, 2, `tunnel: --relay: relay URL "relay:8080"`, nil},
		{"BadEvents", []string{"--api-key", "k", "--name", "laptop", "--forward", "http://127.0.0.1:1", "--events", "Nope!"}, 2, "not an event type", nil},
		{"PublicInspector", []string{"--api-key", "k", "--name", "laptop", "--forward", "http://127.0.0.1:1", "--inspect", "0.0.0.0:0"}, 2, "loopback", nil},
		{"InspectorNoPort", []string{"--api-key", "k", "--name", "laptop", "--forward", "http://127.0.0.1:1", "--inspect", "localhost"}, 2, "inspector address", nil},
		{"MissingCA", []string{"--api-key", "k", "--name", "laptop", "--forward", "http://127.0.0.1:1", "--ca", "/nonexistent/ca.pem"}, 2, "read --ca file", nil},
		{"MissingForwardCA", []string{"--api-key", "k", "--name", "laptop", "--forward", "https://127.0.0.1:1", "--forward-ca", "/nonexistent/ca.pem"}, 2, "read --forward-ca file", nil},
		{"ForwardCANotPEM", []string{"--api-key", "k", "--name", "laptop", "--forward", "https://127.0.0.1:1", "--forward-ca", notPEM}, 2, "holds no PEM certificate", nil},
		{"ForwardCAAndSkipVerify", []string{"--api-key", "k", "--name", "laptop", "--forward", "https://127.0.0.1:1", "--forward-ca", notPEM, "--skip-verify"}, 2, "--forward-ca and --skip-verify: choose one", nil},
		{"SkipVerifyPlainForward", []string{"--api-key", "k", "--name", "laptop", "--forward", "http://127.0.0.1:1", "--skip-verify"}, 2,
			"--skip-verify applies to an https:// --forward, not http://127.0.0.1:1, which has no certificate", nil},
		{"ForwardCAPlainForward", []string{"--api-key", "k", "--name", "laptop", "--forward", "http://127.0.0.1:1", "--forward-ca", notPEM}, 2,
			"--forward-ca applies to an https:// --forward", nil},
		// A variable is named as the variable; one exported for every
		// tunnel is refused only where it contradicts a flag, not for
		// each app that serves plain HTTP (the wrong key shows the
		// command got past its checks).
		{"BothOneFromEnv", []string{"--api-key", "k", "--name", "laptop", "--forward", "https://127.0.0.1:1", "--skip-verify"}, 2,
			"SIDEHOOK_FORWARD_CA and --skip-verify: choose one", map[string]string{"SIDEHOOK_FORWARD_CA": notPEM}},
		{"SkipVerifyFalsePlainForward", []string{"--api-key", "wrong", "--name", "laptop", "--forward", "http://127.0.0.1:1", "--skip-verify=false"}, 1, "401", nil},
		{"SkipVerifyBadForward", []string{"--api-key", "k", "--name", "laptop", "--forward", "localhost:3000", "--skip-verify"}, 2, `forward URL "localhost:3000"`, nil},
		{"SkipVerifyFromEnvPlainForward", []string{"--api-key", "wrong", "--name", "laptop", "--forward", "http://127.0.0.1:1"}, 1, "401",
			map[string]string{"SIDEHOOK_SKIP_VERIFY": "true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, envOf(tt.env), append([]string{"tunnel", "--relay", srv.URL}, tt.args...)...)
			if code != tt.code || !strings.Contains(stderr, tt.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("got exit %d %q, want %d and one line saying %q", code, stderr, tt.code, tt.want)
			}
		})
	}
}

func TestTunnelPrintSecret(t *testing.T) {
	srv, ts := tunnelRelay(t)
	code, out, stderr := runCLI(t, nil, "tunnel", "--relay", srv.URL, "--api-key", "k", "--name", "laptop",
		"--forward", "http://127.0.0.1:1", "--print-secret", "--inspect=false")
	if code != 0 || !strings.Contains(out, "POST "+srv.URL+"/in/demo") || !strings.Contains(out, "standard_secret") {
		t.Errorf("got exit %d %q (%s), want the public URL and the endpoint's standard scheme", code, out, stderr)
	}
	if n := len(ts.Tunnels("")); n != 0 {
		t.Errorf("--print-secret left %d clients connected", n)
	}
}

// TestTunnelPrintSecretNeedsNoForward: --print-secret forwards nothing, so
// it runs without --forward (README: "--print-secret prints what the app
// needs to verify and exits"); tunnel without it still needs --forward.
func TestTunnelPrintSecretNeedsNoForward(t *testing.T) {
	srv, _ := tunnelRelay(t)
	code, out, stderr := runCLI(t, nil, "tunnel", "--relay", srv.URL, "--api-key", "k", "--name", "laptop", "--print-secret")
	if code != 0 || !strings.Contains(out, "POST "+srv.URL+"/in/demo") || strings.Contains(out, "forwarding to") {
		t.Errorf("got exit %d %q (%s), want 0 and the public URL, no forward", code, out, stderr)
	}
	code, _, stderr = runCLI(t, nil, "tunnel", "--relay", srv.URL, "--api-key", "k", "--name", "laptop")
	if code != 2 || !strings.Contains(stderr, "--forward is required") {
		t.Errorf("without --print-secret: got exit %d %q, want 2 and --forward is required", code, stderr)
	}
}

func TestRelayCommandServesTunnels(t *testing.T) {
	url := startRelayCLI(t, nil, "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--api-key", "k")
	app, _ := hookSink(t)
	ready, stop := startTunnel(t, "--relay", url, "--api-key", "k", "--name", "laptop", "--forward", app.URL, "--inspect=false")
	if got, _ := ready["public_url"].(string); !strings.HasPrefix(got, url+"/in/") {
		t.Errorf("ready line %v lacks the relay's /in/ URL", ready)
	}
	if code := stop(); code != 0 {
		t.Errorf("tunnel after a signal: exit %d, want 0", code)
	}
}

// TestRelayTunnelsAnnounceMaxBody: the relay's tunnel server is told the
// relay's limits.max_body, so its ready announces a frame that holds a
// delivery of that body, and a tunnel client reads every event the relay
// takes (it used to stop at 64 MiB, under a 63 MiB body as base64).
func TestRelayTunnelsAnnounceMaxBody(t *testing.T) {
	const maxBody = 300 << 10
	ts, err := openRelayTunnels(context.Background(), memstore.New(), maxBody, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeTunnels(ts, zerolog.Nop()) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.Serve(w, r, "demo", "laptop", nil)
	}))
	t.Cleanup(srv.Close)
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	hello, _ := tunnel.Encode(&tunnel.Message{Type: tunnel.TypeHello, Version: tunnel.ProtocolVersion})
	if err := ws.WriteMessage(websocket.TextMessage, hello); err != nil {
		t.Fatal(err)
	}
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, data, err := ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	ready, err := tunnel.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(base64.StdEncoding.EncodedLen(maxBody)); ready.MaxMessage < want || ready.MaxMessage > 2*want {
		t.Errorf("ready: got max_message %d, want one that holds %d bytes of base64 and not far more", ready.MaxMessage, want)
	}
}
