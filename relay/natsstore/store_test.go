package natsstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

// mkEvent makes an event of org with one delivery per endpoint, due at at.
func mkEvent(org, id string, at time.Time, ordered bool, eps ...string) (*relay.Event, []*relay.Delivery) {
	ev := &relay.Event{ID: id, Type: "order.paid", Org: org, ReceivedAt: at, Hash: "h-" + id, Body: []byte(`{"id":"` + id + `"}`)}
	var ds []*relay.Delivery
	for _, ep := range eps {
		due := at
		d := &relay.Delivery{ID: id + "_" + ep, EventID: id, Org: org, Endpoint: ep, Type: ev.Type,
			Status: relay.StatusPending, CreatedAt: at, Ordered: ordered, NextAttemptAt: &due, Attempts: []relay.Attempt{}}
		ds = append(ds, d)
		ev.Deliveries = append(ev.Deliveries, relay.DeliveryRef{ID: d.ID, Endpoint: ep})
	}
	return ev, ds
}

func accept(t *testing.T, s *Store, ev *relay.Event, ds []*relay.Delivery) {
	t.Helper()
	if _, err := s.Accept(context.Background(), ev, ds); err != nil {
		t.Fatalf("accept %s: %v", ev.ID, err)
	}
}

func take(t *testing.T, s *Store, ref relay.EndpointRef, now time.Time, n int) ([]*relay.Delivery, time.Time) {
	t.Helper()
	ds, next, err := s.Take(context.Background(), ref, now, n)
	if err != nil {
		t.Fatalf("take: %v", err)
	}
	return ds, next
}

