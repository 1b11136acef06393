package badgerstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/internal/store"
	"github.com/sidehook/sidehook/relay"
)

func openInternal(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{Dir: dir, Logger: zerolog.Nop(), Reserve: -1})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// indexCounts counts the due index entry by entry: what Waiting must say.
func indexCounts(t *testing.T, s *Store) map[relay.EndpointRef]int64 {
	t.Helper()
	out := make(map[relay.EndpointRef]int64)
	err := s.db.Scan(context.Background(), store.ScanOptions{Prefix: []byte(pfxQueue), KeysOnly: true}, func(k, _ []byte) error {
		ep, ok := queueEndpoint(k)
		if !ok {
			return fmt.Errorf("due-index key %q without an endpoint", k)
		}
		ref, _ := splitEndpoint(string(ep))
		out[ref]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func wantWaiting(t *testing.T, what string, s *Store) {
	t.Helper()
	got, err := s.Waiting(context.Background())
	if err != nil {
		t.Fatalf("%s: Waiting: %v", what, err)
	}
	if want := indexCounts(t, s); !maps.Equal(got, want) {
		t.Fatalf("%s: Waiting: got %v, the due index holds %v", what, got, want)
	}
}

var churnT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// churn runs every path that moves due-index entries at once: accepts,
// takes and records of every outcome, requeues (of leased, final and
// waiting deliveries), expedites, purges and an endpoint's deletion.
func churn(t *testing.T, s *Store, seed uint64) {
	t.Helper()
	ctx := context.Background()
	eps := []string{"a", "b", "c"}
	const events = 300
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	report := func(err error) {
		if err != nil {
			select {
			case errs <- err:
			default:
			}
		}
	}
	wg.Go(func() {
		for i := range events {
			id := fmt.Sprintf("s%d-e%03d", seed, i)
			ev := &relay.Event{ID: id, Type: "t", Org: "acme", ReceivedAt: churnT0, Body: []byte("{}")}
			var ds []*relay.Delivery
			for j, ep := range eps[:1+i%len(eps)] {
				due := churnT0.Add(time.Duration(i%7) * time.Second)
				ds = append(ds, &relay.Delivery{ID: id + "." + ep, EventID: id, Org: "acme", Endpoint: ep, Type: "t",
					Status: relay.StatusPending, CreatedAt: churnT0.Add(time.Duration(i) * time.Millisecond),
					Ordered: (i+j)%5 == 0, NextAttemptAt: &due})
				ev.Deliveries = append(ev.Deliveries, relay.DeliveryRef{ID: id + "." + ep, Endpoint: ep})
			}
			_, err := s.Accept(ctx, ev, ds)
			report(err)
		}
	})
	for w, ep := range eps {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			ref := relay.EndpointRef{Org: "acme", Endpoint: ep}
			for range 200 {
				now := churnT0.Add(time.Duration(rng.IntN(20)) * time.Second)
				ds, _, err := s.Take(ctx, ref, now, 8)
				report(err)
				for _, d := range ds {
					cp := *d
					cp.Attempts = append(cp.Attempts, relay.Attempt{N: len(cp.Attempts) + 1, At: now, Status: 500})
					switch rng.IntN(4) {
					case 0:
						cp.Status, cp.NextAttemptAt = relay.StatusDelivered, nil
					case 1:
						report(s.Release(ctx, d))
						continue
					default:
						next := now.Add(time.Duration(rng.IntN(30)) * time.Second)
						cp.Status, cp.NextAttemptAt = relay.StatusFailed, &next
					}
					report(s.Record(ctx, &cp, ""))
				}
			}
		})
	}
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(seed, 99))
		for range 300 {
			id := fmt.Sprintf("s%d-e%03d.%s", seed, rng.IntN(events), eps[rng.IntN(len(eps))])
			_, err := s.Requeue(ctx, "acme", id, churnT0.Add(time.Duration(rng.IntN(20))*time.Second))
			if !errors.Is(err, relay.ErrNotFound) {
				report(err)
			}
			if rng.IntN(50) == 0 {
				_, err := s.Expedite(ctx, relay.EndpointRef{Org: "acme", Endpoint: eps[rng.IntN(len(eps))]}, churnT0.Add(10*time.Second))
				report(err)
			}
			if rng.IntN(100) == 0 {
				_, err := s.Purge(ctx, churnT0.Add(time.Hour))
				report(err)
			}
		}
		report(s.DeleteEndpoint(ctx, "acme", "c"))
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestWaitingFollowsTheIndex: after every path has moved entries at once,
// Waiting says what an entry-by-entry count of the due index says, before
// and after a fold, and after a reopen.
func TestWaitingFollowsTheIndex(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			dir := t.TempDir()
			s := openInternal(t, dir)
			churn(t, s, seed)
			wantWaiting(t, "after the churn", s)
			if err := s.fold(context.Background()); err != nil {
				t.Fatal(err)
			}
			wantWaiting(t, "after a fold", s)
			if n := deltas(t, s); n != 0 {
				t.Fatalf("after a fold with nothing in flight: %d delta records left, want 0", n)
			}
			churn(t, s, seed+100)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openInternal(t, dir)
			wantWaiting(t, "after a reopen", s)
		})
	}
}

