package natsstore

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sidehook/sidehook/relay"
)

// A work item is written in one batch with its delivery's state, but the
// consumer offering it may run on a replica that stored the batch before
// the stream's leader, which a state read asks, did. A Take that cannot
// read the state yet, or reads one a generation older than the item,
// offers the item again instead of dropping it: dropped, the delivery
// stayed pending for good (seen once in a rolling restart on a
// three-node cluster). A lone item old enough is still a leftover of a
// Record or a Purge cut short, and is dropped. Here the item is written
// alone and its state after the Take, as such a read sees them.
func TestTakeWaitsForAStateItCannotReadYet(t *testing.T) {
	ctx := context.Background()
	ref := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	work := func(s *Store, gen uint64) {
		t.Helper()
		m := msg(s.subj.work("acme", "a", "x_a", false), nil, -1)
		m.Header.Set(hdrGen, strconv.FormatUint(gen, 10))
		if _, err := s.publish(ctx, []*nats.Msg{m}); err != nil {
			t.Fatal(err)
		}
	}
	pending := func(gen uint64) *state {
		due := t0
		return &state{Gen: gen, Delivery: relay.Delivery{ID: "x_a", EventID: "x", Org: "acme", Endpoint: "a", Type: "order.paid",
			Status: relay.StatusPending, CreatedAt: t0, NextAttemptAt: &due, Attempts: []relay.Attempt{}}}
	}
	itemLeft := func(s *Store) bool {
		m, err := s.get(ctx, s.subj.work("acme", "a", "x_a", false))
		if err != nil {
			t.Fatal(err)
		}
		return m != nil
	}
	leases := func(t *testing.T, s *Store) {
		t.Helper()
		waitFor(t, 10*time.Second, "a Take to lease x_a", func() bool {
			got, _ := take(t, s, ref, t0, 1)
			return len(got) == 1 && got[0].ID == "x_a"
		})
	}

	t.Run("NoStateYet", func(t *testing.T) {
		s, _ := newStore(t)
		take(t, s, ref, t0, 1) // makes the consumer
		work(s, 0)
		if got, _ := take(t, s, ref, t0, 1); len(got) != 0 || !itemLeft(s) {
			t.Fatalf("took %v, item left %v; want nothing taken and the item kept", ids(got), itemLeft(s))
		}
		if _, err := s.putState(ctx, pending(0), 0); err != nil {
			t.Fatal(err)
		}
		leases(t, s)
	})
	t.Run("OlderStateYet", func(t *testing.T) {
		s, _ := newStore(t)
		take(t, s, ref, t0, 1)
		rev, err := s.putState(ctx, pending(0), 0)
		if err != nil {
			t.Fatal(err)
		}
		work(s, 1)
		if got, _ := take(t, s, ref, t0, 1); len(got) != 0 || !itemLeft(s) {
			t.Fatalf("took %v, item left %v; want nothing taken and the item kept", ids(got), itemLeft(s))
		}
		if _, err := s.putState(ctx, pending(1), rev); err != nil {
			t.Fatal(err)
		}
		leases(t, s)
	})
	t.Run("LeftoverDropped", func(t *testing.T) {
		s, _ := newStore(t) // AckWait 2s: a lone item is a leftover after 1s
		take(t, s, ref, t0, 1)
		work(s, 0)
		waitFor(t, 10*time.Second, "the leftover item dropped", func() bool {
			take(t, s, ref, t0, 1)
			return !itemLeft(s)
		})
	})
}
