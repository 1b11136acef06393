package relay

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Change kinds.
const (
	ChangeEvent    = "event"
	ChangeDelivery = "delivery"
)

// Change is published after a write is durable: an accepted event, or a
// delivery that changed state (with the attempt that changed it).
type Change struct {
	Kind       string    `json:"kind"`
	Org        string    `json:"organisation"`
	EventID    string    `json:"event_id"`
	DeliveryID string    `json:"delivery_id,omitempty"`
	Endpoint   string    `json:"endpoint,omitempty"`
	Type       string    `json:"type"`
	Status     string    `json:"status,omitempty"`
	Attempt    int       `json:"attempt,omitempty"`
	HTTPStatus int       `json:"http_status,omitempty"`
	At         time.Time `json:"at"`

	// The records as written, for the dashboard, so it need not read
	// them back (nil when not at hand).
	delivery *Delivery
	event    *Event
}

// subscriptionBuffer is how many changes a subscriber may lag behind before
// it starts losing them.
const subscriptionBuffer = 1024

// Subscription receives changes until it is closed. A subscriber that does
// not keep up loses changes (counted by Dropped) rather than slowing ingest.
type Subscription struct {
	c       chan Change
	dropped atomic.Uint64
	hub     *hub
	once    sync.Once
}

// C is the channel of changes; it is closed when the subscription ends.
func (s *Subscription) C() <-chan Change { return s.c }

// Dropped is how many changes this subscriber lost for being slow.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription; safe to call more than once.
func (s *Subscription) Close() { s.hub.unsubscribe(s) }

type hub struct {
	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool
}

func newHub() *hub { return &hub{subs: make(map[*Subscription]struct{})} }

func (h *hub) subscribe(ctx context.Context) *Subscription {
	s := &Subscription{c: make(chan Change, subscriptionBuffer), hub: h}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		close(s.c)
		return s
	}
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	if ctx.Done() != nil {
		go func() {
			<-ctx.Done()
			h.unsubscribe(s)
		}()
	}
	return s
}

func (h *hub) unsubscribe(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		s.once.Do(func() { close(s.c) })
	}
}

// publish never blocks: a full subscriber loses the change.
func (h *hub) publish(cs ...Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		for _, c := range cs {
			select {
			case s.c <- c:
			default:
				s.dropped.Add(1)
			}
		}
	}
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		delete(h.subs, s)
		s.once.Do(func() { close(s.c) })
	}
}
