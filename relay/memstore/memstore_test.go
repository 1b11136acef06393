package memstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/memstore"
	"github.com/sidehook/sidehook/relay/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Factory{New: func(t *testing.T) relay.Store {
		s := memstore.New()
		t.Cleanup(func() { s.Close() })
		return s
	}})
}

// TestLargeBacklog: 100,000 deliveries waiting on one endpoint, accepted
// in time order but due in the reverse order (each lands at the head of
// the queue, as new deliveries do before a backlog of retries), then
// taken and recorded one at a time: every queue operation is O(log n).
func TestLargeBacklog(t *testing.T) {
	const n = 100_000
	ctx := context.Background()
	s := memstore.New()
	t.Cleanup(func() { s.Close() })
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range n {
		created := t0.Add(time.Duration(i) * time.Millisecond)
		due := t0.Add(-time.Duration(i) * time.Millisecond)
		id := fmt.Sprintf("e%06d", i)
		ev := &relay.Event{ID: id, Org: "acme", Type: "t", ReceivedAt: created}
		d := &relay.Delivery{ID: id, EventID: id, Org: "acme", Endpoint: "a", Status: relay.StatusPending, CreatedAt: created, NextAttemptAt: &due}
		if _, err := s.Accept(ctx, ev, []*relay.Delivery{d}); err != nil {
			t.Fatal(err)
		}
	}
	r := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	for i := n - 1; i >= 0; i-- {
		ds, _, err := s.Take(ctx, r, t0, 1)
		if err != nil || len(ds) != 1 {
			t.Fatalf("Take %d: got %d, %v", i, len(ds), err)
		}
		if want := fmt.Sprintf("e%06d", i); ds[0].ID != want {
			t.Fatalf("Take: got %s, want %s (the earliest due)", ds[0].ID, want)
		}
		ds[0].Status, ds[0].NextAttemptAt = relay.StatusDelivered, nil
		if err := s.Record(ctx, ds[0], ""); err != nil {
			t.Fatal(err)
		}
	}
	if m, err := s.Waiting(ctx); err != nil || len(m) != 0 {
		t.Fatalf("Waiting: got %v, %v; want none", m, err)
	}
}
