package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
)

const sec = time.Second

func testTakeDueOrder(t *testing.T, f Factory) {
	s := f.New(t)
	// Accepted out of due order, ids not in due order either.
	accept(t, s, evSpec{id: "k", eps: []string{"a"}, due: at(3 * sec)})
	accept(t, s, evSpec{id: "z", eps: []string{"a"}, due: at(1 * sec)})
	accept(t, s, evSpec{id: "m", eps: []string{"a"}, due: at(2 * sec)})
	accept(t, s, evSpec{id: "b", eps: []string{"a"}, due: at(1 * sec)})
	accept(t, s, evSpec{id: "c", eps: []string{"other"}, due: at(0)})
	got, next := take(t, s, ref("acme", "a"), at(10*sec), 10)
	wantIDs(t, "Take: by due time, then id", ids(got), []string{"b.a", "z.a", "m.a", "k.a"})
	wantNext(t, next, time.Time{})
	for _, d := range got {
		if d.Endpoint != "a" {
			t.Fatalf("Take of endpoint a returned %s of endpoint %s", d.ID, d.Endpoint)
		}
	}
}

func testTakeNext(t *testing.T, f Factory) {
	s := f.New(t)
	r := ref("acme", "a")
	got, next := take(t, s, r, t0, 5)
	wantIDs(t, "Take of an empty store", ids(got), nil)
	wantNext(t, next, time.Time{})
	accept(t, s, evSpec{id: "e1", eps: []string{"a"}, due: at(1 * sec)})
	accept(t, s, evSpec{id: "e2", eps: []string{"a"}, due: at(5 * sec)})
	got, next = take(t, s, r, t0, 5)
	wantIDs(t, "Take before anything is due", ids(got), nil)
	wantNext(t, next, at(1*sec))
	got, next = take(t, s, r, at(1*sec), 5)
	wantIDs(t, "Take at the first due time (due when NextAttemptAt <= now)", ids(got), []string{"e1.a"})
	wantNext(t, next, at(5*sec))
	got, next = take(t, s, r, at(2*sec), 5)
	wantIDs(t, "Take while the first is leased", ids(got), nil)
	wantNext(t, next, at(5*sec))
}

func testTakeLimit(t *testing.T, f Factory) {
	s := f.New(t)
	r := ref("acme", "a")
	for i := range 5 {
		accept(t, s, evSpec{id: fmt.Sprintf("e%d", i), eps: []string{"a"}, due: at(time.Duration(i) * sec)})
	}
	now := at(time.Minute)
	got, _ := take(t, s, r, now, 2)
	wantIDs(t, "Take 2", ids(got), []string{"e0.a", "e1.a"})
	got, _ = take(t, s, r, now, 2)
	wantIDs(t, "Take 2 more", ids(got), []string{"e2.a", "e3.a"})
	got, next := take(t, s, r, now, 10)
	wantIDs(t, "Take the rest", ids(got), []string{"e4.a"})
	wantNext(t, next, time.Time{})
	got, next = take(t, s, r, now, 10)
	wantIDs(t, "Take when all are leased", ids(got), nil)
	wantNext(t, next, time.Time{})
}

