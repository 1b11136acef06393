package badgerstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/internal/store"
	"github.com/sidehook/sidehook/relay"
)

// queue is the in-memory side of one endpoint's due index: its leases and
// its floor.
//
// The floor argument. Invariant: every live entry's key time is >= floor,
// or its write is counted in writing. beginWrite lowers the floor to the
// key (always safe: a scan only starts earlier) and counts the write;
// endWrite uncounts it once it is visible to every later scan. A Take
// opens an epoch: epochMin starts at the lowest key being written and
// every beginWrite during the epoch lowers it. Take scans from
// min(floor, epochMin), a snapshot taken after the epoch opened, and then
// sets floor = min(first key seen, epochMin). A live entry then is either
// in the snapshot (so at or above the first key seen), or written after
// it: its write was counted when the epoch opened, or began during the
// epoch (both lower epochMin), or begins after the epoch (and lowers the
// floor itself). Takes of one queue run one at a time (takeMu).
type queue struct {
	ref    relay.EndpointRef
	prefix []byte

	takeMu sync.Mutex   // one Take at a time: the epoch is the queue's
	delMu  sync.RWMutex // Record holds it shared across its write; DeleteEndpoint exclusive

	mu        sync.Mutex
	leases    map[string]*lease
	requeue   map[string]time.Time // Requeue of a leased delivery, written when its lease ends
	floor     int64
	writing   map[int64]int // key times of writes in flight, counted
	epochOpen bool
	epochMin  int64
	// hot holds the records this store last wrote of deliveries waiting
	// in the queue, unleased, so that Take hands them out without reading
	// and decoding them back (up to maxHot; others are read). An entry is
	// set or dropped under mu by every write of its delivery before the
	// delivery can be leased again, so it is never older than the stored
	// record; Take still checks its QKey against the entry it leased.
	hot map[string]*record
	// pending are hot records whose write is in flight (Accept sets them
	// first, so that a Requeue right after the write replaces them).
	pending map[string]bool

	// complete: hot holds every unleased entry of the due index, so Take
	// picks from it without a scan. A scan that sees the whole index
	// leased, with no write in flight or begun meanwhile, sets it; any
	// entry that stays in the index without a hot record clears it (hot
	// full or past maxComplete, a Release, a failed write), and Take scans
	// again. So a queue that keeps up with ingest is not scanned at all.
	complete    bool
	epochQuiet  bool // no write was in flight when the epoch opened
	epochWrites int  // writes begun during the open epoch
}

// maxHot bounds a queue's hot records: the just-accepted deliveries and
// retries of a busy endpoint, not a backlog. A record with attempts is
// kept only while the queue is small enough (maxComplete) for Take to
// pick from memory: a down endpoint's retries each carry the request
// headers of their attempts, and thousands of them, waiting seconds or
// minutes for their turn, made the GC a third of the relay's work under a
// memory limit; each is read back when it is due.
const maxHot = 8192

// maxComplete bounds the hot records Take sorts instead of scanning.
const maxComplete = 256

// setHot keeps r as the delivery's latest record, or drops it when it is
// not queued; q.mu is held.
func (q *queue) setHot(r *record) {
	if r.QKey == nil {
		delete(q.hot, r.ID)
		return
	}
	if _, ok := q.hot[r.ID]; !ok && (len(q.hot) >= maxHot || len(r.Attempts) > 0 && len(q.hot) >= maxComplete) {
		q.complete = false
		return
	}
	q.hot[r.ID] = r
	if len(q.hot) > maxComplete {
		q.complete = false
	}
}

// takeHot is Take without a scan, when hot holds the whole queue: the same
// order and rules over the hot records. ok is false when it does not.
func (q *queue) takeHot(now time.Time, n int) (out []*relay.Delivery, next time.Time, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.complete {
		return nil, time.Time{}, false
	}
	cands := make([]*record, 0, len(q.hot))
	for id, r := range q.hot {
		if !q.pending[id] { // not visible to a scan either
			cands = append(cands, r)
		}
	}
	slices.SortFunc(cands, func(a, b *record) int { return bytes.Compare(a.QKey, b.QKey) })
	for _, r := range cands {
		if len(out) == n || q.blockedBefore(r.QKey) {
			break
		}
		if r.NextAttemptAt.After(now) {
			next = *r.NextAttemptAt
			break
		}
		q.leases[r.ID] = &lease{key: r.QKey, ordered: r.Ordered}
		delete(q.hot, r.ID)
		d := r.Delivery
		out = append(out, &d)
		if r.Ordered {
			break // the head of a FIFO, now in flight
		}
	}
	return out, next, true
}

