package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sidehook/sidehook/relay"
)

// lockRec is an ordered endpoint's head lock: the delivery being attempted,
// by which store (relay) and until when (unix ns, the holder's clock)
// unless renewed. An empty record is a free lock. The holder is named
// because two may have leased the same head: one whose lease lapsed,
// still attempting it, and the one that retook it; only the second may
// free the lock.
type lockRec struct {
	ID    string `json:"id"`
	Owner string `json:"owner,omitempty"`
	Until int64  `json:"until"`
}

func (l lockRec) held(now time.Time) bool { return l.ID != "" && l.Until > now.UnixNano() }

// readLock reads an endpoint's head lock and its revision (0: none yet).
func (s *Store) readLock(ctx context.Context, ref relay.EndpointRef) (lockRec, uint64, error) {
	m, err := s.get(ctx, s.subj.lock(ref.Org, ref.Endpoint))
	if err != nil || m == nil {
		return lockRec{}, 0, err
	}
	var l lockRec
	if len(m.Data) > 0 {
		if err := json.Unmarshal(m.Data, &l); err != nil {
			return lockRec{}, 0, fmt.Errorf("decode lock of %s: %w", ref, err)
		}
	}
	return l, m.Sequence, nil
}

// takeOrdered leases the head of the endpoint's ordered deliveries (the
// first by creation, then id) when it is due and no relay holds the
// endpoint's head lock. The lock and the delivery's lease are one atomic,
// compare-and-set write, so one relay at a time attempts the head: FIFO
// across relays. The lock lasts AckWait and the holder renews it; a relay
// that dies leaves it to expire.
func (s *Store) takeOrdered(ctx context.Context, ref relay.EndpointRef, now time.Time) ([]*relay.Delivery, time.Time, error) {
	var next time.Time
	subs, err := s.list(ctx, s.subj.workOf(ref.Org, ref.Endpoint, true))
	if err != nil || len(subs) == 0 {
		return nil, next, err
	}
	lk, lockRev, err := s.readLock(ctx, ref)
	if err != nil {
		return nil, next, err
	}
	if lk.held(time.Now()) {
		// Looked at again when the lock would lapse: a holder that died
		// or stopped without freeing it must not leave the endpoint to
		// the idle recheck.
		return nil, time.Unix(0, lk.Until), nil
	}
	var head *state
	var headRev uint64
	for _, subj := range subs {
		id, err := untok(lastToken(subj))
		if err != nil {
			continue
		}
		st, rev, err := s.state(ctx, ref.Org, id)
		if errors.Is(err, relay.ErrNotFound) || err == nil && relay.Final(st.Status) {
			if err := s.remove(ctx, subj); err != nil { // a leftover of a Record cut short
				return nil, next, err
			}
			continue
		}
		if err != nil {
			return nil, next, err
		}
		st.settle() // a lease that expired, with its requeue mark
		if head == nil || st.CreatedAt.Before(head.CreatedAt) || st.CreatedAt.Equal(head.CreatedAt) && st.ID < head.ID {
			head, headRev = st, rev
		}
	}
	if head == nil {
		return nil, next, nil
	}
	if head.due().After(now) {
		return nil, head.due(), nil
	}
	head.Leased, head.Holder = true, s.id
	b, err := head.encode()
	if err != nil {
		return nil, next, err
	}
	lb, err := json.Marshal(lockRec{ID: head.ID, Owner: s.id, Until: time.Now().Add(s.cfg.AckWait).UnixNano()})
	if err != nil {
		return nil, next, err
	}
	seq, err := s.publish(ctx, []*nats.Msg{
		msg(s.subj.lock(ref.Org, ref.Endpoint), lb, int64(lockRev)),
		msg(s.subj.delivery(ref.Org, head.ID), b, int64(headRev)),
	})
	if casConflict(err) {
		return nil, now, nil // another relay moved first: look again soon
	}
	if err != nil {
		return nil, next, err
	}
	s.mu.Lock()
	// A batch is stored in one run of sequences: the lock is just before
	// the state.
	s.leases[ref.Org+"/"+head.ID] = &lease{ref: ref, ordered: true, lockRev: seq - 1, st: head, rev: seq}
	s.mu.Unlock()
	return []*relay.Delivery{head.out()}, next, nil
}

// freeLock frees ref's head lock if it is this store's lease of the
// delivery id, and reports whether it did. A lock changed since it was
// read is left as it is: another relay took it.
func (s *Store) freeLock(ctx context.Context, ref relay.EndpointRef, id string) bool {
	lk, rev, err := s.readLock(ctx, ref)
	if err == nil && (lk.ID != id || lk.Owner != s.id) {
		return false
	}
	if err == nil {
		_, err = s.publish(ctx, []*nats.Msg{msg(s.subj.lock(ref.Org, ref.Endpoint), nil, int64(rev))})
	}
	if err != nil && !casConflict(err) {
		s.log.Debug().Err(err).Str("endpoint", ref.String()).Msg("free the head lock: it expires after the ack wait")
	}
	return err == nil
}

// renewLock pushes an ordered lease's lock AckWait further. A lock
// changed since this store wrote it is read: still this lease's (a
// renewal whose answer was lost), it is renewed at its revision; another
// relay's, the lease lapsed here and was retaken, and the heartbeat stops
// renewing it (see lose), saying so once: the lock is the other relay's
// until it frees it.
func (s *Store) renewLock(ctx context.Context, id string, l *lease) {
	lb, err := json.Marshal(lockRec{ID: id, Owner: s.id, Until: time.Now().Add(s.cfg.AckWait).UnixNano()})
	if err != nil {
		return
	}
	s.mu.Lock()
	rev := l.lockRev
	s.mu.Unlock()
	lock := s.subj.lock(l.ref.Org, l.ref.Endpoint)
	seq, err := s.publish(ctx, []*nats.Msg{msg(lock, lb, int64(rev))})
	if casConflict(err) {
		var lk lockRec
		lk, rev, err = s.readLock(ctx, l.ref)
		if err == nil && (lk.ID != id || lk.Owner != s.id) {
			s.lose(l)
			s.log.Warn().Str("delivery", id).Str("endpoint", l.ref.String()).
				Msg("renew the head lock of an ordered endpoint: the lock lapsed and is no longer this relay's; the attempt here goes on")
			return
		}
		if err == nil {
			seq, err = s.publish(ctx, []*nats.Msg{msg(lock, lb, int64(rev))})
		}
	}
	if err != nil {
		s.log.Warn().Err(err).Str("endpoint", l.ref.String()).Msg("renew the head lock of an ordered endpoint")
		return
	}
	s.mu.Lock()
	l.lockRev = seq
	s.mu.Unlock()
}
