package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/relay/natsstore"
	"github.com/sidehook/sidehook/relay/natsstore/natstest"
)

// noTake is a relay's store that accepts but never takes work, so what it
// accepts can only be delivered by another relay.
type noTake struct{ *natsstore.Store }

func (noTake) Take(context.Context, relay.EndpointRef, time.Time, int) ([]*relay.Delivery, time.Time, error) {
	return nil, time.Time{}, nil
}

// TestWakeAcrossRelays: relay A accepts and never delivers; relay B learns
// of A's deliveries only through its store's Wake (the stores' AckWait and
// the dispatcher's idle recheck are both 30 s) and delivers each at once.
func TestWakeAcrossRelays(t *testing.T) {
	srv := natstest.Run(t, natstest.Options(-1, t.TempDir()))
	hook := newSink(t)
	cfg := orgConfig(t, config.RawEndpoint{ID: "crm", URL: hook.URL + "/hook"})
	a := startRelay(t, cfg, noTake{openStore(t, []string{srv.ClientURL()}, 1)})
	startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: hook.URL + "/hook"}), openStore(t, []string{srv.ClientURL()}, 1))

	const n = 20
	start := time.Now()
	for i := range n {
		if code := post(a, fmt.Sprintf("evt_wake_%d", i), "payment"); code != http.StatusAccepted {
			t.Fatalf("ingest %d on A: %d, want 202", i, code)
		}
	}
	waitFor(t, 5*time.Second, "B to deliver what A accepted", func() bool {
		got, _ := hook.distinct("/hook")
		return got == n
	})
	t.Logf("relay B delivered %d events accepted by relay A in %v", n, time.Since(start).Round(time.Millisecond))
	if _, dups := hook.distinct("/hook"); dups != 0 {
		t.Errorf("%d duplicates without any crash", dups)
	}
}

// TestAnyRelayAcceptsOneAttempts: events ingested on two relays are each
// delivered once, by one of them.
func TestAnyRelayAcceptsOneAttempts(t *testing.T) {
	srv := natstest.Run(t, natstest.Options(-1, t.TempDir()))
	hook := newSink(t)
	var relays []string
	for range 2 {
		cfg := orgConfig(t, config.RawEndpoint{ID: "crm", URL: hook.URL + "/hook"})
		relays = append(relays, startRelay(t, cfg, openStore(t, []string{srv.ClientURL()}, 1)))
	}
	const n = 100
	for i := range n {
		if code := post(relays[i%2], fmt.Sprintf("evt_one_%d", i), "payment"); code != http.StatusAccepted {
			t.Fatalf("ingest %d: %d, want 202", i, code)
		}
	}
	waitFor(t, 10*time.Second, "every event delivered", func() bool {
		got, _ := hook.distinct("/hook")
		return got == n
	})
	// Another relay could try a delivery again only after a lease's ack
	// wait (30 s) without heartbeats, which a healthy run never reaches:
	// a duplicate here is two relays leasing one delivery.
	if got, dups := hook.distinct("/hook"); got != n || dups != 0 {
		t.Errorf("delivered %d distinct with %d duplicates, want %d and 0", got, dups, n)
	}
}
