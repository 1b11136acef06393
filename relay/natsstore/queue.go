package natsstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidehook/sidehook/relay"
)

// fetchBatch is how many work items one fetch asks for.
const fetchBatch = 256

type candidate struct {
	msg jetstream.Msg
	st  *state
	rev uint64
	key time.Time // due time, or creation for an ordered endpoint
}

// Take leases up to n of the endpoint's deliveries due at now. It reads
// every work item the consumer offers: the due ones are leased in due
// order, the rest are given back (a plain Nak, which is not an attempt)
// and the earliest of their due times is next.
func (s *Store) Take(ctx context.Context, ref relay.EndpointRef, now time.Time, n int) ([]*relay.Delivery, time.Time, error) {
	var next time.Time
	if err := s.ready(); err != nil {
		return nil, next, fmt.Errorf("take %s: %w", ref, err)
	}
	// One Take per endpoint at a time in this store: a Take holds every
	// waiting item while it reads them, so a second would see none.
	mu := s.takeLock(ref)
	mu.Lock()
	defer mu.Unlock()
	c, err := s.consumer(ctx, ref)
	if err != nil || c == nil {
		return nil, next, err
	}
	var (
		due  []candidate
		back []jetstream.Msg
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
				back = append(back, m)
				continue
			}
			seen[id] = true
			st, rev, err := s.state(ctx, ref.Org, id)
			switch {
			case errors.Is(err, relay.ErrNotFound) || err == nil && relay.Final(st.Status):
				s.finish(ctx, m) // a leftover of a Record or a Purge cut short
				continue
			case err != nil:
				ferr = err
				back = append(back, m)
				continue
			}
			st.settle() // a lease that timed out, with its requeue mark
			at := st.due()
			if at.After(now) {
				back = append(back, m)
				if next.IsZero() || at.Before(next) {
					next = at
				}
				continue
			}
			key := at
			if st.Ordered {
				key = st.CreatedAt
			}
			due = append(due, candidate{msg: m, st: st, rev: rev, key: key})
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			ferr = err
		}
		if count < fetchBatch {
			break
		}
	}
	if errors.Is(ferr, jetstream.ErrConsumerNotFound) || errors.Is(ferr, jetstream.ErrConsumerDeleted) {
		s.mu.Lock()
		delete(s.consumers, ref)
		s.mu.Unlock()
		ferr = nil // the endpoint was deleted
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
			back = append(back, cd.msg)
			continue
		}
		d, err := s.lease(ctx, ref, cd)
		if err != nil {
			back = append(back, cd.msg)
			if !casConflict(err) {
				ferr = err
			} else if next.IsZero() || now.Before(next) {
				next = now // changed under us: look again soon
			}
			continue
		}
		out = append(out, d)
	}
	s.giveBack(ctx, back...)
	if ferr != nil {
		return out, next, fmt.Errorf("take %s: %w", ref, ferr)
	}
	return out, next.UTC(), nil
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
	rev, err := s.putState(wctx, st, cd.rev)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.leases[ref.Org+"/"+st.ID] = &lease{msg: cd.msg, ref: ref, rev: rev}
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
	var rev uint64
	if l != nil {
		rev = l.rev
	} else if _, r, err := s.state(ctx, d.Org, d.ID); err != nil {
		return fmt.Errorf("record: %w", err)
	} else {
		rev = r
	}
	st := &state{Delivery: *d}
	for {
		_, err := s.putState(ctx, st, rev)
		if err == nil {
			break
		}
		if !casConflict(err) {
			return fmt.Errorf("record: %w", err)
		}
		cur, crev, rerr := s.state(ctx, d.Org, d.ID)
		if rerr != nil {
			return fmt.Errorf("record: %w", rerr)
		}
		if cur.RequeueAt != nil {
			requeued(&st.Delivery, *cur.RequeueAt)
		}
		rev = crev
	}
	s.dropLease(d)
	switch {
	case l == nil && relay.Final(st.Status):
		// Not leased here: the work item, if any, is nobody's to ack.
		if err := s.deleteWork(ctx, s.subj.work(d.Org, d.Endpoint, d.ID)); err != nil {
			s.log.Debug().Err(err).Str("delivery", d.ID).Msg("delete a work item")
		}
	case l == nil:
	case relay.Final(st.Status):
		s.finish(ctx, l.msg)
	default:
		s.giveBack(ctx, l.msg) // on failure the lease times out after AckWait
	}
	return nil
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
	for {
		cur, rev, err := s.state(ctx, d.Org, d.ID)
		if err != nil {
			return fmt.Errorf("release: %w", err)
		}
		cur.settle()
		_, err = s.putState(ctx, cur, rev)
		if casConflict(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("release: %w", err)
		}
		break
	}
	s.dropLease(d)
	s.giveBack(ctx, l.msg)
	return nil
}

// giveBack naks work items so the consumer offers them again (to any
// relay) at once. The server handles a consumer's acks in order, and the
// last nak waits for its answer, so when giveBack returns every one of
// them is offered again: the next Take sees them.
func (s *Store) giveBack(ctx context.Context, msgs ...jetstream.Msg) {
	for i, m := range msgs {
		var err error
		if i < len(msgs)-1 {
			err = m.Nak()
		} else {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
			_, err = s.nc.RequestWithContext(rctx, m.Reply(), []byte("-NAK"))
			cancel()
		}
		if err != nil {
			s.log.Debug().Err(err).Msg("give back a work item")
		}
	}
}
