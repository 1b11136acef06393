package relay

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/sidehook/sidehook/internal/pubsub"
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
	Reason     string    `json:"reason,omitempty"` // why a dead delivery ended with no attempt to say so (Delivery.Reason)
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
// not keep up loses changes (counted by Dropped, announced on Lagged)
// rather than slowing ingest.
type Subscription = pubsub.Subscription[Change]

// hub is the relay's pubsub.Hub of Change, with the relay's buffer size.
// What its subscribers lose is counted by the hub and shown as
// sidehook_relay_subscriber_dropped_total (newMetrics).
//
// own, on a store shared with other relays, carries only the changes
// this relay made, to the one subscriber that shares them with the others
// (share): what this relay hears of them goes to ps alone, so it is never
// sent back, and neither are the losses told of it.
//
// An event being written is held (hold, release): the dispatcher may
// attempt a delivery as soon as the store has it, before the ingest
// publishes the event and its pending deliveries (or a manual retry its
// pending delivery), and a subscriber must not see an outcome before the
// change that led to it. A hold keeps a place among the event's changes;
// its release fills it, and once no hold is left they go out in order.
type hub struct {
	ps, own *pubsub.Hub[Change]
	// mu makes own's order ps's (the other relays hear this relay's
	// changes in the order its own subscribers do) and guards held.
	// Publish never blocks, so it is held for moments.
	mu   sync.Mutex
	held map[heldKey]*heldEvent
}

type heldKey struct{ org, event string }

type heldEvent struct {
	holds int // not yet released: an id may be written by two at once
	// places, in order: each hold's (its release's changes) and each
	// change published while the event was held.
	places [][]Change
}

// newHub returns a hub; shared gives it own, for a store shared with
// other relays.
func newHub(shared bool) *hub {
	h := &hub{ps: pubsub.New[Change](nil), held: make(map[heldKey]*heldEvent)}
	if shared {
		h.own = pubsub.New[Change](nil)
	}
	return h
}

func (h *hub) subscribe(ctx context.Context) *Subscription {
	return h.ps.Subscribe(ctx, pubsub.Options{Buffer: subscriptionBuffer})
}

// subscribeOwn subscribes to the changes this relay made.
func (h *hub) subscribeOwn(ctx context.Context) *Subscription {
	return h.own.Subscribe(ctx, pubsub.Options{Buffer: subscriptionBuffer})
}

// hold defers the changes of an event about to be written until the last
// hold of it is released, and keeps a place for the holder's own: the
// place is release's argument.
func (h *hub) hold(org, event string) int {
	k := heldKey{org, event}
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.held[k]
	if e == nil {
		e = &heldEvent{}
		h.held[k] = e
	}
	e.holds++
	e.places = append(e.places, nil)
	return len(e.places) - 1
}

// release puts a holder's changes (none when it wrote nothing) in the
// place its hold kept, and publishes the event's changes once no hold is
// left.
func (h *hub) release(org, event string, place int, cs ...Change) {
	k := heldKey{org, event}
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.held[k]
	if e == nil {
		return
	}
	e.places[place] = cs
	if e.holds--; e.holds > 0 {
		return
	}
	delete(h.held, k)
	for _, p := range e.places {
		h.publishLocked(p)
	}
}

// publish publishes changes this relay made. It never blocks: a full
// subscriber loses the change.
func (h *hub) publish(cs ...Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.publishLocked(h.deferLocked(cs))
}

func (h *hub) publishLocked(cs []Change) {
	if len(cs) == 0 {
		return
	}
	h.ps.Publish(cs...)
	if h.own != nil {
		h.own.Publish(cs...)
	}
}

// deferLocked keeps the changes of held events for their release and
// returns the others.
func (h *hub) deferLocked(cs []Change) []Change {
	if len(h.held) == 0 || !slices.ContainsFunc(cs, h.heldLocked) {
		return cs
	}
	var now []Change
	for _, c := range cs {
		if e := h.held[heldKey{c.Org, c.EventID}]; e != nil {
			e.places = append(e.places, []Change{c})
			continue
		}
		now = append(now, c)
	}
	return now
}

func (h *hub) heldLocked(c Change) bool { return h.held[heldKey{c.Org, c.EventID}] != nil }

// publishHeard publishes changes another relay made. They are not held:
// across relays, the feed's batching orders changes loosely anyway.
func (h *hub) publishHeard(cs ...Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ps.Publish(cs...)
}

// dropped counts what every subscriber lost.
func (h *hub) dropped() uint64 {
	if h.own == nil {
		return h.ps.Dropped()
	}
	return h.ps.Dropped() + h.own.Dropped()
}

func (h *hub) close() {
	h.ps.Close()
	if h.own != nil {
		h.own.Close()
	}
}

// deliveryChange is the change of d to its state as stored, at at: every
// publisher of a delivery's change starts from it.
func deliveryChange(d *Delivery, at time.Time) Change {
	return Change{Kind: ChangeDelivery, Org: d.Org, EventID: d.EventID, DeliveryID: d.ID, Endpoint: d.Endpoint,
		Type: d.Type, Status: d.Status, Reason: d.Reason, At: at, delivery: d}
}

// ended is what a Store's EndWaiting (or DeleteEndpoint) tells of the
// deliveries it ended: each is published dead, with its reason, as any
// other change of state, so a dashboard stops showing it waiting for a
// retry that will never come.
func (h *hub) ended(clock Clock) func([]*Delivery) {
	return func(ds []*Delivery) {
		now := clock.Now()
		cs := make([]Change, 0, len(ds))
		for _, d := range ds {
			cs = append(cs, deliveryChange(d, now))
		}
		h.publish(cs...)
	}
}
