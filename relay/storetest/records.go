package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
)

func testAcceptRoundTrip(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := context.Background()
	if err := s.Health(); err != nil {
		t.Fatalf("Health of a fresh store: %v", err)
	}
	ev, ds := makeEvent(evSpec{id: "e1", eps: []string{"a", "b"}, body: []byte("\xff\x00not utf-8 \xc3\x28"), due: at(3 * time.Nanosecond)})
	ev.ContentType = "application/octet-stream"
	ev.Query = "x=1&y=%20"
	got, err := s.Accept(ctx, ev, ds)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	wantEvent(t, inUTC(got), ev) // Accept returns ev as given
	wantEvent(t, getEvent(t, s, "acme", "e1"), ev)
	for _, d := range ds {
		wantDelivery(t, getDelivery(t, s, "acme", d.ID), d)
	}
}

func testAttemptsRoundTrip(t *testing.T, f Factory) {
	s := f.New(t)
	_, ds := accept(t, s, evSpec{id: "e1", eps: []string{"a"}})
	got, _ := take(t, s, ref("acme", "a"), t0, 1)
	if len(got) != 1 {
		t.Fatalf("Take: got %v, want [%s]", ids(got), ds[0].ID)
	}
	wantDelivery(t, got[0], ds[0])
	d1 := attempted(got[0], at(time.Millisecond), 500, relay.StatusFailed, at(5*sec))
	d1.Attempts[0].Request = http.Header{"Webhook-Id": {"e1"}, "Webhook-Signature": {"v1,abc", "v1a,def"}, "X-Empty": {""}}
	record(t, s, d1, "")
	wantDelivery(t, getDelivery(t, s, "acme", ds[0].ID), d1)
	got, _ = take(t, s, ref("acme", "a"), at(5*sec), 1)
	if len(got) != 1 {
		t.Fatalf("Take after the retry's due time: got %v, want [%s]", ids(got), ds[0].ID)
	}
	wantDelivery(t, got[0], d1)
	d2 := attempted(got[0], at(5*sec+7*time.Nanosecond), 200, relay.StatusDelivered, t0)
	record(t, s, d2, "")
	wantDelivery(t, getDelivery(t, s, "acme", ds[0].ID), d2)
}

func testNotFound(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := context.Background()
	accept(t, s, evSpec{id: "e1", eps: []string{"a"}})
	for _, org := range []string{"acme", "nobody"} {
		_, err := s.Event(ctx, org, "missing")
		wantErr(t, "Event of a missing id in "+org, err, relay.ErrNotFound)
		_, err = s.Delivery(ctx, org, "missing")
		wantErr(t, "Delivery of a missing id in "+org, err, relay.ErrNotFound)
		_, err = s.Requeue(ctx, org, "missing", t0)
		wantErr(t, "Requeue of a missing id in "+org, err, relay.ErrNotFound)
	}
	_, err := s.Event(ctx, "other", "e1")
	wantErr(t, "Event of another organisation's id", err, relay.ErrNotFound)
}

func testDuplicate(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := context.Background()
	first, firstDs := accept(t, s, evSpec{id: "e1", eps: []string{"a"}, body: []byte(`{"n":1}`)})
	ev, ds := makeEvent(evSpec{id: "e1", eps: []string{"b"}, body: []byte(`{"n":2}`), typ: "other.type"})
	for i := range ds {
		ds[i].ID = "second." + ds[i].ID
	}
	got, err := s.Accept(ctx, ev, ds)
	wantErr(t, "Accept of an id already stored", err, relay.ErrDuplicate)
	wantEvent(t, got, first)
	wantEvent(t, getEvent(t, s, "acme", "e1"), first)
	_, err = s.Delivery(ctx, "acme", ds[0].ID)
	wantErr(t, "Delivery of the duplicate's delivery", err, relay.ErrNotFound)
	if n := waiting(t, s, ref("acme", "b")); n != 0 {
		t.Fatalf("Waiting of the duplicate's endpoint: got %d, want 0", n)
	}
	wantDelivery(t, getDelivery(t, s, "acme", firstDs[0].ID), firstDs[0])
	// Idempotency is per organisation.
	accept(t, s, evSpec{org: "other", id: "e1", eps: []string{"a"}})
}

