package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/internal/perkey"
	"github.com/sidehook/sidehook/internal/pubsub"
)

// Item kinds.
const (
	KindCapture  = "capture"
	KindDelivery = "delivery"
)

// Item is one row of the dashboard: a capture of the mock receiver or a
// delivery of the relay. Publishing an Item with an ID the page already
// holds replaces that row.
type Item struct {
	Kind   string    `json:"kind"`   // KindCapture or KindDelivery
	ID     string    `json:"id"`     // cap_… or dlv_…
	Time   time.Time `json:"time"`   // when it was received (stays the same across updates)
	Event  string    `json:"event"`  // event type, may be empty
	Method string    `json:"method"` // HTTP method
	Path   string    `json:"path"`   // request path (capture) or endpoint path (delivery)
	Status string    `json:"status"` // valid|invalid|unverified, or pending|delivering|delivered|failed|dead
	// Data is the full object as that server's API returns it, made with
	// json.Marshal and with its credentials already redacted: the server
	// builds it from its typed value after RedactHeaders, and web sends it
	// as it is, unchecked.
	Data json.RawMessage `json:"data"`
	// Org is the organisation the item belongs to; a viewer scoped to one
	// organisation (Config.Scope) sees only its items. Never sent.
	Org string `json:"-"`

	// frame is the item's message as Publish encoded it, once for every
	// viewer.
	frame *websocket.PreparedMessage
	// toAll marks a message about the whole server (Cleared): every
	// viewer gets it, whatever its scope.
	toAll bool
}

// DefaultClientBuffer is how many items a subscriber may fall behind before
// items are dropped for it.
const DefaultClientBuffer = 256

// DefaultMaxViewers is how many dashboard websockets one scope (one
// organisation on the relay; everything on the receiver) holds at once.
// Each queues up to ClientBuffer items: with no bound, one key holder
// could open thousands and take a relay's memory from every organisation.
const DefaultMaxViewers = 100

// HubOptions configures a Hub. The zero value is usable.
type HubOptions struct {
	// ClientBuffer is each subscriber's queue length; <= 0 means
	// DefaultClientBuffer.
	ClientBuffer int
	// MaxViewers bounds each scope's websockets; <= 0 means
	// DefaultMaxViewers. One more is answered 429.
	MaxViewers int
	Logger     zerolog.Logger
	// Registerer receives sidehook_dashboard_dropped_messages_total and
	// sidehook_websocket_clients; nil registers nothing. When a hub of the
	// same process already registered them there (relay and receiver in one
	// `sidehook dev`), the existing collectors are shared.
	Registerer prometheus.Registerer
}

// Hub fans items out to the dashboard's websockets without ever waiting
// for one (an internal/pubsub hub of Items), and tracks the connections it
// serves so Shutdown can end them.
type Hub struct {
	log     zerolog.Logger
	buf     int
	dropped prometheus.Counter
	clients prometheus.Gauge
	ps      *pubsub.Hub[Item]

	mu sync.Mutex
	// conns are the websocket connections being served, each with a
	// channel closed when its handler has returned (see Shutdown).
	conns map[*websocket.Conn]chan struct{}
	// cut is set once Shutdown stopped waiting: a connection arriving
	// later is closed at once.
	cut bool
	// viewers counts each scope's websockets, from before the upgrade.
	viewers *perkey.Limit
}

// Subscription is one viewer's feed: see pubsub.Subscription.
type Subscription = pubsub.Subscription[Item]

// NewHub returns a running hub. It starts no goroutine; Close it to end
// every subscription.
func NewHub(opts HubOptions) *Hub {
	buf := opts.ClientBuffer
	if buf <= 0 {
		buf = DefaultClientBuffer
	}
	if opts.MaxViewers <= 0 {
		opts.MaxViewers = DefaultMaxViewers
	}
	h := &Hub{
		log:     opts.Logger.With().Str("component", "dashboard-hub").Logger(),
		buf:     buf,
		conns:   make(map[*websocket.Conn]chan struct{}),
		viewers: perkey.New(opts.MaxViewers),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sidehook_dashboard_dropped_messages_total",
			Help: "Dashboard messages dropped because a websocket client fell behind.",
		}),
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sidehook_websocket_clients",
			Help: "Dashboard websocket clients connected.",
		}),
	}
	if opts.Registerer != nil {
		h.dropped = register(opts.Registerer, h.dropped, h.log)
		h.clients = register(opts.Registerer, h.clients, h.log)
	}
	h.ps = pubsub.New[Item](h.dropped.Inc)
	return h
}

// register registers c, or returns the collector already registered under
// its name so two hubs in one process share one series instead of failing.
func register[C prometheus.Collector](reg prometheus.Registerer, c C, log zerolog.Logger) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	log.Warn().Err(err).Msg("dashboard metric not registered")
	return c
}

