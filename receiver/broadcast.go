package receiver

import (
	"context"
	"sync"
	"sync/atomic"
)

// DefaultSubscriptionBuffer is a subscription's channel capacity when
// Subscribe is given none.
const DefaultSubscriptionBuffer = 256

// Broadcaster fans committed captures out to subscribers (the dashboard
// hub, the wait endpoint, receivertest). Publishing never blocks: a
// subscriber whose buffer is full loses the capture, and the loss is
// counted on it and on the broadcaster.
type Broadcaster struct {
	mu      sync.RWMutex
	subs    map[*Subscription]struct{}
	dropped atomic.Uint64
	closed  bool
}

// NewBroadcaster returns a broadcaster with no subscribers.
func NewBroadcaster() *Broadcaster {
	return &Broadcaster{subs: make(map[*Subscription]struct{})}
}

// Subscription receives the captures published after it was made.
type Subscription struct {
	b       *Broadcaster
	c       chan Capture
	dropped atomic.Uint64
	once    sync.Once
	stop    func() bool
	// wanted, when set, is asked at every Publish; a subscriber that does
	// not want captures right now is passed over, without the channel send
	// that would wake its goroutine.
	wanted func() bool
}

// Subscribe registers a subscriber with a channel of the given capacity
// (DefaultSubscriptionBuffer when <= 0). It ends when ctx is done, Close
// is called or the broadcaster closes; its channel is then closed.
func (b *Broadcaster) Subscribe(ctx context.Context, buffer int) *Subscription {
	return b.subscribeWhen(ctx, buffer, nil)
}

// subscribeWhen is Subscribe for a subscriber that only wants the captures
// published while wanted reports true; the others it never sees, and they
// do not count as dropped. wanted runs on the capture path, under the
// broadcaster's read lock: it must be cheap and must not call back into b.
// A nil wanted wants every capture.
func (b *Broadcaster) subscribeWhen(ctx context.Context, buffer int, wanted func() bool) *Subscription {
	if buffer <= 0 {
		buffer = DefaultSubscriptionBuffer
	}
	s := &Subscription{b: b, c: make(chan Capture, buffer), wanted: wanted}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		s.once.Do(func() { close(s.c) })
		return s
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	stop := context.AfterFunc(ctx, s.Close)
	b.mu.Lock()
	s.stop = stop
	b.mu.Unlock()
	return s
}

// C is the channel captures arrive on; it is closed when the subscription
// ends.
func (s *Subscription) C() <-chan Capture { return s.c }

// Dropped is how many captures this subscriber lost to a full buffer.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription; safe to call more than once.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.b.mu.Lock()
		stop := s.stop
		delete(s.b.subs, s)
		// Closing under the lock: Publish sends under the read lock, so
		// it can never send on the closed channel.
		close(s.c)
		s.b.mu.Unlock()
		if stop != nil {
			stop()
		}
	})
}

// Publish sends c to every subscriber that has room.
func (b *Broadcaster) Publish(c Capture) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.subs {
		if s.wanted != nil && !s.wanted() {
			continue
		}
		select {
		case s.c <- c:
		default:
			s.dropped.Add(1)
			b.dropped.Add(1)
		}
	}
}

// Dropped is how many captures all subscribers together lost.
func (b *Broadcaster) Dropped() uint64 { return b.dropped.Load() }

// Subscribers is the number of live subscriptions.
func (b *Broadcaster) Subscribers() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.subs)
}

// Close ends every subscription; later ones end at once.
func (b *Broadcaster) Close() {
	b.mu.Lock()
	subs := make([]*Subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.closed = true
	b.mu.Unlock()
	for _, s := range subs {
		s.Close()
	}
}