func ids(ds []*relay.Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

func attempt(d *relay.Delivery, status string, at time.Time, next *time.Time) *relay.Delivery {
	c := *d
	c.Attempts = append(slices.Clone(d.Attempts), relay.Attempt{N: len(d.Attempts) + 1, At: at, Status: 500})
	c.Status = status
	c.NextAttemptAt = next
	return &c
}

func TestAcceptReadBack(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	ev, ds := mkEvent("acme", "evt 1.with*odd>chars", t0, false, "a", "b")
	ev.Body = []byte{0, 1, 2, 0xff, '\n'}
	accept(t, s, ev, ds)

	got, err := s.Event(ctx, "acme", ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Body, ev.Body) || !got.ReceivedAt.Equal(t0) || got.ReceivedAt.Location() != time.UTC || len(got.Deliveries) != 2 {
		t.Fatalf("event read back as %+v, want its body, received at t0 in UTC, with 2 deliveries", got)
	}
	d, err := s.Delivery(ctx, "acme", ds[1].ID)
	if err != nil || d.Endpoint != "b" || d.Status != relay.StatusPending || !d.NextAttemptAt.Equal(t0) {
		t.Fatalf("delivery read back as %+v, %v", d, err)
	}
	if _, err := s.Event(ctx, "other", ev.ID); !errors.Is(err, relay.ErrNotFound) {
		t.Fatalf("event of another org: %v", err)
	}
	if _, err := s.Delivery(ctx, "acme", "nope"); !errors.Is(err, relay.ErrNotFound) {
		t.Fatalf("missing delivery: %v", err)
	}

	again, dsAgain := mkEvent("acme", ev.ID, t0.Add(time.Hour), false, "c")
	again.Hash = "other"
	stored, err := s.Accept(ctx, again, dsAgain)
	if !errors.Is(err, relay.ErrDuplicate) || stored.Hash != ev.Hash {
		t.Fatalf("duplicate accept: %v, %+v; want ErrDuplicate and the event's hash", err, stored)
	}
	if _, err := s.Delivery(ctx, "acme", dsAgain[0].ID); !errors.Is(err, relay.ErrNotFound) {
		t.Fatalf("a duplicate wrote its delivery: %v", err)
	}
}

func TestTakeRecordRetry(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	ref := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	for i := range 3 {
		ev, ds := mkEvent("acme", fmt.Sprintf("e%d", i), t0.Add(time.Duration(2-i)*time.Second), false, "a")
		accept(t, s, ev, ds)
	}
	// The consumer offers them in acceptance order (e0, e1, e2); what
	// one Take reads is leased in due order: e1 (due before e0), e0.
	got, _ := take(t, s, ref, t0.Add(time.Minute), 2)
	if want := []string{"e1_a", "e0_a"}; !slices.Equal(ids(got), want) {
		t.Fatalf("took %v, want %v", ids(got), want)
	}
	// Leased ones are not taken again.
	rest, _ := take(t, s, ref, t0.Add(time.Minute), 10)
	if want := []string{"e2_a"}; !slices.Equal(ids(rest), want) {
		t.Fatalf("took %v, want %v", ids(rest), want)
	}
	if err := s.Record(ctx, attempt(got[0], relay.StatusDelivered, t0.Add(time.Minute), nil), ""); err != nil {
		t.Fatal(err)
	}
	retry := t0.Add(time.Hour)
	if err := s.Record(ctx, attempt(got[1], relay.StatusFailed, t0.Add(time.Minute), &retry), ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, rest[0]); err != nil {
		t.Fatal(err)
	}
	// e2 is due again as it was; e0 waits for its retry.
	again, next := take(t, s, ref, t0.Add(2*time.Minute), 10)
	if !slices.Equal(ids(again), []string{"e2_a"}) || !next.Equal(retry) {
		t.Fatalf("took %v next %v, want [e2_a] next %v", ids(again), next, retry)
	}
	if err := s.Record(ctx, attempt(again[0], relay.StatusDead, t0.Add(2*time.Minute), nil), "gone"); err != nil {
		t.Fatal(err)
	}
	eps, err := s.Endpoints(ctx, "acme")
	if err != nil || len(eps) != 1 || eps[0].Disabled != "gone" {
		t.Fatalf("endpoints after a disabling record: %+v, %v", eps, err)
	}
	none, next := take(t, s, ref, retry.Add(-time.Second), 10)
	if len(none) != 0 || !next.Equal(retry) {
		t.Fatalf("before the retry: took %v next %v; want none, next at the retry", ids(none), next)
	}
	due, next := take(t, s, ref, retry, 10)
	if !slices.Equal(ids(due), []string{"e0_a"}) || !next.IsZero() || len(due[0].Attempts) != 1 {
		t.Fatalf("at the retry: took %+v next %v; want e0_a with one attempt, nothing next", due, next)
	}
	d, _ := s.Delivery(ctx, "acme", "e1_a")
	if d.Status != relay.StatusDelivered || len(d.Attempts) != 1 || d.NextAttemptAt != nil {
		t.Fatalf("delivered delivery: %+v, want delivered after one attempt, no next attempt", d)
	}
	w, err := s.Waiting(ctx)
	if err != nil || w[ref] != 1 {
		t.Fatalf("waiting = %v, %v; want 1 (e0 leased)", w, err)
	}
}

func TestOrderedFIFO(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	ref := relay.EndpointRef{Org: "acme", Endpoint: "fifo"}
	for i := range 3 {
		ev, ds := mkEvent("acme", fmt.Sprintf("o%d", i), t0.Add(time.Duration(i)*time.Millisecond), true, "fifo")
		accept(t, s, ev, ds)
	}
	head, _ := take(t, s, ref, t0.Add(time.Minute), 10)
	if !slices.Equal(ids(head), []string{"o0_fifo"}) {
		t.Fatalf("ordered take %v, want the head only", ids(head))
	}
	if more, _ := take(t, s, ref, t0.Add(time.Minute), 10); len(more) != 0 {
		t.Fatalf("took %v behind a leased head", ids(more))
	}
	retry := t0.Add(time.Hour)
	if err := s.Record(ctx, attempt(head[0], relay.StatusFailed, t0.Add(time.Minute), &retry), ""); err != nil {
		t.Fatal(err)
	}
	// The failed head keeps its place: nothing behind it goes first.
	none, next := take(t, s, ref, t0.Add(2*time.Minute), 10)
	if len(none) != 0 || !next.Equal(retry) {
		t.Fatalf("behind a failed head: took %v next %v; want none, next at the retry", ids(none), next)
	}
	if n, err := s.Expedite(ctx, ref, t0.Add(3*time.Minute), nil); err != nil || n != 1 {
		t.Fatalf("expedite = %d, %v", n, err)
	}
	var order []string
	for now := t0.Add(3 * time.Minute); len(order) < 3; now = now.Add(time.Second) {
		got, _ := take(t, s, ref, now, 10)
		if len(got) != 1 {
			t.Fatalf("ordered take got %v, want one", ids(got))
		}
		order = append(order, got[0].ID)
		if err := s.Record(ctx, attempt(got[0], relay.StatusDelivered, now, nil), ""); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"o0_fifo", "o1_fifo", "o2_fifo"}; !slices.Equal(order, want) {
		t.Fatalf("order %v, want %v", order, want)
	}
}

func TestRequeue(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	ref := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	ev, ds := mkEvent("acme", "r1", t0, false, "a")
	accept(t, s, ev, ds)
	got, _ := take(t, s, ref, t0, 1)
	if err := s.Record(ctx, attempt(got[0], relay.StatusDead, t0, nil), ""); err != nil {
		t.Fatal(err)
	}
	// Final: requeue makes it pending again with a new work item.
	now := t0.Add(time.Hour)
	d, err := s.Requeue(ctx, "acme", "r1_a", now)
	if err != nil || d.Status != relay.StatusPending || d.Base != 1 || !d.NextAttemptAt.Equal(now) {
		t.Fatalf("requeue of a dead delivery: %+v, %v", d, err)
	}
	got, _ = take(t, s, ref, now, 1)
	if len(got) != 1 {
		t.Fatal("requeued delivery not taken")
	}
	// Leased: the requeue waits for the lease's end, then wins over the
	// attempt's outcome.
	later := now.Add(time.Hour)
	if _, err := s.Requeue(ctx, "acme", "r1_a", later); err != nil {
		t.Fatal(err)
	}
	if again, _ := take(t, s, ref, later, 1); len(again) != 0 {
		t.Fatal("a leased, requeued delivery was taken twice")
	}
	if err := s.Record(ctx, attempt(got[0], relay.StatusDelivered, now, nil), ""); err != nil {
		t.Fatal(err)
	}
	d, _ = s.Delivery(ctx, "acme", "r1_a")
	if d.Status != relay.StatusPending || d.Base != 2 || len(d.Attempts) != 2 || !d.NextAttemptAt.Equal(later) {
		t.Fatalf("after the lease of a requeued delivery: %+v, want pending, base 2, 2 attempts, next attempt later", d)
	}
	if got, _ := take(t, s, ref, later, 1); len(got) != 1 {
		t.Fatal("requeued delivery not due after its lease")
	}
	if _, err := s.Requeue(ctx, "acme", "none", now); !errors.Is(err, relay.ErrNotFound) {
		t.Fatalf("requeue of a missing delivery: %v", err)
	}
}

func TestLists(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	for i := range 7 {
		ev, ds := mkEvent("acme", fmt.Sprintf("l%d", i), t0.Add(time.Duration(i)*time.Second), false, "a", "b")
		if i%2 == 1 {
			ev.Type = "other"
			for _, d := range ds {
				d.Type = "other"
			}
		}
		accept(t, s, ev, ds)
	}
	ev, ds := mkEvent("zeta", "z", t0, false, "a")
	accept(t, s, ev, ds)

	var seen []string
	f := relay.EventFilter{Limit: 3}
	for {
		p, err := s.Events(ctx, "acme", f)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Items {
			seen = append(seen, e.ID)
		}
		if p.Next == "" {
			break
		}
		f.Cursor = p.Next
	}
	if want := []string{"l6", "l5", "l4", "l3", "l2", "l1", "l0"}; !slices.Equal(seen, want) {
		t.Fatalf("events pages %v, want %v", seen, want)
	}
	p, err := s.Events(ctx, "acme", relay.EventFilter{Type: "other", Since: t0.Add(time.Second), Until: t0.Add(5 * time.Second), Limit: 2})
	if err != nil || len(p.Items) != 2 || p.Items[0].ID != "l5" || p.Items[1].ID != "l3" || p.Next == "" {
		t.Fatalf("filtered events: %+v, %v", p, err)
	}
	p, _ = s.Events(ctx, "acme", relay.EventFilter{Type: "other", Since: t0.Add(time.Second), Until: t0.Add(5 * time.Second), Limit: 2, Cursor: p.Next})
	if len(p.Items) != 1 || p.Items[0].ID != "l1" || p.Next != "" {
		t.Fatalf("second filtered page: %+v, want l1 alone, no next", p)
	}
	if _, err := s.Events(ctx, "acme", relay.EventFilter{Cursor: "garbage"}); !errors.Is(err, relay.ErrBadCursor) {
		t.Fatalf("bad cursor: %v", err)
	}

	dp, err := s.Deliveries(ctx, "acme", relay.DeliveryFilter{Endpoint: "b", Type: "order.paid"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"l6_b", "l4_b", "l2_b", "l0_b"}; !slices.Equal(ids(dp.Items), want) {
		t.Fatalf("filtered deliveries %v, want %v", ids(dp.Items), want)
	}
	dp, _ = s.Deliveries(ctx, "acme", relay.DeliveryFilter{IDs: []string{"l0_a", "l3_b", "nope"}, Status: relay.StatusPending})
	if want := []string{"l3_b", "l0_a"}; !slices.Equal(ids(dp.Items), want) {
		t.Fatalf("deliveries by id %v, want %v", ids(dp.Items), want)
	}
}

func TestControl(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if err := s.PutEndpoint(ctx, "acme", "api", []byte(`{"url":"https://x"}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDisabled(ctx, "acme", "file-ep", "410 gone"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDisabled(ctx, "acme", "api", "410"); err != nil {
		t.Fatal(err)
	}
	eps, err := s.Endpoints(ctx, "acme")
	if err != nil || len(eps) != 2 {
		t.Fatalf("endpoints %+v, %v", eps, err)
	}
	if err := s.PutEndpoint(ctx, "acme", "api", []byte(`{"url":"https://y"}`)); err != nil {
		t.Fatal(err)
	}
	eps, _ = s.Endpoints(ctx, "acme")
	for _, e := range eps {
		if e.ID == "api" && (e.Disabled != "" || string(e.Doc) != `{"url":"https://y"}`) {
			t.Fatalf("PutEndpoint kept the mark or the old doc: %+v", e)
		}
	}
	if err := s.DeleteEndpoint(ctx, "acme", "api", "deleted", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDisabled(ctx, "acme", "file-ep", ""); err != nil {
		t.Fatal(err)
	}
	if eps, _ := s.Endpoints(ctx, "acme"); len(eps) != 0 {
		t.Fatalf("endpoints after delete: %+v, want none", eps)
	}

	if tokn, err := s.Token(ctx, "acme"); err != nil || tokn != "" {
		t.Fatalf("no token yet: %q, %v", tokn, err)
	}
	if err := s.PutToken(ctx, "acme", "whk_1"); err != nil {
		t.Fatal(err)
	}
	if tokn, _ := s.Token(ctx, "acme"); tokn != "whk_1" {
		t.Fatalf("token %q, want \"whk_1\"", tokn)
	}

	first, err := s.CreateSigningKey(ctx, "k1", []byte("one"))
	if err != nil || string(first) != "one" {
		t.Fatalf("create key: %q, %v", first, err)
	}
	if again, err := s.CreateSigningKey(ctx, "k1", []byte("two")); err != nil || string(again) != "one" {
		t.Fatalf("second create of a key: %q, %v", again, err)
	}
	if err := s.PutSigningKey(ctx, "k.2/x", []byte("three")); err != nil {
		t.Fatal(err)
	}
	keys, err := s.SigningKeys(ctx)
	if err != nil || len(keys) != 2 || string(keys["k.2/x"]) != "three" {
		t.Fatalf("keys %v, %v", keys, err)
	}
	if err := s.DeleteSigningKey(ctx, "k1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSigningKey(ctx, "never"); err != nil {
		t.Fatal(err)
	}
	if keys, _ := s.SigningKeys(ctx); len(keys) != 1 {
		t.Fatalf("keys after delete %v, want 1", keys)
	}
}

func TestDeleteEndpointQueue(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	ref := relay.EndpointRef{Org: "acme", Endpoint: "api"}
	ev, ds := mkEvent("acme", "x1", t0, false, "api")
	accept(t, s, ev, ds)
	if err := s.DeleteEndpoint(ctx, "acme", "api", "deleted", nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := take(t, s, ref, t0.Add(time.Hour), 10); len(got) != 0 {
		t.Fatalf("took %v from a deleted endpoint", ids(got))
	}
	if _, err := s.Delivery(ctx, "acme", "x1_api"); err != nil {
		t.Fatalf("delivery of a deleted endpoint: %v", err)
	}
	if w, _ := s.Waiting(ctx); w[ref] != 0 {
		t.Fatalf("waiting %v, want 0 for the endpoint", w)
	}
}

func TestPurge(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	ref := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	for i := range 3 {
		ev, ds := mkEvent("acme", fmt.Sprintf("p%d", i), t0.Add(time.Duration(i)*time.Hour), false, "a")
		accept(t, s, ev, ds)
	}
	got, _ := take(t, s, ref, t0.Add(time.Hour), 10)
	if len(got) != 2 {
		t.Fatalf("took %v, want 2", ids(got))
	}
	// p0 final, p1 still waiting (failed), p2 after the cutoff.
	if err := s.Record(ctx, attempt(got[0], relay.StatusDelivered, t0, nil), ""); err != nil {
		t.Fatal(err)
	}
	retry := t0.Add(48 * time.Hour)
	if err := s.Record(ctx, attempt(got[1], relay.StatusFailed, t0, &retry), ""); err != nil {
		t.Fatal(err)
	}
	n, err := s.Purge(ctx, t0.Add(90*time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("purge = %d, %v; want 1", n, err)
	}
	if _, err := s.Event(ctx, "acme", "p0"); !errors.Is(err, relay.ErrNotFound) {
		t.Fatalf("purged event: %v", err)
	}
	if _, err := s.Delivery(ctx, "acme", "p0_a"); !errors.Is(err, relay.ErrNotFound) {
		t.Fatalf("purged delivery: %v", err)
	}
	if _, err := s.Event(ctx, "acme", "p1"); err != nil {
		t.Fatalf("waiting event purged: %v", err)
	}
	p, _ := s.Events(ctx, "acme", relay.EventFilter{})
	if len(p.Items) != 2 {
		t.Fatalf("events after purge: %d, want 2", len(p.Items))
	}
}
