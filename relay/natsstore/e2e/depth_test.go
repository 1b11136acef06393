package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/relay/natsstore/natstest"
)

// TestQueueDepthAcrossRelays: relay A accepts and never delivers, relay B
// delivers what A accepted. A's max_queue and queue-depth gauge count what
// waits in the shared store, not what A accepted minus what A finished:
// once B has delivered everything, A accepts again and reports nothing
// waiting (it answered 429 queue_full for ever, with nothing queued), and
// B reports nothing either.
func TestQueueDepthAcrossRelays(t *testing.T) {
	srv := natstest.Run(t, natstest.Options(-1, t.TempDir()))
	hook := newSink(t)
	const limit = 5
	cfgA := orgConfig(t, config.RawEndpoint{ID: "crm", URL: hook.URL + "/hook"})
	cfgA.Limits.MaxQueue = limit
	a := startRelay(t, cfgA, noTake{openStore(t, []string{srv.ClientURL()}, 1)})
	b := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: hook.URL + "/hook"}), openStore(t, []string{srv.ClientURL()}, 1))

	for i := range limit {
		if code := post(a, fmt.Sprintf("evt_depth_%d", i), "payment"); code != http.StatusAccepted {
			t.Fatalf("ingest %d on A: %d, want 202", i, code)
		}
	}
	waitFor(t, 10*time.Second, "B to deliver what A accepted", func() bool {
		got, _ := hook.distinct("/hook")
		return got == limit
	})
	// Each relay re-reads the store's count at most every few seconds.
	waitFor(t, 15*time.Second, "A to accept again, nothing waiting", func() bool {
		return post(a, "evt_depth_more", "payment") == http.StatusAccepted
	})
	for _, r := range []struct{ name, url string }{{"A", a}, {"B", b}} {
		waitFor(t, 15*time.Second, r.name+"'s queue depth of crm to be 0", func() bool {
			return queueDepth(t, r.url, "crm") == "0"
		})
	}
}

// queueDepth is the sidehook_relay_queue_depth of endpoint ep in the
// relay's /metrics ("" when absent).
func queueDepth(t testing.TB, base, ep string) string {
	t.Helper()
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	want := `sidehook_relay_queue_depth{endpoint="` + ep + `",organisation="demo"} `
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), want); ok {
			return v
		}
	}
	return ""
}
