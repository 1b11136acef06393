package natsstore

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
)

// A delivery one relay releases (a stop cut its attempt short) is offered
// again at once, and the other relays are woken to take it: they heard
// nothing, and took it at their next tick, up to a quarter of AckWait
// (7.5 s by default) later, in every rolling restart.
func TestReleaseWakesOtherRelays(t *testing.T) {
	a, b := twoRelays(t, 30*time.Second)
	ref := relay.EndpointRef{Org: "acme", Endpoint: "hooks"}
	ev, ds := mkEvent("acme", "r1", t0, false, "hooks")
	accept(t, a, ev, ds)
	got, _ := take(t, a, ref, t0, 1)
	if len(got) != 1 {
		t.Fatalf("took %v, want r1_hooks", ids(got))
	}
	// What b heard of the accept is past.
	for drained := false; !drained; {
		select {
		case <-b.Wake():
		case <-time.After(200 * time.Millisecond):
			drained = true
		}
	}
	if err := a.Release(context.Background(), got[0]); err != nil {
		t.Fatal(err)
	}
	select {
	case woken := <-b.Wake():
		if woken != ref {
			t.Fatalf("woken for %v, want %v", woken, ref)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("relay B was not woken by relay A's release")
	}
	again, _ := take(t, b, ref, t0, 1)
	if !slices.Equal(ids(again), []string{"r1_hooks"}) {
		t.Fatalf("relay B took %v, want r1_hooks", ids(again))
	}
}
