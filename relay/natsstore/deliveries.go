package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sidehook/sidehook/relay"
)

// state is a delivery's record: the delivery as callers see it, and what
// the lease needs. Taking a delivery does not change what callers see.
type state struct {
	relay.Delivery
	// Leased: a relay took it and has not recorded it yet (or died; the
	// consumer then offers it again after AckWait).
	Leased bool `json:"leased,omitempty"`
	// RequeueAt: Requeue ran during the lease; the lease's end makes the
	// delivery pending and due then.
	RequeueAt *time.Time `json:"requeue_at,omitempty"`
	// Gen is the generation of the delivery's current work item (its
	// header): an older copy is never leased.
	Gen uint64 `json:"gen,omitempty"`
}

// requeued sets d pending and due at at, its schedule starting again.
func requeued(d *relay.Delivery, at time.Time) {
	at = at.UTC()
	d.Status, d.NextAttemptAt, d.Base = relay.StatusPending, &at, len(d.Attempts)
}

// settle ends what a lease left on the record: a pending requeue applies.
func (st *state) settle() {
	if st.RequeueAt != nil {
		requeued(&st.Delivery, *st.RequeueAt)
	}
	st.Leased, st.RequeueAt = false, nil
}

func (st *state) encode() ([]byte, error) {
	st.Delivery = *st.out() // stored in UTC, so read back in UTC
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encode delivery %s: %w", st.ID, err)
	}
	return b, nil
}

// out is the delivery as callers see it, times in UTC.
func (st *state) out() *relay.Delivery {
	d := st.Delivery
	d.CreatedAt = d.CreatedAt.UTC()
	if d.NextAttemptAt != nil {
		t := d.NextAttemptAt.UTC()
		d.NextAttemptAt = &t
	}
	d.Attempts = slices.Clone(d.Attempts)
	for i := range d.Attempts {
		d.Attempts[i].At = d.Attempts[i].At.UTC()
	}
	return &d
}

// due is when the delivery may be attempted (zero: now).
func (st *state) due() time.Time {
	if st.NextAttemptAt == nil {
		return time.Time{}
	}
	return *st.NextAttemptAt
}

// state reads a delivery's record and its revision (stream sequence).
func (s *Store) state(ctx context.Context, org, id string) (*state, uint64, error) {
	m, err := s.get(ctx, s.subj.delivery(org, id))
	if err != nil {
		return nil, 0, err
	}
	if m == nil {
		return nil, 0, fmt.Errorf("delivery %s: %w", id, relay.ErrNotFound)
	}
	var st state
	if err := json.Unmarshal(m.Data, &st); err != nil {
		return nil, 0, fmt.Errorf("decode delivery %s: %w", id, err)
	}
	return &st, m.Sequence, nil
}

// putState writes a delivery's record if its revision is still rev, plus
// extra records in the same atomic batch; it returns the new revision.
func (s *Store) putState(ctx context.Context, st *state, rev uint64, extra ...*nats.Msg) (uint64, error) {
	b, err := st.encode()
	if err != nil {
		return 0, err
	}
	msgs := append([]*nats.Msg{msg(s.subj.delivery(st.Org, st.ID), b, int64(rev))}, extra...)
	seq, err := s.publish(ctx, msgs)
	if err != nil {
		return 0, fmt.Errorf("write delivery %s: %w", st.ID, err)
	}
	return seq, nil
}

// Delivery reads one delivery.
func (s *Store) Delivery(ctx context.Context, org, id string) (*relay.Delivery, error) {
	st, _, err := s.state(ctx, org, id)
	if err != nil {
		return nil, err
	}
	return st.out(), nil
}

// Deliveries lists an organisation's deliveries, newest first.
func (s *Store) Deliveries(ctx context.Context, org string, f relay.DeliveryFilter) (relay.Page[*relay.Delivery], error) {
	var entries []indexEntry
	if f.IDs != nil {
		for _, id := range f.IDs {
			st, _, err := s.state(ctx, org, id)
			if errors.Is(err, relay.ErrNotFound) {
				continue
			}
			if err != nil {
				return relay.Page[*relay.Delivery]{}, fmt.Errorf("deliveries: %w", err)
			}
			entries = append(entries, indexEntry{key: stamp(st.CreatedAt) + tok(id), at: time.Unix(0, st.CreatedAt.UnixNano()).UTC(), id: id})
		}
		slices.SortFunc(entries, func(a, b indexEntry) int {
			if c := a.at.Compare(b.at); c != 0 {
				return -c
			}
			return -strings.Compare(a.id, b.id)
		})
		entries = slices.CompactFunc(entries, func(a, b indexEntry) bool { return a.id == b.id })
	} else {
		var err error
		if entries, err = s.index(ctx, s.subj.deliveryIndexOrg(org)); err != nil {
			return relay.Page[*relay.Delivery]{}, fmt.Errorf("deliveries: %w", err)
		}
	}
	p, err := page(ctx, entries, f.Cursor, f.Limit, f.Since, f.Until, func(ctx context.Context, e indexEntry) (*relay.Delivery, bool, error) {
		st, _, err := s.state(ctx, org, e.id)
		if errors.Is(err, relay.ErrNotFound) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		ok := (f.Status == "" || st.Status == f.Status) &&
			(f.Endpoint == "" || st.Endpoint == f.Endpoint) &&
			(f.Type == "" || st.Type == f.Type)
		return st.out(), ok, nil
	})
	if err != nil {
		return p, fmt.Errorf("deliveries: %w", err)
	}
	return p, nil
}

