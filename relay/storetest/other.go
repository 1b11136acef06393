package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
)

// testConcurrentWriters: events accepted and deliveries recorded from many
// goroutines at once; nothing is lost, nothing attempted twice. Each
// accepted delivery hands its endpoint's workers a token, so a worker
// holding one knows a delivery is waiting for it.
func testConcurrentWriters(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := context.Background()
	const producers, perProducer = 16, 15
	total := producers * perProducer
	eps := []string{"a", "b"}
	tokens := map[string]chan struct{}{"a": make(chan struct{}, total), "b": make(chan struct{}, total)}
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range perProducer {
				ev, ds := makeEvent(evSpec{id: fmt.Sprintf("p%02d-%02d", p, i), eps: eps, received: at(time.Duration(i) * time.Millisecond)})
				if _, err := s.Accept(ctx, ev, ds); err != nil {
					t.Errorf("Accept: %v", err)
					return
				}
				for _, ep := range eps {
					tokens[ep] <- struct{}{}
				}
			}
		})
	}
	var mu sync.Mutex
	attempts := map[string]int{}
	var work sync.WaitGroup
	for w := range 4 {
		ep := eps[w%2]
		work.Go(func() {
			for range tokens[ep] {
				ds, _, err := s.Take(ctx, ref("acme", ep), at(time.Hour), 1)
				if err != nil {
					t.Errorf("Take: %v", err)
					return
				}
				if len(ds) != 1 {
					t.Errorf("Take of %s: got %d deliveries, want 1 (an accepted delivery is out of sight)", ep, len(ds))
					return
				}
				if err := s.Record(ctx, attempted(ds[0], at(time.Hour), 200, relay.StatusDelivered, time.Time{}), ""); err != nil {
					t.Errorf("Record: %v", err)
					return
				}
				mu.Lock()
				attempts[ds[0].ID]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, c := range tokens {
		close(c)
	}
	work.Wait()
	if t.Failed() {
		return
	}
	if len(attempts) != 2*total {
		t.Fatalf("recorded %d deliveries, want %d", len(attempts), 2*total)
	}
	for id, n := range attempts {
		if n != 1 {
			t.Fatalf("delivery %s attempted %d times, want once", id, n)
		}
	}
	evs := allEvents(t, s, "acme", relay.EventFilter{Limit: 100})
	if len(evs) != total {
		t.Fatalf("Events: got %d, want %d", len(evs), total)
	}
	for _, ev := range evs {
		for _, r := range ev.Deliveries {
			if d := getDelivery(t, s, "acme", r.ID); d.Status != relay.StatusDelivered || len(d.Attempts) != 1 {
				t.Fatalf("delivery %s: %s with %d attempts, want delivered with 1", r.ID, d.Status, len(d.Attempts))
			}
		}
	}
	if m, err := s.Waiting(ctx); err != nil || m[ref("acme", "a")]+m[ref("acme", "b")] != 0 {
		t.Fatalf("Waiting: got %v, %v; want nothing", m, err)
	}
}

func testPurge(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := context.Background()
	cutoff := at(time.Hour)
	accept(t, s, evSpec{id: "old-done", eps: []string{"a", "b"}})
	accept(t, s, evSpec{id: "old-waiting", eps: []string{"a", "b"}, received: at(sec)})
	accept(t, s, evSpec{id: "old-none", received: at(2 * sec)})
	accept(t, s, evSpec{id: "new-done", eps: []string{"a"}, received: cutoff}) // not before the cutoff
	accept(t, s, evSpec{org: "other", id: "old-done", eps: []string{"a"}})
	for _, r := range []relay.EndpointRef{ref("acme", "a"), ref("acme", "b"), ref("other", "a")} {
		ds, _ := take(t, s, r, cutoff, 10)
		for _, d := range ds {
			st := relay.StatusDelivered
			switch {
			case d.ID == "old-done.b":
				st = relay.StatusDead
			case d.ID == "old-waiting.b":
				st = relay.StatusFailed
			}
			record(t, s, attempted(d, cutoff, 200, st, at(2*time.Hour)), "")
		}
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if n, err := s.Purge(canceled, cutoff); !errors.Is(err, context.Canceled) || n != 0 {
		t.Fatalf("Purge with an ended context: got %d, %v; want 0 and context.Canceled (it stops when ctx ends)", n, err)
	}
	n, err := s.Purge(ctx, cutoff)
	if err != nil {
		t.Fatalf("Purge: %v", err)
	}
	if n != 3 {
		t.Fatalf("Purge: deleted %d events, want 3 (old-done in two organisations, old-none)", n)
	}
	for _, c := range []struct{ org, id string }{{"acme", "old-done"}, {"acme", "old-none"}, {"other", "old-done"}} {
		_, err := s.Event(ctx, c.org, c.id)
		wantErr(t, "Event of a purged event", err, relay.ErrNotFound)
	}
	for _, id := range []string{"old-done.a", "old-done.b"} {
		_, err := s.Delivery(ctx, "acme", id)
		wantErr(t, "Delivery of a purged event", err, relay.ErrNotFound)
	}
	getEvent(t, s, "acme", "old-waiting")
	getEvent(t, s, "acme", "new-done")
	getDelivery(t, s, "acme", "old-waiting.a")
	getDelivery(t, s, "acme", "new-done.a")
	wantIDs(t, "Events after Purge", eventIDs(allEvents(t, s, "acme", relay.EventFilter{Limit: 10})), []string{"new-done", "old-waiting"})
	wantIDs(t, "Deliveries after Purge", ids(allDeliveries(t, s, "acme", relay.DeliveryFilter{Limit: 10})),
		[]string{"new-done.a", "old-waiting.b", "old-waiting.a"})
	got, _ := take(t, s, ref("acme", "b"), at(2*time.Hour), 10)
	wantIDs(t, "Take of the kept failed delivery", ids(got), []string{"old-waiting.b"})
	if n, err := s.Purge(ctx, cutoff); err != nil || n != 0 {
		t.Fatalf("Purge again: got %d, %v; want 0", n, err)
	}
}

func wantEndpoints(t testing.TB, got []relay.StoredEndpoint, want map[string]relay.StoredEndpoint) {
	t.Helper()
	m := map[string]relay.StoredEndpoint{}
	for _, e := range got {
		if _, dup := m[e.ID]; dup {
			t.Fatalf("Endpoints: %s listed twice", e.ID)
		}
		if len(e.Doc) == 0 {
			e.Doc = nil
		}
		m[e.ID] = e
	}
	if len(m) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("Endpoints: got %+v, want %+v", m, want)
	}
}

func endpoints(t testing.TB, s relay.Store, org string) []relay.StoredEndpoint {
	t.Helper()
	eps, err := s.Endpoints(context.Background(), org)
	if err != nil {
		t.Fatalf("Endpoints(%s): %v", org, err)
	}
	return eps
}

func testEndpoints(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := context.Background()
	wantEndpoints(t, endpoints(t, s, "acme"), nil)
	docA, docB := []byte(`{"id":"a","url":"https://a.example"}`), []byte(`{"id":"b"}`)
	must(t, s.PutEndpoint(ctx, "acme", "a", docA))
	must(t, s.PutEndpoint(ctx, "acme", "b", docB))
	must(t, s.SetDisabled(ctx, "acme", "b", "answered 410"))
	must(t, s.SetDisabled(ctx, "acme", "file-ep", "disabled through the API")) // a file endpoint: no document
	must(t, s.PutEndpoint(ctx, "other", "a", docB))
	wantEndpoints(t, endpoints(t, s, "acme"), map[string]relay.StoredEndpoint{
		"a":       {ID: "a", Doc: docA},
		"b":       {ID: "b", Doc: docB, Disabled: "answered 410"},
		"file-ep": {ID: "file-ep", Disabled: "disabled through the API"},
	})
	docA2 := []byte(`{"id":"a","url":"https://a2.example"}`)
	must(t, s.PutEndpoint(ctx, "acme", "a", docA2))
	must(t, s.PutEndpoint(ctx, "acme", "b", docB)) // clears b's mark
	must(t, s.SetDisabled(ctx, "acme", "file-ep", ""))
	wantEndpoints(t, endpoints(t, s, "acme"), map[string]relay.StoredEndpoint{
		"a": {ID: "a", Doc: docA2},
		"b": {ID: "b", Doc: docB},
	})
	wantEndpoints(t, endpoints(t, s, "other"), map[string]relay.StoredEndpoint{"a": {ID: "a", Doc: docB}})
}

func testDeleteEndpoint(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := context.Background()
	const why = "endpoint a was deleted"
	must(t, s.PutEndpoint(ctx, "acme", "a", []byte(`{"id":"a"}`)))
	must(t, s.SetDisabled(ctx, "acme", "a", "paused"))
	accept(t, s, evSpec{id: "e1", eps: []string{"a", "keep"}})
	accept(t, s, evSpec{id: "e2", eps: []string{"a"}})
	leased, _ := take(t, s, ref("acme", "a"), t0, 1)
	var told endedLog
	must(t, s.DeleteEndpoint(ctx, "acme", "a", why, told.add))
	wantEndpoints(t, endpoints(t, s, "acme"), nil)
	for _, id := range []string{"e1.a", "e2.a"} {
		if d := getDelivery(t, s, "acme", id); d.Status != relay.StatusDead || d.NextAttemptAt != nil || d.Reason != why {
			t.Fatalf("delivery %s of a deleted endpoint: got %s, next %v, reason %q; want dead, none, %q",
				id, d.Status, d.NextAttemptAt, d.Reason, why)
		}
	}
	told.want(t, s, "e1.a", "e2.a")
	got, next := take(t, s, ref("acme", "a"), at(time.Hour), 10)
	wantIDs(t, "Take of a deleted endpoint", ids(got), nil)
	wantNext(t, next, time.Time{})
	// The attempt in flight when it was deleted ends without queueing it,
	// and the caller learns it is dead.
	failed := attempted(leased[0], t0, 500, relay.StatusFailed, at(sec))
	record(t, s, failed, "")
	wantDelivery(t, getDelivery(t, s, "acme", leased[0].ID), failed)
	got, _ = take(t, s, ref("acme", "a"), at(time.Hour), 10)
	wantIDs(t, "Take of a deleted endpoint after an attempt in flight failed", ids(got), nil)
	m, err := s.Waiting(ctx)
	if err != nil || m[ref("acme", "a")] != 0 || m[ref("acme", "keep")] != 1 {
		t.Fatalf("Waiting after DeleteEndpoint: got %v, %v; want a: 0, keep: 1", m, err)
	}
}

// endedLog keeps what a Store tells EndWaiting's ended func.
type endedLog struct{ told []*relay.Delivery }

func (l *endedLog) add(ds []*relay.Delivery) { l.told = append(l.told, ds...) }

// want checks that the store told of the deliveries of ids, each once,
// as it stores them now.
func (l *endedLog) want(t testing.TB, s relay.Store, want ...string) {
	t.Helper()
	got := map[string]*relay.Delivery{}
	for _, d := range l.told {
		if got[d.ID] != nil {
			t.Fatalf("ended: told of %s twice", d.ID)
		}
		got[d.ID] = d
	}
	if len(got) != len(want) {
		t.Fatalf("ended: told of %v, want %v", ids(l.told), want)
	}
	for _, id := range want {
		if got[id] == nil {
			t.Fatalf("ended: told of %v, want %v", ids(l.told), want)
		}
		wantDelivery(t, got[id], getDelivery(t, s, "acme", id))
	}
	l.told = nil
}

// ended is d as EndWaiting leaves it: dead with why, nothing due.
func ended(d *relay.Delivery, why string) *relay.Delivery {
	cp := *d
	cp.Status, cp.NextAttemptAt, cp.Reason = relay.StatusDead, nil, why
	return &cp
}

// testEndWaiting: the waiting deliveries of an endpoint that no longer
// exists end dead with the reason, those in flight too (a final outcome
// still lands; a failed one stays dead), and an endpoint made again with
// the same id takes none of them.
func testEndWaiting(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := context.Background()
	r := ref("acme", "a")
	const why = "endpoint a was deleted"
	accept(t, s, evSpec{id: "e0", eps: []string{"a"}})                     // delivered before: untouched
	accept(t, s, evSpec{id: "e1", eps: []string{"a", "keep"}})             // pending (released)
	accept(t, s, evSpec{id: "e2", eps: []string{"a"}})                     // failed, waits for a retry
	accept(t, s, evSpec{id: "e3", eps: []string{"a"}})                     // in flight, its attempt fails
	accept(t, s, evSpec{id: "e4", eps: []string{"a"}})                     // in flight, its attempt succeeds
	accept(t, s, evSpec{id: "e5", eps: []string{"a"}})                     // in flight, released
	accept(t, s, evSpec{id: "e6", eps: []string{"a"}, due: at(time.Hour)}) // pending, due later
	got, _ := take(t, s, r, t0, 10)
	taken := map[string]*relay.Delivery{}
	for _, d := range got {
		taken[d.ID] = d
	}
	if len(taken) != 6 {
		t.Fatalf("Take: got %v, want e0.a to e5.a", ids(got))
	}
	record(t, s, attempted(taken["e0.a"], t0, 200, relay.StatusDelivered, time.Time{}), "")
	record(t, s, attempted(taken["e2.a"], t0, 500, relay.StatusFailed, at(time.Hour)), "")
	must(t, s.Release(ctx, taken["e1.a"]))
	before := map[string]*relay.Delivery{}
	for _, id := range []string{"e0.a", "e1.a", "e2.a", "e3.a", "e4.a", "e5.a", "e6.a", "e1.keep"} {
		before[id] = getDelivery(t, s, "acme", id)
	}

	var told endedLog
	n, err := s.EndWaiting(ctx, r, why, told.add)
	if err != nil || n != 6 {
		t.Fatalf("EndWaiting: got %d, %v; want 6 (e1.a to e6.a, in flight or not)", n, err)
	}
	for _, id := range []string{"e1.a", "e2.a", "e3.a", "e4.a", "e5.a", "e6.a"} {
		wantDelivery(t, getDelivery(t, s, "acme", id), ended(before[id], why))
	}
	told.want(t, s, "e1.a", "e2.a", "e3.a", "e4.a", "e5.a", "e6.a")
	wantDelivery(t, getDelivery(t, s, "acme", "e0.a"), before["e0.a"])
	wantDelivery(t, getDelivery(t, s, "acme", "e1.keep"), before["e1.keep"])

	// The attempts in flight end: a failure stays dead with the reason,
	// a success is recorded as such, a release changes nothing.
	failed := attempted(taken["e3.a"], at(sec), 503, relay.StatusFailed, at(time.Minute))
	record(t, s, failed, "")
	wantDelivery(t, getDelivery(t, s, "acme", "e3.a"), ended(failed, why))
	wantDelivery(t, getDelivery(t, s, "acme", "e3.a"), failed) // and Record said so
	delivered := attempted(taken["e4.a"], at(sec), 200, relay.StatusDelivered, time.Time{})
	record(t, s, delivered, "")
	wantDelivery(t, getDelivery(t, s, "acme", "e4.a"), delivered)
	must(t, s.Release(ctx, taken["e5.a"]))
	wantDelivery(t, getDelivery(t, s, "acme", "e5.a"), ended(before["e5.a"], why))

	got, next := take(t, s, r, at(48*time.Hour), 10)
	wantIDs(t, "Take after EndWaiting", ids(got), nil)
	wantNext(t, next, time.Time{})
	if m, err := s.Waiting(ctx); err != nil || m[r] != 0 || m[ref("acme", "keep")] != 1 {
		t.Fatalf("Waiting after EndWaiting: got %v, %v; want a: 0, keep: 1", m, err)
	}
	if n, err := s.EndWaiting(ctx, r, why, told.add); err != nil || n != 0 {
		t.Fatalf("EndWaiting again: got %d, %v; want 0", n, err)
	}
	told.want(t, s)

	// Made again with the same id: only what comes now is its.
	accept(t, s, evSpec{id: "e7", eps: []string{"a"}, received: at(time.Minute)})
	got, _ = take(t, s, r, at(48*time.Hour), 10)
	wantIDs(t, "Take of the endpoint made again", ids(got), []string{"e7.a"})

	// A manual retry makes an ended delivery pending again, reason gone.
	now := at(2 * time.Hour)
	d, err := s.Requeue(ctx, "acme", "e2.a", now)
	if err != nil {
		t.Fatalf("Requeue: %v", err)
	}
	want := *getDelivery(t, s, "acme", "e2.a")
	if want.Reason != "" {
		t.Fatalf("reason after Requeue: got %q, want none", want.Reason)
	}
	wantDelivery(t, d, &want)
}

// testEndWaitingOrdered: an ordered endpoint's ended head, in flight, does
// not block what the endpoint made again takes.
func testEndWaitingOrdered(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := context.Background()
	r := ref("acme", "fifo")
	const why = "endpoint fifo no longer exists"
	accept(t, s, evSpec{id: "o1", eps: []string{"fifo"}, ordered: true})
	accept(t, s, evSpec{id: "o2", eps: []string{"fifo"}, ordered: true, received: at(sec)})
	head, _ := take(t, s, r, at(sec), 10)
	wantIDs(t, "Take of the FIFO", ids(head), []string{"o1.fifo"})
	var told endedLog
	if n, err := s.EndWaiting(ctx, r, why, told.add); err != nil || n != 2 {
		t.Fatalf("EndWaiting: got %d, %v; want 2", n, err)
	}
	told.want(t, s, "o1.fifo", "o2.fifo")
	accept(t, s, evSpec{id: "o3", eps: []string{"fifo"}, ordered: true, received: at(2 * sec)})
	got, _ := take(t, s, r, at(time.Minute), 10)
	wantIDs(t, "Take while the ended head is in flight", ids(got), []string{"o3.fifo"})
	failed := attempted(head[0], at(sec), 500, relay.StatusFailed, at(time.Minute))
	record(t, s, failed, "")
	wantDelivery(t, getDelivery(t, s, "acme", "o1.fifo"), ended(failed, why))
	wantDelivery(t, getDelivery(t, s, "acme", "o1.fifo"), failed) // and Record said so
	wantDelivery(t, getDelivery(t, s, "acme", "o2.fifo"), ended(getDelivery(t, s, "acme", "o2.fifo"), why))
	if o2 := getDelivery(t, s, "acme", "o2.fifo"); len(o2.Attempts) != 0 {
		t.Fatalf("o2 attempts: got %d, want 0", len(o2.Attempts))
	}
}

func testTokens(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := context.Background()
	wantToken(t, s, "acme", "")
	must(t, s.PutToken(ctx, "acme", "tok-1"))
	must(t, s.PutToken(ctx, "other", "tok-other"))
	wantToken(t, s, "acme", "tok-1")
	must(t, s.PutToken(ctx, "acme", "tok-2"))
	wantToken(t, s, "acme", "tok-2")
	wantToken(t, s, "other", "tok-other")
}

func wantToken(t testing.TB, s relay.Store, org, want string) {
	t.Helper()
	got, err := s.Token(context.Background(), org)
	if err != nil || got != want {
		t.Fatalf("Token(%s): got %q, %v; want %q", org, got, err, want)
	}
}

func wantKeys(t testing.TB, s relay.Store, want map[string]string) {
	t.Helper()
	got, err := s.SigningKeys(context.Background())
	if err != nil {
		t.Fatalf("SigningKeys: %v", err)
	}
	m := map[string]string{}
	for k, v := range got {
		m[k] = string(v)
	}
	if len(m) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("SigningKeys: got %v, want %v", m, want)
	}
}

func testSigningKeys(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := context.Background()
	wantKeys(t, s, nil)
	got, err := s.CreateSigningKey(ctx, "k1", []byte("doc-1"))
	if err != nil || string(got) != "doc-1" {
		t.Fatalf("CreateSigningKey of a new name: got %q, %v; want doc-1", got, err)
	}
	got, err = s.CreateSigningKey(ctx, "k1", []byte("doc-other"))
	if err != nil || string(got) != "doc-1" {
		t.Fatalf("CreateSigningKey of a taken name: got %q, %v; want the stored doc-1", got, err)
	}
	must(t, s.PutSigningKey(ctx, "k2", []byte("doc-2")))
	wantKeys(t, s, map[string]string{"k1": "doc-1", "k2": "doc-2"})
	must(t, s.PutSigningKey(ctx, "k1", []byte("doc-1b")))
	must(t, s.DeleteSigningKey(ctx, "k2"))
	must(t, s.DeleteSigningKey(ctx, "never-there"))
	wantKeys(t, s, map[string]string{"k1": "doc-1b"})
}

func testCreateSigningKeyConcurrent(t *testing.T, f Factory) {
	s := f.New(t)
	const n = 8
	got := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { got[i], errs[i] = s.CreateSigningKey(context.Background(), "k", fmt.Appendf(nil, "doc-%d", i)) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("CreateSigningKey %d: %v", i, errs[i])
		}
		if string(got[i]) != string(got[0]) {
			t.Fatalf("CreateSigningKey from %d goroutines: %q and %q both returned as stored", n, got[0], got[i])
		}
	}
	wantKeys(t, s, map[string]string{"k": string(got[0])})
}

func testClose(t *testing.T, f Factory) {
	s := f.New(t)
	accept(t, s, evSpec{id: "e1", eps: []string{"a"}})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close again: %v", err)
	}
	ev, ds := makeEvent(evSpec{id: "e2", eps: []string{"a"}})
	_, err := s.Accept(context.Background(), ev, ds)
	wantErr(t, "Accept after Close", err, relay.ErrUnavailable)
	if err := s.Health(); err == nil {
		t.Fatal("Health after Close: got nil, want an error")
	}
}

