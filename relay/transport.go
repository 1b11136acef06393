package relay

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Transport carries one signed request to an endpoint and brings back its
// answer. The relay chooses one by the endpoint URL's scheme: http and https
// go through the shared HTTP client; tunnel://NAME[/PATH] through the tunnel
// server (relay/tunnel). The retry rules never see which one was used.
type Transport interface {
	// Send makes one request. It returns an error only when no answer came
	// back, or not all of its first keep bytes (connection refused or cut,
	// timeout, no tunnel client connected): any answer, 2xx or not, is a
	// Response. Body holds at most keep bytes of the answer, and Truncated
	// says there was more. Beside an error, a Response, when not nil,
	// carries only the latency of the failed attempt. ctx carries the
	// endpoint's timeout.
	Send(ctx context.Context, req *OutboundRequest, keep int64) (*Response, error)
}

// OutboundRequest is one request to an endpoint, signed and ready to go.
type OutboundRequest struct {
	Method string
	// URL is the endpoint's URL with the query appended (GET).
	URL    string
	Header http.Header
	Body   []byte // nil for GET
	// Org owns the endpoint: tunnel names are per organisation.
	Org        string
	DeliveryID string
	Attempt    int
}

// Response is an endpoint's answer to one request.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	// Truncated: the answer was longer than Body (than keep, or than a
	// tunnel client forwards). A delivery keeps the start of any answer;
	// a custom-value answer must be whole.
	Truncated bool
	Latency   time.Duration
}

// TunnelServer is the tunnel's relay side as the relay uses it: the
// Transport of tunnel:// endpoints and the websocket behind GET /v1/tunnel.
type TunnelServer interface {
	Transport
	// Serve upgrades GET /v1/tunnel?name=NAME, already authenticated as org,
	// and serves that client until it goes. onConnect runs once the client
	// is ready to take deliveries, so the relay can make the tunnel's
	// waiting deliveries due at once; events is the client's --events
	// filter (empty, or holding "*": every event type).
	Serve(w http.ResponseWriter, r *http.Request, org, name string, onConnect func(events []string))
	// Tunnels lists the connected clients of org ("" for every org).
	Tunnels(org string) []TunnelInfo
}

// TunnelInfo describes one connected tunnel client.
type TunnelInfo struct {
	Name       string    `json:"name"`
	Org        string    `json:"org"`
	RemoteAddr string    `json:"remote_addr"`
	Since      time.Time `json:"since"`
	InFlight   int       `json:"in_flight"`
	// Relay is the relay holding the client, among relays sharing a NATS
	// store (the id each tells the others, natstunnel.Server.ID); empty
	// on a relay of its own.
	Relay string `json:"relay,omitempty"`
}

// SortTunnels orders a list of tunnels as the APIs show it: by
// organisation, name, then connection time.
func SortTunnels(list []TunnelInfo) {
	slices.SortFunc(list, func(a, b TunnelInfo) int {
		if c := strings.Compare(a.Org, b.Org); c != 0 {
			return c
		}
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return a.Since.Compare(b.Since)
	})
}
