package natsstore

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/relay"
)

// logBuf keeps what a store logs, written from its goroutines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines counts the lines logged at level that contain text.
func (l *logBuf) lines(level, text string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range strings.Split(l.b.String(), "\n") {
		if strings.Contains(line, `"level":"`+level+`"`) && strings.Contains(line, text) {
			n++
		}
	}
	return n
}

// openLogged is openStore logging to w.
func openLogged(t *testing.T, cfg Config, w *logBuf) *Store {
	t.Helper()
	cfg.Logger = zerolog.New(w)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A relay whose lease lapsed, its attempt still under way, heartbeats
// only leases it holds: the work item is the retaking relay's now. Were
// it extended from here, the retaking relay dying would leave the
// delivery to nobody for as long as the first relay's attempt lasts.
func TestLapsedHolderStopsExtendingTheRetakenLease(t *testing.T) {
	a, b := twoRelays(t, time.Second)
	ref := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	ev, ds := mkEvent("acme", "x", time.Now(), false, "a")
	accept(t, a, ev, ds)
	if got, _ := take(t, a, ref, time.Now(), 1); len(got) != 1 {
		t.Fatal("relay A took nothing")
	}
	lapse(t, a, b, ref, "acme/x_a", time.Now)
	// B dies mid-attempt: its heartbeats stop, A's go on.
	b.mu.Lock()
	delete(b.leases, "acme/x_a")
	b.mu.Unlock()
	waitFor(t, 10*time.Second, "B's lease to lapse and the delivery to be offered again", func() bool {
		got, _ := take(t, b, ref, time.Now(), 1)
		return len(got) == 1
	})
}

// A relay whose ordered lease lapsed, the head lock retaken by another
// relay, learns it at its next renewal and stops renewing: one warning,
// not one every AckWait/3 until its attempt is recorded.
func TestLapsedHolderWarnsOnceOfTheLostHeadLock(t *testing.T) {
	srv := startServer(t, nil)
	cfg := Config{Servers: []string{srv.ClientURL()}, AckWait: time.Second}
	var logs logBuf
	a, b := openLogged(t, cfg, &logs), openStore(t, cfg)
	ctx := context.Background()
	ref := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	ev, ds := mkEvent("acme", "x", t0, true, "a")
	accept(t, a, ev, ds)
	now := t0.Add(time.Hour)
	if got, _ := take(t, a, ref, now, 1); len(got) != 1 {
		t.Fatal("relay A took nothing")
	}
	lapse(t, a, b, ref, "acme/x_a", func() time.Time { return now })
	const lost = "head lock"
	waitFor(t, 10*time.Second, "A to warn of the lost head lock", func() bool {
		return logs.lines("warn", lost) > 0
	})
	// B renews the lock on the same period as A's heartbeat: A's ticks
	// come between B's renewals.
	_, rev, err := b.readLock(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		waitFor(t, 10*time.Second, "B to renew the head lock", func() bool {
			_, r, err := b.readLock(ctx, ref)
			if err != nil {
				t.Fatal(err)
			}
			if r != rev {
				rev = r
				return true
			}
			return false
		})
	}
	if n := logs.lines("warn", lost); n != 1 {
		t.Errorf("A warned of the head lock %d times, want once", n)
	}
}

// A delivery ended during its attempt (its endpoint deleted) is not a
// lease another relay took: the heartbeat stops renewing it without a
// warning, and the attempt's failure leaves it dead.
func TestHeartbeatLeavesADeliveryEndedDuringItsAttempt(t *testing.T) {
	srv := startServer(t, nil)
	var logs logBuf
	s := openLogged(t, Config{Servers: []string{srv.ClientURL()}, AckWait: time.Second}, &logs)
	ctx := context.Background()
	ref := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	ev, ds := mkEvent("acme", "x", time.Now(), false, "a")
	accept(t, s, ev, ds)
	got, _ := take(t, s, ref, time.Now(), 1)
	if len(got) != 1 {
		t.Fatal("took nothing")
	}
	if _, err := s.EndWaiting(ctx, ref, "endpoint deleted", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the heartbeat to leave the lease", func() bool {
		return logs.lines("debug", "ended during its attempt") > 0
	})
	if n := logs.lines("warn", "lease heartbeat"); n != 0 {
		t.Errorf("%d heartbeat warnings, want none: the delivery ended, no relay retook it", n)
	}
	due := time.Now().Add(time.Hour)
	if err := s.Record(ctx, attempt(got[0], relay.StatusFailed, time.Now(), &due), ""); err != nil {
		t.Fatal(err)
	}
	d, err := s.Delivery(ctx, "acme", "x_a")
	if err != nil || d.Status != relay.StatusDead {
		t.Fatalf("stored %+v, %v; want dead", d, err)
	}
}
