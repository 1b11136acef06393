package natsstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/natsstore/natstest"
)

// A Release that fails (NATS down) still ends the lease here: the heartbeat
// stops, and after the reconnect the delivery is taken again within a few
// AckWaits, as a dead relay's lease is, instead of held until a restart.
func TestFailedReleaseEndsTheLease(t *testing.T) {
	for _, ordered := range []bool{false, true} {
		t.Run(fmt.Sprint("ordered=", ordered), func(t *testing.T) {
			dir := t.TempDir()
			port := natstest.FreePorts(t, 1)[0]
			opts := func() *server.Options {
				return &server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true}
			}
			srv := natstest.Run(t, opts())
			cfg := Config{Servers: []string{srv.ClientURL()}, AckWait: time.Second}
			a, b := openStore(t, cfg), openStore(t, cfg)
			ctx := context.Background()
			ref := relay.EndpointRef{Org: "acme", Endpoint: "a"}
			ev, ds := mkEvent("acme", "x", t0, ordered, "a")
			accept(t, a, ev, ds)
			got, _ := take(t, a, ref, t0, 1)
			if len(got) != 1 {
				t.Fatalf("took %v, want x_a", ids(got))
			}

			srv.Shutdown()
			srv.WaitForShutdown()
			waitFor(t, 10*time.Second, "a to see NATS down", func() bool { return a.Health() != nil })
			if err := a.Release(ctx, got[0]); err == nil {
				t.Fatal("release while NATS is down: got nil, want an error")
			}
			if a.leaseOf(got[0]) != nil {
				t.Error("lease still held after a failed release")
			}

			natstest.Run(t, opts())
			waitFor(t, 20*time.Second, "both relays to reconnect", func() bool { return a.Health() == nil && b.Health() == nil })
			waitFor(t, 6*cfg.AckWait, "a relay to take the delivery again", func() bool {
				for _, s := range []*Store{b, a} {
					if ds, _, err := s.Take(ctx, ref, t0, 1); err == nil && len(ds) == 1 {
						return true
					}
				}
				return false
			})
		})
	}
}

// A Requeue on one relay racing a Purge on another: a Requeue that succeeds
// leaves the delivery pending, so the purge must keep it (and its event),
// and the delivery is taken again. Each round purges from the oldest while
// requeueing from the newest, so the two meet once a round.
func TestPurgeKeepsADeliveryRequeuedMeanwhile(t *testing.T) {
	a, b := twoRelays(t, 5*time.Second)
	ctx := context.Background()
	ref := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	const rounds, n = 6, 30
	for r := range rounds {
		for i := range n {
			ev, ds := mkEvent("acme", fmt.Sprintf("r%dp%03d", r, i), t0.Add(time.Duration(i)*time.Millisecond), false, "a")
			accept(t, a, ev, ds)
		}
		for {
			got, _ := take(t, a, ref, t0.Add(time.Hour), 50)
			if len(got) == 0 {
				break
			}
			for _, d := range got {
				if err := a.Record(ctx, attempt(d, relay.StatusDead, t0, nil), ""); err != nil {
					t.Fatal(err)
				}
			}
		}

		var wg sync.WaitGroup
		var requeued []string
		wg.Go(func() {
			if _, err := a.Purge(ctx, t0.Add(time.Hour)); err != nil {
				t.Errorf("purge: %v", err)
			}
		})
		wg.Go(func() {
			for i := n - 1; i >= 0; i-- {
				id := fmt.Sprintf("r%dp%03d_a", r, i)
				_, err := b.Requeue(ctx, "acme", id, time.Now())
				switch {
				case err == nil:
					requeued = append(requeued, id)
				case !errors.Is(err, relay.ErrNotFound):
					t.Errorf("requeue %s: %v", id, err)
				}
			}
		})
		wg.Wait()

		for _, id := range requeued {
			d, err := a.Delivery(ctx, "acme", id)
			if err != nil {
				t.Errorf("round %d: delivery %s after its requeue succeeded: %v", r, id, err)
				continue
			}
			if d.Status != relay.StatusPending {
				t.Errorf("round %d: delivery %s is %s after its requeue, want %s", r, id, d.Status, relay.StatusPending)
			}
			if _, err := a.Event(ctx, "acme", d.EventID); err != nil {
				t.Errorf("round %d: event of requeued delivery %s: %v", r, id, err)
			}
		}
		taken := 0
		for {
			got, _ := take(t, b, ref, time.Now().Add(time.Hour), 50)
			if len(got) == 0 {
				break
			}
			taken += len(got)
			for _, d := range got {
				if err := b.Record(ctx, attempt(d, relay.StatusDelivered, t0, nil), ""); err != nil {
					t.Fatal(err)
				}
			}
		}
		if taken != len(requeued) {
			t.Errorf("round %d: took %d deliveries, want the %d requeued", r, taken, len(requeued))
		}
	}
}

