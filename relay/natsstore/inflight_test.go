package natsstore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
)

// max_in_flight holds across relays: the endpoint's consumer hands out at
// most that many deliveries to all relays together, a delivery waiting
// for its retry holds no slot, and a new value applies at once.
func TestMaxInFlightAcrossRelays(t *testing.T) {
	a, b := twoRelays(t, 5*time.Second)
	ctx := context.Background()
	ref := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	for _, s := range []*Store{a, b} {
		s.SetMaxInFlight(ref, 2)
	}
	for i := range 6 {
		ev, ds := mkEvent("acme", fmt.Sprintf("d%d", i), t0.Add(time.Duration(i)*time.Millisecond), false, "a")
		accept(t, a, ev, ds)
	}
	now := t0.Add(time.Minute)
	held := map[*Store][]*relay.Delivery{}
	takeN := func(s *Store, name string, want int) {
		t.Helper()
		got, next := take(t, s, ref, now, 5)
		if len(got) != want {
			t.Fatalf("%s: took %v, want %d", name, ids(got), want)
		}
		if want == 0 && (next.IsZero() || next.After(now.Add(fullPoll))) {
			t.Fatalf("%s: next %v; want soon after %v, when a slot may be free", name, next, now)
		}
		held[s] = append(held[s], got...)
	}
	takeN(a, "a, limit 2", 2)
	takeN(b, "b while a holds both slots", 0)

	// A delivered one frees its slot for any relay.
	if err := a.Record(ctx, attempt(held[a][0], relay.StatusDelivered, now, nil), ""); err != nil {
		t.Fatal(err)
	}
	takeN(b, "b after a delivered one", 1)
	// So does one that failed and waits an hour for its retry.
	later := now.Add(time.Hour)
	if err := a.Record(ctx, attempt(held[a][1], relay.StatusFailed, now, &later), ""); err != nil {
		t.Fatal(err)
	}
	takeN(b, "b after a's other one failed", 1)
	takeN(a, "a while b holds both slots", 0)

	// A raised limit applies to the consumer at the next Take.
	a.SetMaxInFlight(ref, 3)
	takeN(a, "a, limit 3", 1)
	takeN(b, "b, limit 3, all held", 0)

	// Lowered below what is held: nothing more until enough end.
	b.SetMaxInFlight(ref, 1)
	for _, d := range held[b] {
		if err := b.Record(ctx, attempt(d, relay.StatusDelivered, now, nil), ""); err != nil {
			t.Fatal(err)
		}
	}
	takeN(b, "b, limit 1, a holds one", 0)
	if err := a.Record(ctx, attempt(held[a][2], relay.StatusDelivered, now, nil), ""); err != nil {
		t.Fatal(err)
	}
	takeN(b, "b, limit 1, none held", 1)

	c, _, err := a.ensureConsumer(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.MaxAckPending != 1 || info.NumAckPending != 1 {
		t.Fatalf("consumer: max ack pending %d, %d pending; want 1, 1", info.Config.MaxAckPending, info.NumAckPending)
	}
}

// A retry written by a relay that then dies is taken by another when due,
// and waiting retries are not read by a Take before: each sits on a retry
// item named by its due time, outside the consumer.
func TestRetryOfADeadRelay(t *testing.T) {
	a, b := twoRelays(t, 5*time.Second)
	ctx := context.Background()
	ref := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	for i := range 3 {
		ev, ds := mkEvent("acme", fmt.Sprintf("r%d", i), t0, false, "a")
		accept(t, a, ev, ds)
	}
	got, _ := take(t, a, ref, t0, 3)
	if len(got) != 3 {
		t.Fatalf("took %v, want 3", ids(got))
	}
	for i, d := range got {
		due := t0.Add(time.Duration(i+1) * time.Minute)
		if err := a.Record(ctx, attempt(d, relay.StatusFailed, t0, &due), ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	none, next := take(t, b, ref, t0.Add(30*time.Second), 3)
	if len(none) != 0 || !next.Equal(t0.Add(time.Minute)) {
		t.Fatalf("before any retry is due: took %v next %v; want none, next %v", ids(none), next, t0.Add(time.Minute))
	}
	if w, err := b.Waiting(ctx); err != nil || w[ref] != 3 {
		t.Fatalf("waiting: %v, %v; want 3", w, err)
	}
	// Take reads no waiting delivery: the consumer holds none of them.
	c, _, err := b.ensureConsumer(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := c.Info(ctx); err != nil || info.NumPending != 0 || info.NumAckPending != 0 {
		t.Fatalf("consumer while all wait for retries: %+v, %v; want nothing pending", info, err)
	}
	due, next := take(t, b, ref, t0.Add(2*time.Minute), 3)
	if want := []string{"r0_a", "r1_a"}; !slices.Equal(ids(due), want) || !next.Equal(t0.Add(3*time.Minute)) {
		t.Fatalf("at the second retry: took %v next %v; want %v, next %v", ids(due), next, want, t0.Add(3*time.Minute))
	}
	for _, d := range due {
		if len(d.Attempts) != 1 || d.Status != relay.StatusFailed {
			t.Fatalf("retried %s: %d attempts, %s; want 1 attempt, failed", d.ID, len(d.Attempts), d.Status)
		}
	}
}

// Two relays with two takers each share an endpoint limited to three in
// flight: never more than three are held at once, and each delivery is
// attempted once.
func TestMaxInFlightUnderLoad(t *testing.T) {
	a, b := twoRelays(t, 5*time.Second)
	ctx := context.Background()
	ref := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	const limit, events = 3, 60
	for _, s := range []*Store{a, b} {
		s.SetMaxInFlight(ref, limit)
	}
	for i := range events {
		ev, ds := mkEvent("acme", fmt.Sprintf("l%02d", i), t0, false, "a")
		accept(t, []*Store{a, b}[i%2], ev, ds)
	}
	var (
		mu        sync.Mutex
		held, top int
		attempts  = map[string]int{}
		done      = make(chan struct{})
		slowest   time.Duration
		wg        sync.WaitGroup
	)
	for w := range 4 {
		s := []*Store{a, b}[w%2]
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				start := time.Now()
				ds, next, err := s.Take(ctx, ref, t0, 2)
				if err != nil {
					t.Errorf("take: %v", err)
					return
				}
				mu.Lock()
				slowest = max(slowest, time.Since(start))
				held += len(ds)
				top = max(top, held)
				for _, d := range ds {
					attempts[d.ID]++
				}
				mu.Unlock()
				if len(ds) == 0 && !next.IsZero() {
					// As the dispatcher does: wait for the next look.
					select {
					case <-done:
						return
					case <-time.After(next.Sub(t0)):
					}
				}
				for _, d := range ds {
					mu.Lock()
					held-- // before the slot is freed
					mu.Unlock()
					if err := s.Record(ctx, attempt(d, relay.StatusDelivered, t0, nil), ""); err != nil {
						t.Errorf("record: %v", err)
						return
					}
				}
				mu.Lock()
				if len(attempts) == events {
					select {
					case <-done:
					default:
						close(done)
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if top > limit {
		t.Fatalf("%d deliveries held at once across relays, limit %d", top, limit)
	}
	for id, n := range attempts {
		if n != 1 {
			t.Fatalf("%s attempted %d times, want once", id, n)
		}
	}
	t.Logf("at most %d held at once; slowest Take %v", top, slowest)
}
