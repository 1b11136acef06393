package badgerstore

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
)

// TestTakeWithoutScan: once a scan has seen every waiting delivery of a
// queue leased, Take picks what is written after from memory, in due
// order and by the same rules, until something leaves an entry behind
// that memory does not hold (a Release here); then it scans again.
func TestTakeWithoutScan(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	scans := 0
	s.afterScan = func() { scans++ }

	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	n := 0
	accept := func(ep string, due time.Time, ordered bool) string {
		t.Helper()
		n++
		id := fmt.Sprintf("dlv_%03d", n)
		created := t0.Add(time.Duration(n) * time.Millisecond)
		ev := &relay.Event{ID: id, Org: "acme", Type: "t", ReceivedAt: created}
		d := &relay.Delivery{ID: id, EventID: id, Org: "acme", Endpoint: ep, Status: relay.StatusPending,
			CreatedAt: created, NextAttemptAt: &due, Ordered: ordered}
		if _, err := s.Accept(ctx, ev, []*relay.Delivery{d}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	take := func(ep string, now time.Time, max int) ([]*relay.Delivery, time.Time) {
		t.Helper()
		ds, next, err := s.Take(ctx, relay.EndpointRef{Org: "acme", Endpoint: ep}, now, max)
		if err != nil {
			t.Fatal(err)
		}
		return ds, next
	}
	record := func(d *relay.Delivery, status string, next *time.Time) {
		t.Helper()
		d.Status, d.NextAttemptAt = status, next
		d.Attempts = append(d.Attempts, relay.Attempt{N: len(d.Attempts) + 1, At: t0, Status: 500})
		if err := s.Record(ctx, d, ""); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(ds []*relay.Delivery) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}

	first := accept("a", t0, false)
	if ds, _ := take("a", t0, 8); len(ds) != 1 || ds[0].ID != first || scans != 1 {
		t.Fatalf("first Take: got %v after %d scans; want [%s] after one scan", ids(ds), scans, first)
	} else {
		record(ds[0], relay.StatusDelivered, nil)
	}

	// Written after: taken from memory, in due order, the later one not
	// yet due.
	later := accept("a", t0.Add(time.Hour), false)
	b := accept("a", t0.Add(2*time.Millisecond), false)
	c := accept("a", t0.Add(time.Millisecond), false)
	ds, next := take("a", t0.Add(time.Second), 8)
	if got := ids(ds); len(got) != 2 || got[0] != c || got[1] != b || !next.Equal(t0.Add(time.Hour)) {
		t.Fatalf("Take from memory: got %v, next %v; want [%s %s], next %v", got, next, c, b, t0.Add(time.Hour))
	}
	if scans != 1 {
		t.Fatalf("took with %d scans, want none after the first", scans-1)
	}
	// A failed attempt waits for its retry, in memory too.
	retry := t0.Add(30 * time.Minute)
	record(ds[0], relay.StatusFailed, &retry)
	record(ds[1], relay.StatusDelivered, nil)
	if ds, next := take("a", t0.Add(time.Second), 8); len(ds) != 0 || !next.Equal(retry) {
		t.Fatalf("Take before the retry: got %v, next %v; want nothing, next %v", ids(ds), next, retry)
	}
	if ds, _ := take("a", t0.Add(2*time.Hour), 8); len(ds) != 2 || ds[0].ID != c || ds[1].ID != later {
		t.Fatalf("Take after both are due: got %v, want [%s %s]", ids(ds), c, later)
	} else if scans != 1 {
		t.Fatalf("took with %d scans, want none after the first", scans-1)
	} else {
		// A Release leaves an entry memory no longer holds: scan again.
		if err := s.Release(ctx, ds[0]); err != nil {
			t.Fatal(err)
		}
		record(ds[1], relay.StatusDelivered, nil)
	}
	if ds, _ := take("a", t0.Add(2*time.Hour), 8); len(ds) != 1 || ds[0].ID != c || scans != 2 {
		t.Fatalf("Take after a Release: got %v after %d scans; want [%s] from a second scan", ids(ds), scans, c)
	}

	// Ordered: the head in flight holds back what follows. (A scan stops
	// at the head it leases, so an ordered queue is scanned each time.)
	h := accept("o", t0, true)
	ds, _ = take("o", t0, 8)
	if len(ds) != 1 || ds[0].ID != h {
		t.Fatalf("ordered head: got %v, want [%s]", ids(ds), h)
	}
	second := accept("o", t0, true)
	if more, _ := take("o", t0, 8); len(more) != 0 {
		t.Fatalf("Take while the head is in flight: got %v, want nothing", ids(more))
	}
	record(ds[0], relay.StatusDelivered, nil)
	if more, _ := take("o", t0, 8); len(more) != 1 || more[0].ID != second {
		t.Fatalf("Take after the head: got %v, want [%s]", ids(more), second)
	}
}

// TestBacklogRetriesNotKept: a queue's retries stay in memory only while
// the queue is small enough for Take to pick from memory. Past that, each
// failed attempt's record (with its request headers) is read back when it
// is due, whole, instead of waiting in memory for the GC to scan.
func TestBacklogRetriesNotKept(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	ref := relay.EndpointRef{Org: "acme", Endpoint: "down"}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const n = maxComplete + 64
	for i := range n {
		id := fmt.Sprintf("dlv_%04d", i)
		created := t0.Add(time.Duration(i) * time.Millisecond)
		ev := &relay.Event{ID: id, Org: "acme", Type: "t", ReceivedAt: created}
		d := &relay.Delivery{ID: id, EventID: id, Org: "acme", Endpoint: "down", Status: relay.StatusPending,
			CreatedAt: created, NextAttemptAt: &t0}
		if _, err := s.Accept(ctx, ev, []*relay.Delivery{d}); err != nil {
			t.Fatal(err)
		}
	}
	ds, _, err := s.Take(ctx, ref, t0, n)
	if err != nil || len(ds) != n {
		t.Fatalf("Take: got %d, %v; want %d", len(ds), err, n)
	}
	retry := t0.Add(time.Hour)
	for _, d := range ds {
		d.Status, d.NextAttemptAt = relay.StatusFailed, &retry
		d.Attempts = append(d.Attempts, relay.Attempt{N: 1, At: t0, Error: "connection refused",
			Request: http.Header{"Webhook-Id": {d.EventID}}})
		if err := s.Record(ctx, d, ""); err != nil {
			t.Fatal(err)
		}
	}
	q := s.queue(ref)
	q.mu.Lock()
	kept := len(q.hot)
	q.mu.Unlock()
	if kept > maxComplete {
		t.Errorf("%d retries kept in memory, want at most %d", kept, maxComplete)
	}

	// Every retry is taken when due, with its attempt, in due order.
	var got []*relay.Delivery
	for len(got) < n {
		more, _, err := s.Take(ctx, ref, retry, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(more) == 0 {
			break
		}
		got = append(got, more...)
	}
	if len(got) != n {
		t.Fatalf("Take at the retry: got %d deliveries, want %d", len(got), n)
	}
	for i, d := range got {
		if want := fmt.Sprintf("dlv_%04d", i); d.ID != want {
			t.Fatalf("delivery %d is %s, want %s", i, d.ID, want)
		}
		if len(d.Attempts) != 1 || d.Attempts[0].Request.Get("Webhook-Id") != d.EventID {
			t.Fatalf("%s: attempts %+v, want the one recorded with its headers", d.ID, d.Attempts)
		}
	}
}
