package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
)

// TestRelaysOnNATSShareTunnels: two relays on one JetStream, `sidehook
// tunnel` connected to the first; the second lists it and delivers an
// event sent to it.
func TestRelaysOnNATSShareTunnels(t *testing.T) {
	natsURL := startNATS(t, false)
	app, got := hookSink(t)
	args := []string{"--listen", "127.0.0.1:0", "--api-key", "k1", "--store", natsURL, "--endpoint", "tunnel://laptop/hook"}
	a := startRelayCLI(t, nil, args...)
	b := startRelayCLI(t, nil, args...)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"sidehook", "tunnel", "--relay", a, "--api-key", "k1", "--name", "laptop", "--forward", app.URL, "--inspect", "off"},
			func(string) string { return "" }, strings.NewReader(""), io.Discard, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("tunnel: %v", err)
		}
	})

	var list struct {
		Tunnels []relay.TunnelInfo `json:"tunnels"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(list.Tunnels) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("relay B does not list the tunnel connected to relay A within 10s")
		}
		time.Sleep(10 * time.Millisecond) // polling the relay's API: it has no wait call
		req, _ := http.NewRequest(http.MethodGet, b+"/v1/tunnels", nil)
		req.Header.Set("Authorization", "Bearer k1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
	}
	if list.Tunnels[0].Name != "laptop" {
		t.Fatalf("relay B lists %+v, want laptop", list.Tunnels)
	}
	if code, _, stderr := runCLI(t, nil, "send", "--relay", b, "--api-key", "k1", "--event", "payment", "--id", "evt_via_b"); code != 0 {
		t.Fatalf("send: exit %d, want 0: %s", code, stderr)
	}
	if h := waitHeaders(t, got, 1); h[0].Get("webhook-id") != "evt_via_b" {
		t.Errorf("delivered %q, want evt_via_b", h[0].Get("webhook-id"))
	}
}