// Publish hands it to every subscriber. It never blocks: a subscriber whose
// buffer is full loses it and has its dropped count raised. Publishing on a
// closed hub, or with no subscriber, does nothing.
//
// The message is encoded here, once, and every viewer is sent the same
// frame: with a large body, encoding is most of what an open dashboard
// costs its server.
func (h *Hub) Publish(it Item) {
	if h.ps.Subscribers() == 0 {
		// No viewer to encode for. One subscribing now reads its snapshot
		// after subscribing, and it is already committed, so the
		// snapshot has it.
		return
	}
	b, err := appendItemMsg(nil, it)
	if err != nil {
		h.log.Warn().Err(err).Str("id", it.ID).Msg("dashboard item not shown")
		return
	}
	if it.frame, err = websocket.NewPreparedMessage(websocket.TextMessage, b); err != nil {
		h.log.Warn().Err(err).Str("id", it.ID).Msg("dashboard item not shown")
		return
	}
	h.ps.Publish(it)
}

// Reasons a cleared message gives for the delete.
const (
	ClearedByDelete = "delete" // DELETE /_sidehook/requests, the page's Clear
	ClearedByReset  = "reset"  // POST /_sidehook/reset
)

// Cleared tells every viewer that the server deleted all its items at at,
// for the reason by (ClearedByDelete, ClearedByReset): each page empties
// its list and its detail pane. Without it the open tabs would go on
// showing what is gone until they reconnect. Call it once the delete is
// durable and after publishing every item committed before it: an item it
// overtook would be listed again. Like Publish it never blocks, and a
// viewer that misses it (its buffer full) is sent a fresh snapshot, which
// lacks what was deleted.
func (h *Hub) Cleared(at time.Time, by string) {
	if h.ps.Subscribers() == 0 {
		// A viewer subscribing now reads a snapshot taken after the
		// delete.
		return
	}
	b, err := json.Marshal(clearedMsg{Type: MsgCleared, Time: at, By: by})
	if err != nil {
		h.log.Warn().Err(err).Msg("dashboard not told of a clear")
		return
	}
	frame, err := websocket.NewPreparedMessage(websocket.TextMessage, b)
	if err != nil {
		h.log.Warn().Err(err).Msg("dashboard not told of a clear")
		return
	}
	h.ps.Publish(Item{Time: at, frame: frame, toAll: true})
}

// Subscribe returns a subscription that receives every item published from
// now on until ctx ends or it is closed. On a closed hub the subscription
// comes back already closed.
func (h *Hub) Subscribe(ctx context.Context) *Subscription {
	return h.ps.Subscribe(ctx, pubsub.Options{Buffer: h.buf})
}

// Close ends every subscription (their channels close, so websocket writers
// say goodbye and return) and makes later Publish calls no-ops. It is safe
// to call more than once.
func (h *Hub) Close() error {
	h.ps.Close()
	return nil
}

// Shutdown closes the hub (see Close) and waits until every websocket
// connection has ended or ctx is done. A browser that stopped reading can
// hold its connection's writer in a write for up to the write timeout, so
// once ctx is done the connections still open are cut (closed without a
// goodbye) and Shutdown waits only for their handlers to return, which
// they then do at once. Servers call it before their http.Server.Shutdown,
// which does not track hijacked connections: afterwards no dashboard
// handler is left to read a store that is being closed. It reports how
// many connections were cut as an error; calling it again is harmless.
func (h *Hub) Shutdown(ctx context.Context) error {
	_ = h.Close()
wait:
	for _, done := range h.connDones() {
		select {
		case <-done:
		case <-ctx.Done():
			break wait
		}
	}
	h.mu.Lock()
	h.cut = true
	open := make(map[*websocket.Conn]chan struct{}, len(h.conns))
	for c, done := range h.conns {
		open[c] = done
	}
	h.mu.Unlock()
	for c := range open {
		_ = c.Close()
	}
	for _, done := range open {
		<-done
	}
	if len(open) > 0 {
		return fmt.Errorf("dashboard: %d websocket connections cut: %w", len(open), context.Cause(ctx))
	}
	return nil
}

func (h *Hub) connDones() []chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]chan struct{}, 0, len(h.conns))
	for _, done := range h.conns {
		out = append(out, done)
	}
	return out
}

// track registers a connection being served until the returned func is
// called, when its handler is done with it.
func (h *Hub) track(c *websocket.Conn) (untrack func()) {
	done := make(chan struct{})
	h.mu.Lock()
	h.conns[c] = done
	if h.cut {
		_ = c.Close()
	}
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		delete(h.conns, c)
		h.mu.Unlock()
		close(done)
	}
}

// Subscribers reports how many subscriptions are open.
func (h *Hub) Subscribers() int { return h.ps.Subscribers() }
