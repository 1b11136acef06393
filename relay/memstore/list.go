package memstore

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/sidehook/sidehook/relay"
)

// A cursor is the place of the last item of a page, (time, id), base64url
// encoded: 8 bytes of big-endian unix nanoseconds, then the id.
func encodeCursor(e listEntry) string {
	b := binary.BigEndian.AppendUint64(nil, uint64(e.at.UnixNano()))
	return base64.RawURLEncoding.EncodeToString(append(b, e.id...))
}

func decodeCursor(s string) (*listEntry, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 9 {
		return nil, fmt.Errorf("memstore: cursor %q: %w", s, relay.ErrBadCursor)
	}
	return &listEntry{at: time.Unix(0, int64(binary.BigEndian.Uint64(b))).UTC(), id: string(b[8:])}, nil
}

// window bounds a listing: entries strictly before cursor (when set), with
// times in [since, until] (zero: unbounded).
type window struct {
	since, until time.Time
	cursor       *listEntry
	limit        int
}

// walk visits list newest first within w and collects what keep accepts,
// up to the limit; Next is set only when another accepted entry follows.
func walk[T any](list []listEntry, w window, keep func(id string) (T, bool)) relay.Page[T] {
	end := len(list)
	if w.cursor != nil {
		end, _ = slices.BinarySearchFunc(list, *w.cursor, compareList)
	}
	if !w.until.IsZero() {
		// First entry after until: every id sorts above "" at the same time.
		i, _ := slices.BinarySearchFunc(list, w.until, func(e listEntry, t time.Time) int {
			if e.at.After(t) {
				return 1
			}
			return -1
		})
		end = min(end, i)
	}
	var p relay.Page[T]
	var last listEntry
	for i := end - 1; i >= 0; i-- {
		e := list[i]
		if !w.since.IsZero() && e.at.Before(w.since) {
			break
		}
		item, ok := keep(e.id)
		if !ok {
			continue
		}
		if w.limit > 0 && len(p.Items) == w.limit {
			p.Next = encodeCursor(last)
			break
		}
		p.Items = append(p.Items, item)
		last = e
	}
	return p
}

// Events lists an organisation's events, newest first.
func (s *Store) Events(_ context.Context, orgID string, f relay.EventFilter) (relay.Page[*relay.Event], error) {
	cur, err := decodeCursor(f.Cursor)
	if err != nil {
		return relay.Page[*relay.Event]{}, err
	}
	if err := s.lock(); err != nil {
		return relay.Page[*relay.Event]{}, err
	}
	defer s.mu.Unlock()
	o := s.orgs[orgID]
	if o == nil {
		return relay.Page[*relay.Event]{}, nil
	}
	w := window{since: f.Since, until: f.Until, cursor: cur, limit: f.Limit}
	return walk(o.eventList, w, func(id string) (*relay.Event, bool) {
		ev := o.events[id]
		if f.Type != "" && ev.Type != f.Type {
			return nil, false
		}
		return cloneEvent(ev), true
	}), nil
}

// Deliveries lists an organisation's deliveries, newest first; see
// relay.Store.
func (s *Store) Deliveries(_ context.Context, orgID string, f relay.DeliveryFilter) (relay.Page[*relay.Delivery], error) {
	cur, err := decodeCursor(f.Cursor)
	if err != nil {
		return relay.Page[*relay.Delivery]{}, err
	}
	if err := s.lock(); err != nil {
		return relay.Page[*relay.Delivery]{}, err
	}
	defer s.mu.Unlock()
	o := s.orgs[orgID]
	if o == nil {
		return relay.Page[*relay.Delivery]{}, nil
	}
	leased := func(id string) bool {
		sd := o.deliveries[id]
		return sd != nil && s.queues[relay.EndpointRef{Org: orgID, Endpoint: sd.d.Endpoint}].isLeased(id)
	}
	if f.Status == relay.StatusDelivering {
		// A few leases, not the whole list, say which those are.
		ids := []string{} // none leased selects nothing
		for ref, q := range s.queues {
			if ref.Org != orgID {
				continue
			}
			for id := range q.leased {
				if f.IDs == nil || slices.Contains(f.IDs, id) {
					ids = append(ids, id)
				}
			}
		}
		f.IDs = ids
	}
	list := o.delivList
	if f.IDs != nil {
		list = make([]listEntry, 0, len(f.IDs))
		for _, id := range f.IDs {
			if sd := o.deliveries[id]; sd != nil {
				list = append(list, listEntry{sd.d.CreatedAt, id})
			}
		}
		slices.SortFunc(list, compareList)
		list = slices.CompactFunc(list, func(a, b listEntry) bool { return compareList(a, b) == 0 })
	}
	w := window{since: f.Since, until: f.Until, cursor: cur, limit: f.Limit}
	return walk(list, w, func(id string) (*relay.Delivery, bool) {
		d := o.deliveries[id].d
		attempting := leased(id)
		if !relay.ListedAs(f.Status, d.Status, attempting) || (f.Endpoint != "" && d.Endpoint != f.Endpoint) ||
			(f.Type != "" && d.Type != f.Type) {
			return nil, false
		}
		cp := cloneDelivery(d)
		cp.Attempting = attempting
		return cp, true
	}), nil
}

// cloneEvent copies an event deeply, with its times in UTC.
func cloneEvent(ev *relay.Event) *relay.Event {
	cp := *ev
	cp.ReceivedAt = ev.ReceivedAt.UTC()
	cp.Deliveries = slices.Clone(ev.Deliveries)
	cp.Body = slices.Clone(ev.Body)
	return &cp
}

// cloneDelivery copies a delivery deeply, with its times in UTC.
func cloneDelivery(d *relay.Delivery) *relay.Delivery {
	cp := *d
	cp.CreatedAt = d.CreatedAt.UTC()
	if d.NextAttemptAt != nil {
		t := d.NextAttemptAt.UTC()
		cp.NextAttemptAt = &t
	}
	if d.Attempts != nil {
		cp.Attempts = make([]relay.Attempt, len(d.Attempts))
		for i, a := range d.Attempts {
			a.At = a.At.UTC()
			a.Request = a.Request.Clone()
			cp.Attempts[i] = a
		}
	}
	return &cp
}
