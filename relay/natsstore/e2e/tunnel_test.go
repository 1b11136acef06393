package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestTunnelAcrossRelayProcesses: two relay processes on a three-node
// cluster, `sidehook tunnel` connected to relay A only; events posted to
// relay B all reach the tunnel's app, and relay B made some of those
// deliveries itself (through NATS to A's client), as its log says.
func TestTunnelAcrossRelayProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a NATS cluster (skipped under -short)")
	}
	bin := buildSidehook(t)
	_, urls := startCluster(t)
	servers := strings.Join(urls, ",")
	app := newSink(t)
	cfg := writeProcConfig(t, `store:
  servers: [`+urls[0]+`]
  replicas: 3
retry: {schedule: [100ms, 200ms, 500ms, 1s, 2s, 5s]}
`,
		`{id: laptop, url: "tunnel://laptop/hook", events: [tun], max_in_flight: 8}`)
	a := startRelayProc(t, bin, "relay-a", cfg, servers)
	b := startRelayProc(t, bin, "relay-b", cfg, servers)

	tun := exec.Command(bin, "tunnel", "--relay", a.url, "--api-key", apiKey, "--name", "laptop",
		"--forward", app.URL+"/app", "--inspect", "off", "--json")
	tun.Env = []string{}
	if err := tun.Start(); err != nil {
		t.Fatalf("start the tunnel: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		tun.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		tun.Process.Kill()
		<-exited
	})

	waitFor(t, 30*time.Second, "relay B to list the tunnel connected to relay A", func() bool {
		return listsTunnel(b.url, "laptop")
	})

	// Post to B until B has delivered through A's client at least once
	// (either relay may take a delivery), then everything must arrive.
	// Not a count of rounds: relay A may take them all while the cluster
	// still makes the endpoint's consumer ready on relay B's server.
	var posted []string
	deadline := time.Now().Add(30 * time.Second)
	for round := 0; b.deliveredTo("laptop") == 0; round++ {
		if time.Now().After(deadline) {
			t.Fatalf("relay B made none of %d deliveries in %d rounds (relay A made %d)", len(posted), round, a.deliveredTo("laptop"))
		}
		for i := range 10 {
			id := fmt.Sprintf("tun-%03d-%02d", round, i)
			if code := post(b.url, id, "tun"); code != http.StatusAccepted {
				t.Fatalf("post %s to relay B: %d, want 202", id, code)
			}
			posted = append(posted, id)
		}
		waitFor(t, 30*time.Second, "the round's events at the app", func() bool {
			n, _ := app.distinct("/app/hook")
			return n == len(posted)
		})
	}
	n, dups := app.distinct("/app/hook")
	t.Logf("%d events posted to relay B arrived at the app (%d duplicates); relay B delivered %d, relay A %d",
		n, dups, b.deliveredTo("laptop"), a.deliveredTo("laptop"))
	if n != len(posted) {
		t.Errorf("arrived at the app: got %d distinct, want %d", n, len(posted))
	}
}

// listsTunnel reports whether GET /v1/tunnels of a relay lists name.
func listsTunnel(base, name string) bool {
	req, err := http.NewRequest(http.MethodGet, base+"/v1/tunnels", nil)
	if err != nil {
		return false
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var out struct {
		Tunnels []struct{ Name string } `json:"tunnels"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&out) != nil {
		return false
	}
	for _, tn := range out.Tunnels {
		if tn.Name == name {
			return true
		}
	}
	return false
}
