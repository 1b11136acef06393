package e2e

import (
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/relay/natsstore"
	"github.com/sidehook/sidehook/relay/natsstore/natstest"
)

// TestNATSLostWhileRunning: with its only NATS server gone, a relay
// answers ingest and /readyz with 503; when the server is back (same
// port, same data) the relay is ready again and every event it answered
// 202, before and after, is delivered.
func TestNATSLostWhileRunning(t *testing.T) {
	dir := t.TempDir()
	srv := natstest.Run(t, natstest.Options(-1, dir))
	port := srv.Addr().(*net.TCPAddr).Port
	hook := newSink(t)
	cfg := orgConfig(t, config.RawEndpoint{ID: "crm", URL: hook.URL + "/hook"})
	// A Take cut by the shutdown may have leased a delivery this relay
	// never saw: it is delivered once that lease ends, so the lease is
	// short here (the default is 30 s).
	base := startRelay(t, cfg, openStoreConfig(t, natsstore.Config{Servers: []string{srv.ClientURL()}, Replicas: 1, AckWait: 3 * time.Second}))

	var accepted []string
	ingest := func(id string) int {
		code := post(base, id, "payment")
		if code == http.StatusAccepted {
			accepted = append(accepted, id)
		}
		return code
	}
	if code := ingest("evt_before"); code != http.StatusAccepted {
		t.Fatalf("ingest before the outage: %d, want 202", code)
	}

	srv.Shutdown()
	srv.WaitForShutdown()
	waitFor(t, 10*time.Second, "/readyz 503", func() bool { return status(base, "/readyz") == http.StatusServiceUnavailable })
	for i := range 3 {
		t0 := time.Now()
		if code := ingest(fmt.Sprintf("evt_during_%d", i)); code != http.StatusServiceUnavailable {
			t.Errorf("ingest during the outage: %d, want 503", code)
		}
		if d := time.Since(t0); d > time.Second {
			t.Errorf("the 503 took %v: a relay without its store should say so at once", d)
		}
	}

	back := time.Now()
	natstest.Run(t, natstest.Options(port, dir))
	waitFor(t, 20*time.Second, "/readyz 200 again", func() bool { return status(base, "/readyz") == http.StatusOK })
	t.Logf("ready %v after NATS came back", time.Since(back).Round(time.Millisecond))
	for i := range 3 {
		if code := ingest(fmt.Sprintf("evt_after_%d", i)); code != http.StatusAccepted {
			t.Errorf("ingest after the outage: %d, want 202", code)
		}
	}
	// A Take in flight when the server went down used to wait out its
	// 10 s bound, holding the endpoint's lock (about one run in four);
	// the store now ends a lost connection's requests at once.
	waitFor(t, 20*time.Second, "every accepted event delivered", func() bool {
		got := map[string]bool{}
		for _, id := range hook.ids("/hook") {
			got[id] = true
		}
		for _, id := range accepted {
			if !got[id] {
				return false
			}
		}
		return true
	})
	t.Logf("%d events accepted around the outage, all delivered %v after NATS came back", len(accepted), time.Since(back).Round(time.Millisecond))
}
