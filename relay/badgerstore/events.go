package badgerstore

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sidehook/sidehook/internal/store"
	"github.com/sidehook/sidehook/relay"
)

// Accept stores ev with its deliveries in one write, or returns the stored
// event and relay.ErrDuplicate when ev.Org already has ev.ID.
func (s *Store) Accept(ctx context.Context, ev *relay.Event, ds []*relay.Delivery) (*relay.Event, error) {
	if ev.Org == "" || ev.ID == "" {
		return nil, errors.New("badgerstore: accept: event without org or id")
	}
	eb, err := encodeEvent(ev)
	if err != nil {
		return nil, fmt.Errorf("badgerstore: accept: %w", err)
	}
	ops := make([]store.Op, 0, 2+3*len(ds))
	ops = append(ops, store.Set(eventKey(ev.Org, ev.ID), eb),
		store.Set(timeKey(eventTimePrefix(ev.Org), ev.ReceivedAt, ev.ID), []byte(ev.Type)))
	type queued struct {
		q   *queue
		at  time.Time
		rec *record
	}
	qs := make([]queued, 0, len(ds))
	for _, d := range ds {
		if err := relay.CheckAccepted(d); err != nil {
			return nil, fmt.Errorf("badgerstore: accept: %w", err)
		}
		cp := *d
		cp.Org = ev.Org
		ref := relay.EndpointRef{Org: ev.Org, Endpoint: d.Endpoint}
		final := relay.Final(cp.Status)
		var qk []byte // a final delivery is not queued
		if !final {
			qk = timeKey(queuePrefix(ref), dueKey(&cp), cp.ID)
		}
		rec, db, err := encodeDelivery(&cp, qk)
		if err != nil {
			return nil, fmt.Errorf("badgerstore: accept: %w", err)
		}
		ops = append(ops, store.Set(deliveryKey(ev.Org, cp.ID), db),
			store.Set(timeKey(deliveryTimePrefix(ev.Org), cp.CreatedAt, cp.ID), nil))
		if !final {
			ops = append(ops, store.Set(qk, dueValue(&cp)))
			qs = append(qs, queued{s.queue(ref), dueKey(&cp), rec})
		}
	}

	if !ev.Fresh {
		mu := s.stripe(ev.Org, ev.ID)
		mu.Lock()
		defer mu.Unlock()
		b, err := s.get("accept", eventKey(ev.Org, ev.ID))
		switch {
		case err == nil:
			prev, err := decodeEvent(b)
			if err != nil {
				return nil, fmt.Errorf("badgerstore: accept: %w", err)
			}
			return prev, relay.ErrDuplicate
		case !errors.Is(err, relay.ErrNotFound):
			return nil, err
		}
	}
	for _, q := range qs {
		// Hot before the write: once its entry is visible it may be taken,
		// and a Requeue right after the write replaces it.
		q.q.mu.Lock()
		q.q.beginWriteLocked(q.at)
		q.q.setHot(q.rec)
		q.q.pending[q.rec.ID] = true
		q.q.mu.Unlock()
	}
	err = s.write(ctx, "accept", ops...)
	for _, q := range qs {
		q.q.mu.Lock()
		q.q.endWriteLocked(q.at)
		delete(q.q.pending, q.rec.ID)
		if err != nil {
			// Maybe stored: its entry may be in the index.
			delete(q.q.hot, q.rec.ID)
			q.q.complete = false
		}
		q.q.mu.Unlock()
	}
	if err != nil {
		return nil, err
	}
	return ev, nil
}

// Event reads one event, or relay.ErrNotFound.
func (s *Store) Event(_ context.Context, org, id string) (*relay.Event, error) {
	b, err := s.get("event "+org+"/"+id, eventKey(org, id))
	if err != nil {
		return nil, err
	}
	ev, err := decodeEvent(b)
	if err != nil {
		return nil, fmt.Errorf("badgerstore: event %s/%s: %w", org, id, err)
	}
	return ev, nil
}

// Delivery reads one delivery, or relay.ErrNotFound.
func (s *Store) Delivery(_ context.Context, org, id string) (*relay.Delivery, error) {
	r, err := s.record(org, id)
	if err != nil {
		return nil, err
	}
	return &r.Delivery, nil
}

func (s *Store) record(org, id string) (*record, error) {
	b, err := s.get("delivery "+org+"/"+id, deliveryKey(org, id))
	if err != nil {
		return nil, err
	}
	r, err := decodeDelivery(b)
	if err != nil {
		return nil, fmt.Errorf("badgerstore: delivery %s/%s: %w", org, id, err)
	}
	return r, nil
}

// maxScan bounds the index entries one listing call visits: a filter that
// matches little answers a short page with a cursor rather than reading a
// whole organisation.
const maxScan = 5000

// listing is a reverse scan over a time index within a filter's bounds.
type listing struct {
	prefix       []byte
	since, until time.Time
	cursor       string
	limit        int
	bounded      bool // stop after maxScan entries
}