// A Requeue on one relay racing another relay's Take, which moves the
// delivery's due retry back into the consumer: the delivery is taken,
// whichever writes first, and not stranded pending without a work item.
func TestRequeueDuringARetryMoveIsTaken(t *testing.T) {
	a, b := twoRelays(t, 5*time.Second)
	ctx := context.Background()
	ref := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	const rounds = 100
	stranded := 0
	for r := range rounds {
		id := fmt.Sprintf("q%03d", r)
		ev, ds := mkEvent("acme", id, t0, false, "a")
		accept(t, a, ev, ds)
		got, _ := take(t, a, ref, t0.Add(time.Hour), 1)
		if len(got) != 1 {
			t.Fatalf("round %d: took %v, want %s_a", r, ids(got), id)
		}
		due := t0.Add(time.Minute)
		if err := a.Record(ctx, attempt(got[0], relay.StatusFailed, t0, &due), ""); err != nil {
			t.Fatal(err)
		}

		var wg sync.WaitGroup
		var taken []*relay.Delivery
		var takeErr, requeueErr error
		wg.Go(func() { taken, _, takeErr = a.Take(ctx, ref, t0.Add(time.Hour), 1) })
		wg.Go(func() { _, requeueErr = b.Requeue(ctx, "acme", id+"_a", time.Now()) })
		wg.Wait()
		if takeErr != nil || requeueErr != nil {
			t.Fatalf("round %d: take: %v; requeue: %v", r, takeErr, requeueErr)
		}
		for try := 0; try < 5 && len(taken) == 0; try++ {
			for _, s := range []*Store{a, b} {
				got, _ := take(t, s, ref, time.Now().Add(time.Hour), 10)
				taken = append(taken, got...)
			}
		}
		if len(taken) == 0 {
			st, _, err := a.state(ctx, "acme", id+"_a")
			if err != nil {
				t.Fatal(err)
			}
			t.Errorf("round %d: requeued delivery never taken: %s, gen %d, retry %v, leased %v",
				r, st.Status, st.Gen, st.Retry, st.Leased)
			stranded++
			continue
		}
		for _, d := range taken {
			for _, s := range []*Store{a, b} {
				if s.leaseOf(d) == nil {
					continue
				}
				if err := s.Record(ctx, attempt(d, relay.StatusDelivered, t0, nil), ""); err != nil {
					t.Fatal(err)
				}
			}
		}
		if stranded >= 3 {
			t.Fatalf("stopped after %d stranded deliveries", stranded)
		}
	}
}

