package natsstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
)

// A relay whose lease lapsed records the delivery delivered while the
// relay that retook it is attempting it: delivered stands (at least once:
// the receiver has it), and the retaking relay's lease is over. Its own
// end of the lease, whatever it is, then fails nothing, counts each
// attempt once, leaves the delivery delivered and offered to no relay,
// and frees an ordered endpoint's head lock for the next delivery at once.
func TestLateDeliveryEndsTheRetakenLeaseCleanly(t *testing.T) {
	a, b := twoRelays(t, time.Second)
	ctx := context.Background()
	ends := []struct {
		name     string
		end      func(d *relay.Delivery) (*relay.Delivery, error) // B's end of its lease: what it recorded
		attempts int                                              // on the record after it
	}{
		{"Delivered", func(d *relay.Delivery) (*relay.Delivery, error) {
			d = attempt(d, relay.StatusDelivered, time.Now(), nil)
			return d, b.Record(ctx, d, "")
		}, 2},
		{"Failed", func(d *relay.Delivery) (*relay.Delivery, error) {
			due := time.Now().UTC().Add(time.Hour)
			d = attempt(d, relay.StatusFailed, time.Now(), &due)
			return d, b.Record(ctx, d, "")
		}, 2},
		{"Dead", func(d *relay.Delivery) (*relay.Delivery, error) {
			d = attempt(d, relay.StatusDead, time.Now(), nil)
			return d, b.Record(ctx, d, "")
		}, 2},
		{"Release", func(d *relay.Delivery) (*relay.Delivery, error) { return d, b.Release(ctx, d) }, 1},
	}
	n := 0
	for _, e := range ends {
		for _, ordered := range []bool{false, true} {
			name := e.name + "/unordered"
			if ordered {
				name = e.name + "/ordered"
			}
			n++
			t.Run(name, func(t *testing.T) {
				ref, taken, retaken := lapsedOnItsOwn(t, a, b, fmt.Sprintf("late%d", n), fmt.Sprintf("x%d", n), ordered)
				id := taken.ID
				if err := a.Record(ctx, attempt(taken, relay.StatusDelivered, time.Now(), nil), ""); err != nil {
					t.Fatal(err)
				}
				bd, err := e.end(retaken)
				if err != nil {
					t.Fatalf("B's end of its lease: %v", err)
				}
				if e.name != "Release" && bd.Status != relay.StatusDelivered {
					t.Errorf("B's Record says %s, want delivered (what is stored)", bd.Status)
				}
				if b.leaseOf(bd) != nil {
					t.Error("B still holds a lease of the delivery")
				}
				d, err := b.Delivery(ctx, "acme", id)
				if err != nil {
					t.Fatal(err)
				}
				if d.Status != relay.StatusDelivered || d.NextAttemptAt != nil || d.Attempting || len(d.Attempts) != e.attempts {
					t.Errorf("stored %s, next %v, attempting %v, %d attempts; want delivered, none, false, %d",
						d.Status, d.NextAttemptAt, d.Attempting, len(d.Attempts), e.attempts)
				}
				// The next delivery is taken at once (an ordered endpoint's
				// head lock is free), and the delivered one never again.
				ev, ds := mkEvent("acme", fmt.Sprintf("y%d", n), time.Now(), ordered, ref.Endpoint)
				accept(t, a, ev, ds)
				next := ds[0].ID
				var tookNext []string
				for _, s := range []*Store{a, b} {
					ds, _ := take(t, s, ref, time.Now(), 2)
					for _, d := range ds {
						tookNext = append(tookNext, d.ID)
						if err := s.Release(ctx, d); err != nil {
							t.Fatal(err)
						}
					}
					if len(ds) > 0 {
						break
					}
				}
				if len(tookNext) != 1 || tookNext[0] != next {
					t.Errorf("taken after B's end: %v, want [%s]", tookNext, next)
				}
			})
		}
	}
}
