package relay_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/web"
	"github.com/sidehook/sidehook/web/webtest"
)

// endedView is a delivery as the API shows it, with the reason it ended.
type endedView struct {
	deliveryView
	Reason string `json:"reason"`
}

func getEnded(tb testing.TB, r *relay.Relay, id string) endedView {
	tb.Helper()
	var d endedView
	a := call(tb, "GET", r.URL()+"/v1/deliveries/"+id, apiKey, nil, nil)
	if a.Status != http.StatusOK {
		tb.Fatalf("get delivery %s: got %d %s, want 200", id, a.Status, a.Body)
	}
	a.decode(tb, &d)
	return d
}

// wantEnded checks that a delivery ended dead with a reason that says why,
// its attempts kept, nothing due.
func wantEnded(tb testing.TB, d endedView, says string, attempts int) {
	tb.Helper()
	if d.Status != relay.StatusDead || d.NextAttemptAt != nil || !strings.Contains(d.Reason, says) || len(d.Attempts) != attempts {
		tb.Fatalf("delivery %s: got %s, next %v, reason %q, %d attempts; want dead, none, a reason saying %q, %d attempts",
			d.ID, d.Status, d.NextAttemptAt, d.Reason, len(d.Attempts), says, attempts)
	}
}

// A user deleted an endpoint whose deliveries waited for a retry: they
// stayed failed with a next_attempt_at that never came. They end dead,
// saying why, /metrics drops the endpoint, and an endpoint made
// again with the same id sends only what comes after.
func TestDeleteEndpointEndsItsDeliveries(t *testing.T) {
	down := newSink(t, nil, func(*http.Request, int) int { return http.StatusServiceUnavailable })
	up := newSink(t, nil, nil)
	r := startRelay(t, orgConfig(t), relay.Options{})
	create := func(url string) {
		t.Helper()
		doc := `{"id":"flaky","url":"` + url + `","events":["*"],"retry":{"schedule":["1h"]}}`
		if a := call(t, "POST", r.URL()+"/v1/endpoints", apiKey, []byte(doc), nil); a.Status != http.StatusCreated {
			t.Fatalf("create endpoint: got %d %s, want 201", a.Status, a.Body)
		}
	}
	create(down.URL())
	ev := ingest(t, r, `{"type":"payment","amount":"1.00"}`, nil)
	id := ev.Deliveries[0].ID
	if d := waitDelivery(t, r, id, relay.StatusFailed, 5*time.Second); d.NextAttemptAt == nil {
		t.Fatalf("failed delivery: no next_attempt_at")
	}
	if n := queueDepth(t, r, "flaky"); n != 1 {
		t.Fatalf("queue depth before the delete: got %d, want 1", n)
	}

	if a := call(t, "DELETE", r.URL()+"/v1/endpoints/flaky", apiKey, nil, nil); a.Status != http.StatusNoContent {
		t.Fatalf("delete endpoint: got %d %s, want 204", a.Status, a.Body)
	}
	wantEnded(t, getEnded(t, r, id), "flaky was deleted", 1)
	var list struct{ Deliveries []endedView }
	call(t, "GET", r.URL()+"/v1/deliveries?endpoint=flaky&status=failed", apiKey, nil, nil).decode(t, &list)
	if len(list.Deliveries) != 0 {
		t.Fatalf("failed deliveries of a deleted endpoint: got %+v, want none", list.Deliveries)
	}
	// No series of it is left either: an endpoint's attempt counters and
	// latency histogram went with it, or every endpoint ever made through
	// the API would stay in /metrics until the relay restarts.
	if m := string(call(t, "GET", r.URL()+"/metrics", "", nil, nil).Body); strings.Contains(m, `endpoint="flaky"`) {
		t.Fatalf("/metrics still has series of a deleted endpoint:\n%s", m)
	}

	// Made again with the same id: it takes only the new event.
	create(up.URL())
	ev2 := ingest(t, r, `{"type":"payment","amount":"2.00"}`, nil)
	waitDelivery(t, r, ev2.Deliveries[0].ID, relay.StatusDelivered, 5*time.Second)
	time.Sleep(100 * time.Millisecond)
	if got := up.requests(); len(got) != 1 || !strings.Contains(string(got[0].Body), "2.00") {
		t.Fatalf("endpoint made again received %d requests, want the new event only", len(got))
	}
	wantEnded(t, getEnded(t, r, id), "flaky was deleted", 1)
	if n := queueDepth(t, r, "flaky"); n != 0 {
		t.Fatalf("queue depth of the endpoint made again: got %d, want 0", n)
	}
}