// Requeue makes a delivery pending and due at now, its schedule starting
// again. A final delivery gets a new work item in the same write; a leased
// one is marked, and the lease's end (Record, Release, or a Take after it
// timed out) applies the mark.
func (s *Store) Requeue(ctx context.Context, org, id string, now time.Time) (*relay.Delivery, error) {
	ctx, cancel := writeCtx(ctx)
	defer cancel()
	for {
		st, rev, err := s.state(ctx, org, id)
		if err != nil {
			return nil, fmt.Errorf("requeue: %w", err)
		}
		view := st.out()
		requeued(view, now)
		var extra []*nats.Msg
		switch {
		case st.Leased:
			at := now.UTC()
			st.RequeueAt = &at
		case relay.Final(st.Status) || !st.Ordered:
			// A new work item: a final delivery has none, and a waiting
			// one's may be hidden until its old due time.
			if !st.Ordered {
				if _, err := s.ensureConsumer(ctx, relay.EndpointRef{Org: org, Endpoint: st.Endpoint}); err != nil {
					return nil, fmt.Errorf("requeue: %w", err)
				}
			}
			st.Delivery = *view
			extra = append(extra, s.newWork(st))
		default:
			st.Delivery = *view
		}
		_, err = s.putState(ctx, st, rev, extra...)
		if casConflict(err) {
			continue // changed since read: read again
		}
		if err != nil {
			return nil, fmt.Errorf("requeue: %w", err)
		}
		if !st.Leased {
			s.notify(relay.EndpointRef{Org: org, Endpoint: st.Endpoint})
		}
		return view, nil
	}
}

// Expedite makes the endpoint's failed deliveries that wait for a later
// retry due at now. Their work items keep their places, so an ordered
// endpoint keeps its order.
func (s *Store) Expedite(ctx context.Context, ref relay.EndpointRef, now time.Time) (int, error) {
	subs, err := s.list(ctx, s.subj.workOf(ref.Org, ref.Endpoint, false))
	if err != nil {
		return 0, fmt.Errorf("expedite: %w", err)
	}
	osubs, err := s.list(ctx, s.subj.workOf(ref.Org, ref.Endpoint, true))
	if err != nil {
		return 0, fmt.Errorf("expedite: %w", err)
	}
	subs = append(subs, osubs...)
	ctx, cancel := writeCtx(ctx)
	defer cancel()
	n := 0
	for _, subj := range subs {
		id, err := untok(lastToken(subj))
		if err != nil {
			continue
		}
		for {
			st, rev, err := s.state(ctx, ref.Org, id)
			if errors.Is(err, relay.ErrNotFound) {
				break
			}
			if err != nil {
				return n, fmt.Errorf("expedite: %w", err)
			}
			if st.Leased || st.Status != relay.StatusFailed || !st.due().After(now) {
				break
			}
			now := now.UTC()
			st.NextAttemptAt = &now
			var extra []*nats.Msg
			if !st.Ordered { // its item is hidden until the old due time
				extra = append(extra, s.newWork(st))
			}
			_, err = s.putState(ctx, st, rev, extra...)
			if casConflict(err) {
				continue
			}
			if err != nil {
				return n, fmt.Errorf("expedite: %w", err)
			}
			n++
			break
		}
	}
	if n > 0 {
		s.notify(ref)
	}
	return n, nil
}

// Waiting counts each endpoint's work items: its deliveries not final.
func (s *Store) Waiting(ctx context.Context) (map[relay.EndpointRef]int64, error) {
	subs, err := s.list(ctx, s.subj.workAll(false))
	if err != nil {
		return nil, fmt.Errorf("waiting: %w", err)
	}
	osubs, err := s.list(ctx, s.subj.workAll(true))
	if err != nil {
		return nil, fmt.Errorf("waiting: %w", err)
	}
	subs = append(subs, osubs...)
	out := map[relay.EndpointRef]int64{}
	for _, subj := range subs {
		org, ep, _, err := s.subj.parseWork(subj)
		if err != nil {
			continue
		}
		out[relay.EndpointRef{Org: org, Endpoint: ep}]++
	}
	return out, nil
}

// newWork is a new work item of st, a generation newer: written in the
// same batch as st, it replaces the old item.
func (s *Store) newWork(st *state) *nats.Msg {
	st.Gen++
	m := msg(s.subj.work(st.Org, st.Endpoint, st.ID, st.Ordered), nil, -1)
	m.Header.Set(hdrGen, strconv.FormatUint(st.Gen, 10))
	return m
}