// blockedBefore reports whether a lease stops a scan before key; q.mu is
// held.
func (q *queue) blockedBefore(key []byte) bool {
	for _, l := range q.leases {
		if q.blocking(l) && bytes.Compare(l.key, key) < 0 {
			return true
		}
	}
	return false
}

// lease is a delivery handed out by Take.
type lease struct {
	key     []byte // its due-index entry
	ordered bool
	orphan  bool   // its endpoint was ended (EndWaiting): its end queues nothing
	reason  string // why, for a Record whose outcome would wait: it stays dead
}

func newQueue(ref relay.EndpointRef) *queue {
	return &queue{ref: ref, prefix: queuePrefix(ref), leases: make(map[string]*lease),
		requeue: make(map[string]time.Time), writing: make(map[int64]int), floor: math.MinInt64,
		hot: make(map[string]*record), pending: make(map[string]bool)}
}

func (q *queue) beginWrite(at time.Time) {
	q.mu.Lock()
	q.beginWriteLocked(at)
	q.mu.Unlock()
}

func (q *queue) beginWriteLocked(at time.Time) {
	ns := at.UnixNano()
	q.writing[ns]++
	q.floor = min(q.floor, ns)
	if q.epochOpen {
		q.epochMin = min(q.epochMin, ns)
		q.epochWrites++
	}
}

func (q *queue) endWrite(at time.Time) {
	q.mu.Lock()
	q.endWriteLocked(at)
	q.mu.Unlock()
}

func (q *queue) endWriteLocked(at time.Time) {
	ns := at.UnixNano()
	if q.writing[ns]--; q.writing[ns] <= 0 {
		delete(q.writing, ns)
	}
}

// blocking reports whether a lease stops a scan: the head of a FIFO is in
// flight, and nothing after it may start.
func (q *queue) blocking(l *lease) bool { return l.ordered && !l.orphan }

// Take leases up to n due deliveries of one endpoint in due order.
func (s *Store) Take(ctx context.Context, ref relay.EndpointRef, now time.Time, n int) ([]*relay.Delivery, time.Time, error) {
	if err := s.check("take"); err != nil {
		return nil, time.Time{}, err
	}
	if n <= 0 {
		return nil, time.Time{}, nil
	}
	q := s.queue(ref)
	q.takeMu.Lock()
	defer q.takeMu.Unlock()
	if out, next, ok := q.takeHot(now, n); ok {
		return out, next, nil
	}
	var out []*relay.Delivery
	for {
		got, next, dropped, err := s.take(ctx, q, now, n-len(out))
		if err != nil {
			if len(out) > 0 {
				// The earlier scans' deliveries are leased: hand them
				// out, or no one would hold those leases until the
				// next start (a FIFO's head would block its endpoint).
				return out, time.Time{}, nil
			}
			return nil, time.Time{}, err
		}
		out = append(out, got...)
		// A dropped entry had moved after the snapshot (a Record that
		// ended just then): look again, or what is due behind it would
		// wait for the next Take.
		if dropped == 0 || len(out) == n {
			return out, next, nil
		}
	}
}

