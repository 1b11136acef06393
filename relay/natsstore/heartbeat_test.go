package natsstore

import (
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
)

// A relay whose lease lapsed, its attempt still under way, heartbeats
// only leases it holds: the work item is the retaking relay's now. Were
// it extended from here, the retaking relay dying would leave the
// delivery to nobody for as long as the first relay's attempt lasts.
func TestLapsedHolderStopsExtendingTheRetakenLease(t *testing.T) {
	a, b := twoRelays(t, time.Second)
	ref := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	ev, ds := mkEvent("acme", "x", time.Now(), false, "a")
	accept(t, a, ev, ds)
	if got, _ := take(t, a, ref, time.Now(), 1); len(got) != 1 {
		t.Fatal("relay A took nothing")
	}
	lapse(t, a, b, ref, "acme/x_a", time.Now)
	// B dies mid-attempt: its heartbeats stop, A's go on.
	b.mu.Lock()
	delete(b.leases, "acme/x_a")
	b.mu.Unlock()
	waitFor(t, 10*time.Second, "B's lease to lapse and the delivery to be offered again", func() bool {
		got, _ := take(t, b, ref, time.Now(), 1)
		return len(got) == 1
	})
}
