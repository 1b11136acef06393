package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
)

// zone is where the suite's times are made: a store must return them in
// UTC whatever zone they came in.
var zone = time.FixedZone("UTC+5:30", 5*3600+30*60)

// t0 is the suite's epoch: nanoseconds included, to check precision.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123456789, zone)

// at is t0 plus d.
func at(d time.Duration) time.Time { return t0.Add(d) }

func ptr(t time.Time) *time.Time { return &t }

// evSpec describes an event to make; deliveries go to eps.
type evSpec struct {
	org      string
	id       string
	typ      string
	received time.Time
	body     []byte
	eps      []string
	ordered  bool
	due      time.Time // NextAttemptAt of every delivery (received when zero)
}

// makeEvent builds an event and its deliveries (ids "{event id}.{endpoint}").
func makeEvent(sp evSpec) (*relay.Event, []*relay.Delivery) {
	if sp.org == "" {
		sp.org = "acme"
	}
	if sp.typ == "" {
		sp.typ = "order.created"
	}
	if sp.received.IsZero() {
		sp.received = t0
	}
	if sp.body == nil {
		sp.body = []byte(`{"id":"` + sp.id + `"}`)
	}
	due := sp.due
	if due.IsZero() {
		due = sp.received
	}
	ev := &relay.Event{ID: sp.id, Type: sp.typ, Org: sp.org, ReceivedAt: sp.received, ContentType: "application/json",
		Hash: fmt.Sprintf("hash-of-%s", sp.id), Body: sp.body, Deliveries: []relay.DeliveryRef{}}
	var ds []*relay.Delivery
	for _, ep := range sp.eps {
		did := sp.id + "." + ep
		ev.Deliveries = append(ev.Deliveries, relay.DeliveryRef{ID: did, Endpoint: ep})
		ds = append(ds, &relay.Delivery{ID: did, EventID: sp.id, Org: sp.org, Endpoint: ep, Type: sp.typ,
			Status: relay.StatusPending, CreatedAt: sp.received, Ordered: sp.ordered, NextAttemptAt: ptr(due),
			Attempts: []relay.Attempt{}})
	}
	return ev, ds
}

// accept stores an event made from sp and returns its deliveries.
func accept(t testing.TB, s relay.Store, sp evSpec) (*relay.Event, []*relay.Delivery) {
	t.Helper()
	ev, ds := makeEvent(sp)
	if _, err := s.Accept(context.Background(), ev, ds); err != nil {
		t.Fatalf("Accept(%s): %v", sp.id, err)
	}
	return ev, ds
}

func ref(org, ep string) relay.EndpointRef { return relay.EndpointRef{Org: org, Endpoint: ep} }

// take calls Take and fails the test on error.
func take(t testing.TB, s relay.Store, r relay.EndpointRef, now time.Time, n int) ([]*relay.Delivery, time.Time) {
	t.Helper()
	ds, next, err := s.Take(context.Background(), r, now, n)
	if err != nil {
		t.Fatalf("Take(%s, %s, %d): %v", r, now, n, err)
	}
	return ds, next
}

