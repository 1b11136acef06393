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

	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/relay"
)

// state is a delivery's record: the delivery as callers see it, and what
// the lease needs. Taking a delivery does not change what callers see.
type state struct {
	relay.Delivery
	// Leased: a relay took it and has not recorded it yet (or died; the
	// consumer then offers it again after AckWait).
	Leased bool `json:"leased,omitempty"`
	// Holder is the store (relay) that leased it. Two may have leased it:
	// one whose lease lapsed, its attempt still under way, and the one
	// that retook it; only the second may end the lease (see heldBy).
	Holder string `json:"holder,omitempty"`
	// RequeueAt: Requeue ran during the lease; the lease's end makes the
	// delivery pending and due then.
	RequeueAt *time.Time `json:"requeue_at,omitempty"`
	// Gen is the generation of the delivery's current work item (its
	// header): an older copy is never leased.
	Gen uint64 `json:"gen,omitempty"`
	// Retry: the delivery waits outside its consumer, on a retry item
	// named by NextAttemptAt (see retryItem), until a Take finds it due.
	Retry bool `json:"retry,omitempty"`
}

// requeued sets d pending and due at at, its schedule starting again.
func requeued(d *relay.Delivery, at time.Time) {
	at = at.UTC()
	d.Status, d.NextAttemptAt, d.Base, d.Reason = relay.StatusPending, &at, len(d.Attempts), ""
}

// settle ends what a lease left on the record: a pending requeue applies.
func (st *state) settle() {
	if st.RequeueAt != nil {
		requeued(&st.Delivery, *st.RequeueAt)
	}
	st.Leased, st.Holder, st.RequeueAt = false, "", nil
}

// heldBy reports whether the store id holds the delivery's lease. A
// record written before holders were named names none: it is taken as
// id's, as every lease was before.
func (st *state) heldBy(id string) bool {
	return st.Leased && (st.Holder == "" || st.Holder == id)
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
	d.Attempting = st.Leased
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

// Deliveries lists an organisation's deliveries, newest first. A Status
// of delivering selects those some relay holds leased, not final: the
// store knows of every relay's attempts, so the list is the same from
// each, as SPEC §9 asks of the API.
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
		ok := st.hasStatus(f.Status) &&
			(f.Endpoint == "" || st.Endpoint == f.Endpoint) &&
			(f.Type == "" || st.Type == f.Type)
		return st.out(), ok, nil
	})
	if err != nil {
		return p, fmt.Errorf("deliveries: %w", err)
	}
	return p, nil
}

// hasStatus reports whether the delivery is listed under status (see
// relay.ListedAs): its stored status is never delivering, a lease, any
// relay's, makes it so.
func (st *state) hasStatus(status string) bool { return relay.ListedAs(status, st.Status, st.Leased) }

// Requeue makes a delivery pending and due at now, its schedule starting
// again. A delivery that is not leased gets a new work item in the same
// write (it has none when final; a waiting one's retry item goes stale);
// a leased one is marked, and the lease's end (Record, Release, or a Take
// after it timed out) applies the mark. A final one gets its list index
// again in the same write, right after the state: a Purge that read it
// final may have deleted the index already (see purgeOne), and keeps one
// written after the state it read.
func (s *Store) Requeue(ctx context.Context, org, id string, now time.Time) (*relay.Delivery, error) {
	ctx, cancel := s.writeCtx(ctx)
	defer cancel()
	for {
		st, rev, err := s.state(ctx, org, id)
		if err != nil {
			return nil, fmt.Errorf("requeue: %w", err)
		}
		view := st.out()
		requeued(view, now)
		stale := s.retryOf(st)
		var extra []*nats.Msg
		if relay.Final(st.Status) {
			extra = append(extra, msg(s.subj.deliveryIndex(org, st.CreatedAt, id), nil, -1))
		}
		switch {
		case st.Leased:
			at := now.UTC()
			st.RequeueAt = &at
		case relay.Final(st.Status) || !st.Ordered:
			if !st.Ordered {
				if _, _, err := s.ensureConsumer(ctx, relay.EndpointRef{Org: org, Endpoint: st.Endpoint}); err != nil {
					return nil, fmt.Errorf("requeue: %w", err)
				}
			}
			st.Delivery, st.Retry = *view, false
			extra = append(extra, s.newWork(st))
		default:
			st.Delivery = *view
		}
		seq, err := s.putState(ctx, st, rev, extra...)
		if casConflict(err) {
			continue // changed since read: read again
		}
		if err != nil {
			return nil, fmt.Errorf("requeue: %w", err)
		}
		if !st.Leased {
			ref := relay.EndpointRef{Org: org, Endpoint: st.Endpoint}
			if !st.Ordered {
				s.wrote(ref, seq) // the work item, last in the batch
			}
			s.dropRetry(ctx, stale, seq)
			s.notify(ref)
		}
		return view, nil
	}
}

