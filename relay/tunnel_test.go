package relay_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
)

// tunnelServer is a TunnelServer whose one client is connected by GET
// /v1/tunnel; until then Send fails as with no client.
type tunnelServer struct {
	mu        sync.Mutex
	connected bool
	org, name string // of the connected client
	sent      []*relay.OutboundRequest
	// events is the connecting client's --events filter (nil: all).
	events []string
}

var _ relay.TunnelServer = (*tunnelServer)(nil)

func (s *tunnelServer) Send(_ context.Context, req *relay.OutboundRequest, _ int64) (*relay.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.connected {
		return nil, errors.New("no tunnel client connected")
	}
	if evt := req.Header.Get(relay.HeaderEvent); len(s.events) > 0 && !slices.Contains(s.events, evt) {
		return nil, errors.New("no tunnel client connected that takes event " + evt)
	}
	s.sent = append(s.sent, req)
	return &relay.Response{Status: http.StatusOK, Body: []byte(`{"ok":true}`), Latency: time.Millisecond}, nil
}

func (s *tunnelServer) Serve(w http.ResponseWriter, _ *http.Request, org, name string, onConnect func([]string)) {
	s.mu.Lock()
	s.connected, s.org, s.name = true, org, name
	events := s.events
	s.mu.Unlock()
	onConnect(events)
	w.WriteHeader(http.StatusNoContent)
}

func (s *tunnelServer) Tunnels(org string) []relay.TunnelInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.connected || org != "" && org != s.org {
		return nil
	}
	return []relay.TunnelInfo{{Name: s.name, Org: s.org}}
}

func (s *tunnelServer) requests() []*relay.OutboundRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*relay.OutboundRequest(nil), s.sent...)
}

func tunnelEndpoint(url string) config.Endpoint {
	return config.Endpoint{ID: "laptop", URL: url, Events: []string{"*"}, MaxInFlight: 4, Enabled: true,
		Retry: &config.Retry{Schedule: []time.Duration{time.Hour}}}
}

// TestTunnelDelivery: a delivery to tunnel://NAME goes through the tunnel
// server; one that failed while no client was connected is sent as soon
// as a client connects, not an hour later as its schedule says.
func TestTunnelDelivery(t *testing.T) {
	tun := &tunnelServer{}
	r := startRelay(t, orgConfig(t), relay.Options{Tunnels: tun})
	relay.AddEndpoint(r, "demo", tunnelEndpoint("tunnel://laptop/hooks"))
	ans := ingest(t, r, `{"type":"payment"}`, nil)
	d := waitDelivery(t, r, ans.Deliveries[0].ID, "failed", 5*time.Second)
	if len(d.Attempts) != 1 || !strings.Contains(d.Attempts[0].Error, "no tunnel client") {
		t.Fatalf("attempts before the client connects: got %+v, want one with \"no tunnel client\"", d.Attempts)
	}
	if a := call(t, "GET", r.URL()+"/v1/tunnel?name=laptop", apiKey, nil, nil); a.Status != http.StatusNoContent {
		t.Fatalf("connect: got %d %s, want 204", a.Status, a.Body)
	}
	d = waitDelivery(t, r, ans.Deliveries[0].ID, "delivered", 5*time.Second)
	if len(d.Attempts) != 2 {
		t.Errorf("attempts: got %d, want 2", len(d.Attempts))
	}
	reqs := tun.requests()
	if len(reqs) != 1 {
		t.Fatalf("tunnel requests: got %d, want 1", len(reqs))
	}
	req := reqs[0]
	if req.URL != "tunnel://laptop/hooks" || req.Org != "demo" || req.Method != "POST" || string(req.Body) != `{"type":"payment"}` ||
		req.Header.Get("webhook-id") != ans.ID || req.DeliveryID != ans.Deliveries[0].ID || req.Attempt != 2 {
		t.Errorf("tunnel request: got %s %s org %s body %s webhook-id %q delivery %s attempt %d; want POST tunnel://laptop/hooks of demo, the event's body, id and delivery, attempt 2",
			req.Method, req.URL, req.Org, req.Body, req.Header.Get("webhook-id"), req.DeliveryID, req.Attempt)
	}
}