// take is one scan of Take: it also says how many entries it leased but
// dropped because they had moved.
func (s *Store) take(ctx context.Context, q *queue, now time.Time, n int) (out []*relay.Delivery, next time.Time, dropped int, err error) {
	q.mu.Lock()
	q.epochOpen, q.epochMin = true, math.MaxInt64
	q.epochQuiet, q.epochWrites = len(q.writing) == 0, 0
	for ns := range q.writing {
		q.epochMin = min(q.epochMin, ns)
	}
	start := min(q.floor, q.epochMin)
	q.mu.Unlock()

	type taken struct {
		key []byte
		id  string
	}
	var got []taken
	stopped := false // the scan did not see the whole index
	first := int64(math.MaxInt64)
	opts := store.ScanOptions{Prefix: q.prefix}
	if start != math.MinInt64 && start != math.MaxInt64 {
		opts.After = below(q.prefix, time.Unix(0, start-1))
	}
	err = s.scan(ctx, "take", opts, func(k, v []byte) error {
		kt, id, ok := splitTimeKey(q.prefix, k)
		due, ordered, okv := decodeDueValue(v)
		if !ok || !okv {
			return nil
		}
		if first == math.MaxInt64 {
			first = kt.UnixNano()
		}
		stopped = true
		if len(got) == n {
			return store.ErrStop
		}
		q.mu.Lock()
		defer q.mu.Unlock()
		if l := q.leases[id]; l != nil {
			if q.blocking(l) {
				return store.ErrStop
			}
			stopped = false
			return nil
		}
		if due.After(now) {
			next = due
			return store.ErrStop
		}
		q.leases[id] = &lease{key: bytes.Clone(k), ordered: ordered}
		got = append(got, taken{bytes.Clone(k), id})
		if ordered {
			return store.ErrStop // the head of a FIFO, now in flight
		}
		stopped = false
		return nil
	})
	if s.afterScan != nil {
		s.afterScan()
	}
	q.mu.Lock()
	q.epochOpen = false
	if err == nil {
		q.floor = min(first, q.epochMin)
		if !stopped && q.epochQuiet && q.epochWrites == 0 && len(q.pending) == 0 {
			// Every entry is leased now: what hot holds beside the leases
			// is not in the index.
			for id := range q.hot {
				if q.leases[id] == nil {
					delete(q.hot, id)
				}
			}
			q.complete = true
		}
	}
	q.mu.Unlock()
	if err != nil {
		for _, t := range got {
			s.dropLease(ctx, q, t.id, nil)
		}
		return nil, time.Time{}, 0, err
	}

	// An entry read from the snapshot may have moved since: hand out only
	// deliveries whose record still names the entry.
	out = make([]*relay.Delivery, 0, len(got))
	for _, t := range got {
		q.mu.Lock()
		h := q.hot[t.id]
		delete(q.hot, t.id) // leased: its end writes and sets it again
		q.mu.Unlock()
		if h != nil && bytes.Equal(h.QKey, t.key) {
			d := h.Delivery
			out = append(out, &d)
			continue
		}
		r, err := s.record(q.ref.Org, t.id)
		if err == nil && bytes.Equal(r.QKey, t.key) {
			out = append(out, &r.Delivery)
			continue
		}
		if err != nil && !errors.Is(err, relay.ErrNotFound) {
			s.log.Error().Err(err).Str("delivery", t.id).Msg("read a due delivery")
			s.dropLease(ctx, q, t.id, nil)
			continue
		}
		s.dropLease(ctx, q, t.id, t.key)
		dropped++
	}
	return out, next, dropped, nil
}

// dropLease ends a lease Take made but did not hand out, and writes a
// Requeue made meanwhile. With stale set, the entry is deleted if the
// delivery is gone (purged) or its record names another entry: checked
// and written under the queue lock, so nothing moves meanwhile.
func (s *Store) dropLease(ctx context.Context, q *queue, id string, stale []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.leases, id)
	delete(q.hot, id)
	q.complete = false // its entry stays, or moved, without a hot record
	at, requeued := q.requeue[id]
	delete(q.requeue, id)
	if stale != nil {
		r, err := s.record(q.ref.Org, id)
		if errors.Is(err, relay.ErrNotFound) || (err == nil && !bytes.Equal(r.QKey, stale)) {
			if err := s.write(ctx, "take: drop stale entry", store.Delete(stale)); err != nil {
				s.log.Warn().Err(err).Str("delivery", id).Msg("drop a stale due-index entry")
			}
		}
	}
	if requeued {
		if _, err := s.requeueLocked(ctx, q, id, at); err != nil {
			s.log.Error().Err(err).Str("delivery", id).Msg("requeue")
		}
	}
}

// Record stores a leased delivery's new state with the move of its
// due-index entry (and the disabled mark) in one write, and ends the lease.
func (s *Store) Record(ctx context.Context, d *relay.Delivery, disable string) error {
	if !relay.Final(d.Status) && d.NextAttemptAt == nil {
		return fmt.Errorf("badgerstore: record: delivery %s is %s without next_attempt_at", d.ID, d.Status)
	}
	return s.finish(ctx, d, disable, false)
}

// Release ends a lease without an attempt.
func (s *Store) Release(ctx context.Context, d *relay.Delivery) error {
	return s.finish(ctx, d, "", true)
}

