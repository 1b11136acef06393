package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
)

// listed is a fixture of n events received a second apart in a shuffled
// order, with ids that sort against time, two types, and one delivery
// each to endpoint "a" or "b".
type listed struct {
	ids      []string // newest first
	typeOf   map[string]string
	epOf     map[string]string
	received map[string]time.Time
}

func fillEvents(t *testing.T, s relay.Store, n int) listed {
	l := listed{typeOf: map[string]string{}, epOf: map[string]string{}, received: map[string]time.Time{}}
	rnd := rand.New(rand.NewPCG(1, 2))
	idOf := rnd.Perm(n) // event i (received i seconds after t0) is ev{idOf[i]}
	for _, i := range rnd.Perm(n) {
		id := fmt.Sprintf("ev%04d", idOf[i])
		typ := "order.created"
		if i%3 == 0 {
			typ = "order.paid"
		}
		ep := "a"
		if i%2 == 0 {
			ep = "b"
		}
		received := at(time.Duration(i) * sec)
		accept(t, s, evSpec{id: id, typ: typ, received: received, eps: []string{ep}})
		l.typeOf[id], l.epOf[id], l.received[id] = typ, ep, received
	}
	// Another organisation's events never show.
	accept(t, s, evSpec{org: "other", id: "ev-other", received: at(sec), eps: []string{"a"}})
	for i := n - 1; i >= 0; i-- {
		l.ids = append(l.ids, fmt.Sprintf("ev%04d", idOf[i]))
	}
	return l
}

func (l listed) filter(keep func(id string) bool) []string {
	var out []string
	for _, id := range l.ids {
		if keep(id) {
			out = append(out, id)
		}
	}
	return out
}

func testListEvents(t *testing.T, f Factory) {
	s := f.New(t)
	l := fillEvents(t, s, 250)
	got := allEvents(t, s, "acme", relay.EventFilter{Limit: 7})
	wantIDs(t, "Events in pages of 7: every event once, newest first", eventIDs(got), l.ids)
	for _, ev := range got {
		wantTime(t, "listed event received_at", ev.ReceivedAt, l.received[ev.ID])
		if ev.Type != l.typeOf[ev.ID] || string(ev.Body) != `{"id":"`+ev.ID+`"}` || len(ev.Deliveries) != 1 {
			t.Fatalf("listed event %s: got %+v", ev.ID, ev)
		}
	}
	p, err := s.Events(context.Background(), "acme", relay.EventFilter{Limit: 250})
	if err != nil || len(p.Items) != 250 || p.Next != "" {
		t.Fatalf("Events with a limit of exactly all: got %d items, next %q, %v; want 250, no next (the list ended)", len(p.Items), p.Next, err)
	}
	p, err = s.Events(context.Background(), "nobody", relay.EventFilter{Limit: 7})
	if err != nil || len(p.Items) != 0 || p.Next != "" {
		t.Fatalf("Events of an unknown organisation: got %d items, next %q, %v", len(p.Items), p.Next, err)
	}
}

func testListEventsFilters(t *testing.T, f Factory) {
	s := f.New(t)
	l := fillEvents(t, s, 120)
	since, until := at(20*sec), at(90*sec) // inclusive: events at both bounds are in
	cases := []struct {
		name string
		f    relay.EventFilter
		keep func(id string) bool
	}{
		{"Type", relay.EventFilter{Type: "order.paid"}, func(id string) bool { return l.typeOf[id] == "order.paid" }},
		{"Since", relay.EventFilter{Since: since}, func(id string) bool { return !l.received[id].Before(since) }},
		{"Until", relay.EventFilter{Until: until}, func(id string) bool { return !l.received[id].After(until) }},
		{"SinceUntilType", relay.EventFilter{Since: since, Until: until, Type: "order.created"}, func(id string) bool {
			r := l.received[id]
			return !r.Before(since) && !r.After(until) && l.typeOf[id] == "order.created"
		}},
		{"NoMatch", relay.EventFilter{Type: "nothing"}, func(string) bool { return false }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := l.filter(c.keep)
			for _, limit := range []int{0, 1, 5, len(want)} {
				c.f.Limit = limit
				got := allEvents(t, s, "acme", c.f)
				wantIDs(t, fmt.Sprintf("Events(%+v), all pages", c.f), eventIDs(got), want)
			}
		})
	}
}