// An endpoint removed from the configuration file while its deliveries
// waited for a retry: after the restart they end dead, saying why, on the
// durable store, and stay so across another restart.
func TestEndpointRemovedFromConfigEndsItsDeliveries(t *testing.T) {
	down := newSink(t, nil, func(*http.Request, int) int { return http.StatusServiceUnavailable })
	cfg := orgConfig(t, config.RawEndpoint{ID: "old", URL: down.URL(), Events: []string{"*"},
		Retry: &config.RawRetry{Schedule: []string{"1h"}}})
	diskStore(t, cfg)
	r1 := startRelay(t, cfg, relay.Options{})
	ev := ingest(t, r1, `{"type":"payment","amount":"1.00"}`, nil)
	id := ev.Deliveries[0].ID
	waitDelivery(t, r1, id, relay.StatusFailed, 5*time.Second)
	if err := r1.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	cfg2 := orgConfig(t)
	cfg2.Data = cfg.Data
	r2 := startRelay(t, cfg2, relay.Options{})
	eventually(t, 5*time.Second, func() error {
		if d := getEnded(t, r2, id); d.Status != relay.StatusDead {
			return errStatus(d.Status)
		}
		return nil
	})
	wantEnded(t, getEnded(t, r2, id), "old no longer exists", 1)
	if err := r2.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	r3 := startRelay(t, cfg2, relay.Options{})
	wantEnded(t, getEnded(t, r3, id), "old no longer exists", 1)
	if got := len(down.requests()); got != 1 {
		t.Fatalf("the removed endpoint received %d requests, want the first attempt only", got)
	}
}

type errStatus string

func (e errStatus) Error() string { return "status " + string(e) + ", want dead" }

// gatedStore holds EndWaiting until open is closed, so a test can watch
// the dashboard before a relay's start ends what waited for an endpoint
// gone from its file.
type gatedStore struct {
	relay.Store
	open chan struct{}
	once sync.Once
}

func (s *gatedStore) EndWaiting(ctx context.Context, ref relay.EndpointRef, reason string, ended func([]*relay.Delivery)) (int, error) {
	<-s.open
	return s.Store.EndWaiting(ctx, ref, reason, ended)
}

// release lets EndWaiting run; a test's cleanup calls it too, so a relay
// that a failed test closes is not held.
func (s *gatedStore) release() { s.once.Do(func() { close(s.open) }) }

// watchDead reads the dashboard's feed until every delivery of ids has
// been shown dead with a reason saying says (10 s at most per message).
func watchDead(tb testing.TB, c *websocket.Conn, says string, ids ...string) {
	tb.Helper()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for len(want) > 0 {
		m := webtest.ReadWS(tb, c)
		if m.Type != web.MsgItem || !want[m.Item.ID] {
			continue
		}
		var d dashData
		if err := json.Unmarshal(m.Item.Data, &d); err != nil {
			tb.Fatal(err)
		}
		if m.Item.Status == relay.StatusDead && d.Status == relay.StatusDead && strings.Contains(d.Reason, says) {
			delete(want, m.Item.ID)
		}
	}
}

// localStores are the stores of a relay of its own, for the tests that
// run on each: open makes it the store of cfg's data directory.
var localStores = []struct {
	name string
	open func(testing.TB, *config.Config)
}{
	{"Memory", func(tb testing.TB, cfg *config.Config) { storeFor(tb, cfg) }},
	{"Badger", func(tb testing.TB, cfg *config.Config) { diskStore(tb, cfg) }},
}

