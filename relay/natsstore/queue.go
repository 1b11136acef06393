package natsstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidehook/sidehook/relay"
)

// fetchBatch is how many work items one fetch asks for.
const fetchBatch = 256

type candidate struct {
	msg jetstream.Msg
	st  *state
	rev uint64
	key time.Time // due time
}

// Take leases up to n of the endpoint's deliveries due at now: the head
// of its ordered deliveries (see takeOrdered), then those its consumer
// offers (see takeQueued).
func (s *Store) Take(ctx context.Context, ref relay.EndpointRef, now time.Time, n int) ([]*relay.Delivery, time.Time, error) {
	if err := s.ready(); err != nil {
		return nil, time.Time{}, fmt.Errorf("take %s: %w", ref, err)
	}
	if n <= 0 {
		return nil, time.Time{}, nil
	}
	// One Take per endpoint at a time in this store: a Take holds every
	// waiting item while it reads them, so a second would see none.
	mu := s.takeLock(ref)
	mu.Lock()
	defer mu.Unlock()
	out, next, err := s.takeOrdered(ctx, ref, now)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("take %s: %w", ref, err)
	}
	more, qnext, err := s.takeQueued(ctx, ref, now, n-len(out))
	out = append(out, more...)
	if next.IsZero() || !qnext.IsZero() && qnext.Before(next) {
		next = qnext
	}
	if err != nil && len(out) == 0 {
		return nil, next.UTC(), fmt.Errorf("take %s: %w", ref, err)
	}
	if err != nil {
		// What was leased is handed out: a caller that drops a Take's
		// deliveries on error would leave their leases heartbeating.
		s.log.Warn().Err(err).Str("endpoint", ref.String()).Msg("take: some waiting deliveries were not read")
	}
	return out, next.UTC(), nil
}

// takeQueued reads every work item the consumer offers: the due ones are
// leased in due order, the rest are given back (a plain Nak, which is not
// an attempt) and the earliest of their due times is next.
func (s *Store) takeQueued(ctx context.Context, ref relay.EndpointRef, now time.Time, n int) ([]*relay.Delivery, time.Time, error) {
	var next time.Time
	if n <= 0 {
		return nil, next, nil
	}
	// Made here too, not only by Accept: another relay may have deleted
	// the endpoint (and its consumer) and then made it again.
	c, err := s.ensureConsumer(ctx, ref)
	if err != nil {
		return nil, next, err
	}
	var (
		due  []candidate
		back []backItem
		ferr error
	)
	seen := map[string]bool{}
	for ferr == nil {
		batch, err := c.FetchNoWait(fetchBatch)
		if err != nil {
			ferr = err
			break
		}
		count := 0
		for m := range batch.Messages() {
			count++
			_, _, id, err := s.subj.parseWork(m.Subject())
			if err != nil {
				_ = m.Term() // not ours to read
				continue
			}
			if seen[id] {
				back = append(back, backItem{m: m})
				continue
			}
			seen[id] = true
			s.unhide(ref, id)
			st, rev, err := s.state(ctx, ref.Org, id)
			switch {
			case errors.Is(err, relay.ErrNotFound) || err == nil && relay.Final(st.Status):
				s.finish(ctx, m) // a leftover of a Record or a Purge cut short
				continue
			case err != nil:
				ferr = err
				back = append(back, backItem{m: m})
				continue
			case workGen(m) != st.Gen:
				// A copy replaced by a newer item (Requeue, Expedite): the
				// stream no longer has it; only the newest may be leased.
				_ = m.Term()
				continue
			}
			st.settle() // a lease that timed out, with its requeue mark
			at := st.due()
			if at.After(now) {
				back = append(back, backItem{m: m, id: id, due: at})
				if next.IsZero() || at.Before(next) {
					next = at
				}
				continue
			}
			due = append(due, candidate{msg: m, st: st, rev: rev, key: at})
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			ferr = err
		}
		if count < fetchBatch {
			break
		}
	}
	// A pull request to a deleted consumer finds no responder.
	if errors.Is(ferr, jetstream.ErrConsumerNotFound) || errors.Is(ferr, jetstream.ErrConsumerDeleted) ||
		errors.Is(ferr, nats.ErrNoResponders) {
		s.dropConsumer(ref) // the endpoint was deleted; the next Take makes it again
		ferr = nil
	}
	slices.SortFunc(due, func(a, b candidate) int {
		if c := a.key.Compare(b.key); c != 0 {
			return c
		}
		return strings.Compare(a.st.ID, b.st.ID)
	})
	var out []*relay.Delivery
	for _, cd := range due {
		if len(out) >= n || ferr != nil {
			back = append(back, backItem{m: cd.msg})
			continue
		}
		d, err := s.lease(ctx, ref, cd)
		if err != nil {
			back = append(back, backItem{m: cd.msg})
			if !casConflict(err) {
				ferr = err
			} else if next.IsZero() || now.Before(next) {
				next = now // changed under us: look again soon
			}
			continue
		}
		out = append(out, d)
	}
	s.giveBack(ctx, ref, back...)
	if h := s.hiddenNext(ref, now); !h.IsZero() && (next.IsZero() || h.Before(next)) {
		next = h
	}
	return out, next, ferr
}