// list walks an index newest first and collects the items get accepts, up
// to the limit. Next is set when another accepted item follows the page
// (peek, when set, decides that without reading the item), or when the
// scan bound cut the walk short.
func list[T any](ctx context.Context, s *Store, l listing, get func(v []byte, id string) (T, bool, error), peek func(v []byte, id string) bool) (relay.Page[T], error) {
	var p relay.Page[T]
	opts := store.ScanOptions{Prefix: l.prefix, Reverse: true}
	if l.cursor != "" {
		t, id, err := decodeCursor(l.cursor)
		if err != nil {
			return p, err
		}
		opts.After = timeKey(l.prefix, t, id)
	}
	if !l.until.IsZero() {
		if b := below(l.prefix, l.until); opts.After == nil || bytes.Compare(b, opts.After) < 0 {
			opts.After = b
		}
	}
	scanned := 0
	var lastT, visitedT time.Time
	var lastID, visitedID string
	err := s.scan(ctx, "list", opts, func(k, v []byte) error {
		t, id, ok := splitTimeKey(l.prefix, k)
		if !ok {
			return nil
		}
		if !l.since.IsZero() && t.Before(l.since) {
			return store.ErrStop
		}
		if scanned++; l.bounded && scanned > maxScan {
			p.Next = encodeCursor(visitedT, visitedID)
			return store.ErrStop
		}
		visitedT, visitedID = t, id
		if l.limit > 0 && len(p.Items) == l.limit {
			var more bool
			if peek != nil {
				more = peek(v, id)
			} else {
				_, ok, err := get(v, id)
				if err != nil {
					return err
				}
				more = ok
			}
			if more {
				p.Next = encodeCursor(lastT, lastID)
				return store.ErrStop
			}
			return nil
		}
		item, ok, err := get(v, id)
		if err != nil || !ok {
			return err
		}
		p.Items = append(p.Items, item)
		lastT, lastID = t, id
		return nil
	})
	if err != nil {
		return relay.Page[T]{}, err
	}
	return p, nil
}

// Events lists an organisation's events, newest first.
func (s *Store) Events(ctx context.Context, org string, f relay.EventFilter) (relay.Page[*relay.Event], error) {
	typed := func(v []byte, _ string) bool { return f.Type == "" || string(v) == f.Type }
	return list(ctx, s, listing{prefix: eventTimePrefix(org), since: f.Since, until: f.Until, cursor: f.Cursor, limit: f.Limit},
		func(v []byte, id string) (*relay.Event, bool, error) {
			if !typed(v, id) {
				return nil, false, nil
			}
			ev, err := s.Event(ctx, org, id)
			if errors.Is(err, relay.ErrNotFound) {
				return nil, false, nil // purged meanwhile
			}
			return ev, err == nil, err
		}, typed)
}

// Deliveries lists an organisation's deliveries, newest first; see
// relay.Store.
func (s *Store) Deliveries(ctx context.Context, org string, f relay.DeliveryFilter) (relay.Page[*relay.Delivery], error) {
	leased := s.leased(org)
	match := func(d *relay.Delivery) bool {
		d.Attempting = leased[d.ID]
		return relay.ListedAs(f.Status, d.Status, d.Attempting) && (f.Endpoint == "" || d.Endpoint == f.Endpoint) &&
			(f.Type == "" || d.Type == f.Type)
	}
	if f.Status == relay.StatusDelivering {
		// A few leases, not the whole index, say which those are.
		ids := make([]string, 0, len(leased)) // none leased selects nothing
		for id := range leased {
			if f.IDs == nil || slices.Contains(f.IDs, id) {
				ids = append(ids, id)
			}
		}
		f.IDs = ids
	}
	if f.IDs != nil {
		return s.deliveriesByID(org, f, match)
	}
	return list(ctx, s, listing{prefix: deliveryTimePrefix(org), since: f.Since, until: f.Until, cursor: f.Cursor, limit: f.Limit, bounded: true},
		func(_ []byte, id string) (*relay.Delivery, bool, error) {
			r, err := s.record(org, id)
			if errors.Is(err, relay.ErrNotFound) {
				return nil, false, nil
			}
			if err != nil {
				return nil, false, err
			}
			return &r.Delivery, match(&r.Delivery), nil
		}, nil)
}

// deliveriesByID answers a filter with IDs by reading those deliveries.
func (s *Store) deliveriesByID(org string, f relay.DeliveryFilter, match func(*relay.Delivery) bool) (relay.Page[*relay.Delivery], error) {
	var after *relay.Delivery
	if f.Cursor != "" {
		t, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return relay.Page[*relay.Delivery]{}, err
		}
		after = &relay.Delivery{CreatedAt: t, ID: id}
	}
	newestFirst := func(a, b *relay.Delivery) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	}
	var all []*relay.Delivery
	seen := map[string]bool{}
	for _, id := range f.IDs {
		if seen[id] {
			continue
		}
		seen[id] = true
		r, err := s.record(org, id)
		if errors.Is(err, relay.ErrNotFound) {
			continue
		}
		if err != nil {
			return relay.Page[*relay.Delivery]{}, err
		}
		d := &r.Delivery
		if !match(d) || (!f.Since.IsZero() && d.CreatedAt.Before(f.Since)) || (!f.Until.IsZero() && d.CreatedAt.After(f.Until)) ||
			(after != nil && newestFirst(d, after) <= 0) {
			continue
		}
		all = append(all, d)
	}
	slices.SortFunc(all, newestFirst)
	var p relay.Page[*relay.Delivery]
	if f.Limit > 0 && len(all) > f.Limit {
		all = all[:f.Limit]
		last := all[len(all)-1]
		p.Next = encodeCursor(last.CreatedAt, last.ID)
	}
	p.Items = all
	return p, nil
}
