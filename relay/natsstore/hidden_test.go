package natsstore

import (
	"context"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
)

// On the real clock a retry waits, out of every relay's Takes, until it is
// due, and a Requeue or an Expedite brings it forward at once.
func TestRetryHiddenUntilDue(t *testing.T) {
	a, b := twoRelays(t, 5*time.Second)
	ctx := context.Background()
	ref := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	ev, ds := mkEvent("acme", "h1", time.Now(), false, "a")
	accept(t, a, ev, ds)

	fail := func(d *relay.Delivery, after time.Duration) time.Time {
		t.Helper()
		due := time.Now().Add(after).UTC()
		if err := a.Record(ctx, attempt(d, relay.StatusFailed, time.Now(), &due), ""); err != nil {
			t.Fatal(err)
		}
		return due
	}
	got, _ := take(t, a, ref, time.Now(), 1)
	if len(got) != 1 {
		t.Fatal("nothing taken")
	}
	due := fail(got[0], 1500*time.Millisecond)
	none, next := take(t, a, ref, time.Now(), 1)
	if len(none) != 0 || !next.Equal(due) {
		t.Fatalf("before the retry: took %v, next %v; want nothing, next %v", ids(none), next, due)
	}
	if none, _ := take(t, b, ref, time.Now(), 1); len(none) != 0 {
		t.Fatalf("the other relay took %v before its retry", ids(none))
	}
	waitFor(t, 10*time.Second, "the retry to come back", func() bool {
		got, _ = take(t, a, ref, time.Now(), 1)
		return len(got) == 1
	})
	if time.Now().Before(due) {
		t.Fatal("the retry came back before it was due")
	}

	for _, bring := range []struct {
		name string
		fn   func(now time.Time) error
	}{
		{"expedite", func(now time.Time) error {
			n, err := a.Expedite(ctx, ref, now, nil)
			if err == nil && n != 1 {
				t.Fatalf("expedite moved %d, want 1", n)
			}
			return err
		}},
		{"requeue", func(now time.Time) error { _, err := a.Requeue(ctx, "acme", "h1_a", now); return err }},
	} {
		fail(got[0], time.Hour)
		if err := bring.fn(time.Now()); err != nil {
			t.Fatalf("%s: %v", bring.name, err)
		}
		// The Requeue or Expedite reaches the other relay too.
		got, _ = take(t, b, ref, time.Now(), 1)
		if len(got) != 1 {
			t.Fatalf("after %s: a delivery hidden for an hour was not brought forward", bring.name)
		}
		// And from b the lease goes back to a for the next round.
		if err := b.Release(ctx, got[0]); err != nil {
			t.Fatal(err)
		}
		got, _ = take(t, a, ref, time.Now(), 1)
		if len(got) != 1 {
			t.Fatalf("after %s: released delivery not taken again", bring.name)
		}
	}
	d, err := a.Delivery(ctx, "acme", "h1_a")
	if err != nil || d.Base != 3 || len(d.Attempts) != 3 {
		t.Fatalf("after the requeue: %+v, %v", d, err)
	}
}