// finish ends the lease of d: Record (release false) writes d's new state;
// Release writes only a Requeue made during the lease. A Requeue made while
// that write was in flight is written before the lease ends.
func (s *Store) finish(ctx context.Context, d *relay.Delivery, disable string, release bool) error {
	what := "record"
	if release {
		what = "release"
	}
	if err := s.check(what); err != nil {
		return err
	}
	q := s.queue(relay.EndpointRef{Org: d.Org, Endpoint: d.Endpoint})
	q.delMu.RLock()
	defer q.delMu.RUnlock()
	next := d
	for {
		q.mu.Lock()
		l := q.leases[d.ID]
		at, requeued := q.requeue[d.ID]
		delete(q.requeue, d.ID)
		if release && (l == nil || !requeued) {
			delete(q.leases, d.ID)
			q.complete = false // its entry is due again, without a hot record
			q.mu.Unlock()
			return nil
		}
		q.mu.Unlock()

		var oldKey []byte
		if l != nil {
			oldKey = l.key
		}
		if release || l == nil {
			// The stored state is the one to requeue; without a lease its
			// entry is found in it.
			r, err := s.record(d.Org, d.ID)
			if err != nil {
				q.mu.Lock()
				delete(q.leases, d.ID)
				q.complete = false
				q.mu.Unlock()
				return fmt.Errorf("badgerstore: %s: %w", what, err)
			}
			if release {
				next = &r.Delivery
			}
			if l == nil {
				oldKey = r.QKey
			}
		}
		cp := *next
		if requeued {
			requeue(&cp, at)
		}
		ended := l != nil && l.orphan && !relay.Final(cp.Status)
		if ended {
			cp.Status, cp.NextAttemptAt, cp.Reason = relay.StatusDead, nil, l.reason
		}
		queued := !relay.Final(cp.Status)
		rec, err := s.move(ctx, q, what, &cp, oldKey, queued, disable)
		q.mu.Lock()
		if err != nil {
			// The entry as it was is still in the index: due again, a
			// repeated attempt rather than a lost one (a Requeue made
			// during the lease is dropped with it).
			delete(q.leases, d.ID)
			delete(q.hot, d.ID)
			q.complete = false
			q.mu.Unlock()
			return err
		}
		q.setHot(rec)
		if !release {
			// Tell the caller the state written: dead when ended during
			// the attempt, pending when requeued during it.
			d.SetState(&cp)
		}
		if _, again := q.requeue[d.ID]; !again || l == nil {
			delete(q.leases, d.ID)
			q.mu.Unlock()
			return nil
		}
		// Requeued meanwhile: write that too before the lease ends.
		l.key = rec.QKey
		q.mu.Unlock()
		next, release, disable = &cp, false, ""
	}
}

// requeue sets d pending and due at now, its schedule started again.
func requeue(d *relay.Delivery, now time.Time) {
	now = now.UTC()
	d.Status, d.NextAttemptAt, d.Base, d.Reason = relay.StatusPending, &now, len(d.Attempts), ""
}

// move writes d with its due-index entry moved from oldKey to where d's
// state puts it (nowhere unless queued), and the disabled mark if any.
// The caller holds no queue lock. It returns the record written.
func (s *Store) move(ctx context.Context, q *queue, what string, d *relay.Delivery, oldKey []byte, queued bool, disable string) (*record, error) {
	ops, rec, err := moveOps(q, d, oldKey, queued)
	if err != nil {
		return nil, fmt.Errorf("badgerstore: %s: %w", what, err)
	}
	if disable != "" {
		ops = append(ops, store.Set(disabledKey(q.ref.Org, q.ref.Endpoint), []byte(disable)))
	}
	if rec.QKey != nil {
		q.beginWrite(dueKey(d))
		defer q.endWrite(dueKey(d))
	}
	return rec, s.write(ctx, what, ops...)
}

// moveOps are the ops of move, and the record they write.
func moveOps(q *queue, d *relay.Delivery, oldKey []byte, queued bool) (ops []store.Op, rec *record, err error) {
	var newKey []byte
	if queued {
		newKey = timeKey(q.prefix, dueKey(d), d.ID)
	}
	rec, b, err := encodeDelivery(d, newKey)
	if err != nil {
		return nil, nil, err
	}
	if oldKey != nil && !bytes.Equal(oldKey, newKey) {
		ops = append(ops, store.Delete(oldKey))
	}
	if newKey != nil {
		ops = append(ops, store.Set(newKey, dueValue(d)))
	}
	return append(ops, store.Set(deliveryKey(d.Org, d.ID), b)), rec, nil
}

