package natsstore

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidehook/sidehook/relay"
)

// A Take just after this store wrote a due work item takes it even when
// the server answers the fetch before it has told the consumer of the
// item (it acknowledges a write first and tells the stream's consumers a
// moment later, in another goroutine): the cause of a rare empty Take
// on a busy machine. deafOnce plays the server's early answer.
func TestTakeFindsWhatItJustWrote(t *testing.T) {
	ctx := context.Background()
	ref := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	due := t0.Add(time.Minute)
	takeOne := func(t *testing.T, s *Store, now time.Time) *relay.Delivery {
		t.Helper()
		got, _ := take(t, s, ref, now, 1)
		if len(got) != 1 {
			t.Fatalf("took %v, want x_a", ids(got))
		}
		return got[0]
	}
	record := func(t *testing.T, s *Store, d *relay.Delivery, status string, next *time.Time) {
		t.Helper()
		if err := s.Record(ctx, attempt(d, status, t0, next), ""); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		// write leaves x_a due at the returned time, its work item just
		// written by s, or to be written by the Take (moved: no item yet).
		write func(t *testing.T, s *Store) (now time.Time, moved bool)
	}{
		{"accepted", func(t *testing.T, s *Store) (time.Time, bool) {
			ev, ds := mkEvent("acme", "x", t0, false, "a", "b")
			accept(t, s, ev, ds)
			return t0, false
		}},
		{"retry moved", func(t *testing.T, s *Store) (time.Time, bool) {
			ev, ds := mkEvent("acme", "x", t0, false, "a")
			accept(t, s, ev, ds)
			record(t, s, takeOne(t, s, t0), relay.StatusFailed, &due)
			return due, true
		}},
		{"requeued", func(t *testing.T, s *Store) (time.Time, bool) {
			ev, ds := mkEvent("acme", "x", t0, false, "a")
			accept(t, s, ev, ds)
			record(t, s, takeOne(t, s, t0), relay.StatusDead, nil)
			if _, err := s.Requeue(ctx, "acme", "x_a", t0); err != nil {
				t.Fatal(err)
			}
			return t0, false
		}},
		{"expedited", func(t *testing.T, s *Store) (time.Time, bool) {
			ev, ds := mkEvent("acme", "x", t0, false, "a")
			accept(t, s, ev, ds)
			record(t, s, takeOne(t, s, t0), relay.StatusFailed, &due)
			if n, err := s.Expedite(ctx, ref, t0, nil); err != nil || n != 1 {
				t.Fatalf("expedite: %d, %v", n, err)
			}
			return t0, false
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t)
			now, moved := tc.write(t, s)
			if !moved {
				// What it waits for is the item's own sequence: a later one
				// (a batch's last) would make it wait for nothing.
				m, err := s.get(ctx, s.subj.work("acme", "a", "x_a", false))
				if err != nil || m == nil {
					t.Fatalf("work item: %v, %v", m, err)
				}
				if got := s.unheardOf(ref); got != m.Sequence {
					t.Fatalf("waits for sequence %d, want the work item's %d", got, m.Sequence)
				}
			}
			var deaf *deafOnce
			wrapConsumer(s, ref, func(c jetstream.Consumer) jetstream.Consumer {
				deaf = &deafOnce{Consumer: c}
				deaf.deaf.Store(true)
				return deaf
			})

			takeOne(t, s, now)
			if deaf.deaf.Load() {
				t.Fatal("the Take made no no-wait fetch")
			}
			if w := s.unheardOf(ref); w != 0 {
				t.Errorf("still waits for sequence %d after taking it", w)
			}
		})
	}
}

// deafOnce is a consumer whose next no-wait fetch finds nothing, as the
// server's does when it has not told the consumer of a message yet.
type deafOnce struct {
	jetstream.Consumer
	deaf atomic.Bool
}

func (c *deafOnce) FetchNoWait(n int) (jetstream.MessageBatch, error) {
	if c.deaf.CompareAndSwap(true, false) {
		return emptyBatch{}, nil
	}
	return c.Consumer.FetchNoWait(n)
}

