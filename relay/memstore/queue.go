package memstore

import (
	"container/heap"
	"context"
	"fmt"
	"time"

	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/relay"
)

// entry is one waiting delivery in its endpoint's queue.
type entry struct {
	id      string
	key     time.Time // due time, or creation for an ordered delivery
	due     time.Time // NextAttemptAt
	ordered bool
	idx     int    // position in the heap, -1 while leased
	orphan  bool   // leased when its endpoint was ended: never queued again
	reason  string // why it was ended (Delivery.Reason)
}

func less(a, b *entry) bool {
	if c := a.key.Compare(b.key); c != 0 {
		return c < 0
	}
	return a.id < b.id
}

// queue holds an endpoint's waiting deliveries: the unleased ones in a
// min-heap by due key, the leased ones aside until Record or Release.
type queue struct {
	heap          entryHeap
	leased        map[string]*entry
	leasedOrdered int                  // leased entries with ordered set and no orphan mark
	requeue       map[string]time.Time // Requeue of a leased delivery, applied at its lease's end
}

func newQueue() *queue {
	return &queue{leased: make(map[string]*entry), requeue: make(map[string]time.Time)}
}

func (q *queue) push(e *entry) { heap.Push(&q.heap, e) }

func (q *queue) remove(e *entry) {
	if e.idx >= 0 && e.idx < len(q.heap) && q.heap[e.idx] == e {
		heap.Remove(&q.heap, e.idx)
	}
}

// blocked reports whether a leased ordered delivery comes before e: the
// head of a FIFO is in flight, and nothing after it may start.
func (q *queue) blocked(e *entry) bool {
	if q.leasedOrdered == 0 {
		return false
	}
	for _, l := range q.leased {
		if l.ordered && !l.orphan && less(l, e) {
			return true
		}
	}
	return false
}

type entryHeap []*entry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return less(h[i], h[j]) }
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *entryHeap) Push(x any) {
	e := x.(*entry)
	e.idx = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.idx = -1
	return e
}

// Take leases up to n due deliveries of one endpoint in due order.
func (s *Store) Take(_ context.Context, ref relay.EndpointRef, now time.Time, n int) ([]*relay.Delivery, time.Time, error) {
	if err := s.lock(); err != nil {
		return nil, time.Time{}, err
	}
	defer s.mu.Unlock()
	q := s.queues[ref]
	o := s.orgs[ref.Org]
	if q == nil || o == nil {
		return nil, time.Time{}, nil
	}
	var out []*relay.Delivery
	for len(out) < n && len(q.heap) > 0 {
		top := q.heap[0]
		if q.blocked(top) {
			break
		}
		if top.due.After(now) {
			return out, top.due, nil
		}
		heap.Pop(&q.heap)
		q.leased[top.id] = top
		if top.ordered {
			q.leasedOrdered++
		}
		out = append(out, cloneDelivery(o.deliveries[top.id].d))
	}
	return out, time.Time{}, nil
}

// isLeased reports whether the delivery id is held leased; q may be nil.
func (q *queue) isLeased(id string) bool {
	return q != nil && q.leased[id] != nil
}

// endLease takes d's lease off its queue and reports it (nil when d was
// not leased).
func (q *queue) endLease(id string) *entry {
	e := q.leased[id]
	if e == nil {
		return nil
	}
	delete(q.leased, id)
	if e.ordered && !e.orphan {
		q.leasedOrdered--
	}
	return e
}

// Record stores a leased delivery's new state and ends its lease.
func (s *Store) Record(_ context.Context, d *relay.Delivery, disable string) error {
	if !relay.Final(d.Status) && d.NextAttemptAt == nil {
		return fmt.Errorf("memstore: record: delivery %s is %s without next_attempt_at", d.ID, d.Status)
	}
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	sd, err := s.delivery(d.Org, d.ID)
	if err != nil {
		return fmt.Errorf("memstore: record: %w", err)
	}
	ref := relay.EndpointRef{Org: sd.d.Org, Endpoint: sd.d.Endpoint}
	q := s.queue(ref)
	lease := q.endLease(d.ID)
	next := cloneDelivery(d)
	next.Org, next.Endpoint = sd.d.Org, sd.d.Endpoint
	if at, ok := q.requeue[d.ID]; ok {
		delete(q.requeue, d.ID)
		requeued(next, at)
	}
	s.place(q, sd, next, lease)
	d.SetState(next)
	if disable != "" {
		s.org(ref.Org).disabled[ref.Endpoint] = disable
	}
	return nil
}

// requeued sets d pending and due at now with its schedule started again.
func requeued(d *relay.Delivery, now time.Time) {
	now = now.UTC()
	d.Status, d.NextAttemptAt, d.Base, d.Reason = relay.StatusPending, &now, len(d.Attempts), ""
}

