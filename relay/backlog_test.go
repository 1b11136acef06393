package relay_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
)

// TestBacklogBeyondWindow queues more deliveries than an endpoint's
// in-memory window while the receiver is down, restarts the relay on the
// backlog, and checks that every one is delivered: the window is refilled
// from the due index on disk.
func TestBacklogBeyondWindow(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	rcv := newSink(t, nil, func(*http.Request, int) int {
		if down.Load() {
			return 503
		}
		return 200
	})
	sched := make([]string, 30)
	for i := range sched {
		sched[i] = "1s"
	}
	cfg := orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL(), MaxInFlight: new(32), Retry: &config.RawRetry{Schedule: sched, Jitter: new(float64)}})
	r := startRelay(t, cfg, relay.Options{})
	const n = 1200
	ids := make([]string, n)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				ids[i] = ingest(t, r, fmt.Sprintf(`{"type":"payment","n":"%d"}`, i), nil).ID
			}
		}(w)
	}
	wg.Wait()
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := len(rcv.requests())
	r2 := startRelay(t, cfg, relay.Options{})
	if a := call(t, "GET", r2.URL()+"/readyz", "", nil, nil); a.Status != 200 {
		t.Fatalf("readyz after restart: %d, want 200", a.Status)
	}
	// The restarted relay works on the backlog (and is refused) before
	// the receiver comes back.
	rcv.wait(t, 10*time.Second, func(c []captured) bool { return len(c) > before })
	down.Store(false)
	rcv.wait(t, 30*time.Second, func(c []captured) bool {
		got := delivered(c)
		for _, id := range ids {
			if got[id] == 0 {
				return false
			}
		}
		return true
	})
	waitCount(t, r2, "status=delivered", n)
}

// TestRetentionPurge deletes finished events past the retention and keeps
// the ones still waiting.
func TestRetentionPurge(t *testing.T) {
	rcv := newSink(t, nil, func(r *http.Request, _ int) int {
		if r.URL.Path == "/down" {
			return 503
		}
		return 200
	})
	cfg := orgConfig(t,
		config.RawEndpoint{ID: "ok", URL: rcv.URL() + "/ok", Events: []string{"payment"}},
		config.RawEndpoint{ID: "down", URL: rcv.URL() + "/down", Events: []string{"message_send"}, Retry: &config.RawRetry{Schedule: []string{"1h"}}})
	cfg.Retention = 100 * time.Millisecond
	clock := &shiftedClock{}
	r := startRelay(t, cfg, relay.Options{PurgeInterval: -1, Clock: clock})
	done := ingest(t, r, `{"type":"payment"}`, nil)
	waiting := ingest(t, r, `{"type":"messageSend"}`, nil)
	waitDelivery(t, r, done.Deliveries[0].ID, "delivered", 5*time.Second)
	waitDelivery(t, r, waiting.Deliveries[0].ID, "failed", 5*time.Second)
	clock.advance(150 * time.Millisecond) // past the retention; the 1h retry still ahead
	n, err := r.Purge(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("purge: got %d, %v, want 1 event", n, err)
	}
	if a := call(t, "GET", r.URL()+"/v1/events/"+done.ID, apiKey, nil, nil); a.Status != 404 {
		t.Errorf("finished event after purge: got %d, want 404", a.Status)
	}
	if a := call(t, "GET", r.URL()+"/v1/deliveries/"+done.Deliveries[0].ID, apiKey, nil, nil); a.Status != 404 {
		t.Errorf("its delivery after purge: got %d, want 404", a.Status)
	}
	if a := call(t, "GET", r.URL()+"/v1/events/"+waiting.ID, apiKey, nil, nil); a.Status != 200 {
		t.Errorf("waiting event after purge: got %d, want 200", a.Status)
	}
}

// TestRetentionShorterThanPurgeInterval purges on a retention shorter than
// the default purge interval within about that retention, not the interval.
func TestRetentionShorterThanPurgeInterval(t *testing.T) {
	rcv := newSink(t, nil, func(*http.Request, int) int { return 200 })
	cfg := orgConfig(t, config.RawEndpoint{ID: "ok", URL: rcv.URL() + "/ok", Events: []string{"payment"}})
	cfg.Retention = 100 * time.Millisecond
	r := startRelay(t, cfg, relay.Options{})
	ev := ingest(t, r, `{"type":"payment"}`, nil)
	waitDelivery(t, r, ev.Deliveries[0].ID, "delivered", 5*time.Second)
	eventually(t, 10*time.Second, func() error {
		if a := call(t, "GET", r.URL()+"/v1/events/"+ev.ID, apiKey, nil, nil); a.Status != http.StatusNotFound {
			return fmt.Errorf("delivered event past a retention of %s: got %d, want 404", cfg.Retention, a.Status)
		}
		return nil
	})
}

// TestFirstPurgeSoonAfterStart: the first purge comes within a minute of
// start, not a whole interval later, so a relay restarted more often than
// its interval still purges. The clock runs 1,000 times fast: the minute
// is 60 ms, the day's interval 86 s.
func TestFirstPurgeSoonAfterStart(t *testing.T) {
	rcv := newSink(t, nil, func(*http.Request, int) int { return 200 })
	cfg := orgConfig(t, config.RawEndpoint{ID: "ok", URL: rcv.URL() + "/ok", Events: []string{"payment"}})
	cfg.Retention = time.Second
	r := startRelay(t, cfg, relay.Options{Clock: relay.NewScaledClock(1000), PurgeInterval: 24 * time.Hour})
	ev := ingest(t, r, `{"type":"payment"}`, nil)
	waitDelivery(t, r, ev.Deliveries[0].ID, "delivered", 5*time.Second)
	eventually(t, 10*time.Second, func() error {
		if a := call(t, "GET", r.URL()+"/v1/events/"+ev.ID, apiKey, nil, nil); a.Status != http.StatusNotFound {
			return fmt.Errorf("delivered event past its retention: got %d, want 404 after the first purge", a.Status)
		}
		return nil
	})
}