// fillDeliveries makes n events with one delivery each (see fillEvents)
// and moves some of them: every 4th delivered, every 5th failed, every 7th
// dead (the first that applies).
func fillDeliveries(t *testing.T, s relay.Store, n int) (listed, map[string]string) {
	l := fillEvents(t, s, n)
	status := map[string]string{}
	for _, id := range l.ids {
		status[id] = relay.StatusPending
	}
	for _, ep := range []string{"a", "b"} {
		ds, _ := take(t, s, ref("acme", ep), at(time.Hour), n)
		for _, d := range ds {
			var k int
			fmt.Sscanf(d.EventID, "ev%d", &k)
			st := relay.StatusPending
			switch {
			case k%4 == 0:
				st = relay.StatusDelivered
			case k%5 == 0:
				st = relay.StatusFailed
			case k%7 == 0:
				st = relay.StatusDead
			}
			if st == relay.StatusPending {
				if err := s.Release(context.Background(), d); err != nil {
					t.Fatal(err)
				}
				continue
			}
			record(t, s, attempted(d, at(time.Hour), 500, st, at(2*time.Hour)), "")
			status[d.EventID] = st
		}
	}
	return l, status
}

func deliveryEventIDs(ds []*relay.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.EventID
	}
	return out
}

func testListDeliveries(t *testing.T, f Factory) {
	s := f.New(t)
	l := fillEvents(t, s, 250)
	got := allDeliveries(t, s, "acme", relay.DeliveryFilter{Limit: 7})
	wantIDs(t, "Deliveries in pages of 7: every delivery once, newest first", deliveryEventIDs(got), l.ids)
	for _, d := range got {
		wantTime(t, "listed delivery created_at", d.CreatedAt, l.received[d.EventID])
		if d.Status != relay.StatusPending || d.Type != l.typeOf[d.EventID] {
			t.Fatalf("listed delivery %s: got %+v", d.ID, d)
		}
	}
	p, err := s.Deliveries(context.Background(), "acme", relay.DeliveryFilter{Limit: 250})
	if err != nil || len(p.Items) != 250 || p.Next != "" {
		t.Fatalf("Deliveries with a limit of exactly all: got %d items, next %q, %v; want 250, no next", len(p.Items), p.Next, err)
	}
}

func testListDeliveriesFilters(t *testing.T, f Factory) {
	s := f.New(t)
	l, status := fillDeliveries(t, s, 120)
	epOf := l.epOf
	since, until := at(20*sec), at(90*sec)
	picked := []string{l.ids[3] + "." + epOf[l.ids[3]], l.ids[50] + "." + epOf[l.ids[50]], l.ids[7] + "." + epOf[l.ids[7]], "no-such-delivery"}
	pickedSet := map[string]bool{l.ids[3]: true, l.ids[50]: true, l.ids[7]: true}
	cases := []struct {
		name string
		f    relay.DeliveryFilter
		keep func(id string) bool
	}{
		{"Status", relay.DeliveryFilter{Status: relay.StatusFailed}, func(id string) bool { return status[id] == relay.StatusFailed }},
		{"StatusPending", relay.DeliveryFilter{Status: relay.StatusPending}, func(id string) bool { return status[id] == relay.StatusPending }},
		{"Endpoint", relay.DeliveryFilter{Endpoint: "b"}, func(id string) bool { return epOf[id] == "b" }},
		{"Type", relay.DeliveryFilter{Type: "order.paid"}, func(id string) bool { return l.typeOf[id] == "order.paid" }},
		{"Since", relay.DeliveryFilter{Since: since}, func(id string) bool { return !l.received[id].Before(since) }},
		{"Until", relay.DeliveryFilter{Until: until}, func(id string) bool { return !l.received[id].After(until) }},
		{"IDs", relay.DeliveryFilter{IDs: picked}, func(id string) bool { return pickedSet[id] }},
		{"IDsAndStatus", relay.DeliveryFilter{IDs: picked, Status: status[l.ids[50]]}, func(id string) bool {
			return pickedSet[id] && status[id] == status[l.ids[50]]
		}},
		{"All", relay.DeliveryFilter{Status: relay.StatusDelivered, Endpoint: "a", Type: "order.created", Since: since, Until: until},
			func(id string) bool {
				r := l.received[id]
				return status[id] == relay.StatusDelivered && epOf[id] == "a" && l.typeOf[id] == "order.created" &&
					!r.Before(since) && !r.After(until)
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := l.filter(c.keep)
			if len(want) == 0 {
				t.Fatalf("the fixture selects nothing for %s: a test that asserts nothing", c.name)
			}
			for _, limit := range []int{0, 1, 4, len(want)} {
				c.f.Limit = limit
				got := allDeliveries(t, s, "acme", c.f)
				wantIDs(t, fmt.Sprintf("Deliveries(%+v), all pages", c.f), deliveryEventIDs(got), want)
				for _, d := range got {
					if d.Status != status[d.EventID] {
						t.Fatalf("listed %s: status %s, want %s", d.ID, d.Status, status[d.EventID])
					}
				}
			}
		})
	}
}

