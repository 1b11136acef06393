package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/relay/natsstore"
	"github.com/sidehook/sidehook/relay/natsstore/natstest"
	"github.com/sidehook/sidehook/web"
	"github.com/sidehook/sidehook/web/webtest"
)

// TestFeedAcrossRelays: the changes of every relay sharing a JetStream
// reach every relay's feed (Relay.Subscribe, and so its dashboard), each
// once and in order, whichever relay ingested the event or attempted its
// delivery; a relay of another prefix on the same NATS hears none of them.
func TestFeedAcrossRelays(t *testing.T) {
	srv := natstest.Run(t, natstest.Options(-1, t.TempDir()))
	servers := []string{srv.ClientURL()}
	hook := failOnce(t)
	ep := config.RawEndpoint{ID: "crm", URL: hook.URL + "/hook"}
	a := startRelayOf(t, orgConfig(t, ep), openStore(t, servers, 1))
	b := startRelayOf(t, orgConfig(t, ep), openStore(t, servers, 1))
	other := startRelayOf(t, orgConfig(t, ep), openStoreConfig(t, natsstore.Config{Servers: servers, Prefix: "other"}))
	feeds := map[string]*feed{"A": watchFeed(t, a), "B": watchFeed(t, b), "other": watchFeed(t, other)}
	dash := webtest.DialWS(t, b.URL(), nil)
	if m := webtest.ReadWS(t, dash); m.Type != web.MsgSnapshot {
		t.Fatalf("relay B's dashboard: got %+v, want a snapshot", m)
	}

	if code := post(a.URL(), "evt_feed", "payment"); code != http.StatusAccepted {
		t.Fatalf("post evt_feed to A: got %d, want 202", code)
	}
	// The first attempt fails, the retry 100 ms later delivers: made by
	// A, by B, or one each.
	want := []string{"event", "delivery crm pending 0", "delivery crm failed 1", "delivery crm delivered 2"}
	for _, name := range []string{"A", "B"} {
		waitFor(t, 10*time.Second, "relay "+name+"'s feed to tell evt_feed delivered", func() bool {
			return slices.Contains(feeds[name].of("evt_feed"), want[len(want)-1])
		})
	}
	// B's dashboard shows the delivery live, from the record A or B wrote.
	for {
		m := webtest.ReadWS(t, dash)
		if m.Type == web.MsgItem && m.Item.Event == "payment" && m.Item.Status == relay.StatusDelivered {
			break
		}
	}
	// A change heard twice (a relay's own, echoed) would come before the
	// marks: each relay's changes reach the others in the order made.
	for id, r := range map[string]*relay.Relay{"evt_mark_a": a, "evt_mark_b": b} {
		if code := post(r.URL(), id, "payment"); code != http.StatusAccepted {
			t.Fatalf("post %s: got %d, want 202", id, code)
		}
		for _, name := range []string{"A", "B"} {
			waitFor(t, 10*time.Second, "relay "+name+"'s feed to tell "+id+" delivered", func() bool {
				return slices.Contains(feeds[name].of(id), want[len(want)-1])
			})
		}
	}
	for _, name := range []string{"A", "B"} {
		if got := feeds[name].of("evt_feed"); !slices.Equal(got, want) {
			t.Errorf("relay %s's feed of evt_feed: got %q, want %q", name, got, want)
		}
	}
	if got := feeds["other"].all(); len(got) != 0 {
		t.Errorf("relay of prefix other: got %q, want nothing", got)
	}
}

// feed keeps what a relay's Subscribe tells, by event.
type feed struct {
	mu      sync.Mutex
	byEvent map[string][]string
}

// watchFeed subscribes to r's changes until the test ends.
func watchFeed(t testing.TB, r *relay.Relay) *feed {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sub := r.Subscribe(ctx)
	f := &feed{byEvent: map[string][]string{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range sub.C() {
			s := c.Kind
			if c.Kind == relay.ChangeDelivery {
				s = fmt.Sprintf("%s %s %s %d", c.Kind, c.Endpoint, c.Status, c.Attempt)
			}
			f.mu.Lock()
			f.byEvent[c.EventID] = append(f.byEvent[c.EventID], s)
			f.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return f
}

// of is what the feed told of one event, in order.
func (f *feed) of(eventID string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.byEvent[eventID])
}

// all is what the feed told of any event.
func (f *feed) all() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for id, cs := range f.byEvent {
		for _, c := range cs {
			out = append(out, id+": "+c)
		}
	}
	return out
}

// failOnce is an endpoint that answers a webhook-id's first request 503
// and every later one 200, so each delivery is attempted twice.
func failOnce(t testing.TB) *httptest.Server {
	t.Helper()
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		again := seen[r.Header.Get("webhook-id")]
		seen[r.Header.Get("webhook-id")] = true
		mu.Unlock()
		if !again {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(s.Close)
	return s
}