func (s *Store) takeLock(ref relay.EndpointRef) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	mu := s.taking[ref]
	if mu == nil {
		mu = &sync.Mutex{}
		s.taking[ref] = mu
	}
	return mu
}

// lease marks a due delivery leased (compare-and-set on the revision Take
// read) and keeps its work item unacknowledged.
func (s *Store) lease(ctx context.Context, ref relay.EndpointRef, cd candidate) (*relay.Delivery, error) {
	st := cd.st
	st.Leased = true
	wctx, cancel := writeCtx(ctx)
	defer cancel()
	if _, err := s.putState(wctx, st, cd.rev); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.leases[ref.Org+"/"+st.ID] = &lease{msg: cd.msg, ref: ref}
	s.mu.Unlock()
	return st.out(), nil
}

// leaseOf is this store's lease of d, or nil.
func (s *Store) leaseOf(d *relay.Delivery) *lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leases[d.Org+"/"+d.ID]
}

func (s *Store) dropLease(d *relay.Delivery) {
	s.mu.Lock()
	delete(s.leases, d.Org+"/"+d.ID)
	s.mu.Unlock()
}

// Record writes the attempt's outcome, then ends the lease: a final
// delivery's work item is acknowledged and deleted, a failed one's is
// given back and waits, leased by nobody, until NextAttemptAt. When the
// delivery was requeued during the attempt, it is pending at the requeue's
// time instead. The disabled mark is written first: if the relay dies in
// between, the endpoint is disabled and the delivery is retaken later.
func (s *Store) Record(ctx context.Context, d *relay.Delivery, disable string) error {
	if !relay.Final(d.Status) && d.NextAttemptAt == nil {
		return fmt.Errorf("record: delivery %s is %s without next_attempt_at", d.ID, d.Status)
	}
	ctx, cancel := writeCtx(ctx)
	defer cancel()
	if disable != "" {
		if err := s.SetDisabled(ctx, d.Org, d.Endpoint, disable); err != nil {
			return fmt.Errorf("record: %w", err)
		}
	}
	l := s.leaseOf(d)
	st, err := s.endLease(ctx, d, l, func(cur *state) *state {
		next := &state{Delivery: *d}
		next.Endpoint, next.Ordered, next.Gen = cur.Endpoint, cur.Ordered, cur.Gen
		if cur.RequeueAt != nil {
			requeued(&next.Delivery, *cur.RequeueAt)
		}
		return next
	})
	if err != nil {
		return fmt.Errorf("record: %w", err)
	}
	switch {
	case (l == nil || l.ordered) && relay.Final(st.Status):
		// No consumer message to acknowledge: delete the item.
		if err := s.deleteWork(ctx, s.subj.work(d.Org, st.Endpoint, d.ID, st.Ordered)); err != nil {
			s.log.Debug().Err(err).Str("delivery", d.ID).Msg("delete a work item")
		}
	case l == nil || l.ordered:
	case relay.Final(st.Status):
		s.finish(ctx, l.msg)
	default:
		s.giveBack(ctx, l.ref, backItem{m: l.msg, id: d.ID, due: st.due()}) // on failure the lease times out after AckWait
	}
	return nil
}

// endLease writes the state next makes of the current one and, for an
// ordered lease, frees the endpoint's head lock in the same batch; then it
// forgets the lease.
func (s *Store) endLease(ctx context.Context, d *relay.Delivery, l *lease, next func(*state) *state) (*state, error) {
	for {
		cur, rev, err := s.state(ctx, d.Org, d.ID)
		if err != nil {
			return nil, err
		}
		st := next(cur)
		b, err := st.encode()
		if err != nil {
			return nil, err
		}
		msgs := []*nats.Msg{msg(s.subj.delivery(d.Org, d.ID), b, int64(rev))}
		if l != nil && l.ordered {
			lk, lrev, err := s.readLock(ctx, l.ref)
			if err != nil {
				return nil, err
			}
			if lk.ID == d.ID { // else the lease was lost, and the lock is another's
				msgs = append(msgs, msg(s.subj.lock(l.ref.Org, l.ref.Endpoint), nil, int64(lrev)))
			}
		}
		_, err = s.publish(ctx, msgs)
		if casConflict(err) {
			continue // changed since read: read again
		}
		if err != nil {
			return nil, err
		}
		s.dropLease(d)
		return st, nil
	}
}