// TestEndedDeliveriesReachTheDashboard: the deliveries of an endpoint
// that goes (deleted through the API, or gone from the file at a start)
// are shown dead, with the reason, on the live dashboard, as any other
// change is. They were ended in the store only, and a dashboard kept
// showing them failed, with a retry to come, until it was reloaded.
func TestEndedDeliveriesReachTheDashboard(t *testing.T) {
	down := newSink(t, nil, func(*http.Request, int) int { return http.StatusServiceUnavailable })
	// failing ingests two events for ep and waits until both failed,
	// waiting an hour for their retry.
	failing := func(tb testing.TB, r *relay.Relay) []string {
		var ids []string
		for _, amount := range []string{"1.00", "2.00"} {
			id := ingest(tb, r, `{"type":"payment","amount":"`+amount+`"}`, nil).Deliveries[0].ID
			waitDelivery(tb, r, id, relay.StatusFailed, 5*time.Second)
			ids = append(ids, id)
		}
		return ids
	}
	for _, s := range localStores {
		t.Run(s.name+"/Deleted", func(t *testing.T) {
			cfg := orgConfig(t)
			s.open(t, cfg)
			r := startRelay(t, cfg, relay.Options{})
			doc := `{"id":"flaky","url":"` + down.URL() + `","events":["*"],"retry":{"schedule":["1h"]}}`
			if a := call(t, "POST", r.URL()+"/v1/endpoints", apiKey, []byte(doc), nil); a.Status != http.StatusCreated {
				t.Fatalf("create endpoint: got %d %s, want 201", a.Status, a.Body)
			}
			ids := failing(t, r)
			c := webtest.DialWS(t, r.URL(), nil)
			if m := webtest.ReadWS(t, c); m.Type != web.MsgSnapshot {
				t.Fatalf("got %+v, want a snapshot", m)
			}
			sub := r.Subscribe(t.Context())
			defer sub.Close()

			if a := call(t, "DELETE", r.URL()+"/v1/endpoints/flaky", apiKey, nil, nil); a.Status != http.StatusNoContent {
				t.Fatalf("delete endpoint: got %d %s, want 204", a.Status, a.Body)
			}
			watchDead(t, c, "flaky was deleted", ids...)
			// Relay.Subscribe sees the change as the dashboard does.
			for want := map[string]bool{ids[0]: true, ids[1]: true}; len(want) > 0; {
				select {
				case ch := <-sub.C():
					if ch.Kind == relay.ChangeDelivery && ch.Status == relay.StatusDead && strings.Contains(ch.Reason, "flaky was deleted") {
						delete(want, ch.DeliveryID)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("no dead change with the reason for %v", want)
				}
			}
		})
		t.Run(s.name+"/RemovedFromFile", func(t *testing.T) {
			cfg := orgConfig(t, config.RawEndpoint{ID: "old", URL: down.URL(), Events: []string{"*"},
				Retry: &config.RawRetry{Schedule: []string{"1h"}}})
			s.open(t, cfg)
			r1 := startRelay(t, cfg, relay.Options{})
			ids := failing(t, r1)
			if err := r1.Close(t.Context()); err != nil {
				t.Fatal(err)
			}

			cfg2 := orgConfig(t)
			cfg2.Data = cfg.Data
			gate := &gatedStore{Store: storeFor(t, cfg), open: make(chan struct{})}
			r2 := startRelay(t, cfg2, relay.Options{Store: gate})
			t.Cleanup(gate.release)
			c := webtest.DialWS(t, r2.URL(), nil)
			if m := webtest.ReadWS(t, c); m.Type != web.MsgSnapshot || len(m.Items) != 2 || m.Items[0].Status != relay.StatusFailed {
				t.Fatalf("got %+v, want a snapshot of the 2 failed deliveries", m)
			}
			gate.release()
			watchDead(t, c, "old no longer exists", ids...)
		})
	}
}

// TestEndedInFlightStaysDeadOnTheDashboard: a delivery whose attempt is
// in flight when its endpoint is deleted ends dead at once, and the
// attempt's failure, recorded after, leaves it dead; the dashboard shows
// it dead with that attempt. It showed the failure's "failed", with a
// retry to come, though the store kept it dead.
func TestEndedInFlightStaysDeadOnTheDashboard(t *testing.T) {
	for _, s := range localStores {
		t.Run(s.name, func(t *testing.T) {
			arrived, answer := make(chan struct{}, 1), make(chan struct{})
			slow := newSink(t, nil, func(*http.Request, int) int {
				arrived <- struct{}{}
				<-answer
				return http.StatusServiceUnavailable
			})
			var once sync.Once
			release := func() { once.Do(func() { close(answer) }) }
			t.Cleanup(release) // before the sink closes: it waits for its handlers
			cfg := orgConfig(t)
			s.open(t, cfg)
			r := startRelay(t, cfg, relay.Options{})
			doc := `{"id":"slow","url":"` + slow.URL() + `","events":["*"],"retry":{"schedule":["1h"]}}`
			if a := call(t, "POST", r.URL()+"/v1/endpoints", apiKey, []byte(doc), nil); a.Status != http.StatusCreated {
				t.Fatalf("create endpoint: got %d %s, want 201", a.Status, a.Body)
			}
			c := webtest.DialWS(t, r.URL(), nil)
			if m := webtest.ReadWS(t, c); m.Type != web.MsgSnapshot {
				t.Fatalf("got %+v, want a snapshot", m)
			}
			id := ingest(t, r, `{"type":"payment"}`, nil).Deliveries[0].ID
			select {
			case <-arrived:
			case <-time.After(5 * time.Second):
				t.Fatal("the first attempt did not reach the endpoint")
			}
			if a := call(t, "DELETE", r.URL()+"/v1/endpoints/slow", apiKey, nil, nil); a.Status != http.StatusNoContent {
				t.Fatalf("delete endpoint: got %d %s, want 204", a.Status, a.Body)
			}
			watchDead(t, c, "slow was deleted", id)

			release()
			for {
				m := webtest.ReadWS(t, c)
				if m.Type != web.MsgItem || m.Item.ID != id {
					continue
				}
				var d dashData
				if err := json.Unmarshal(m.Item.Data, &d); err != nil {
					t.Fatal(err)
				}
				if len(d.Attempts) == 0 {
					continue
				}
				if m.Item.Status != relay.StatusDead || d.Status != relay.StatusDead || !strings.Contains(d.Reason, "slow was deleted") {
					t.Fatalf("after the attempt in flight failed: got %s (%s, reason %q), want dead with the reason, as stored",
						m.Item.Status, d.Status, d.Reason)
				}
				break
			}
			wantEnded(t, getEnded(t, r, id), "slow was deleted", 1)
		})
	}
}
