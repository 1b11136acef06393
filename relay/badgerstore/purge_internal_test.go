package badgerstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sidehook/sidehook/internal/store"
	"github.com/sidehook/sidehook/relay"
)

// TestPurgeRacingRequeue: manual retries of dead deliveries while a purge
// of their events runs. A retry that was acknowledged keeps its delivery
// (pending, with its due-index entry); one that lost to the purge finds
// nothing; and no due-index entry is left without its delivery.
func TestPurgeRacingRequeue(t *testing.T) {
	bg := context.Background()
	s := openTemp(t)
	const n = 300
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	for i := range n {
		id := fmt.Sprintf("E%04d", i)
		ev := &relay.Event{ID: id, Org: "acme", Type: "t", ReceivedAt: t0, Deliveries: []relay.DeliveryRef{{ID: "D" + id, Endpoint: "a"}}}
		d := &relay.Delivery{ID: "D" + id, EventID: id, Org: "acme", Endpoint: "a", Status: relay.StatusPending, CreatedAt: t0, NextAttemptAt: &t0}
		if _, err := s.Accept(bg, ev, []*relay.Delivery{d}); err != nil {
			t.Fatal(err)
		}
	}
	ds, _, err := s.Take(bg, r, t0, n)
	if err != nil || len(ds) != n {
		t.Fatalf("Take: %d, %v", len(ds), err)
	}
	for _, d := range ds {
		d.Status, d.NextAttemptAt = relay.StatusDead, nil
		if err := s.Record(bg, d, ""); err != nil {
			t.Fatal(err)
		}
	}

	requeued := make([]bool, n)
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := s.Purge(bg, t0.Add(time.Hour)); err != nil {
			t.Errorf("Purge: %v", err)
		}
	})
	for i := range n {
		wg.Go(func() {
			_, err := s.Requeue(bg, "acme", fmt.Sprintf("DE%04d", i), t0.Add(time.Minute))
			switch {
			case err == nil:
				requeued[i] = true
			case !errors.Is(err, relay.ErrNotFound):
				t.Errorf("Requeue: %v", err)
			}
		})
	}
	wg.Wait()

	pending := 0
	for i := range n {
		d, err := s.Delivery(bg, "acme", fmt.Sprintf("DE%04d", i))
		switch {
		case requeued[i] && err != nil:
			t.Errorf("delivery %d: its retry was acknowledged, then it was purged (%v)", i, err)
		case err == nil && d.Status == relay.StatusPending:
			pending++
		}
	}
	entries := 0
	if err := s.db.Scan(bg, store.ScanOptions{Prefix: queuePrefix(r), KeysOnly: true}, func(_, _ []byte) error {
		entries++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if entries != pending {
		t.Errorf("%d due-index entries for %d pending deliveries", entries, pending)
	}
}