func deltas(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	err := s.db.Scan(context.Background(), store.ScanOptions{Prefix: []byte(pfxCountDelta), KeysOnly: true}, func(_, _ []byte) error {
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestWaitingCountsAnOlderStore: a store written before the counts existed
// (no qs, no counts) is counted once at open, and kept from then on.
func TestWaitingCountsAnOlderStore(t *testing.T) {
	dir := t.TempDir()
	s := openInternal(t, dir)
	churn(t, s, 7)
	want := indexCounts(t, s)
	if len(want) == 0 {
		t.Fatal("the churn left no entry waiting: nothing to count")
	}
	for _, pfx := range []string{pfxCount, pfxCountDelta, keyFolded} {
		if err := s.db.DeletePrefix(context.Background(), []byte(pfx)); err != nil {
			t.Fatal(err)
		}
	}
	s.stopFolds() // a fold now would write a qs again
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openInternal(t, dir)
	wantWaiting(t, "after counting an older store", s)
	churn(t, s, 8)
	wantWaiting(t, "after more churn", s)
}

// TestWaitingFoldBound: a delta whose write is in flight stays above what
// a fold folds, so that it cannot commit below the folded bound.
func TestWaitingFoldBound(t *testing.T) {
	s := openInternal(t, t.TempDir())
	c := &s.counts
	a, b := c.begin(), c.begin()
	c.end(b)
	if got := c.bound(); got != a-1 {
		t.Fatalf("bound with %d in flight: got %d, want %d", a, got, a-1)
	}
	c.end(a)
	if got := c.bound(); got != b {
		t.Fatalf("bound with nothing in flight: got %d, want %d", got, b)
	}
}

func TestAddDeltas(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]int64
	}{
		{"one", map[string]int64{"acme/a": 1}},
		{"several", map[string]int64{"acme/a": -3, "acme/b": 2, "other/x": 1 << 40}},
		{"zeros dropped", map[string]int64{"acme/a": 0, "acme/b": -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]int64{}
			if err := addDeltas(appendDeltas(nil, tt.in), got); err != nil {
				t.Fatal(err)
			}
			want := maps.Clone(tt.in)
			maps.DeleteFunc(want, func(_ string, v int64) bool { return v == 0 })
			if !maps.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
	for _, bad := range [][]byte{{5, 'a'}, {1, 'a'}, {0xff}} {
		if err := addDeltas(bad, map[string]int64{}); err == nil {
			t.Fatalf("addDeltas(%q): no error", bad)
		}
	}
}