// A purge cut short between the deliveries of an event, by its context
// ending or by a Requeue of another of the event's deliveries on another
// relay, leaves no list index without its delivery, and once the event is
// purged nothing of it stays. The cut comes just after the purge began to
// delete (see cutContext): the Requeue is of the delivery it deletes last.
func TestPurgeCutShortLeavesNoIndex(t *testing.T) {
	eps := []string{"a", "b", "c", "d"}
	last := relay.EndpointRef{Org: "acme", Endpoint: eps[len(eps)-1]}
	tests := []struct {
		name string
		cut  func(t *testing.T, b *Store) (end bool)
	}{
		{"context ends", func(*testing.T, *Store) bool { return true }},
		{"another delivery requeued", func(t *testing.T, b *Store) bool {
			if _, err := b.Requeue(context.Background(), "acme", "x_"+last.Endpoint, time.Now()); err != nil {
				t.Errorf("requeue: %v", err)
			}
			return false
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := twoRelays(t, 5*time.Second)
			ctx := context.Background()
			ev, ds := mkEvent("acme", "x", t0, false, eps...)
			for _, d := range ds {
				d.Status, d.NextAttemptAt = relay.StatusDelivered, nil
			}
			accept(t, a, ev, ds)

			cut := cutContext(t, a, "$JS.API.STREAM.PURGE."+a.cfg.Prefix, func() bool { return tc.cut(t, b) })
			n, err := a.Purge(cut, t0.Add(time.Hour))
			if n != 0 || err != nil && !errors.Is(err, context.Canceled) {
				t.Fatalf("purge cut short: got %d, %v; want 0 and nil or context.Canceled", n, err)
			}
			wantNoStrayIndex(t, a)

			// What was requeued is delivered, and then the event goes.
			for {
				got, _ := take(t, b, last, time.Now().Add(time.Hour), 1)
				if len(got) == 0 {
					break
				}
				if err := b.Record(ctx, attempt(got[0], relay.StatusDelivered, t0, nil), ""); err != nil {
					t.Fatal(err)
				}
			}
			if n, err := a.Purge(ctx, t0.Add(time.Hour)); n != 1 || err != nil {
				t.Fatalf("purge again: got %d, %v; want 1", n, err)
			}
			left, err := a.list(ctx, a.subj.all())
			if err != nil {
				t.Fatal(err)
			}
			if len(left) != 0 {
				t.Errorf("records left of the purged event: %v", left)
			}
		})
	}
}

// cutContext is a context for s that, once s has sent a request on
// subject, runs cut at s's next look at it, and ends if cut says so. s
// looks at its context before each request it may cut short, in its own
// goroutine, so cut happens between two of its requests, as a fault
// there would. s hears its own request on its connection before the
// answer to it, and the channel is filled as it reads, so by its next
// look it knows.
func cutContext(t *testing.T, s *Store, subject string, cut func() bool) context.Context {
	t.Helper()
	heard := make(chan *nats.Msg, 1)
	sub, err := s.nc.ChanSubscribe(subject, heard)
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.AutoUnsubscribe(1); err != nil {
		t.Fatal(err)
	}
	if err := s.nc.Flush(); err != nil { // subscribed before the first request
		t.Fatal(err)
	}
	return &cutCtx{Context: context.Background(), heard: heard, cut: cut, done: make(chan struct{})}
}

type cutCtx struct {
	context.Context
	heard <-chan *nats.Msg
	cut   func() bool
	once  sync.Once
	done  chan struct{}
}

func (c *cutCtx) Done() <-chan struct{} {
	if len(c.heard) > 0 {
		c.once.Do(func() {
			if c.cut() {
				close(c.done)
			}
		})
	}
	return c.done
}

func (c *cutCtx) Err() error {
	select {
	case <-c.Done():
		return context.Canceled
	default:
		return nil
	}
}

// wantNoStrayIndex fails unless every delivery list index of acme names a
// delivery that is there, and every delivery there is listed.
func wantNoStrayIndex(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	entries, err := s.index(ctx, s.subj.deliveryIndexOrg("acme"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, e := range entries {
		listed[e.id] = true
		if _, _, err := s.state(ctx, "acme", e.id); errors.Is(err, relay.ErrNotFound) {
			t.Errorf("list index of %s left without its delivery", e.id)
		} else if err != nil {
			t.Fatal(err)
		}
	}
	states, err := s.list(ctx, s.subj.p+".d.acme.*")
	if err != nil {
		t.Fatal(err)
	}
	for _, subj := range states {
		if id, err := untok(lastToken(subj)); err == nil && !listed[id] {
			t.Errorf("delivery %s is not listed", id)
		}
	}
}

// TestDeleteTwice: two paths may delete the same work item at once (a
// Record's acknowledgement and a Take moving a retry over the item); the
// second finds it gone, which is what it wanted, not an error that fails
// its Take.
func TestDeleteTwice(t *testing.T) {
	srv := startServer(t, nil)
	s := openStore(t, Config{Servers: []string{srv.ClientURL()}})
	ctx := context.Background()
	seq, err := s.publish(ctx, []*nats.Msg{msg(s.subj.work("acme", "a", "d1", false), nil, 0)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := s.deleteSeq(ctx, seq); err != nil {
			t.Fatalf("delete %d: %v", i+1, err)
		}
	}
	if found, err := s.stored(ctx, seq); err != nil || found {
		t.Fatalf("stored after the delete: %v, %v", found, err)
	}
}