func ids(ds []*relay.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

func eventIDs(evs []*relay.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

// wantIDs compares two id lists in order.
func wantIDs(t testing.TB, what string, got, want []string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

// wantTime compares instants and checks got is in UTC.
func wantTime(t testing.TB, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Fatalf("%s: got %s, want %s", what, got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
	}
	if !got.IsZero() && got.Location() != time.UTC {
		t.Fatalf("%s: got location %s, want UTC (the contract returns times in UTC)", what, got.Location())
	}
}

// wantNext checks Take's next: zero when want is zero.
func wantNext(t testing.TB, got, want time.Time) {
	t.Helper()
	if want.IsZero() {
		if !got.IsZero() {
			t.Fatalf("Take next: got %s, want zero", got.Format(time.RFC3339Nano))
		}
		return
	}
	wantTime(t, "Take next", got, want)
}

// wantEvent compares every field of an event.
func wantEvent(t testing.TB, got, want *relay.Event) {
	t.Helper()
	if got == nil {
		t.Fatalf("event: got nil, want %s", want.ID)
	}
	if got.ID != want.ID || got.Type != want.Type || got.Org != want.Org || got.ContentType != want.ContentType ||
		got.Hash != want.Hash || got.Query != want.Query {
		t.Fatalf("event: got %+v, want %+v", got, want)
	}
	wantTime(t, "event received_at", got.ReceivedAt, want.ReceivedAt)
	if len(got.Deliveries)+len(want.Deliveries) > 0 && !reflect.DeepEqual(got.Deliveries, want.Deliveries) {
		t.Fatalf("event deliveries: got %v, want %v", got.Deliveries, want.Deliveries)
	}
	if !bytes.Equal(got.Body, want.Body) {
		t.Fatalf("event body: got %d bytes %.40q, want %d bytes %.40q", len(got.Body), got.Body, len(want.Body), want.Body)
	}
}

// wantDelivery compares every field of a delivery.
func wantDelivery(t testing.TB, got, want *relay.Delivery) {
	t.Helper()
	if got == nil {
		t.Fatalf("delivery: got nil, want %s", want.ID)
	}
	if got.ID != want.ID || got.EventID != want.EventID || got.Org != want.Org || got.Endpoint != want.Endpoint ||
		got.Type != want.Type || got.Status != want.Status || got.Ordered != want.Ordered || got.Base != want.Base ||
		got.Reason != want.Reason {
		t.Fatalf("delivery %s: got %+v, want %+v", want.ID, got, want)
	}
	wantTime(t, "delivery created_at", got.CreatedAt, want.CreatedAt)
	switch {
	case want.NextAttemptAt == nil && got.NextAttemptAt != nil:
		t.Fatalf("delivery %s next_attempt_at: got %s, want none", want.ID, got.NextAttemptAt)
	case want.NextAttemptAt != nil && got.NextAttemptAt == nil:
		t.Fatalf("delivery %s next_attempt_at: got none, want %s", want.ID, want.NextAttemptAt)
	case want.NextAttemptAt != nil:
		wantTime(t, "delivery next_attempt_at", *got.NextAttemptAt, *want.NextAttemptAt)
	}
	if len(got.Attempts) != len(want.Attempts) {
		t.Fatalf("delivery %s: got %d attempts, want %d", want.ID, len(got.Attempts), len(want.Attempts))
	}
	for i := range want.Attempts {
		g, w := got.Attempts[i], want.Attempts[i]
		wantTime(t, "attempt at", g.At, w.At)
		g.At, w.At = time.Time{}, time.Time{}
		if len(g.Request) == 0 && len(w.Request) == 0 {
			g.Request, w.Request = nil, nil
		}
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("delivery %s attempt %d: got %+v, want %+v", want.ID, i, g, w)
		}
	}
}

// getDelivery reads a delivery and fails the test on error.
func getDelivery(t testing.TB, s relay.Store, org, id string) *relay.Delivery {
	t.Helper()
	d, err := s.Delivery(context.Background(), org, id)
	if err != nil {
		t.Fatalf("Delivery(%s, %s): %v", org, id, err)
	}
	return d
}

func getEvent(t testing.TB, s relay.Store, org, id string) *relay.Event {
	t.Helper()
	ev, err := s.Event(context.Background(), org, id)
	if err != nil {
		t.Fatalf("Event(%s, %s): %v", org, id, err)
	}
	return ev
}

// attempted returns d with one more attempt, in state status and (when not
// final) due at next.
func attempted(d *relay.Delivery, when time.Time, code int, status string, next time.Time) *relay.Delivery {
	cp := *d
	cp.Attempts = append(slices.Clone(d.Attempts), relay.Attempt{N: len(d.Attempts) + 1, At: when, Status: code,
		LatencyMS: 12.5, Error: fmt.Sprintf("HTTP %d", code), Response: "answer of " + d.ID,
		Request: http.Header{"Webhook-Id": {d.EventID}, "Content-Type": {"application/json"}}})
	cp.Status = status
	if relay.Final(status) {
		cp.NextAttemptAt = nil
	} else {
		cp.NextAttemptAt = ptr(next)
	}
	return &cp
}

// record calls Record and fails the test on error.
func record(t testing.TB, s relay.Store, d *relay.Delivery, disable string) {
	t.Helper()
	if err := s.Record(context.Background(), d, disable); err != nil {
		t.Fatalf("Record(%s): %v", d.ID, err)
	}
}

// waiting returns the Waiting count of one endpoint.
func waiting(t testing.TB, s relay.Store, r relay.EndpointRef) int64 {
	t.Helper()
	m, err := s.Waiting(context.Background())
	if err != nil {
		t.Fatalf("Waiting: %v", err)
	}
	return m[r]
}

func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want one wrapping %q", what, err, want)
	}
}

// allEvents pages through Events with f until the end and returns every
// item in order; it fails on a page above the limit or an endless list.
func allEvents(t testing.TB, s relay.Store, org string, f relay.EventFilter) []*relay.Event {
	t.Helper()
	var out []*relay.Event
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatalf("Events: no end after %d pages", pages)
		}
		p, err := s.Events(context.Background(), org, f)
		if err != nil {
			t.Fatalf("Events(%+v): %v", f, err)
		}
		if f.Limit > 0 && len(p.Items) > f.Limit {
			t.Fatalf("Events: a page of %d items, limit %d", len(p.Items), f.Limit)
		}
		out = append(out, p.Items...)
		if p.Next == "" {
			return out
		}
		f.Cursor = p.Next
	}
}

func allDeliveries(t testing.TB, s relay.Store, org string, f relay.DeliveryFilter) []*relay.Delivery {
	t.Helper()
	var out []*relay.Delivery
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatalf("Deliveries: no end after %d pages", pages)
		}
		p, err := s.Deliveries(context.Background(), org, f)
		if err != nil {
			t.Fatalf("Deliveries(%+v): %v", f, err)
		}
		if f.Limit > 0 && len(p.Items) > f.Limit {
			t.Fatalf("Deliveries: a page of %d items, limit %d", len(p.Items), f.Limit)
		}
		out = append(out, p.Items...)
		if p.Next == "" {
			return out
		}
		f.Cursor = p.Next
	}
}
