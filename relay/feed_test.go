package relay_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/relay/memstore"
)

// bus stands for NATS between relays' stores: what one store shares,
// every other store hears, at once and in order.
type bus struct {
	mu      sync.Mutex
	from    []string // who shared each message, in order
	hearers map[string]func(string, []byte)
}

func (b *bus) send(from string, msg []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.from = append(b.from, from)
	for id, heard := range b.hearers {
		if id != from {
			heard(from, msg)
		}
	}
}

func (b *bus) senders() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.from...)
}

// sharingStore is a relay's own store that shares its changes on a bus,
// as natsstore does on NATS.
type sharingStore struct {
	relay.Store
	id  string
	bus *bus
}

func (s *sharingStore) ShareChanges(msg []byte) error {
	s.bus.send(s.id, msg)
	return nil
}

func (s *sharingStore) HearChanges(ctx context.Context, heard func(string, []byte)) error {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	s.bus.hearers[s.id] = heard
	context.AfterFunc(ctx, func() {
		s.bus.mu.Lock()
		delete(s.bus.hearers, s.id)
		s.bus.mu.Unlock()
	})
	return nil
}

// next is the subscription's next change, failing after 10 s.
func next(t *testing.T, sub *relay.Subscription) relay.Change {
	t.Helper()
	select {
	case c := <-sub.C():
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for a change")
		return relay.Change{}
	}
}

// TestFeedOfSharingRelays: a relay on a store shared with others tells
// its subscribers what the others shared as what it did itself, and
// shares only its own changes: what it heard is never sent back.
func TestFeedOfSharingRelays(t *testing.T) {
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(hook.Close)
	b := &bus{hearers: map[string]func(string, []byte){}}
	ra := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: hook.URL}),
		relay.Options{Store: &sharingStore{Store: memstore.New(), id: "a", bus: b}})
	rb := startRelay(t, orgConfig(t), relay.Options{Store: &sharingStore{Store: memstore.New(), id: "b", bus: b}})
	subA, subB := ra.Subscribe(t.Context()), rb.Subscribe(t.Context())

	id := ingest(t, ra, `{"n":1}`, map[string]string{"sidehook-event": "payment"}).ID
	// The event, its delivery pending, and delivered: on memstore the
	// attempt may be published before the ingest's changes.
	for range 3 {
		own, heard := next(t, subA), next(t, subB)
		if own.EventID != id {
			t.Fatalf("relay A: got %+v, want a change of %s", own, id)
		}
		// At differs in its monotonic reading only.
		if !heard.At.Equal(own.At) {
			t.Errorf("relay B heard At %v, want %v", heard.At, own.At)
		}
		heard.At = own.At
		if heard, own := exported(heard), exported(own); heard != own {
			t.Errorf("relay B heard %+v, want %+v", heard, own)
		}
	}
	for _, from := range b.senders() {
		if from != "a" {
			t.Errorf("got a message shared by %s, want only a's (b heard them, and shares nothing of its own)", from)
		}
	}
}

// TestFeedHeard: what a relay hears of another is told to its
// subscribers when it is of one of its organisations, and numbers the
// sharing relay skipped (changes it could not send) are told as lost.
func TestFeedHeard(t *testing.T) {
	b := &bus{hearers: map[string]func(string, []byte){}}
	r := startRelay(t, orgConfig(t), relay.Options{Store: &sharingStore{Store: memstore.New(), id: "b", bus: b}})
	sub := r.Subscribe(t.Context())
	b.send("z", []byte(`{"v":1,"first":0}`+"\n"+
		`{"kind":"event","organisation":"elsewhere","event_id":"evt_other","type":"payment","at":"2026-01-02T03:04:05Z"}`+"\n"+
		`{"kind":"event","organisation":"demo","event_id":"evt_1","type":"payment","at":"2026-01-02T03:04:05Z"}`+"\n"))
	if c := next(t, sub); c.EventID != "evt_1" {
		t.Fatalf("got %+v, want evt_1 (evt_other is not of this relay's organisations)", c)
	}
	if n := sub.TakeDropped(); n != 0 {
		t.Fatalf("got %d lost, want 0", n)
	}
	b.send("z", []byte(`{"v":1,"first":5}`+"\n"+
		`{"kind":"event","organisation":"demo","event_id":"evt_5","type":"payment","at":"2026-01-02T03:04:05Z"}`+"\n"))
	if c := next(t, sub); c.EventID != "evt_5" {
		t.Fatalf("got %+v, want evt_5", c)
	}
	select {
	case <-sub.Lagged():
	default:
		t.Fatal("got no Lagged signal, want one: 2, 3 and 4 were never heard")
	}
	if n := sub.TakeDropped(); n != 3 {
		t.Errorf("got %d lost, want 3", n)
	}
}

// exported is c without the records it carries, which the relay that
// made it holds and another relay reads or decodes.
func exported(c relay.Change) relay.Change {
	return relay.Change{Kind: c.Kind, Org: c.Org, EventID: c.EventID, DeliveryID: c.DeliveryID, Endpoint: c.Endpoint, Type: c.Type,
		Status: c.Status, Reason: c.Reason, Attempt: c.Attempt, HTTPStatus: c.HTTPStatus, At: c.At}
}