func testReopen(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := context.Background()
	body := []byte("\x00\xffbytes")
	want := accepted(t, s, evSpec{id: "e1", eps: []string{"a", "b"}, body: body})
	accept(t, s, evSpec{id: "e2", eps: []string{"a"}, received: at(sec)})
	got, _ := take(t, s, ref("acme", "a"), at(sec), 2)
	failed := attempted(got[0], at(sec), 500, relay.StatusFailed, at(time.Minute))
	record(t, s, failed, "")
	delivered := attempted(got[1], at(sec), 200, relay.StatusDelivered, time.Time{})
	record(t, s, delivered, "gone")
	must(t, s.PutEndpoint(ctx, "acme", "c", []byte(`{"id":"c"}`)))
	must(t, s.PutToken(ctx, "acme", "tok"))
	if _, err := s.CreateSigningKey(ctx, "k", []byte("doc")); err != nil {
		t.Fatal(err)
	}

	s = f.Reopen(t, s)
	wantEvent(t, getEvent(t, s, "acme", "e1"), want)
	wantDelivery(t, getDelivery(t, s, "acme", failed.ID), failed)
	wantDelivery(t, getDelivery(t, s, "acme", delivered.ID), delivered)
	wantEndpoints(t, endpoints(t, s, "acme"), map[string]relay.StoredEndpoint{
		"a": {ID: "a", Disabled: "gone"}, "c": {ID: "c", Doc: []byte(`{"id":"c"}`)}})
	wantToken(t, s, "acme", "tok")
	wantKeys(t, s, map[string]string{"k": "doc"})
	got, next := take(t, s, ref("acme", "a"), at(2*sec), 5)
	wantIDs(t, "Take after reopening", ids(got), nil)
	wantNext(t, next, at(time.Minute))
	got, _ = take(t, s, ref("acme", "b"), at(2*sec), 5)
	wantIDs(t, "Take of the other endpoint after reopening", ids(got), []string{"e1.b"})
	if n := waiting(t, s, ref("acme", "a")); n != 1 {
		t.Fatalf("Waiting after reopening: got %d, want 1", n)
	}
	if evs := allEvents(t, s, "acme", relay.EventFilter{Limit: 1}); len(evs) != 2 {
		t.Fatalf("Events after reopening: got %d, want 2", len(evs))
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