// finish acknowledges a work item and deletes it from the stream (by
// sequence, so a newer item of a requeued delivery stays).
func (s *Store) finish(ctx context.Context, m jetstream.Msg) {
	if err := m.DoubleAck(ctx); err != nil {
		s.log.Debug().Err(err).Msg("acknowledge a work item")
	}
	meta, err := m.Metadata()
	if err != nil {
		return
	}
	if err := s.stream.DeleteMsg(ctx, meta.Sequence.Stream); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		s.log.Debug().Err(err).Msg("delete a work item")
	}
}

// Release ends a lease without an attempt: the delivery is due again as it
// was (or as a Requeue during the lease says). Without a lease here it does
// nothing.
func (s *Store) Release(ctx context.Context, d *relay.Delivery) error {
	l := s.leaseOf(d)
	if l == nil {
		return nil
	}
	ctx, cancel := writeCtx(ctx)
	defer cancel()
	st, err := s.endLease(ctx, d, l, func(cur *state) *state { cur.settle(); return cur })
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	if !l.ordered {
		s.giveBack(ctx, l.ref, backItem{m: l.msg, id: d.ID, due: st.due()})
	}
	return nil
}

// backItem is a work item to give back, hidden until due (zero: at once).
type backItem struct {
	m   jetstream.Msg
	id  string
	due time.Time
}

// giveBack naks work items so the consumer offers them again, to any relay.
// One due later is hidden until then by the real clock (a Nak with delay),
// so Takes in between do not read it; this store remembers the time for
// its next Takes' next, and other relays find it by Wake's tick. The
// server handles a consumer's acks in order and the last nak waits for its
// answer, so when giveBack returns every item is back: the next Take sees
// those not hidden.
func (s *Store) giveBack(ctx context.Context, ref relay.EndpointRef, items ...backItem) {
	realNow := time.Now()
	for i, it := range items {
		body := []byte("-NAK")
		if d := it.due.Sub(realNow); d > 0 && it.id != "" {
			body = fmt.Appendf(nil, `-NAK {"delay": %d}`, d.Nanoseconds())
			s.hide(ref, it.id, it.due)
		}
		var err error
		if i < len(items)-1 {
			err = s.nc.Publish(it.m.Reply(), body)
		} else {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
			_, err = s.nc.RequestWithContext(rctx, it.m.Reply(), body)
			cancel()
		}
		if err != nil {
			s.log.Debug().Err(err).Msg("give back a work item")
		}
	}
}

// hide remembers that this store hid a delivery of ref until due.
func (s *Store) hide(ref relay.EndpointRef, id string, due time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hidden[ref] == nil {
		s.hidden[ref] = map[string]time.Time{}
	}
	s.hidden[ref][id] = due
}

// unhide forgets a hidden delivery: a Take saw it again.
func (s *Store) unhide(ref relay.EndpointRef, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.hidden[ref], id)
}

// Hidden-item timing: the consumer brings an item back a little after its
// delay; until hiddenGrace after its due time a Take that did not see it
// asks to be called again after hiddenPoll.
const (
	hiddenGrace = 2 * time.Second
	hiddenPoll  = 50 * time.Millisecond
)

// hiddenNext is when a Take should look again for the deliveries this
// store hid (zero: none): the earliest due time after now, or shortly when
// one is due but not back yet. Those long overdue are forgotten (another
// relay took them, or they were deleted).
func (s *Store) hiddenNext(ref relay.EndpointRef, now time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	realNow := time.Now()
	var next time.Time
	for id, t := range s.hidden[ref] {
		if realNow.After(t.Add(hiddenGrace)) {
			delete(s.hidden[ref], id)
			continue
		}
		if !t.After(now) {
			t = now.Add(hiddenPoll)
		}
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if len(s.hidden[ref]) == 0 {
		delete(s.hidden, ref)
	}
	return next
}

// Header of a work item: the generation of its delivery's state that wrote
// it. A Requeue or an Expedite writes a new item (the stream keeps one per
// subject) to bring a hidden delivery forward, and a newer generation.
const hdrGen = "Sidehook-Gen"

func workGen(m jetstream.Msg) uint64 {
	g, _ := strconv.ParseUint(m.Headers().Get(hdrGen), 10, 64)
	return g
}
