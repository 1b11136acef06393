package natstunnel_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay/natstunnel"
	"github.com/sidehook/sidehook/relay/tunnel"
)

// A relay whose client leaves an event type out of its --events filter
// sends that type to the relay whose client takes it, every time: never
// to itself or to another relay that would answer "no client".
func TestEventsFilterPicksTheRelayThatTakesTheEvent(t *testing.T) {
	ns := startNATS(t)
	a, b := newNode(t, ns, natstunnel.Options{}), newNode(t, ns, natstunnel.Options{})
	onA, onB := newApp(t, nil), newApp(t, nil)
	connectEvents(t, a, onA.URL, "message_send")
	clientB := connectEvents(t, b, onB.URL, "payment")

	const sends = 20
	var noClient int
	for i := range sends {
		_, err := send(a, post(nil), 5*time.Second) // a payment
		switch {
		case errors.Is(err, tunnel.ErrNoClient):
			noClient++
		case err != nil:
			t.Fatalf("payment %d through relay A: %v", i, err)
		}
	}
	if noClient > 0 {
		t.Errorf("%d of %d payments through relay A: got no tunnel client, want relay B's client to take them all", noClient, sends)
	}
	if got := len(onB.requests()); got != sends {
		t.Errorf("relay B's app got %d payments, want %d", got, sends)
	}
	if got := len(onA.requests()); got != 0 {
		t.Errorf("relay A's app (--events message_send) got %d requests, want none", got)
	}

	t.Run("TheOtherWay", func(t *testing.T) {
		req := post(nil)
		req.Header.Set("Sidehook-Event", "message_send")
		for i := range sends {
			if _, err := send(b, req, 5*time.Second); err != nil {
				t.Fatalf("message_send %d through relay B: %v", i, err)
			}
		}
		if got := len(onA.requests()); got != sends {
			t.Errorf("relay A's app got %d messages, want %d", got, sends)
		}
	})
	t.Run("NoClientTakesIt", func(t *testing.T) {
		req := post(nil)
		req.Header.Set("Sidehook-Event", "inbound_message")
		start := time.Now()
		if _, err := send(a, req, 5*time.Second); !errors.Is(err, tunnel.ErrNoClient) {
			t.Fatalf("an event no client takes: got %v, want ErrNoClient", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("an event no client takes took %v: want an answer at once, not the timeout", d)
		}
	})
	t.Run("NoEventType", func(t *testing.T) {
		// A request without an event type (none of the relay's own) goes
		// to any client: from a relay with none, to relay A's or B's.
		c := newNode(t, ns, natstunnel.Options{})
		get := post(nil)
		get.Method = http.MethodGet
		get.Header.Del("Sidehook-Event")
		for i := range 4 {
			if res, err := send(c, get, 5*time.Second); err != nil || res.Status != http.StatusOK {
				t.Fatalf("request %d without an event type through relay C: got %v, %v, want 200", i, res, err)
			}
		}
	})
	t.Run("SubscriptionsFollowTheClients", func(t *testing.T) {
		clientB.stop(t)
		waitFor(t, "relay B to stop offering payments", func() bool { return !b.Offered(testOrg, testName, "payment") })
		if err := b.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		if _, err := send(a, post(nil), 5*time.Second); !errors.Is(err, tunnel.ErrNoClient) {
			t.Fatalf("a payment once relay B's client has gone: got %v, want ErrNoClient", err)
		}
		// A client with no filter takes every event type.
		all := newApp(t, nil)
		connect(t, b, all.URL)
		for i := range sends {
			if _, err := send(a, post(nil), 5*time.Second); err != nil {
				t.Fatalf("payment %d through relay A to relay B's unfiltered client: %v", i, err)
			}
		}
		if got := len(all.requests()); got != sends {
			t.Errorf("relay B's unfiltered client's app got %d payments, want %d", got, sends)
		}
	})
}