type emptyBatch struct{}

func (emptyBatch) Messages() <-chan jetstream.Msg {
	ch := make(chan jetstream.Msg)
	close(ch)
	return ch
}

func (emptyBatch) Error() error { return nil }

// A Take finds a work item this store wrote even when the consumer never
// counts it: the server answers a no-wait fetch "no messages" by the
// consumer's count of pending messages, and that count can miss messages
// for good (seen once on a cluster under load, right after the endpoint's
// consumer was slow to be made: three accepted events stayed pending with
// nothing else arriving). A waiting pull reads the stream itself.
func TestTakeFindsWhatTheConsumerDoesNotCount(t *testing.T) {
	ref := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	s, _ := newStore(t)
	ev, ds := mkEvent("acme", "x", t0, false, "a")
	accept(t, s, ev, ds)
	wrapConsumer(s, ref, func(c jetstream.Consumer) jetstream.Consumer { return uncounted{Consumer: c} })

	got, _ := take(t, s, ref, t0, 1)
	if len(got) != 1 || got[0].ID != "x_a" {
		t.Fatalf("took %v, want x_a", ids(got))
	}
}

// uncounted is a consumer whose count of pending messages missed them:
// a no-wait fetch finds nothing, and its info counts nothing pending and
// nothing delivered.
type uncounted struct{ jetstream.Consumer }

func (uncounted) FetchNoWait(int) (jetstream.MessageBatch, error) { return emptyBatch{}, nil }

func (c uncounted) Info(ctx context.Context) (*jetstream.ConsumerInfo, error) {
	info, err := c.Consumer.Info(ctx)
	if err != nil {
		return nil, err
	}
	cp := *info
	cp.NumPending, cp.Delivered.Stream = 0, 0
	return &cp, nil
}

// A relay started again finds what waits for an idle endpoint even when
// the consumer's count missed it: nothing here tracks items written before
// the restart (or by a relay that died before taking them), and no new item
// comes to make the count right. Its first Take of the endpoint pulls with
// a wait, and so does a Take once every pullEvery (the dispatcher's idle
// recheck brings one).
func TestTakeAfterRestartFindsWhatTheConsumerDoesNotCount(t *testing.T) {
	ctx := context.Background()
	ref := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	srv := startServer(t, nil)
	cfg := Config{Servers: []string{srv.ClientURL()}}
	before := openStore(t, cfg)
	ev, ds := mkEvent("acme", "x", t0, false, "a")
	accept(t, before, ev, ds)
	before.Close()

	s := openStore(t, cfg) // the relay started again
	if _, _, err := s.ensureConsumer(ctx, ref); err != nil {
		t.Fatal(err)
	}
	wrapConsumer(s, ref, func(c jetstream.Consumer) jetstream.Consumer { return uncounted{Consumer: c} })
	got, _ := take(t, s, ref, t0, 1)
	if len(got) != 1 || got[0].ID != "x_a" {
		t.Fatalf("first Take after a restart took %v, want x_a", ids(got))
	}

	// Another relay accepts one more, and its Wake is lost.
	other := openStore(t, cfg)
	ev, ds = mkEvent("acme", "y", t0, false, "a")
	accept(t, other, ev, ds)
	s.mu.Lock()
	s.pulled[ref] = time.Now().Add(-pullEvery) // the idle recheck's Take
	s.mu.Unlock()
	got, _ = take(t, s, ref, t0, 1)
	if len(got) != 1 || got[0].ID != "y_a" {
		t.Fatalf("Take a recheck later took %v, want y_a", ids(got))
	}
}

// wrapConsumer replaces the store's consumer of ref, already made, with
// wrap of it: a stand-in for a server behaviour a test cannot provoke.
func wrapConsumer(s *Store, ref relay.EndpointRef, wrap func(jetstream.Consumer) jetstream.Consumer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.consumers[ref]
	cs.c = wrap(cs.c)
	s.consumers[ref] = cs
}
