package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
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
			http.Error(w, "unauthorized", http.StatusUnauthorized)
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

func TestTunnelCommand(t *testing.T) {
	srv, ts := tunnelRelay(t)
	app, got := hookSink(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"sidehook", "tunnel", "--relay", srv.URL, "--api-key", "k", "--name", "laptop",
			"--forward", app.URL, "--json", "--events", "payment,inbound_message"}, func(string) string { return "" }, strings.NewReader(""), out, io.Discard)
	}()
	deadline := time.Now().Add(10 * time.Second)
	var ready map[string]any
	for ready == nil {
		for _, l := range strings.Split(out.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["type"] == "ready" {
				ready = m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ready line within 10s: %q", out.String())
		}
		select {
		case err := <-done:
			t.Fatalf("tunnel exited: %v; output %q", err, out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
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
	cancel()
	select {
	case err := <-done:
		if code := ExitCode(err, io.Discard); code != 0 {
			t.Errorf("tunnel after a signal: exit %d (%v), want 0", code, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tunnel did not stop within 10s")
	}
}

func TestTunnelCommandErrors(t *testing.T) {
	srv, _ := tunnelRelay(t)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"WrongKey", []string{"--api-key", "wrong", "--name", "laptop", "--forward", "http://127.0.0.1:1"}, 1, "401"},
		{"NoForward", []string{"--api-key", "k", "--name", "laptop"}, 2, "--forward is required"},
		{"NoName", []string{"--api-key", "k", "--forward", "http://127.0.0.1:1"}, 2, "--name is required"},
		{"BadForward", []string{"--api-key", "k", "--name", "laptop", "--forward", "localhost:3000"}, 2, "forward URL"},
		{"BadEvents", []string{"--api-key", "k", "--name", "laptop", "--forward", "http://127.0.0.1:1", "--events", "Nope!"}, 2, "not an event type"},
		{"PublicInspector", []string{"--api-key", "k", "--name", "laptop", "--forward", "http://127.0.0.1:1", "--inspect", "0.0.0.0:0"}, 2, "loopback"},
		{"InspectorNoPort", []string{"--api-key", "k", "--name", "laptop", "--forward", "http://127.0.0.1:1", "--inspect", "localhost"}, 2, "inspector address"},
		{"MissingCA", []string{"--api-key", "k", "--name", "laptop", "--forward", "http://127.0.0.1:1", "--ca", "/nonexistent/ca.pem"}, 2, "read CA file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, nil, append([]string{"tunnel", "--relay", srv.URL}, tt.args...)...)
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
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"sidehook", "tunnel", "--relay", url, "--api-key", "k", "--name", "laptop",
			"--forward", app.URL, "--json", "--inspect=false"}, func(string) string { return "" }, strings.NewReader(""), out, io.Discard)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), `"type":"ready"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no ready line from a tunnel to `sidehook relay` within 10s: %q", out.String())
		}
		select {
		case err := <-done:
			t.Fatalf("tunnel exited: %v; output %q", err, out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if !strings.Contains(out.String(), `"public_url":"`+url+`/in/`) {
		t.Errorf("ready line %q lacks the relay's /in/ URL", out.String())
	}
	cancel()
	if err := <-done; ExitCode(err, io.Discard) != 0 {
		t.Errorf("tunnel after a signal: %v", err)
	}
}
