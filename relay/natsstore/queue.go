package natsstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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
	for _, m := range back {
		if err := m.Nak(); err != nil {
			s.log.Debug().Err(err).Msg("give back a work item")
		}
	}
	if ferr != nil {
		return out, next, fmt.Errorf("take %s: %w", ref, ferr)
	}
	return out, next, nil
}

// lease marks a due delivery delivering (compare-and-set on the revision
// Take read) and keeps its work item unacknowledged.
func (s *Store) lease(ctx context.Context, ref relay.EndpointRef, cd candidate) (*relay.Delivery, error) {
	st := cd.st
	if st.Status != relay.StatusDelivering {
		st.Prev = st.Status
	} // else: a lease that timed out; keep the status it had before
	st.Status = relay.StatusDelivering
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

func (s *Store) takeLease(d *relay.Delivery) (*lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.leases[d.Org+"/"+d.ID]
	if l == nil {
		return nil, fmt.Errorf("delivery %s: not leased by this store: %w", d.ID, relay.ErrNotFound)
	}
	return l, nil
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
	l, err := s.takeLease(d)
	if err != nil {
		return fmt.Errorf("record: %w", err)
	}
	ctx, cancel := writeCtx(ctx)
	defer cancel()
	if disable != "" {
		if err := s.SetDisabled(ctx, d.Org, d.Endpoint, disable); err != nil {
			return fmt.Errorf("record: %w", err)
		}
	}
	st := &state{Delivery: *d}
	rev := l.rev
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
		if cur.Requeued {
			st.Status = relay.StatusPending
			st.NextAttemptAt = cur.NextAttemptAt
			st.Base = len(st.Attempts)
		}
		rev = crev
	}
	s.dropLease(d)
	if relay.Final(st.Status) {
		s.finish(ctx, l.msg)
		return nil
	}
	if err := l.msg.Nak(); err != nil {
		// The state is written; the lease times out after AckWait instead.
		s.log.Debug().Err(err).Str("delivery", d.ID).Msg("give back a work item")
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

// Release ends a lease without an attempt: the delivery is back as it was.
func (s *Store) Release(ctx context.Context, d *relay.Delivery) error {
	l, err := s.takeLease(d)
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	ctx, cancel := writeCtx(ctx)
	defer cancel()
	for {
		cur, rev, err := s.state(ctx, d.Org, d.ID)
		if err != nil {
			return fmt.Errorf("release: %w", err)
		}
		switch {
		case cur.Requeued:
			cur.Status = relay.StatusPending
		case cur.Status == relay.StatusDelivering:
			cur.Status = cur.Prev
			if cur.Status == "" {
				cur.Status = relay.StatusPending
			}
		}
		cur.Prev, cur.Requeued = "", false
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
	if err := l.msg.Nak(); err != nil {
		s.log.Debug().Err(err).Str("delivery", d.ID).Msg("give back a work item")
	}
	return nil
}