func testTakeLeasedOnce(t *testing.T, f Factory) {
	s := f.New(t)
	r := ref("acme", "a")
	const n = 60
	for i := range n {
		accept(t, s, evSpec{id: fmt.Sprintf("e%02d", i), eps: []string{"a"}})
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				ds, _, err := s.Take(context.Background(), r, t0, 3)
				if err != nil {
					t.Errorf("Take: %v", err)
					return
				}
				if len(ds) == 0 {
					return
				}
				mu.Lock()
				for _, d := range ds {
					seen[d.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("8 concurrent takers got %d distinct deliveries, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("delivery %s was leased %d times, want once", id, c)
		}
	}
}

func testRelease(t *testing.T, f Factory) {
	s := f.New(t)
	r := ref("acme", "a")
	_, ds := accept(t, s, evSpec{id: "e1", eps: []string{"a"}})
	accept(t, s, evSpec{id: "e2", eps: []string{"a"}, received: at(1 * sec)})
	got, _ := take(t, s, r, at(sec), 1)
	wantIDs(t, "Take", ids(got), []string{"e1.a"})
	if err := s.Release(context.Background(), got[0]); err != nil {
		t.Fatalf("Release: %v", err)
	}
	again, _ := take(t, s, r, at(sec), 5)
	wantIDs(t, "Take after Release: due again in its place", ids(again), []string{"e1.a", "e2.a"})
	wantDelivery(t, again[0], ds[0])
	wantDelivery(t, getDelivery(t, s, "acme", "e1.a"), ds[0])
}

// testOrdered: an ordered endpoint's deliveries go by creation, one at a
// time: a leased ordered delivery blocks everything after it (the head of
// a FIFO is in flight), and a failed head keeps its place.
func testOrdered(t *testing.T, f Factory) {
	s := f.New(t)
	r := ref("acme", "fifo")
	// Created in the order c1..c4 but accepted scrambled; ids against it.
	for _, e := range []struct {
		id      string
		created time.Duration
	}{{"z3", 3 * sec}, {"y1", 1 * sec}, {"x4", 4 * sec}, {"w2", 2 * sec}} {
		accept(t, s, evSpec{id: e.id, eps: []string{"fifo"}, ordered: true, received: at(e.created)})
	}
	now := at(time.Minute)
	got, _ := take(t, s, r, now, 10)
	wantIDs(t, "Take of an ordered endpoint: the head alone (it blocks the rest while leased)", ids(got), []string{"y1.fifo"})
	again, next := take(t, s, r, now, 10)
	wantIDs(t, "Take while the ordered head is leased", ids(again), nil)
	// Nothing falls due while the head is leased: zero, or, for a store
	// whose leases lapse (shared by relays), when this one would.
	if !next.IsZero() && !next.After(now) {
		t.Fatalf("Take next while the ordered head is leased: got %s, want zero or after %s", next, now)
	}

	retry := at(2 * time.Minute)
	record(t, s, attempted(got[0], now, 503, relay.StatusFailed, retry), "")
	again, next = take(t, s, r, now, 10)
	wantIDs(t, "Take while the failed head waits for its retry", ids(again), nil)
	wantNext(t, next, retry)
	got, _ = take(t, s, r, retry, 10)
	wantIDs(t, "Take at the head's retry", ids(got), []string{"y1.fifo"})
	if d := got[0]; len(d.Attempts) != 1 || !d.Ordered {
		t.Fatalf("the retried head: %d attempts, ordered %v; want 1, true", len(d.Attempts), d.Ordered)
	}
	for _, want := range []string{"w2.fifo", "z3.fifo", "x4.fifo"} {
		record(t, s, attempted(got[0], retry, 200, relay.StatusDelivered, time.Time{}), "")
		got, _ = take(t, s, r, retry, 10)
		wantIDs(t, "Take after the head was delivered: the next by creation", ids(got), []string{want})
	}
	record(t, s, attempted(got[0], retry, 200, relay.StatusDelivered, time.Time{}), "")
	got, next = take(t, s, r, retry, 10)
	wantIDs(t, "Take of a drained ordered endpoint", ids(got), nil)
	wantNext(t, next, time.Time{})
}

func testRecordFailed(t *testing.T, f Factory) {
	s := f.New(t)
	r := ref("acme", "a")
	accept(t, s, evSpec{id: "e1", eps: []string{"a"}})
	accept(t, s, evSpec{id: "e2", eps: []string{"a"}, received: at(sec)})
	got, _ := take(t, s, r, at(sec), 1)
	wantIDs(t, "Take", ids(got), []string{"e1.a"})
	failed := attempted(got[0], at(sec), 500, relay.StatusFailed, at(30*sec))
	record(t, s, failed, "")
	wantDelivery(t, getDelivery(t, s, "acme", "e1.a"), failed)
	got, next := take(t, s, r, at(2*sec), 5)
	wantIDs(t, "Take after a failure: the failed one waits for its retry", ids(got), []string{"e2.a"})
	wantNext(t, next, at(30*sec))
	if n := waiting(t, s, r); n != 2 {
		t.Fatalf("Waiting: got %d, want 2 (one failed, one leased)", n)
	}
	got, _ = take(t, s, r, at(30*sec), 5)
	wantIDs(t, "Take at the retry time", ids(got), []string{"e1.a"})
	wantDelivery(t, got[0], failed)
}

func testRecordFinal(t *testing.T, f Factory) {
	for _, status := range []string{relay.StatusDelivered, relay.StatusDead} {
		t.Run(status, func(t *testing.T) {
			s := f.New(t)
			r := ref("acme", "a")
			accept(t, s, evSpec{id: "e1", eps: []string{"a"}})
			got, _ := take(t, s, r, t0, 1)
			final := attempted(got[0], t0, 200, status, time.Time{})
			record(t, s, final, "")
			wantDelivery(t, getDelivery(t, s, "acme", "e1.a"), final)
			got, next := take(t, s, r, at(time.Hour), 5)
			wantIDs(t, "Take after the only delivery went "+status, ids(got), nil)
			wantNext(t, next, time.Time{})
			if n := waiting(t, s, r); n != 0 {
				t.Fatalf("Waiting: got %d, want 0", n)
			}
		})
	}
}

func testRecordDisable(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := context.Background()
	accept(t, s, evSpec{id: "e1", eps: []string{"a"}})
	got, _ := take(t, s, ref("acme", "a"), t0, 1)
	record(t, s, attempted(got[0], t0, 410, relay.StatusDead, time.Time{}), "answered 410 Gone")
	eps, err := s.Endpoints(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	wantEndpoints(t, eps, map[string]relay.StoredEndpoint{"a": {ID: "a", Disabled: "answered 410 Gone"}})
	if d := getDelivery(t, s, "acme", "e1.a"); d.Status != relay.StatusDead {
		t.Fatalf("delivery status: got %s, want dead", d.Status)
	}
}

func testRequeue(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := context.Background()
	r := ref("acme", "a")
	accept(t, s, evSpec{id: "e1", eps: []string{"a"}})
	accept(t, s, evSpec{id: "e2", eps: []string{"a"}})
	got, _ := take(t, s, r, t0, 2)
	record(t, s, attempted(got[0], t0, 200, relay.StatusDelivered, time.Time{}), "")
	record(t, s, attempted(got[1], t0, 500, relay.StatusFailed, at(time.Hour)), "")

	now := at(time.Minute)
	for _, id := range []string{"e1.a", "e2.a"} {
		before := getDelivery(t, s, "acme", id)
		d, err := s.Requeue(ctx, "acme", id, now)
		if err != nil {
			t.Fatalf("Requeue(%s): %v", id, err)
		}
		want := *before
		want.Status, want.NextAttemptAt, want.Base = relay.StatusPending, ptr(now), len(before.Attempts)
		wantDelivery(t, d, &want)
		wantDelivery(t, getDelivery(t, s, "acme", id), &want)
	}
	got, next := take(t, s, r, now, 5)
	wantIDs(t, "Take after requeueing a delivered and a failed delivery", ids(got), []string{"e1.a", "e2.a"})
	wantNext(t, next, time.Time{})
	if n := waiting(t, s, r); n != 2 {
		t.Fatalf("Waiting: got %d, want 2", n)
	}
}

// testRequeueLeased: a leased delivery is requeued when its lease ends,
// never attempted twice at once.
func testRequeueLeased(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := context.Background()
	r := ref("acme", "a")
	accept(t, s, evSpec{id: "e1", eps: []string{"a"}})
	accept(t, s, evSpec{id: "e2", eps: []string{"a"}})
	got, _ := take(t, s, r, t0, 2)
	now := at(sec)
	for _, d := range got {
		if _, err := s.Requeue(ctx, "acme", d.ID, now); err != nil {
			t.Fatalf("Requeue of leased %s: %v", d.ID, err)
		}
	}
	again, _ := take(t, s, r, at(time.Hour), 5)
	wantIDs(t, "Take after requeueing leased deliveries: still leased", ids(again), nil)

	// Ended by Record: the attempt is kept, then the requeue applies.
	delivered := attempted(got[0], at(2*sec), 200, relay.StatusDelivered, time.Time{})
	want := *delivered
	want.Status, want.NextAttemptAt, want.Base = relay.StatusPending, ptr(now), 1
	record(t, s, delivered, "")
	wantDelivery(t, getDelivery(t, s, "acme", "e1.a"), &want)
	// The caller learns the state stored, not the attempt's outcome: it
	// counts and reports the delivery as waiting again.
	if delivered.Status != want.Status || delivered.Base != want.Base || delivered.NextAttemptAt == nil || !delivered.NextAttemptAt.Equal(now) {
		t.Fatalf("Record of a delivery requeued during its attempt: the caller got %s, base %d, due %v; want it told pending, base 1, due %s",
			delivered.Status, delivered.Base, delivered.NextAttemptAt, now)
	}
	// Ended by Release: due at the requeue's time.
	if err := s.Release(ctx, got[1]); err != nil {
		t.Fatalf("Release: %v", err)
	}
	d := getDelivery(t, s, "acme", "e2.a")
	if d.Status != relay.StatusPending || d.NextAttemptAt == nil || !d.NextAttemptAt.Equal(now) {
		t.Fatalf("released after a requeue: got %s due %v, want pending due %s", d.Status, d.NextAttemptAt, now)
	}
	again, _ = take(t, s, r, now, 5)
	wantIDs(t, "Take once the leases ended", ids(again), []string{"e1.a", "e2.a"})
	wantDelivery(t, again[0], &want)
}

func testExpedite(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := context.Background()
	r := ref("acme", "a")
	for _, id := range []string{"fa", "fb", "fc", "dl"} {
		accept(t, s, evSpec{id: id, eps: []string{"a"}})
	}
	accept(t, s, evSpec{id: "later", eps: []string{"a"}, due: at(50 * sec)}) // pending, not failed
	accept(t, s, evSpec{id: "o", eps: []string{"other"}})
	got, _ := take(t, s, r, t0, 4)
	wantIDs(t, "Take", ids(got), []string{"dl.a", "fa.a", "fb.a", "fc.a"})
	record(t, s, attempted(got[0], t0, 200, relay.StatusDelivered, time.Time{}), "")
	record(t, s, attempted(got[1], t0, 500, relay.StatusFailed, at(200*sec)), "")
	record(t, s, attempted(got[2], t0, 500, relay.StatusFailed, at(100*sec)), "")
	record(t, s, attempted(got[3], t0, 500, relay.StatusFailed, at(5*sec)), "") // due by now
	oth, _ := take(t, s, ref("acme", "other"), t0, 1)
	record(t, s, attempted(oth[0], t0, 500, relay.StatusFailed, at(100*sec)), "")

	now := at(10 * sec)
	n, err := s.Expedite(ctx, r, now, nil)
	if err != nil {
		t.Fatalf("Expedite: %v", err)
	}
	if n != 2 {
		t.Fatalf("Expedite: moved %d, want 2 (the failed ones waiting for later)", n)
	}
	for _, id := range []string{"fa.a", "fb.a"} {
		if d := getDelivery(t, s, "acme", id); d.NextAttemptAt == nil || !d.NextAttemptAt.Equal(now) || d.Status != relay.StatusFailed {
			t.Fatalf("expedited %s: got %s due %v, want failed due %s", id, d.Status, d.NextAttemptAt, now)
		}
	}
	got, next := take(t, s, r, now, 10)
	wantIDs(t, "Take after Expedite", ids(got), []string{"fc.a", "fa.a", "fb.a"})
	wantNext(t, next, at(50*sec))
	if d := getDelivery(t, s, "acme", "o.other"); !d.NextAttemptAt.Equal(at(100 * sec)) {
		t.Fatalf("another endpoint's delivery moved: due %s", d.NextAttemptAt)
	}
}

// testExpediteTypes: a tunnel client that takes only some event types
// (--events) makes due at once only the deliveries of those types; the
// others keep waiting for their retry, as they would with no client.
func testExpediteTypes(t *testing.T, f Factory) {
	tests := []struct {
		name  string
		types []string
		moved []string
	}{
		{"One", []string{"payment"}, []string{"p.a"}},
		{"Two", []string{"inbound_message", "payment"}, []string{"m.a", "p.a"}},
		{"Wildcard", []string{"*"}, []string{"m.a", "p.a", "x.a"}},
		{"NoFilter", nil, []string{"m.a", "p.a", "x.a"}},
		{"NoneOfThem", []string{"delivery_report"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := f.New(t)
			r := ref("acme", "a")
			for _, sp := range []evSpec{{id: "p", typ: "payment"}, {id: "m", typ: "inbound_message"}, {id: "x", typ: "order.created"}} {
				sp.eps = []string{"a"}
				accept(t, s, sp)
			}
			got, _ := take(t, s, r, t0, 3)
			for _, d := range got {
				record(t, s, attempted(d, t0, 500, relay.StatusFailed, at(time.Hour)), "")
			}
			now := at(sec)
			n, err := s.Expedite(context.Background(), r, now, tt.types)
			if err != nil || n != len(tt.moved) {
				t.Fatalf("Expedite(%v): got %d, %v; want %d", tt.types, n, err, len(tt.moved))
			}
			got, next := take(t, s, r, now, 10)
			wantIDs(t, "Take after Expedite", ids(got), tt.moved)
			if len(tt.moved) < 3 {
				wantNext(t, next, at(time.Hour)) // the others wait for their retry
			}
		})
	}
	t.Run("Ordered", func(t *testing.T) {
		s := f.New(t)
		r := ref("acme", "fifo")
		accept(t, s, evSpec{id: "m", typ: "inbound_message", eps: []string{"fifo"}, ordered: true})
		accept(t, s, evSpec{id: "p", typ: "payment", eps: []string{"fifo"}, ordered: true, received: at(sec)})
		head, _ := take(t, s, r, at(sec), 1)
		wantIDs(t, "Take", ids(head), []string{"m.fifo"})
		record(t, s, attempted(head[0], at(sec), 500, relay.StatusFailed, at(time.Hour)), "")
		if n, err := s.Expedite(context.Background(), r, at(2*sec), []string{"payment"}); err != nil || n != 0 {
			t.Fatalf("Expedite of what the head is not: got %d, %v; want 0", n, err)
		}
		got, _ := take(t, s, r, at(2*sec), 5)
		wantIDs(t, "Take while the head waits for its retry", ids(got), nil)
		if n, err := s.Expedite(context.Background(), r, at(3*sec), []string{"inbound_message"}); err != nil || n != 1 {
			t.Fatalf("Expedite of the head's type: got %d, %v; want 1", n, err)
		}
		got, _ = take(t, s, r, at(3*sec), 5)
		wantIDs(t, "Take after the head's type was expedited", ids(got), []string{"m.fifo"})
	})
}

func testExpediteOrdered(t *testing.T, f Factory) {
	s := f.New(t)
	r := ref("acme", "fifo")
	for i, id := range []string{"c", "b", "a"} {
		accept(t, s, evSpec{id: id, eps: []string{"fifo"}, ordered: true, received: at(time.Duration(i) * sec)})
	}
	got, _ := take(t, s, r, at(5*sec), 1)
	wantIDs(t, "Take", ids(got), []string{"c.fifo"})
	record(t, s, attempted(got[0], at(5*sec), 500, relay.StatusFailed, at(time.Hour)), "")
	n, err := s.Expedite(context.Background(), r, at(6*sec), nil)
	if err != nil || n != 1 {
		t.Fatalf("Expedite: got %d, %v; want 1", n, err)
	}
	got, _ = take(t, s, r, at(6*sec), 5)
	wantIDs(t, "Take after Expedite of an ordered endpoint: the head first", ids(got), []string{"c.fifo"})
	record(t, s, attempted(got[0], at(6*sec), 200, relay.StatusDelivered, time.Time{}), "")
	got, _ = take(t, s, r, at(6*sec), 5)
	wantIDs(t, "Take after the head", ids(got), []string{"b.fifo"})
}

func testWaiting(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := context.Background()
	accept(t, s, evSpec{id: "e1", eps: []string{"a", "b"}})
	accept(t, s, evSpec{id: "e2", eps: []string{"a"}})
	accept(t, s, evSpec{id: "e3", eps: []string{"a"}})
	accept(t, s, evSpec{org: "other", id: "e1", eps: []string{"a"}})
	got, _ := take(t, s, ref("acme", "a"), t0, 3)
	record(t, s, attempted(got[0], t0, 200, relay.StatusDelivered, time.Time{}), "")
	record(t, s, attempted(got[1], t0, 500, relay.StatusFailed, at(time.Hour)), "")
	// got[2] stays leased: still waiting.
	m, err := s.Waiting(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[relay.EndpointRef]int64{ref("acme", "a"): 2, ref("acme", "b"): 1, ref("other", "a"): 1}
	for r, n := range want {
		if m[r] != n {
			t.Fatalf("Waiting[%s]: got %d, want %d (all: %v)", r, m[r], n, m)
		}
	}
	for r, n := range m {
		if _, ok := want[r]; !ok && n != 0 {
			t.Fatalf("Waiting[%s]: got %d, want 0", r, n)
		}
	}
}

// testTakeOutOfOrder: deliveries accepted concurrently with due times in
// any order, some earlier than everything already waiting, while workers
// take and record them: every Take after an Accept returned finds what it
// made due. Each accepted delivery hands the workers a token, so a worker
// holding one knows something is waiting for it.
func testTakeOutOfOrder(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := context.Background()
	r := ref("acme", "a")
	const producers, perProducer = 8, 25
	total := producers * perProducer
	// An entry that is never due keeps the queue from ever looking empty.
	accept(t, s, evSpec{id: "anchor", eps: []string{"a"}, due: at(2 * time.Hour)})
	tokens := make(chan struct{}, total)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range perProducer {
				// Due times run backwards within a producer and interleave
				// across producers.
				due := at(-time.Duration(i*producers+p) * time.Millisecond)
				ev, ds := makeEvent(evSpec{id: fmt.Sprintf("p%d-%02d", p, i), eps: []string{"a"}, received: due})
				if _, err := s.Accept(ctx, ev, ds); err != nil {
					t.Errorf("Accept: %v", err)
					return
				}
				tokens <- struct{}{}
			}
		})
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var takes atomic.Int64
	var work sync.WaitGroup
	for range 3 {
		work.Go(func() {
			for range tokens {
				ds, _, err := s.Take(ctx, r, t0, 1)
				if err != nil {
					t.Errorf("Take: %v", err)
					return
				}
				if len(ds) != 1 {
					t.Errorf("Take: got %d deliveries, want 1 (an accepted due delivery is out of sight)", len(ds))
					return
				}
				st, next := relay.StatusDelivered, time.Time{}
				if takes.Add(1)%3 == 0 {
					st, next = relay.StatusFailed, at(time.Hour) // moved back into the queue, far behind
				}
				if err := s.Record(ctx, attempted(ds[0], t0, 200, st, next), ""); err != nil {
					t.Errorf("Record: %v", err)
					return
				}
				mu.Lock()
				seen[ds[0].ID]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(tokens)
	work.Wait()
	if t.Failed() {
		return
	}
	if len(seen) != total {
		t.Fatalf("took %d distinct deliveries, want %d", len(seen), total)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("delivery %s taken %d times before its retry was due, want once", id, n)
		}
	}
	got, next := take(t, s, r, t0, total+1)
	wantIDs(t, "Take before the retries are due", ids(got), nil)
	wantNext(t, next, at(time.Hour))
}

// testTakeBelowEverything: a delivery due before everything a Take has
// seen so far is found by the next Take.
func testTakeBelowEverything(t *testing.T, f Factory) {
	s := f.New(t)
	r := ref("acme", "a")
	accept(t, s, evSpec{id: "anchor", eps: []string{"a"}, due: at(2 * time.Hour)})
	accept(t, s, evSpec{id: "first", eps: []string{"a"}})
	got, _ := take(t, s, r, t0, 5)
	wantIDs(t, "Take", ids(got), []string{"first.a"})
	record(t, s, attempted(got[0], t0, 500, relay.StatusFailed, at(time.Hour)), "")
	for i := range 3 {
		got, next := take(t, s, r, t0, 5)
		wantIDs(t, "Take with nothing due", ids(got), nil)
		wantNext(t, next, at(time.Hour))
		id := fmt.Sprintf("earlier%d", i)
		accept(t, s, evSpec{id: id, eps: []string{"a"}, due: at(-time.Duration(i+1) * time.Hour)})
		got, _ = take(t, s, r, t0, 5)
		wantIDs(t, "Take after accepting a delivery due before everything waiting", ids(got), []string{id + ".a"})
		record(t, s, attempted(got[0], t0, 200, relay.StatusDelivered, time.Time{}), "")
	}
	if _, err := s.Requeue(context.Background(), "acme", "earlier0.a", at(-5*time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, _ = take(t, s, r, t0, 5)
	wantIDs(t, "Take after requeueing a delivery due before everything waiting", ids(got), []string{"earlier0.a"})
}