// dropRetry deletes a retry item that a write at seq made stale (a Take
// would delete it too, later).
func (s *Store) dropRetry(ctx context.Context, subject string, seq uint64) {
	if subject == "" {
		return
	}
	if org, ep, _, _, err := s.subj.parseRetry(subject); err == nil {
		s.forgetRetries(relay.EndpointRef{Org: org, Endpoint: ep})
	}
	if err := s.removeBefore(ctx, subject, seq); err != nil {
		s.log.Debug().Err(err).Str("subject", subject).Msg("delete a stale retry item")
	}
}

// Expedite makes the endpoint's failed deliveries of the event types
// types takes that wait for a later retry due at now: an unordered one leaves its retry item for a new work
// item, at the end of the consumer's queue; an ordered one keeps its place,
// so an ordered endpoint keeps its order.
func (s *Store) Expedite(ctx context.Context, ref relay.EndpointRef, now time.Time, types []string) (int, error) {
	retries, err := s.list(ctx, s.subj.retryOf(ref.Org, ref.Endpoint))
	if err != nil {
		return 0, fmt.Errorf("expedite: %w", err)
	}
	subs, err := s.list(ctx, s.subj.workOf(ref.Org, ref.Endpoint, true))
	if err != nil {
		return 0, fmt.Errorf("expedite: %w", err)
	}
	ids := make([]string, 0, len(retries)+len(subs))
	for _, subj := range retries {
		if _, _, due, id, err := s.subj.parseRetry(subj); err == nil && due.After(now) {
			ids = append(ids, id)
		}
	}
	for _, subj := range subs {
		if id, err := untok(lastToken(subj)); err == nil {
			ids = append(ids, id)
		}
	}
	if len(retries) > 0 {
		if _, _, err := s.ensureConsumer(ctx, ref); err != nil {
			return 0, fmt.Errorf("expedite: %w", err)
		}
	}
	ctx, cancel := s.writeCtx(ctx)
	defer cancel()
	n := 0
	for _, id := range ids {
		for {
			st, rev, err := s.state(ctx, ref.Org, id)
			if errors.Is(err, relay.ErrNotFound) {
				break
			}
			if err != nil {
				return n, fmt.Errorf("expedite: %w", err)
			}
			if st.Leased || st.Status != relay.StatusFailed || !st.due().After(now) || !st.Ordered && !st.Retry ||
				!event.Takes(types, event.Type(st.Type)) {
				break
			}
			stale := s.retryOf(st)
			now := now.UTC()
			st.NextAttemptAt = &now
			var extra []*nats.Msg
			if !st.Ordered {
				st.Retry = false
				extra = append(extra, s.newWork(st))
			}
			seq, err := s.putState(ctx, st, rev, extra...)
			if casConflict(err) {
				continue
			}
			if err != nil {
				return n, fmt.Errorf("expedite: %w", err)
			}
			if !st.Ordered {
				s.wrote(ref, seq) // the work item, last in the batch
			}
			s.dropRetry(ctx, stale, seq)
			n++
			break
		}
	}
	if n > 0 {
		s.notify(ref)
	}
	return n, nil
}

// Waiting counts each endpoint's deliveries that have a work or retry
// item: those not final. A delivery caught between two items (a write cut
// short) is counted once.
func (s *Store) Waiting(ctx context.Context) (map[relay.EndpointRef]int64, error) {
	type key struct {
		ref relay.EndpointRef
		id  string
	}
	seen := map[key]bool{}
	for _, filter := range []string{s.subj.workAll(false), s.subj.workAll(true), s.subj.retryAll()} {
		subs, err := s.list(ctx, filter)
		if err != nil {
			return nil, fmt.Errorf("waiting: %w", err)
		}
		for _, subj := range subs {
			org, ep, id, err := s.subj.parseWork(subj)
			if err != nil {
				if org, ep, _, id, err = s.subj.parseRetry(subj); err != nil {
					continue
				}
			}
			seen[key{relay.EndpointRef{Org: org, Endpoint: ep}, id}] = true
		}
	}
	out := map[relay.EndpointRef]int64{}
	for k := range seen {
		out[k.ref]++
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
