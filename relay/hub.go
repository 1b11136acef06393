package relay

import (
	"context"
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
// sent back, and neither are the losses told of it. A relay alone has no
// own, and its publish takes no lock.
type hub struct {
	ps, own *pubsub.Hub[Change]
	// mu makes own's order ps's: the other relays hear this relay's
	// changes in the order its own subscribers do. Publish never blocks,
	// so it is held for moments.
	mu sync.Mutex
}

// newHub returns a hub; shared gives it own, for a store shared with
// other relays.
func newHub(shared bool) *hub {
	h := &hub{ps: pubsub.New[Change](nil)}
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

// publish publishes changes this relay made. It never blocks: a full
// subscriber loses the change.
func (h *hub) publish(cs ...Change) {
	if h.own == nil {
		h.ps.Publish(cs...)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ps.Publish(cs...)
	h.own.Publish(cs...)
}

// publishHeard publishes changes another relay made.
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
