package e2e

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/relay/natsstore/natstest"
)

// TestDeliveringOnEveryRelay: a delivery one relay is attempting shows as
// delivering from every relay, in the delivery, its event and the list
// filtered by status. The relay not attempting it showed it pending: only
// its own attempts counted.
func TestDeliveringOnEveryRelay(t *testing.T) {
	srv := natstest.Run(t, natstest.Options(-1, t.TempDir()))
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	ep := config.RawEndpoint{ID: "crm", URL: slow.URL + "/hook"}
	// A accepts and never takes: B makes the attempt.
	a := startRelay(t, orgConfig(t, ep), noTake{openStore(t, []string{srv.ClientURL()}, 1)})
	b := startRelay(t, orgConfig(t, ep), openStore(t, []string{srv.ClientURL()}, 1))
	// Cleaned up first: B's stop, and the server's, wait for the attempt.
	t.Cleanup(func() { close(release) })
	if code := post(a, "evt_delivering", "payment"); code != http.StatusAccepted {
		t.Fatalf("ingest on A: %d, want 202", code)
	}
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("B did not attempt the delivery")
	}
	var ev relay.EventView
	if code := apiCall(t, a, http.MethodGet, "/v1/events/evt_delivering", "", &ev); code != http.StatusOK || len(ev.Deliveries) != 1 {
		t.Fatalf("event on A: %d %+v", code, ev)
	}
	id := ev.Deliveries[0].ID
	for _, r := range []struct{ name, url string }{{"A", a}, {"B", b}} {
		var d relay.DeliveryView
		if apiCall(t, r.url, http.MethodGet, "/v1/deliveries/"+id, "", &d); d.Status != relay.StatusDelivering {
			t.Errorf("delivery on %s: %s, want delivering", r.name, d.Status)
		}
		var e relay.EventView
		if apiCall(t, r.url, http.MethodGet, "/v1/events/evt_delivering", "", &e); len(e.Deliveries) != 1 || e.Deliveries[0].Status != relay.StatusDelivering {
			t.Errorf("event on %s: %+v, want its delivery delivering", r.name, e.Deliveries)
		}
		var delivering struct{ Deliveries []relay.DeliveryView }
		if apiCall(t, r.url, http.MethodGet, "/v1/deliveries?status=delivering", "", &delivering); len(delivering.Deliveries) != 1 || delivering.Deliveries[0].ID != id {
			t.Errorf("delivering on %s: %+v, want %s", r.name, delivering.Deliveries, id)
		}
		var pending struct{ Deliveries []relay.DeliveryView }
		if apiCall(t, r.url, http.MethodGet, "/v1/deliveries?status=pending", "", &pending); len(pending.Deliveries) != 0 {
			t.Errorf("pending on %s: %d, want none", r.name, len(pending.Deliveries))
		}
	}
}
