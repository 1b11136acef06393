package natsstore

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
)

// Deliveries filtered by delivering lists what any relay holds leased, the
// same from every relay: a relay knows only of its own attempts, so the
// API's ?status=delivering, answered by the relay alone, differed from
// relay to relay. A delivery leased and then ended is no longer listed;
// pages of one follow each other. A leased one is not listed pending: a
// page of pending ones held deliveries the relay then left out.
func TestDeliveringListedFromEveryRelay(t *testing.T) {
	a, b := twoRelays(t, 10*time.Second)
	ctx := context.Background()
	ref := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	for i := range 4 {
		ev, ds := mkEvent("acme", fmt.Sprintf("e%d", i), t0.Add(time.Duration(i)*time.Millisecond), false, "a")
		accept(t, a, ev, ds)
	}
	taken, _ := take(t, a, ref, t0.Add(time.Hour), 3)
	if len(taken) != 3 {
		t.Fatalf("A took %d, want 3", len(taken))
	}
	ended := taken[2]
	if err := a.Record(ctx, attempt(ended, relay.StatusDelivered, t0.Add(time.Hour), nil), ""); err != nil {
		t.Fatalf("record: %v", err)
	}
	want := ids(taken[:2])
	slices.Sort(want)
	slices.Reverse(want) // newest first
	for _, r := range []struct {
		name string
		s    *Store
	}{{"A", a}, {"B", b}} {
		var got []string
		cursor := ""
		for range len(want) + 1 {
			p, err := r.s.Deliveries(ctx, "acme", relay.DeliveryFilter{Status: relay.StatusDelivering, Limit: 1, Cursor: cursor})
			if err != nil {
				t.Fatalf("%s: deliveries: %v", r.name, err)
			}
			for _, d := range p.Items {
				got = append(got, d.ID)
				if !d.Attempting {
					t.Errorf("%s: %s listed as delivering, not attempting", r.name, d.ID)
				}
			}
			if cursor = p.Next; cursor == "" {
				break
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: delivering %v, want %v", r.name, got, want)
		}
		// The leased ones are not pending: a page of one is the one left.
		p, err := r.s.Deliveries(ctx, "acme", relay.DeliveryFilter{Status: relay.StatusPending, Limit: 1})
		if err != nil {
			t.Fatalf("%s: deliveries: %v", r.name, err)
		}
		if len(p.Items) != 1 || p.Items[0].ID != "e3_a" || p.Next != "" {
			t.Errorf("%s: pending %+v (next %q), want e3_a alone", r.name, p.Items, p.Next)
		}
	}
}