// Requeue makes a delivery pending and due at now; a leased one once its
// lease ends.
func (s *Store) Requeue(ctx context.Context, org, id string, now time.Time) (*relay.Delivery, error) {
	r, err := s.record(org, id)
	if err != nil {
		return nil, fmt.Errorf("badgerstore: requeue: %w", err)
	}
	q := s.queue(relay.EndpointRef{Org: org, Endpoint: r.Endpoint})
	// Held across the write: Take cannot lease the delivery while its
	// entry moves, nor a lease end meanwhile.
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.leases[id] != nil {
		q.requeue[id] = now
		cp := r.Delivery
		requeue(&cp, now)
		return &cp, nil
	}
	return s.requeueLocked(ctx, q, id, now)
}

// requeueLocked writes a Requeue of an unleased delivery; q.mu is held.
func (s *Store) requeueLocked(ctx context.Context, q *queue, id string, now time.Time) (*relay.Delivery, error) {
	// Read again under the lock: a lease may have ended since.
	r, err := s.record(q.ref.Org, id)
	if err != nil {
		return nil, fmt.Errorf("badgerstore: requeue: %w", err)
	}
	cp := r.Delivery
	requeue(&cp, now)
	ops, rec, err := moveOps(q, &cp, r.QKey, true)
	if err != nil {
		return nil, fmt.Errorf("badgerstore: requeue: %w", err)
	}
	q.beginWriteLocked(dueKey(&cp))
	err = s.write(ctx, "requeue", ops...)
	q.endWriteLocked(dueKey(&cp))
	if err != nil {
		delete(q.hot, id)
		q.complete = false
		return nil, err
	}
	q.setHot(rec)
	return &cp, nil
}

// expediteBatch bounds one Expedite write.
const expediteBatch = 256

// Expedite makes the endpoint's failed deliveries of the event types
// types takes that wait for a later retry due at now.
func (s *Store) Expedite(ctx context.Context, ref relay.EndpointRef, now time.Time, types []string) (int, error) {
	q := s.queue(ref)
	var keys [][]byte
	err := s.scan(ctx, "expedite", store.ScanOptions{Prefix: q.prefix}, func(k, v []byte) error {
		if due, _, ok := decodeDueValue(v); ok && due.After(now) {
			keys = append(keys, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	moved := 0
	for len(keys) > 0 {
		batch := keys[:min(len(keys), expediteBatch)]
		keys = keys[len(batch):]
		n, err := s.expedite(ctx, q, batch, now, types)
		moved += n
		if err != nil {
			return moved, err
		}
	}
	return moved, nil
}

func (s *Store) expedite(ctx context.Context, q *queue, keys [][]byte, now time.Time, types []string) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var ops []store.Op
	var ats []time.Time
	var moved []*record
	for _, k := range keys {
		_, id, _ := splitTimeKey(q.prefix, k)
		if q.leases[id] != nil {
			continue
		}
		r, err := s.record(q.ref.Org, id)
		if errors.Is(err, relay.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if r.Status != relay.StatusFailed || !bytes.Equal(r.QKey, k) || r.NextAttemptAt == nil || !r.NextAttemptAt.After(now) ||
			!event.Takes(types, event.Type(r.Type)) {
			continue
		}
		cp := r.Delivery
		due := now.UTC()
		cp.NextAttemptAt = &due
		more, rec, err := moveOps(q, &cp, r.QKey, true)
		if err != nil {
			return 0, err
		}
		ops = append(ops, more...)
		ats = append(ats, dueKey(&cp))
		moved = append(moved, rec)
	}
	if len(ats) == 0 {
		return 0, nil
	}
	for _, at := range ats {
		q.beginWriteLocked(at)
	}
	err := s.write(ctx, "expedite", ops...)
	for _, at := range ats {
		q.endWriteLocked(at)
	}
	if err != nil {
		for _, r := range moved {
			delete(q.hot, r.ID)
		}
		q.complete = false
		return 0, err
	}
	for _, r := range moved {
		q.setHot(r)
	}
	return len(ats), nil
}
