package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/natsstore/natstest"
)

// twoRelays opens two stores (two relays) on one embedded server.
func twoRelays(t *testing.T, ackWait time.Duration) (*Store, *Store) {
	srv := startServer(t, nil)
	cfg := Config{Servers: []string{srv.ClientURL()}, AckWait: ackWait}
	return openStore(t, cfg), openStore(t, cfg)
}

func TestTwoRelaysShareWork(t *testing.T) {
	a, b := twoRelays(t, 5*time.Second)
	ctx := context.Background()
	const events = 60
	ref := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	for i := range events {
		s := a
		if i%2 == 1 {
			s = b
		}
		ev, ds := mkEvent("acme", fmt.Sprintf("s%02d", i), t0.Add(time.Duration(i)*time.Millisecond), false, "a")
		accept(t, s, ev, ds)
	}
	var mu sync.Mutex
	attempts := map[string]int{}
	var wg sync.WaitGroup
	for w := range 4 {
		s := []*Store{a, b}[w%2]
		wg.Go(func() {
			for idle := 0; idle < 3; {
				ds, _, err := s.Take(ctx, ref, t0.Add(time.Hour), 3)
				if err != nil {
					t.Errorf("take: %v", err)
					return
				}
				if len(ds) == 0 {
					idle++
					continue
				}
				idle = 0
				for _, d := range ds {
					mu.Lock()
					attempts[d.ID]++
					mu.Unlock()
					if err := s.Record(ctx, attempt(d, relay.StatusDelivered, t0.Add(time.Hour), nil), ""); err != nil {
						t.Errorf("record: %v", err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	// A Take may miss items another relay's Take was reading; pick up
	// what is left, as the dispatcher does when woken.
	for _, s := range []*Store{a, b} {
		ds, _ := take(t, s, ref, t0.Add(time.Hour), events)
		for _, d := range ds {
			attempts[d.ID]++
			if err := s.Record(ctx, attempt(d, relay.StatusDelivered, t0.Add(time.Hour), nil), ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(attempts) != events {
		t.Fatalf("attempted %d deliveries, want %d", len(attempts), events)
	}
	for id, n := range attempts {
		if n != 1 {
			t.Fatalf("delivery %s attempted %d times, want once", id, n)
		}
	}
	if w, err := a.Waiting(ctx); err != nil || w[ref] != 0 {
		t.Fatalf("waiting after all delivered: %v, %v", w, err)
	}
}

func TestTwoRelaysIdempotency(t *testing.T) {
	a, b := twoRelays(t, 5*time.Second)
	ctx := context.Background()
	for i := range 10 {
		id := fmt.Sprintf("same-%d", i)
		var wg sync.WaitGroup
		results := make([]error, 2)
		stored := make([]*relay.Event, 2)
		for j, s := range []*Store{a, b} {
			wg.Go(func() {
				ev, ds := mkEvent("acme", id, t0, false, "a")
				ev.Hash = fmt.Sprintf("relay-%d", j)
				stored[j], results[j] = s.Accept(ctx, ev, ds)
			})
		}
		wg.Wait()
		won, dup := 0, 0
		for _, err := range results {
			switch {
			case err == nil:
				won++
			case errors.Is(err, relay.ErrDuplicate):
				dup++
			default:
				t.Fatalf("accept %s: %v", id, err)
			}
		}
		if won != 1 || dup != 1 || stored[0].Hash != stored[1].Hash {
			t.Fatalf("%s: %d accepted, %d duplicates, hashes %q %q; want one of each answering the same event",
				id, won, dup, stored[0].Hash, stored[1].Hash)
		}
	}
	p, err := b.Deliveries(ctx, "acme", relay.DeliveryFilter{})
	if err != nil || len(p.Items) != 10 {
		t.Fatalf("deliveries: %d, %v; want 10", len(p.Items), err)
	}
}

func TestLeaseOfAClosedRelayIsRetaken(t *testing.T) {
	for _, ordered := range []bool{false, true} {
		t.Run(fmt.Sprintf("ordered=%v", ordered), func(t *testing.T) {
			a, b := twoRelays(t, time.Second)
			ctx := context.Background()
			ref := relay.EndpointRef{Org: "acme", Endpoint: "a"}
			ev, ds := mkEvent("acme", "lost", t0, ordered, "a")
			accept(t, a, ev, ds)
			got, _ := take(t, a, ref, t0, 1)
			if len(got) != 1 {
				t.Fatal("relay A took nothing")
			}
			// While A lives, its heartbeats keep the lease past AckWait.
			deadline := time.Now().Add(2500 * time.Millisecond)
			for time.Now().Before(deadline) {
				if ds, _ := take(t, b, ref, t0, 1); len(ds) != 0 {
					t.Fatal("relay B took a delivery relay A holds")
				}
				time.Sleep(100 * time.Millisecond)
			}
			a.Close() // dies without Record or Release
			var retaken []*relay.Delivery
			waitFor(t, 10*time.Second, "relay B to retake the delivery", func() bool {
				retaken, _ = take(t, b, ref, t0, 1)
				return len(retaken) == 1
			})
			if err := b.Record(ctx, attempt(retaken[0], relay.StatusDelivered, t0, nil), ""); err != nil {
				t.Fatal(err)
			}
			d, err := b.Delivery(ctx, "acme", "lost_a")
			if err != nil || d.Status != relay.StatusDelivered {
				t.Fatalf("after the retake: %+v, %v", d, err)
			}
		})
	}
}

func TestWakeHearsOtherRelays(t *testing.T) {
	a, b := twoRelays(t, 5*time.Second)
	ev, ds := mkEvent("acme", "w1", t0, false, "hooks")
	accept(t, a, ev, ds)
	select {
	case ref := <-b.Wake():
		if ref != (relay.EndpointRef{Org: "acme", Endpoint: "hooks"}) {
			t.Fatalf("woken for %v, want acme/hooks", ref)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("relay B was not woken by relay A's accept")
	}
}

func TestSharedKeysAndTokens(t *testing.T) {
	a, b := twoRelays(t, 5*time.Second)
	ctx := context.Background()
	var wg sync.WaitGroup
	got := make([][]byte, 2)
	for i, s := range []*Store{a, b} {
		wg.Go(func() {
			var err error
			if got[i], err = s.CreateSigningKey(ctx, "k1", []byte(fmt.Sprintf("doc-%d", i))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if string(got[0]) != string(got[1]) {
		t.Fatalf("relays created different keys: %q %q", got[0], got[1])
	}
	if err := a.PutToken(ctx, "acme", "whk_x"); err != nil {
		t.Fatal(err)
	}
	if tok, err := b.Token(ctx, "acme"); err != nil || tok != "whk_x" {
		t.Fatalf("token on the other relay: %q, %v", tok, err)
	}
}

func TestOpenErrors(t *testing.T) {
	noJS := startServer(t, func(o *server.Options) { o.JetStream = false })
	acc := server.NewAccount("NOJS")
	noRights := startServer(t, func(o *server.Options) {
		o.Accounts = []*server.Account{acc}
		o.Users = []*server.User{{Username: "relay", Password: "pw", Account: acc}}
	})
	noRightsURL := strings.Replace(noRights.ClientURL(), "nats://", "nats://relay:pw@", 1)
	single := startServer(t, nil)
	dead := natstest.FreePorts(t, 1)[0]
	ctx := context.Background()
	for _, c := range []struct {
		name string
		cfg  Config
		want string
		// misconfigured: opening again as it is can never work, so the
		// relay exits as for a mistake in its configuration.
		misconfigured bool
	}{
		{"unreachable", Config{Servers: []string{fmt.Sprintf("nats://127.0.0.1:%d", dead)}}, "connect to nats://127.0.0.1", false},
		{"no JetStream", Config{Servers: []string{noJS.ClientURL()}}, "does not have JetStream enabled", false},
		{"account without JetStream", Config{Servers: []string{noRightsURL}}, "not enabled for this account", false},
		{"no servers", Config{}, "no server URL", true},
		{"wrong credentials", Config{Servers: []string{noRights.ClientURL()}, Token: "wrong"}, "refused this relay's credentials (check store.credentials or store.token)", false},
		{"bad prefix", Config{Servers: []string{noJS.ClientURL()}, Prefix: "a.b"}, "prefix", true},
		{"bad replicas", Config{Servers: []string{noJS.ClientURL()}, Replicas: 2}, "replicas 2", true},
		// It blamed the account's rights or the server's version.
		{"three replicas on one server", Config{Servers: []string{single.ClientURL()}, Replicas: 3}, "not in a cluster: set store.replicas to 1", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := Open(ctx, c.cfg)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
			if got := errors.Is(err, ErrMisconfigured); got != c.misconfigured {
				t.Errorf("error %q: ErrMisconfigured %v, want %v", err, got, c.misconfigured)
			}
		})
	}
}

func TestRedactServers(t *testing.T) {
	got := redact([]string{"nats://user:secret@h1:4222", "nats://h2:4222"})
	if strings.Contains(got, "secret") || !strings.Contains(got, "h2:4222") {
		t.Fatalf("redact = %q, want h2:4222 without the secret", got)
	}
}

func TestHealthAcrossAnOutage(t *testing.T) {
	dir := t.TempDir()
	port := natstest.FreePorts(t, 1)[0]
	opts := func() *server.Options {
		return &server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true}
	}
	srv := natstest.Run(t, opts())
	s := openStore(t, Config{Servers: []string{srv.ClientURL()}})
	ctx := context.Background()
	ev, ds := mkEvent("acme", "before", t0, false, "a")
	accept(t, s, ev, ds)
	if err := s.Health(); err != nil {
		t.Fatalf("health while connected: %v", err)
	}

	srv.Shutdown()
	srv.WaitForShutdown()
	waitFor(t, 10*time.Second, "Health to report the lost connection", func() bool {
		return errors.Is(s.Health(), relay.ErrUnavailable)
	})
	ev2, ds2 := mkEvent("acme", "during", t0, false, "a")
	if _, err := s.Accept(ctx, ev2, ds2); !errors.Is(err, relay.ErrUnavailable) {
		t.Fatalf("accept while NATS is down: %v, want ErrUnavailable", err)
	}

	natstest.Run(t, opts())
	waitFor(t, 20*time.Second, "Health to recover", func() bool { return s.Health() == nil })
	if _, err := s.Event(ctx, "acme", "before"); err != nil {
		t.Fatalf("event acknowledged before the outage: %v", err)
	}
	accept(t, s, ev2, ds2)
	got, _ := take(t, s, relay.EndpointRef{Org: "acme", Endpoint: "a"}, t0, 10)
	if len(got) != 2 {
		t.Fatalf("took %v after the outage, want both", ids(got))
	}
}

// An endpoint deleted by one relay and used again through another: the
// second relay's cached consumer is gone, and its deliveries still go.
func TestEndpointDeletedByAnotherRelay(t *testing.T) {
	a, b := twoRelays(t, 5*time.Second)
	ctx := context.Background()
	ref := relay.EndpointRef{Org: "acme", Endpoint: "api"}
	ev, ds := mkEvent("acme", "d1", t0, false, "api")
	accept(t, b, ev, ds) // b caches the consumer
	if err := a.DeleteEndpoint(ctx, "acme", "api", "deleted", nil); err != nil {
		t.Fatal(err)
	}
	ev, ds = mkEvent("acme", "d2", t0, false, "api")
	accept(t, b, ev, ds)
	var got []*relay.Delivery
	waitFor(t, 10*time.Second, "the new delivery to be taken", func() bool {
		more, _ := take(t, b, ref, t0, 10)
		got = append(got, more...)
		return len(got) > 0
	})
	if want := []string{"d2_api"}; !slices.Equal(ids(got), want) {
		t.Fatalf("took %v, want %v (d1's queue was deleted with the endpoint)", ids(got), want)
	}
}

// A relay that dies holding every slot of an endpoint's max_in_flight
// leaves them pending in the consumer: another relay retakes them once
// their AckWait ends, though the consumer never shows a free slot (the
// server redelivers them within the limit they already count against).
func TestLeasesHoldingEverySlotAreRetaken(t *testing.T) {
	a, b := twoRelays(t, time.Second)
	ctx := context.Background()
	ref := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	now := t0.Add(time.Minute)
	for _, s := range []*Store{a, b} {
		s.SetMaxInFlight(ref, 2)
	}
	for i := range 2 {
		ev, ds := mkEvent("acme", fmt.Sprintf("full%d", i), t0.Add(time.Duration(i)*time.Millisecond), false, "a")
		accept(t, a, ev, ds)
	}
	var held []*relay.Delivery
	waitFor(t, 5*time.Second, "relay A to take both deliveries", func() bool {
		got, _ := take(t, a, ref, now, 2-len(held))
		held = append(held, got...)
		return len(held) == 2
	})
	a.Close() // dies without Record or Release, holding both slots
	var retaken []*relay.Delivery
	waitFor(t, 10*time.Second, "relay B to retake both deliveries", func() bool {
		got, _ := take(t, b, ref, now, 2)
		retaken = append(retaken, got...)
		return len(retaken) == 2
	})
	for _, d := range retaken {
		if err := b.Record(ctx, attempt(d, relay.StatusDelivered, now, nil), ""); err != nil {
			t.Fatal(err)
		}
	}
}

// lapse lets relay a's lease key lapse (its heartbeats stop), waits for
// relay b to take the delivery again (taking at now()), and gives a back
// its lease: a's attempt was under way all along. It returns what b took.
func lapse(t *testing.T, a, b *Store, ref relay.EndpointRef, key string, now func() time.Time) []*relay.Delivery {
	t.Helper()
	a.mu.Lock()
	l := a.leases[key]
	delete(a.leases, key)
	a.mu.Unlock()
	var retaken []*relay.Delivery
	waitFor(t, 10*time.Second, "relay B to retake the delivery", func() bool {
		retaken, _ = take(t, b, ref, now(), 1)
		return len(retaken) == 1
	})
	a.mu.Lock()
	a.leases[key] = l
	a.mu.Unlock()
	return retaken
}

// lapsedOnItsOwn accepts an event with one delivery to an endpoint ep of
// its own (no head lock shared with another row), lets relay a take it and
// its lease lapse to relay b (lapse). It returns a's copy and b's.
func lapsedOnItsOwn(t *testing.T, a, b *Store, ep, eventID string, ordered bool) (ref relay.EndpointRef, taken, retaken *relay.Delivery) {
	t.Helper()
	ref = relay.EndpointRef{Org: "acme", Endpoint: ep}
	ev, ds := mkEvent("acme", eventID, time.Now(), ordered, ep)
	accept(t, a, ev, ds)
	id := ds[0].ID
	got, _ := take(t, a, ref, time.Now(), 1)
	if len(got) != 1 || got[0].ID != id {
		t.Fatalf("relay A took %v, want %s", ids(got), id)
	}
	again := lapse(t, a, b, ref, "acme/"+id, time.Now)
	if again[0].ID != id {
		t.Fatalf("relay B took %s, want %s", again[0].ID, id)
	}
	return ref, got[0], again[0]
}

// A relay whose lease lapsed (its heartbeats did not reach the server for
// AckWait) and another that retook the delivery attempt it at once; the
// first records it delivered, which ends the work item the second holds.
// The second's failure, recorded after, does not undo the delivery: with
// no item left to wait on it would stay failed and never be retried.
func TestLateFailureKeepsTheDeliveryOfALapsedLease(t *testing.T) {
	a, b := twoRelays(t, time.Second)
	ctx := context.Background()
	ref := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	ev, ds := mkEvent("acme", "x", time.Now(), false, "a")
	accept(t, a, ev, ds)
	got, _ := take(t, a, ref, time.Now(), 1)
	if len(got) != 1 {
		t.Fatal("relay A took nothing")
	}
	retaken := lapse(t, a, b, ref, "acme/x_a", time.Now)
	if err := a.Record(ctx, attempt(got[0], relay.StatusDelivered, time.Now(), nil), ""); err != nil {
		t.Fatal(err)
	}
	due := time.Now().UTC()
	late := attempt(retaken[0], relay.StatusFailed, time.Now(), &due)
	if err := b.Record(ctx, late, ""); err != nil {
		t.Fatal(err)
	}
	if late.Status != relay.StatusDelivered {
		t.Errorf("B's Record says %s, want delivered (what is stored)", late.Status)
	}
	d, err := b.Delivery(ctx, "acme", "x_a")
	if err != nil || d.Status != relay.StatusDelivered || d.NextAttemptAt != nil {
		t.Fatalf("stored %+v, %v; want delivered", d, err)
	}
}

// A relay whose ordered lease lapsed records its attempt after another
// relay retook the head: the head lock is the second's now, and stays
// held until the second records too, so the next delivery is not
// attempted while the head's attempt is still under way (FIFO).
func TestLapsedHolderLeavesTheRetakenHeadLock(t *testing.T) {
	a, b := twoRelays(t, time.Second)
	ctx := context.Background()
	ref := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	for i, id := range []string{"x", "y"} {
		ev, ds := mkEvent("acme", id, t0.Add(time.Duration(i)*time.Millisecond), true, "a")
		accept(t, a, ev, ds)
	}
	now := t0.Add(time.Hour)
	got, _ := take(t, a, ref, now, 1)
	if len(got) != 1 || got[0].ID != "x_a" {
		t.Fatalf("relay A took %v, want x_a", got)
	}
	retaken := lapse(t, a, b, ref, "acme/x_a", func() time.Time { return now })
	if retaken[0].ID != "x_a" {
		t.Fatalf("relay B took %s, want x_a", retaken[0].ID)
	}
	if err := a.Record(ctx, attempt(got[0], relay.StatusDelivered, now, nil), ""); err != nil {
		t.Fatal(err)
	}
	if ds, _ := take(t, a, ref, now, 1); len(ds) != 0 {
		t.Fatalf("%s taken while B's attempt of the head is under way", ds[0].ID)
	}
	if err := b.Record(ctx, attempt(retaken[0], relay.StatusDelivered, now, nil), ""); err != nil {
		t.Fatal(err)
	}
	if ds, _ := take(t, a, ref, now, 1); len(ds) != 1 || ds[0].ID != "y_a" {
		t.Fatalf("after B's record: took %v, want y_a", ds)
	}
}

// A relay whose lease lapsed ends it late, after another relay retook the
// delivery and a requeue marked it: it releases it (its tunnel is not
// connected, say) or records a failed attempt. The lease stays the
// second's, with its requeue mark; a failed attempt goes on the record.
// Ended there, the state would lose the second's lease and mark (its
// Record would store the attempt's due time, not the requeue's), and the
// work item the second holds, given back or moved, would have a third
// Take attempt the delivery while the second's attempt is under way.
func TestLapsedHolderLeavesTheRetakenLease(t *testing.T) {
	a, b := twoRelays(t, time.Second)
	ctx := context.Background()
	late := []struct {
		name     string
		end      func(d *relay.Delivery, due time.Time) error // A's late end of its lease
		attempts int                                          // on the record after it
	}{
		{"Release", func(d *relay.Delivery, _ time.Time) error { return a.Release(ctx, d) }, 0},
		{"Failure", func(d *relay.Delivery, due time.Time) error {
			return a.Record(ctx, attempt(d, relay.StatusFailed, time.Now(), &due), "")
		}, 1},
	}
	n := 0
	for _, l := range late {
		for _, ordered := range []bool{false, true} {
			name := l.name + "/unordered"
			if ordered {
				name = l.name + "/ordered"
			}
			n++
			t.Run(name, func(t *testing.T) {
				ref, taken, retaken := lapsedOnItsOwn(t, a, b, fmt.Sprintf("late%d", n), fmt.Sprintf("late%d", n), ordered)
				id := taken.ID
				at := time.Now().UTC()
				if _, err := b.Requeue(ctx, "acme", id, at); err != nil {
					t.Fatal(err)
				}
				due := time.Now().UTC().Add(time.Hour)
				if err := l.end(taken, due); err != nil {
					t.Fatal(err)
				}
				st, _, err := b.state(ctx, "acme", id)
				if err != nil {
					t.Fatal(err)
				}
				if !st.Leased || st.RequeueAt == nil || !st.RequeueAt.Equal(at) || len(st.Attempts) != l.attempts {
					t.Errorf("after A's end: leased %v, requeue mark %v, %d attempts; want B's lease, marked %v, %d attempts",
						st.Leased, st.RequeueAt, len(st.Attempts), at, l.attempts)
				}
				if ds, _ := take(t, a, ref, time.Now(), 1); len(ds) != 0 {
					t.Fatalf("%s taken again while B's attempt is under way", ds[0].ID)
				}
				if err := b.Record(ctx, attempt(retaken, relay.StatusFailed, time.Now(), &due), ""); err != nil {
					t.Fatal(err)
				}
				d, err := b.Delivery(ctx, "acme", id)
				if err != nil {
					t.Fatal(err)
				}
				if d.Status != relay.StatusPending || d.NextAttemptAt == nil || !d.NextAttemptAt.Equal(at) || len(d.Attempts) != l.attempts+1 {
					t.Errorf("after B's record: %s, next %v, %d attempts; want pending, next %v (the requeue), %d attempts",
						d.Status, d.NextAttemptAt, len(d.Attempts), at, l.attempts+1)
				}
			})
		}
	}
}

// Two relays attempted a delivery whose lease lapsed on the first: each
// attempt is on the delivery's record, whichever is recorded last, and the
// delivery stays delivered. A record is the relay's copy of the delivery,
// taken before the other's attempt, so written as it is it would drop that
// attempt from the list the API and the dashboard show.
func TestLapsedLeaseKeepsEveryAttempt(t *testing.T) {
	a, b := twoRelays(t, time.Second)
	ctx := context.Background()
	tests := []struct {
		name    string
		ordered bool
		aLast   bool // relay A, whose lease lapsed, records after B
	}{
		{"B fails, then A delivers", false, true},
		{"A delivers, then B fails", false, false},
		{"ordered, B fails, then A delivers", true, true},
		{"ordered, A delivers, then B fails", true, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, taken, retaken := lapsedOnItsOwn(t, a, b, fmt.Sprintf("ep%d", i), fmt.Sprintf("x%d", i), tt.ordered)
			id := taken.ID
			aAt, bAt := time.Now().UTC(), time.Now().UTC().Add(time.Millisecond)
			delivered := attempt(taken, relay.StatusDelivered, aAt, nil)
			delivered.Attempts[0].Status = 200
			due := time.Now().UTC().Add(time.Hour)
			failed := attempt(retaken, relay.StatusFailed, bAt, &due)
			records := []struct {
				s *Store
				d *relay.Delivery
			}{{b, failed}, {a, delivered}}
			if !tt.aLast {
				slices.Reverse(records)
			}
			for _, r := range records {
				if err := r.s.Record(ctx, r.d, ""); err != nil {
					t.Fatal(err)
				}
			}
			d, err := b.Delivery(ctx, "acme", id)
			if err != nil {
				t.Fatal(err)
			}
			if d.Status != relay.StatusDelivered || d.NextAttemptAt != nil {
				t.Errorf("stored %s, next %v; want delivered", d.Status, d.NextAttemptAt)
			}
			// Each attempt keeps the number its request carried
			// (sidehook-attempt): both relays sent their first.
			sent := map[int]int{200: delivered.Attempts[len(delivered.Attempts)-1].N, 500: failed.Attempts[len(failed.Attempts)-1].N}
			var codes []int
			for _, at := range d.Attempts {
				codes = append(codes, at.Status)
				if at.N != sent[at.Status] {
					t.Errorf("attempt answered %d numbered %d, want %d (as sent)", at.Status, at.N, sent[at.Status])
				}
			}
			slices.Sort(codes)
			if want := []int{200, 500}; !slices.Equal(codes, want) {
				t.Errorf("attempts got %v, want %v (A's and B's)", codes, want)
			}
		})
	}
}

func TestWithAttempts(t *testing.T) {
	at := func(n int, ms int, code int) relay.Attempt {
		return relay.Attempt{N: n, At: t0.Add(time.Duration(ms) * time.Millisecond), Status: code}
	}
	tests := []struct {
		name         string
		stored, mine []relay.Attempt
		want         []relay.Attempt
	}{
		{"OneMadeHere", []relay.Attempt{at(1, 0, 500)}, []relay.Attempt{at(1, 0, 500), at(2, 9, 200)},
			[]relay.Attempt{at(1, 0, 500), at(2, 9, 200)}},
		{"AnotherRelaysSince", []relay.Attempt{at(1, 0, 500), at(2, 5, 503)}, []relay.Attempt{at(1, 0, 500), at(2, 3, 200)},
			[]relay.Attempt{at(1, 0, 500), at(2, 5, 503), at(2, 3, 200)}},
		{"RecordedAgain", []relay.Attempt{at(1, 5, 503), at(1, 3, 200)}, []relay.Attempt{at(1, 3, 200)},
			[]relay.Attempt{at(1, 5, 503), at(1, 3, 200)}},
		{"RecordedAgainRenumbered", []relay.Attempt{at(1, 5, 503), at(2, 3, 200)}, []relay.Attempt{at(1, 3, 200)},
			[]relay.Attempt{at(1, 5, 503), at(2, 3, 200)}}, // as stored before attempts kept their number
		{"None", []relay.Attempt{}, []relay.Attempt{}, []relay.Attempt{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := withAttempts(tt.stored, tt.mine)
			if !slices.EqualFunc(got, tt.want, func(a, b relay.Attempt) bool {
				return a.N == b.N && a.At.Equal(b.At) && a.Status == b.Status
			}) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// A delivery's record names the relay holding its lease; one written
// before records named it names none, and is taken as any relay's lease,
// as every lease was then.
func TestLeaseHolder(t *testing.T) {
	tests := []struct {
		name   string
		record string
		want   bool
	}{
		{"Mine", `{"leased":true,"holder":"a"}`, true},
		{"Another", `{"leased":true,"holder":"b"}`, false},
		{"NamedNone", `{"leased":true}`, true},
		{"NotLeased", `{"holder":"a"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st state
			if err := json.Unmarshal([]byte(tt.record), &st); err != nil {
				t.Fatal(err)
			}
			if got := st.heldBy("a"); got != tt.want {
				t.Errorf("held by a: got %v, want %v", got, tt.want)
			}
		})
	}
}

// A create refused for the replicas asked for says what to change, not
// that the account may lack rights.
func TestCreateHint(t *testing.T) {
	s := &Store{cfg: Config{Replicas: 3}}
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"not clustered", &jetstream.APIError{Code: 500, ErrorCode: errCodeNotClustered}, "not in a cluster: set store.replicas to 1"},
		{"too few nodes", &jetstream.APIError{Code: 500, ErrorCode: errCodeNoPeers}, "has not that many JetStream nodes up"},
		{"no room", &jetstream.APIError{Code: 503, ErrorCode: errCodeNoResources}, "max_file_store"},
		{"other API error", &jetstream.APIError{Code: 403, ErrorCode: 10100}, "rights to manage streams"},
		{"not an API error", errors.New("boom"), "rights to manage streams"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := s.createHint(fmt.Errorf("create: %w", c.err)); !strings.Contains(got, c.want) {
				t.Errorf("hint %q: want it to say %q", got, c.want)
			}
		})
	}
}
