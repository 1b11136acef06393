// Package pubsub is sidehook's one publish/subscribe hub: servers publish
// what they have just made durable (a capture, a delivery's new state) and
// subscribers — dashboards, waiters, tests — receive it in memory, without
// polling a store.
//
// Publishing never blocks. A subscriber whose buffer is full loses the item;
// the loss is counted on the subscription (Dropped, TakeDropped), on the
// hub, and announced once on Lagged, so a dashboard can tell its viewer
// "n messages dropped" and resend a snapshot (SPEC §6). A publisher that
// itself lost items upstream passes the loss on with Lost, and its
// subscribers see it the same way.
package pubsub

import (
	"context"
	"sync"
	"sync/atomic"
)

// DefaultBuffer is a subscription's channel capacity when none is given.
const DefaultBuffer = 256

// Hub fans items of type T out to its subscribers. The zero value is not
// usable; call New.
type Hub[T any] struct {
	// onDrop, when set, is told of every lost item (a metric).
	onDrop  func()
	dropped atomic.Uint64

	// mu is held for reading by Publish and for writing by anything that
	// adds, removes or closes a subscription: a channel is never closed
	// while Publish may send on it.
	mu     sync.RWMutex
	subs   map[*Subscription[T]]struct{}
	closed bool
}

// New returns a hub with no subscribers. onDrop, when not nil, is called for
// every item a subscriber loses; it runs on the publisher's goroutine and
// must be cheap.
func New[T any](onDrop func()) *Hub[T] {
	return &Hub[T]{onDrop: onDrop, subs: make(map[*Subscription[T]]struct{})}
}

// Subscription is one subscriber's view of a Hub.
type Subscription[T any] struct {
	hub    *Hub[T]
	c      chan T
	lagged chan struct{}
	done   chan struct{}
	// wanted, when set, is asked at every Publish: a subscriber that does
	// not want items right now is passed over without waking it, and what
	// it misses does not count as dropped.
	wanted func() bool
	stop   func() bool // stops the context.AfterFunc

	dropped atomic.Uint64 // lost in all
	pending atomic.Int64  // lost since the last TakeDropped
	once    sync.Once
}

// Options of one subscription.
type Options struct {
	// Buffer is the channel capacity (DefaultBuffer when <= 0).
	Buffer int
	// Wanted, when set, says whether the subscriber wants items now. It runs
	// on the publisher's goroutine under the hub's read lock: it must be
	// cheap and must not call back into the hub.
	Wanted func() bool
}

// Subscribe registers a subscriber that receives what is published from
// now on, until ctx is done, it is closed, or the hub closes; its channel is
// then closed. On a closed hub it comes back closed.
func (h *Hub[T]) Subscribe(ctx context.Context, o Options) *Subscription[T] {
	if o.Buffer <= 0 {
		o.Buffer = DefaultBuffer
	}
	s := &Subscription[T]{hub: h, c: make(chan T, o.Buffer), lagged: make(chan struct{}, 1), done: make(chan struct{}), wanted: o.Wanted}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		s.end()
		return s
	}
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	stop := context.AfterFunc(ctx, s.Close)
	h.mu.Lock()
	s.stop = stop
	h.mu.Unlock()
	return s
}

// Publish hands every item to every subscriber that wants it and has room.
// It never blocks. Publishing on a closed hub does nothing.
func (h *Hub[T]) Publish(items ...T) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.subs {
		if s.wanted != nil && !s.wanted() {
			continue
		}
		for _, it := range items {
			select {
			case s.c <- it:
			default:
				s.lose()
			}
		}
	}
}

func (s *Subscription[T]) lose() {
	s.hub.dropped.Add(1)
	if s.hub.onDrop != nil {
		s.hub.onDrop()
	}
	s.missed(1)
}

// missed counts n items this subscriber will not receive and signals
// Lagged.
func (s *Subscription[T]) missed(n int) {
	s.dropped.Add(uint64(n))
	s.pending.Add(int64(n))
	select {
	case s.lagged <- struct{}{}:
	default:
	}
}

// Lost tells every subscriber that wants items that n items never reached
// this hub (its publisher lost them upstream, say a feed that fell behind
// its own source): each subscription's Dropped and TakeDropped rise by n
// and Lagged is signalled, as when the hub drops items for it, so a
// subscriber handles both alike. The hub's Dropped and onDrop are left
// alone: the loss was counted where it happened. It never blocks.
func (h *Hub[T]) Lost(n int) {
	if n <= 0 {
		return
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.subs {
		if s.wanted != nil && !s.wanted() {
			continue
		}
		s.missed(n)
	}
}

// Subscribers is the number of open subscriptions.
func (h *Hub[T]) Subscribers() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.subs)
}

// Dropped is how many items all subscribers together lost.
func (h *Hub[T]) Dropped() uint64 { return h.dropped.Load() }

// Close ends every subscription and makes later Publish calls no-ops. It is
// safe to call more than once.
func (h *Hub[T]) Close() {
	h.mu.Lock()
	h.closed = true
	subs := make([]*Subscription[T], 0, len(h.subs))
	for s := range h.subs {
		subs = append(subs, s)
	}
	h.mu.Unlock()
	for _, s := range subs {
		s.Close()
	}
}

// C delivers published items in order; it is closed when the subscription
// ends.
func (s *Subscription[T]) C() <-chan T { return s.c }

// Lagged is signalled when items were dropped for this subscriber: a hint to
// call TakeDropped once C is drained.
func (s *Subscription[T]) Lagged() <-chan struct{} { return s.lagged }

// Done is closed when the subscription ends.
func (s *Subscription[T]) Done() <-chan struct{} { return s.done }

// Dropped is how many items this subscriber lost in all.
func (s *Subscription[T]) Dropped() uint64 { return s.dropped.Load() }

// TakeDropped returns how many items were lost since the last call, and
// resets that count.
func (s *Subscription[T]) TakeDropped() int { return int(s.pending.Swap(0)) }

// Close ends the subscription and closes C. It is safe to call more than
// once and from any goroutine.
func (s *Subscription[T]) Close() {
	s.hub.mu.Lock()
	delete(s.hub.subs, s)
	stop := s.stop
	s.end()
	s.hub.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// end closes the channels once; the caller holds the hub's write lock (or
// the subscription was never registered).
func (s *Subscription[T]) end() {
	s.once.Do(func() {
		close(s.c)
		close(s.done)
	})
}