func testBadCursor(t *testing.T, f Factory) {
	s := f.New(t)
	fillEvents(t, s, 3)
	ctx := context.Background()
	for _, c := range []string{"not a cursor!", "%%%", "AA"} {
		_, err := s.Events(ctx, "acme", relay.EventFilter{Cursor: c})
		wantErr(t, fmt.Sprintf("Events with cursor %q", c), err, relay.ErrBadCursor)
		_, err = s.Deliveries(ctx, "acme", relay.DeliveryFilter{Cursor: c})
		wantErr(t, fmt.Sprintf("Deliveries with cursor %q", c), err, relay.ErrBadCursor)
	}
	// A real cursor goes on where its page ended.
	p, err := s.Events(ctx, "acme", relay.EventFilter{Limit: 1})
	if err != nil || p.Next == "" {
		t.Fatalf("Events limit 1 of 3: next %q, %v", p.Next, err)
	}
	rest := allEvents(t, s, "acme", relay.EventFilter{Limit: 1, Cursor: p.Next})
	if len(rest) != 2 || slices.Contains(eventIDs(rest), p.Items[0].ID) {
		t.Fatalf("after the first page: got %v, want the 2 others", eventIDs(rest))
	}
}

// testListDelivering: a status of delivering lists the deliveries the
// store holds leased and not final, newest first, a page at a time, with
// Attempting set; pending and failed leave them out, so a page of those is
// whole. A lease ended by Record or Release ends the listing.
func testListDelivering(t *testing.T, f Factory) {
	s := f.New(t)
	for i := range 5 {
		ep := "a"
		if i == 4 {
			ep = "b" // another endpoint's leases count too
		}
		accept(t, s, evSpec{id: fmt.Sprintf("e%d", i), eps: []string{ep}, received: at(time.Duration(i) * sec)})
	}
	taken, _ := take(t, s, ref("acme", "a"), at(time.Hour), 3)
	wantIDs(t, "Take", ids(taken), []string{"e0.a", "e1.a", "e2.a"})
	takenB, _ := take(t, s, ref("acme", "b"), at(time.Hour), 1)
	wantIDs(t, "Take of b", ids(takenB), []string{"e4.b"})
	record(t, s, attempted(taken[2], at(time.Hour), 200, relay.StatusDelivered, time.Time{}), "")
	if err := s.Release(context.Background(), taken[0]); err != nil {
		t.Fatalf("Release: %v", err)
	}

	for _, limit := range []int{0, 1, 2} {
		got := allDeliveries(t, s, "acme", relay.DeliveryFilter{Status: relay.StatusDelivering, Limit: limit})
		wantIDs(t, fmt.Sprintf("delivering, pages of %d", limit), ids(got), []string{"e4.b", "e1.a"})
		for _, d := range got {
			if !d.Attempting || d.Status != relay.StatusPending {
				t.Errorf("delivering %s: attempting %v, status %s; want attempting, stored pending", d.ID, d.Attempting, d.Status)
			}
		}
	}
	filtered := []struct {
		name string
		f    relay.DeliveryFilter
		want []string
	}{
		{"Endpoint", relay.DeliveryFilter{Status: relay.StatusDelivering, Endpoint: "a"}, []string{"e1.a"}},
		{"IDs", relay.DeliveryFilter{Status: relay.StatusDelivering, IDs: []string{"e4.b", "e0.a", "e2.a"}}, []string{"e4.b"}},
		{"Since", relay.DeliveryFilter{Status: relay.StatusDelivering, Since: at(2 * sec)}, []string{"e4.b"}},
		{"Type", relay.DeliveryFilter{Status: relay.StatusDelivering, Type: "order.created"}, []string{"e4.b", "e1.a"}},
		{"Pending", relay.DeliveryFilter{Status: relay.StatusPending, Limit: 2}, []string{"e3.a", "e0.a"}},
		{"Delivered", relay.DeliveryFilter{Status: relay.StatusDelivered}, []string{"e2.a"}},
	}
	for _, c := range filtered {
		got := allDeliveries(t, s, "acme", c.f)
		wantIDs(t, c.name, ids(got), c.want)
	}
	for _, d := range allDeliveries(t, s, "acme", relay.DeliveryFilter{}) {
		if want := d.ID == "e1.a" || d.ID == "e4.b"; d.Attempting != want {
			t.Errorf("listed %s: attempting %v, want %v", d.ID, d.Attempting, want)
		}
	}
	if got := allDeliveries(t, s, "other", relay.DeliveryFilter{Status: relay.StatusDelivering}); len(got) != 0 {
		t.Errorf("another organisation's delivering: got %v, want none", ids(got))
	}
}
