package badgerstore

import (
	"context"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
)

// TestFloorWriteDuringScan: a delivery written while a Take scans, due
// before everything that Take saw, is found by the next Take: the floor
// the first Take leaves behind is not above it.
func TestFloorWriteDuringScan(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	accept := func(id string, due time.Time) {
		t.Helper()
		ev := &relay.Event{ID: id, Org: "acme", Type: "t", ReceivedAt: t0}
		d := &relay.Delivery{ID: id, EventID: id, Org: "acme", Endpoint: "a", Status: relay.StatusPending, CreatedAt: t0, NextAttemptAt: &due}
		if _, err := s.Accept(ctx, ev, []*relay.Delivery{d}); err != nil {
			t.Fatal(err)
		}
	}
	r := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	accept("later", t0.Add(time.Hour))
	if got, _, err := s.Take(ctx, r, t0, 1); err != nil || len(got) != 0 {
		t.Fatalf("Take: got %d, %v; want nothing due", len(got), err)
	}
	// The floor is now at "later". During the next scan, an Accept due
	// long before it lands after the scan's snapshot.
	s.afterScan = func() {
		s.afterScan = nil
		accept("earlier", t0.Add(-time.Hour))
	}
	if got, _, err := s.Take(ctx, r, t0, 1); err != nil || len(got) != 0 {
		t.Fatalf("Take during which the write lands: got %d, %v; want nothing (its snapshot is older)", len(got), err)
	}
	got, _, err := s.Take(ctx, r, t0, 1)
	if err != nil || len(got) != 1 || got[0].ID != "earlier" {
		t.Fatalf("Take after it: got %d, %v; want the delivery written during the last scan", len(got), err)
	}
}