func testDuplicateConcurrent(t *testing.T, f Factory) {
	s := f.New(t)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	gots := make([]*relay.Event, n)
	evs := make([]*relay.Event, n)
	dss := make([][]*relay.Delivery, n)
	for i := range n {
		evs[i], dss[i] = makeEvent(evSpec{id: "same", eps: []string{"a"}, body: fmt.Appendf(nil, `{"writer":%d}`, i)})
		dss[i][0].ID = fmt.Sprintf("d%d", i)
		evs[i].Deliveries[0].ID = dss[i][0].ID
	}
	for i := range n {
		wg.Go(func() { gots[i], errs[i] = s.Accept(context.Background(), evs[i], dss[i]) })
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("Accept of one id from %d goroutines: writers %d and %d both won", n, winner, i)
			}
			winner = i
		case !errors.Is(err, relay.ErrDuplicate):
			t.Fatalf("Accept %d: got error %v, want nil or ErrDuplicate", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("Accept of one id from %d goroutines: nobody won", n)
	}
	for i := range n {
		wantEvent(t, inUTC(gots[i]), evs[winner]) // the winner's is its ev as given
	}
	wantEvent(t, getEvent(t, s, "acme", "same"), evs[winner])
	for i := range n {
		_, err := s.Delivery(context.Background(), "acme", dss[i][0].ID)
		if i == winner && err != nil {
			t.Fatalf("the winner's delivery: %v", err)
		}
		if i != winner && !errors.Is(err, relay.ErrNotFound) {
			t.Fatalf("a loser's delivery: got error %v, want ErrNotFound", err)
		}
	}
	if got := waiting(t, s, ref("acme", "a")); got != 1 {
		t.Fatalf("Waiting: got %d, want 1 (only the winner's delivery)", got)
	}
}

// testIsolation: records are values: what a caller does to what it passed
// or got does not change the store.
func testIsolation(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := context.Background()
	ev, ds := makeEvent(evSpec{id: "e1", eps: []string{"a"}})
	want, wantDs := makeEvent(evSpec{id: "e1", eps: []string{"a"}})
	if _, err := s.Accept(ctx, ev, ds); err != nil {
		t.Fatal(err)
	}
	ev.Body[0], ev.Type, ev.Deliveries[0].Endpoint = 'X', "changed", "changed"
	ds[0].Status, ds[0].NextAttemptAt = relay.StatusDead, ptr(at(99*sec))
	got := getEvent(t, s, "acme", "e1")
	got.Body[0], got.Deliveries[0].ID = 'Y', "changed"
	wantEvent(t, getEvent(t, s, "acme", "e1"), want)
	taken, _ := take(t, s, ref("acme", "a"), t0, 1)
	if len(taken) != 1 {
		t.Fatalf("Take: got %v", ids(taken))
	}
	d := attempted(taken[0], t0, 500, relay.StatusFailed, at(sec))
	record(t, s, d, "")
	d.Attempts[0].Request.Set("Webhook-Id", "changed")
	d.Attempts[0].Error = "changed"
	*d.NextAttemptAt = at(5 * sec)
	gotD := getDelivery(t, s, "acme", wantDs[0].ID)
	gotD.Attempts[0].Request.Set("Webhook-Id", "changed again")
	wantDelivery(t, getDelivery(t, s, "acme", wantDs[0].ID), attempted(wantDs[0], t0, 500, relay.StatusFailed, at(sec)))
}

func testLargeBody(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := context.Background()
	body := make([]byte, 1<<20)
	r := rand.NewChaCha8([32]byte{1})
	r.Read(body)
	body[0] = 0xff // never valid UTF-8
	ev := accepted(t, s, evSpec{id: "big", eps: []string{"a", "b"}, body: body})
	wantEvent(t, getEvent(t, s, "acme", "big"), ev)
	dup, _ := makeEvent(evSpec{id: "big", eps: []string{"a"}, body: []byte("small")})
	got, err := s.Accept(ctx, dup, nil)
	wantErr(t, "Accept of a duplicate of a 1 MiB event", err, relay.ErrDuplicate)
	wantEvent(t, got, ev)
	p, err := s.Events(ctx, "acme", relay.EventFilter{Limit: 5})
	if err != nil || len(p.Items) != 1 {
		t.Fatalf("Events: got %d items, %v; want 1", len(p.Items), err)
	}
	wantEvent(t, p.Items[0], ev)
}

