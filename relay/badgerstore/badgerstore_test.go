package badgerstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/internal/store"
	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/badgerstore"
	"github.com/sidehook/sidehook/relay/storetest"
)

// open opens a store in dir, closed when the test ends.
func open(t testing.TB, dir string) *badgerstore.Store {
	t.Helper()
	s, err := badgerstore.Open(context.Background(), badgerstore.Options{Dir: dir, Logger: zerolog.Nop(), Reserve: -1})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	dirs := map[relay.Store]string{}
	storetest.Run(t, storetest.Factory{
		New: func(t *testing.T) relay.Store {
			dir := t.TempDir()
			s := open(t, dir)
			dirs[s] = dir
			return s
		},
		Reopen: func(t *testing.T, s relay.Store) relay.Store {
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			r := open(t, dirs[s])
			dirs[r] = dirs[s]
			return r
		},
	})
}

func newEvent(id string, eps ...string) (*relay.Event, []*relay.Delivery) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ev := &relay.Event{ID: id, Type: "order.created", Org: "acme", ReceivedAt: now, Hash: "h", Body: []byte("{}")}
	var ds []*relay.Delivery
	for _, ep := range eps {
		due := now
		ds = append(ds, &relay.Delivery{ID: id + "." + ep, EventID: id, Org: "acme", Endpoint: ep, Type: ev.Type,
			Status: relay.StatusPending, CreatedAt: now, NextAttemptAt: &due})
		ev.Deliveries = append(ev.Deliveries, relay.DeliveryRef{ID: id + "." + ep, Endpoint: ep})
	}
	return ev, ds
}

// TestLeasesEndWithTheProcess: what was leased when the store closed is
// due again when it opens.
func TestLeasesEndWithTheProcess(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	ev, ds := newEvent("e1", "a")
	if _, err := s.Accept(ctx, ev, ds); err != nil {
		t.Fatal(err)
	}
	r := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	now := ev.ReceivedAt
	if got, _, err := s.Take(ctx, r, now, 5); err != nil || len(got) != 1 {
		t.Fatalf("Take: got %d, %v; want 1", len(got), err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	got, _, err := s.Take(ctx, r, now, 5)
	if err != nil || len(got) != 1 || got[0].ID != "e1.a" {
		t.Fatalf("Take after reopening: got %d, %v; want e1.a again", len(got), err)
	}
}

// TestDiskFull: a store cannot open below its free-space reserve (it would
// fill the disk), and says why.
func TestDiskFull(t *testing.T) {
	_, err := badgerstore.Open(context.Background(), badgerstore.Options{Dir: t.TempDir(), Logger: zerolog.Nop(), Reserve: 1 << 62})
	if !errors.Is(err, relay.ErrDiskFull) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Open below the reserve: got %v, want ErrDiskFull saying disk full", err)
	}
}

// TestReserveFloor: ReserveFloor is the smallest reserve Open takes, so a
// configuration checked against it opens.
func TestReserveFloor(t *testing.T) {
	floor := badgerstore.ReserveFloor()
	if _, err := badgerstore.Open(context.Background(), badgerstore.Options{Dir: t.TempDir(), Logger: zerolog.Nop(), Reserve: floor - 1}); err == nil || !strings.Contains(err.Error(), "below the floor") {
		t.Fatalf("Open with a reserve of ReserveFloor()-1: got %v, want it refused as below the floor", err)
	}
	s, err := badgerstore.Open(context.Background(), badgerstore.Options{Dir: t.TempDir(), Logger: zerolog.Nop(), Reserve: floor})
	if err != nil {
		t.Fatalf("Open with a reserve of ReserveFloor(): %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCanceledContext: a write whose caller has gone still lands whole.
func TestCanceledContext(t *testing.T) {
	s := open(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ev, ds := newEvent("e1", "a")
	if _, err := s.Accept(ctx, ev, ds); err != nil {
		t.Fatalf("Accept with a canceled context: %v (a durable write is not cut short)", err)
	}
	if _, err := s.Delivery(context.Background(), "acme", "e1.a"); err != nil {
		t.Fatalf("the delivery of that Accept: %v", err)
	}
}

// TestTooLarge: an event whose record is over a value log file is refused
// with relay.ErrTooLarge, which no retry gets past (not ErrUnavailable),
// and the store is as it was: the event before it still there and due, the
// next one taken.
func TestTooLarge(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	kept, kds := newEvent("kept", "a")
	if _, err := s.Accept(ctx, kept, kds); err != nil {
		t.Fatal(err)
	}
	big, bds := newEvent("big", "a")
	// A whole value log file: with the event's metadata, its record is over.
	big.Body = make([]byte, store.DefaultValueLogFileSize)
	_, err := s.Accept(ctx, big, bds)
	if !errors.Is(err, relay.ErrTooLarge) || errors.Is(err, relay.ErrUnavailable) {
		t.Fatalf("Accept of a %d-byte body: got %v, want ErrTooLarge", len(big.Body), err)
	}
	if _, err := s.Event(ctx, "acme", "big"); !errors.Is(err, relay.ErrNotFound) {
		t.Errorf("the refused event: got %v, want ErrNotFound", err)
	}
	if err := s.Health(); err != nil {
		t.Errorf("Health after the refusal: %v", err)
	}
	next, nds := newEvent("next", "a")
	if _, err := s.Accept(ctx, next, nds); err != nil {
		t.Fatalf("Accept after the refusal: %v", err)
	}
	got, _, err := s.Take(ctx, relay.EndpointRef{Org: "acme", Endpoint: "a"}, kept.ReceivedAt, 5)
	if err != nil || len(got) != 2 || got[0].EventID == "big" || got[1].EventID == "big" {
		t.Fatalf("Take: got %d deliveries, %v; want those of kept and next", len(got), err)
	}
}