// TestTunnelConnectSkipsOthersEvents: a client that takes only some event
// types makes due at once the waiting deliveries of the endpoints it
// takes, not of those it takes none of: each such early attempt failed
// ("no client takes event") and counted, so a few reconnects of
// `sidehook tunnel --events payment` made another endpoint's deliveries
// dead.
func TestTunnelConnectSkipsOthersEvents(t *testing.T) {
	tun := &tunnelServer{events: []string{"payment"}}
	r := startRelay(t, orgConfig(t), relay.Options{Tunnels: tun})
	pay := tunnelEndpoint("tunnel://laptop/pay")
	pay.ID, pay.Events = "pay", []string{"payment"}
	chat := tunnelEndpoint("tunnel://laptop/chat")
	chat.ID, chat.Events = "chat", []string{"inbound_message"}
	relay.AddEndpoint(r, "demo", pay)
	relay.AddEndpoint(r, "demo", chat)
	p := ingest(t, r, `{"type":"payment"}`, nil)
	m := ingest(t, r, `{"type":"inboundMessage"}`, nil)
	waitDelivery(t, r, p.Deliveries[0].ID, "failed", 5*time.Second)
	waitDelivery(t, r, m.Deliveries[0].ID, "failed", 5*time.Second)

	if a := call(t, "GET", r.URL()+"/v1/tunnel?name=laptop", apiKey, nil, nil); a.Status != http.StatusNoContent {
		t.Fatalf("connect: got %d %s, want 204", a.Status, a.Body)
	}
	waitDelivery(t, r, p.Deliveries[0].ID, "delivered", 5*time.Second)
	// The connect has returned: an expedite would have made it due now.
	d := waitDelivery(t, r, m.Deliveries[0].ID, "failed", 5*time.Second)
	if len(d.Attempts) != 1 || d.NextAttemptAt == nil || time.Until(*d.NextAttemptAt) < 30*time.Minute {
		t.Errorf("inbound_message delivery: got %d attempts, next at %v; want its one attempt and the next in an hour, as scheduled",
			len(d.Attempts), d.NextAttemptAt)
	}
}

// TestTunnelEndpointWithoutServer: on a relay that serves no tunnels an
// attempt to a tunnel:// endpoint fails and says why.
func TestTunnelEndpointWithoutServer(t *testing.T) {
	r := startRelay(t, orgConfig(t), relay.Options{})
	relay.AddEndpoint(r, "demo", tunnelEndpoint("tunnel://laptop"))
	ans := ingest(t, r, `{"type":"payment"}`, nil)
	d := waitDelivery(t, r, ans.Deliveries[0].ID, "failed", 5*time.Second)
	if len(d.Attempts) != 1 || !strings.Contains(d.Attempts[0].Error, "no tunnel server") {
		t.Errorf("attempts: got %+v, want one failed with no tunnel server", d.Attempts)
	}
}

// TestTunnelRestartWaitsForClient: after a restart, a delivery that waited
// across it for a tunnel is not attempted until the tunnel's client had
// time to come back: an attempt at once would fail for want of it and use
// up a retry, here the last one, so it would be dead before the client
// reconnected.
func TestTunnelRestartWaitsForClient(t *testing.T) {
	cfg := orgConfig(t, config.RawEndpoint{ID: "laptop", URL: "tunnel://laptop/hooks", Retry: &config.RawRetry{Schedule: []string{"300ms"}}})
	r := startRelay(t, cfg, relay.Options{Tunnels: &tunnelServer{}})
	ans := ingest(t, r, `{"type":"payment"}`, nil)
	d := waitDelivery(t, r, ans.Deliveries[0].ID, "failed", 5*time.Second)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Due while no relay runs.
	time.Sleep(time.Until(*d.NextAttemptAt))

	tun := &tunnelServer{}
	r = startRelay(t, cfg, relay.Options{Tunnels: tun})
	// Held: a restarted relay's first look at its queues comes at once.
	time.Sleep(300 * time.Millisecond)
	if d := waitDelivery(t, r, ans.Deliveries[0].ID, "failed", 5*time.Second); len(d.Attempts) != 1 {
		t.Fatalf("before the client is back: got %d attempts, want the 1 before the restart", len(d.Attempts))
	}
	if a := call(t, "GET", r.URL()+"/v1/tunnel?name=laptop", apiKey, nil, nil); a.Status != http.StatusNoContent {
		t.Fatalf("connect: got %d %s, want 204", a.Status, a.Body)
	}
	d = waitDelivery(t, r, ans.Deliveries[0].ID, "delivered", 5*time.Second)
	if len(d.Attempts) != 2 || len(tun.requests()) != 1 {
		t.Errorf("got %d attempts and %d requests through the tunnel, want 2 and 1", len(d.Attempts), len(tun.requests()))
	}
}