// place stores next as sd's state and queues it as that state says: a
// waiting delivery gets an entry, a final one none. One whose endpoint was
// ended while it was leased gets none either: it stays dead, unless next
// is final.
func (s *Store) place(q *queue, sd *delivery, next *relay.Delivery, lease *entry) {
	if sd.entry != nil {
		q.remove(sd.entry)
		sd.entry = nil
	}
	if lease != nil && lease.orphan && !relay.Final(next.Status) {
		next.Status, next.NextAttemptAt, next.Reason = relay.StatusDead, nil, lease.reason
	}
	sd.d = next
	if relay.Final(next.Status) {
		return
	}
	s.enqueue(sd)
}

// Release ends a lease without an attempt: the delivery is due again as it
// was (or as a Requeue made during the lease says).
func (s *Store) Release(_ context.Context, d *relay.Delivery) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	sd, err := s.delivery(d.Org, d.ID)
	if err != nil {
		return fmt.Errorf("memstore: release: %w", err)
	}
	q := s.queue(relay.EndpointRef{Org: sd.d.Org, Endpoint: sd.d.Endpoint})
	lease := q.endLease(d.ID)
	if lease == nil {
		return nil
	}
	if at, ok := q.requeue[d.ID]; ok {
		delete(q.requeue, d.ID)
		next := cloneDelivery(sd.d)
		requeued(next, at)
		s.place(q, sd, next, lease)
		return nil
	}
	if !lease.orphan {
		q.push(lease)
	}
	return nil
}

// Requeue makes a delivery pending and due at now, once its lease (if
// any) ends.
func (s *Store) Requeue(_ context.Context, org, id string, now time.Time) (*relay.Delivery, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	sd, err := s.delivery(org, id)
	if err != nil {
		return nil, fmt.Errorf("memstore: requeue: %w", err)
	}
	q := s.queue(relay.EndpointRef{Org: sd.d.Org, Endpoint: sd.d.Endpoint})
	next := cloneDelivery(sd.d)
	requeued(next, now)
	if q.leased[id] != nil {
		q.requeue[id] = now
		return next, nil
	}
	s.place(q, sd, next, nil)
	return cloneDelivery(next), nil
}

// Expedite makes the endpoint's failed deliveries of the event types
// types takes that wait for a later retry due at now.
func (s *Store) Expedite(_ context.Context, ref relay.EndpointRef, now time.Time, types []string) (int, error) {
	if err := s.lock(); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	q := s.queues[ref]
	o := s.orgs[ref.Org]
	if q == nil || o == nil {
		return 0, nil
	}
	now = now.UTC()
	moved := 0
	for _, e := range q.heap {
		sd := o.deliveries[e.id]
		if sd == nil || sd.d.Status != relay.StatusFailed || !e.due.After(now) || !event.Takes(types, event.Type(sd.d.Type)) {
			continue
		}
		next := cloneDelivery(sd.d)
		next.NextAttemptAt = &now
		sd.d = next
		e.due = now
		if !e.ordered {
			e.key = now
		}
		moved++
	}
	if moved > 0 {
		heap.Init(&q.heap)
	}
	return moved, nil
}

// EndWaiting makes every waiting delivery of the endpoint dead with
// reason, leased ones included, and empties its queue; ended is told of
// them once the mutex is free.
func (s *Store) EndWaiting(_ context.Context, ref relay.EndpointRef, reason string, ended func([]*relay.Delivery)) (int, error) {
	if err := s.lock(); err != nil {
		return 0, err
	}
	ds := s.endWaiting(ref, reason)
	s.mu.Unlock()
	tell(ended, ds)
	return len(ds), nil
}

// tell gives ended, when there is one, the deliveries a call ended.
func tell(ended func([]*relay.Delivery), ds []*relay.Delivery) {
	if ended != nil && len(ds) > 0 {
		ended(ds)
	}
}

// endWaiting is EndWaiting with the mutex held. It returns copies of the
// deliveries it ended, which the caller may hand out.
func (s *Store) endWaiting(ref relay.EndpointRef, reason string) []*relay.Delivery {
	o, q := s.orgs[ref.Org], s.queues[ref]
	if o == nil || q == nil {
		return nil
	}
	var ds []*relay.Delivery
	end := func(id string) {
		sd := o.deliveries[id]
		if sd == nil || relay.Final(sd.d.Status) {
			return
		}
		next := cloneDelivery(sd.d)
		next.Status, next.NextAttemptAt, next.Reason = relay.StatusDead, nil, reason
		sd.d, sd.entry = next, nil
		ds = append(ds, cloneDelivery(next))
	}
	for _, e := range q.heap {
		end(e.id)
	}
	q.heap = nil
	// Attempts in flight end in Record or Release, which find the lease
	// orphaned and queue nothing.
	for id, e := range q.leased {
		if e.orphan {
			continue // ended before
		}
		e.orphan, e.reason = true, reason
		end(id)
	}
	q.leasedOrdered = 0
	clear(q.requeue)
	return ds
}

// Waiting counts each endpoint's waiting deliveries, leased ones included.
func (s *Store) Waiting(context.Context) (map[relay.EndpointRef]int64, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	out := make(map[relay.EndpointRef]int64)
	for ref, q := range s.queues {
		n := int64(len(q.heap))
		for _, e := range q.leased {
			if !e.orphan {
				n++
			}
		}
		if n > 0 {
			out[ref] = n
		}
	}
	return out, nil
}
