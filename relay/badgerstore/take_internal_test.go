package badgerstore

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/relay"
)

// TestTakeKeepsWhatAnEarlierScanLeased: a Take whose first scan leases A
// but drops an entry that moved after its snapshot (B, recorded just
// then) scans again; when that second scan fails (its context ends), A is
// still handed out, not left leased with no one to attempt it.
func TestTakeKeepsWhatAnEarlierScanLeased(t *testing.T) {
	dir := t.TempDir()
	bg := context.Background()
	open := func() *Store {
		s, err := Open(bg, Options{Dir: dir, Logger: zerolog.Nop(), Reserve: -1})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i, id := range []string{"A", "B"} {
		due := t0.Add(time.Duration(i-3) * time.Hour)
		ev := &relay.Event{ID: id, Org: "acme", Type: "t", ReceivedAt: t0}
		d := &relay.Delivery{ID: id, EventID: id, Org: "acme", Endpoint: "a", Status: relay.StatusPending, CreatedAt: t0, NextAttemptAt: &due}
		if _, err := s.Accept(bg, ev, []*relay.Delivery{d}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open() // an empty hot cache: Take scans the due index
	t.Cleanup(func() { s.Close() })

	r := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	s.afterScan = func() {
		s.afterScan = nil
		// B moves after the scan's snapshot, as a Record ending just then
		// leaves it; then the caller gives up.
		rb, err := s.record("acme", "B")
		if err != nil {
			t.Error(err)
			return
		}
		cp := rb.Delivery
		due := t0.Add(time.Hour)
		cp.NextAttemptAt = &due
		ops, _, _ := moveOps(s.queue(r), &cp, rb.QKey, true)
		if err := s.db.Write(bg, ops...); err != nil {
			t.Error(err)
		}
		cancel()
	}
	got, _, err := s.Take(ctx, r, t0, 2)
	if err != nil || len(got) != 1 || got[0].ID != "A" {
		t.Fatalf("Take: got %d deliveries, %v; want A, leased by the first scan", len(got), err)
	}
	if err := s.Release(bg, got[0]); err != nil {
		t.Fatalf("Release A: %v", err)
	}
	again, _, err := s.Take(bg, r, t0, 10)
	if err != nil || len(again) != 1 || again[0].ID != "A" {
		t.Fatalf("Take after Release: got %d deliveries, %v; want A again", len(again), err)
	}
}