// maxTestedBody is the largest BodyLimit the suite writes a body of;
// above it (in memory, NATS with its default max payload) the test is
// skipped and the store's own tests cover its limit.
const maxTestedBody = 64 << 20

// testBodyLimit: a body of BodyLimit().MaxBody bytes is stored with
// relay.BodyLimitFanOut deliveries of the longest endpoint ids, and read
// back whole.
func testBodyLimit(t *testing.T, f Factory) {
	s := f.New(t)
	lim := s.BodyLimit()
	if lim.Store == "" || lim.MaxBody <= 0 {
		t.Fatalf("BodyLimit: got %+v, want the store named and a positive limit", lim)
	}
	if lim.MaxBody > maxTestedBody {
		t.Skipf("%s holds bodies of %d bytes: more than this suite writes", lim.Store, lim.MaxBody)
	}
	if testing.Short() {
		t.Skipf("a body of %d bytes takes seconds to write and read under -race", lim.MaxBody)
	}
	eps := make([]string, relay.BodyLimitFanOut)
	for i := range eps {
		eps[i] = fmt.Sprintf("%064d", i) // the longest endpoint id
	}
	body := bytes.Repeat([]byte{0xff}, int(lim.MaxBody))
	ev := accepted(t, s, evSpec{id: "limit", eps: eps, body: body})
	wantEvent(t, getEvent(t, s, "acme", "limit"), ev)
}

// accepted is accept returning the event as it should be read back.
func accepted(t testing.TB, s relay.Store, sp evSpec) *relay.Event {
	t.Helper()
	ev, _ := accept(t, s, sp)
	want, _ := makeEvent(sp)
	want.Body = append([]byte(nil), ev.Body...)
	return want
}

// inUTC is a copy of ev with its time in UTC.
func inUTC(ev *relay.Event) *relay.Event {
	if ev == nil {
		return nil
	}
	cp := *ev
	cp.ReceivedAt = cp.ReceivedAt.UTC()
	return &cp
}

// testAcceptFinal: a delivery accepted final (a recorded custom-value
// exchange) has no due time and never waits: Take does not hand it out,
// Waiting does not count it, and it reads back as accepted. A final
// delivery with a due time, or a waiting one without, is refused.
func testAcceptFinal(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := context.Background()
	ev, ds := makeEvent(evSpec{id: "e1", eps: []string{"a"}})
	for _, status := range []string{relay.StatusDelivered, relay.StatusDead} {
		d := attempted(ds[0], at(time.Millisecond), 200, status, time.Time{})
		d.ID = "e1." + status
		ev.Deliveries[0].ID = d.ID
		ev.ID = "e1-" + status
		d.EventID = ev.ID
		if _, err := s.Accept(ctx, ev, []*relay.Delivery{d}); err != nil {
			t.Fatalf("Accept of a %s delivery: %v", status, err)
		}
		wantDelivery(t, getDelivery(t, s, "acme", d.ID), d)
	}
	if got, next := take(t, s, ref("acme", "a"), at(time.Hour), 10); len(got) != 0 || !next.IsZero() {
		t.Errorf("Take: got %v, next %s; want none", ids(got), next)
	}
	if n := waiting(t, s, ref("acme", "a")); n != 0 {
		t.Errorf("Waiting: got %d, want 0", n)
	}
	got := allDeliveries(t, s, "acme", relay.DeliveryFilter{Status: relay.StatusDelivered})
	wantIDs(t, "delivered", ids(got), []string{"e1.delivered"})

	bad := []struct {
		name string
		edit func(d *relay.Delivery)
	}{
		{"FinalWithDueTime", func(d *relay.Delivery) { d.Status, d.NextAttemptAt = relay.StatusDelivered, ptr(t0) }},
		{"WaitingWithout", func(d *relay.Delivery) { d.NextAttemptAt = nil }},
	}
	for _, b := range bad {
		ev, ds := makeEvent(evSpec{id: "bad-" + b.name, eps: []string{"a"}})
		b.edit(ds[0])
		if _, err := s.Accept(ctx, ev, ds); err == nil {
			t.Errorf("%s: Accept: got nil, want an error", b.name)
		}
		if _, err := s.Event(ctx, "acme", ev.ID); !errors.Is(err, relay.ErrNotFound) {
			t.Errorf("%s: the refused event: got %v, want not found", b.name, err)
		}
	}
}
