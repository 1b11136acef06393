package natsstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sidehook/sidehook/internal/units"
	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
)

// eventMeta is an event's meta as stored: the event and how many records
// its body takes (a body larger than the server's max payload is split).
type eventMeta struct {
	*relay.Event
	Parts int `json:"parts,omitempty"`
}

// headroom is what a record keeps free of the max payload for its subject,
// headers and meta length.
const headroom = 8 << 10

// BodyLimit is what the store holds of one event. Accept writes an event
// in one atomic batch of at most maxBatch records, each at most the
// servers' max payload less headroom: the body's records, the event's
// index entry and three per waiting delivery, the metadata in the first
// record. With relay.BodyLimitFanOut deliveries and a whole record for
// the metadata, the rest is the body's.
func (s *Store) BodyLimit() config.StoreLimit {
	size := max(s.nc.MaxPayload()-headroom, 0)
	records := maxBatch - 1 - 1 - 3*relay.BodyLimitFanOut
	return config.StoreLimit{
		Store:   "the NATS store",
		MaxBody: int64(records) * size,
		Why: fmt.Sprintf("%d records of the servers' max_payload of %s, less %s each, in the one atomic batch an event is written in, with room for %d deliveries; raise max_payload on the NATS servers for more",
			records, units.FormatSize(s.nc.MaxPayload()), units.FormatSize(headroom), relay.BodyLimitFanOut),
	}
}

// encodeEvent lays out an event as records: the first is a 4-byte meta
// length, the meta JSON and the body's start; the others the rest of the
// body. The body is never re-encoded.
func encodeEvent(ev *relay.Event, maxPayload int) ([][]byte, error) {
	c := *ev
	c.ReceivedAt = c.ReceivedAt.UTC()
	size := maxPayload - headroom
	meta, err := json.Marshal(eventMeta{Event: &c})
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	if len(meta)+4+len(ev.Body) > size {
		if len(meta)+4 >= size {
			// The metadata (mostly the list of deliveries) must fit the
			// first record, whatever the servers' max payload.
			return nil, fmt.Errorf("encode event: %w: its metadata (listing its %d deliveries) takes %d bytes, over the %s of one record (the NATS servers' max_payload of %s less %s)",
				relay.ErrTooLarge, len(ev.Deliveries), len(meta), units.FormatSize(int64(size)), units.FormatSize(int64(maxPayload)), units.FormatSize(headroom))
		}
		first := size - 4 - len(meta) - 16 // room for the parts field
		parts := 1 + (len(ev.Body)-first+size-1)/size
		if meta, err = json.Marshal(eventMeta{Event: &c, Parts: parts}); err != nil {
			return nil, fmt.Errorf("encode event: %w", err)
		}
	}
	b := make([]byte, 4, 4+len(meta)+len(ev.Body))
	binary.BigEndian.PutUint32(b, uint32(len(meta)))
	b = append(b, meta...)
	first := min(len(ev.Body), size-len(b))
	out := [][]byte{append(b, ev.Body[:first]...)}
	for rest := ev.Body[first:]; len(rest) > 0; {
		n := min(len(rest), size)
		out = append(out, rest[:n])
		rest = rest[n:]
	}
	return out, nil
}

// decodeEvent reads the first record; more reads the others by number.
func decodeEvent(b []byte, more func(i int) ([]byte, error)) (*relay.Event, error) {
	if len(b) < 4 {
		return nil, errors.New("decode event: short record")
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, errors.New("decode event: bad meta length")
	}
	var ev relay.Event
	m := eventMeta{Event: &ev}
	if err := json.Unmarshal(b[4:4+n], &m); err != nil {
		return nil, fmt.Errorf("decode event: %w", err)
	}
	ev.ReceivedAt = ev.ReceivedAt.UTC()
	ev.Body = b[4+n:]
	if m.Parts > 1 {
		body := slices.Clone(ev.Body)
		for i := 1; i < m.Parts; i++ {
			p, err := more(i)
			if err != nil {
				return nil, fmt.Errorf("decode event: part %d: %w", i, err)
			}
			body = append(body, p...)
		}
		ev.Body = body
	}
	return &ev, nil
}

// Accept writes the event, its deliveries, their indexes and work items in
// one atomic batch. The event's subject must be empty (expected last
// subject sequence 0) and its message id org/id must be new: a second
// Accept of the id, on any relay, fails and returns the first.
func (s *Store) Accept(ctx context.Context, ev *relay.Event, ds []*relay.Delivery) (*relay.Event, error) {
	if err := s.ready(); err != nil {
		return nil, fmt.Errorf("accept %s: %w", ev.ID, err)
	}
	for _, d := range ds {
		if err := relay.CheckAccepted(d); err != nil {
			return nil, fmt.Errorf("accept %s: %w", ev.ID, err)
		}
	}
	if stored, err := s.Event(ctx, ev.Org, ev.ID); err == nil {
		return stored, relay.ErrDuplicate
	} else if !errors.Is(err, relay.ErrNotFound) {
		return nil, fmt.Errorf("accept %s: %w", ev.ID, err)
	}
	recs, err := encodeEvent(ev, int(s.nc.MaxPayload()))
	if err != nil {
		return nil, fmt.Errorf("accept %s: %w", ev.ID, err)
	}
	// Counted before any consumer is made for the deliveries: an event
	// one batch cannot hold is refused as it is, never half prepared.
	if n := acceptRecords(len(recs), ds); n > maxBatch {
		return nil, fmt.Errorf("accept %s: %w", ev.ID, overABatch(n, len(recs), len(ds)))
	}
	em := msg(s.subj.event(ev.Org, ev.ID), recs[0], 0)
	em.Header.Set(nats.MsgIdHdr, ev.Org+"/"+ev.ID)
	msgs := []*nats.Msg{em, msg(s.subj.eventIndex(ev.Org, ev.ReceivedAt, ev.ID), nil, -1)}
	for i, r := range recs[1:] {
		msgs = append(msgs, msg(s.subj.eventPart(ev.Org, ev.ID, i+1), r, -1))
	}
	wctx, cancel := s.writeCtx(ctx)
	defer cancel()
	type queuedAt struct {
		ref relay.EndpointRef
		i   int // in msgs
	}
	var queued []queuedAt
	for _, d := range ds {
		st := &state{Delivery: *d}
		b, err := json.Marshal(st)
		if err != nil {
			return nil, fmt.Errorf("accept %s: encode delivery: %w", ev.ID, err)
		}
		msgs = append(msgs,
			msg(s.subj.delivery(d.Org, d.ID), b, -1),
			msg(s.subj.deliveryIndex(d.Org, d.CreatedAt, d.ID), nil, -1))
		if !relay.Final(d.Status) {
			if !d.Ordered {
				ref := relay.EndpointRef{Org: d.Org, Endpoint: d.Endpoint}
				if _, _, err := s.ensureConsumer(wctx, ref); err != nil {
					return nil, fmt.Errorf("accept %s: %w", ev.ID, err)
				}
				queued = append(queued, queuedAt{ref, len(msgs)})
			}
			msgs = append(msgs, msg(s.subj.work(d.Org, d.Endpoint, d.ID, d.Ordered), nil, -1))
		}
	}
	last, err := s.publish(wctx, msgs)
	if err != nil {
		// A duplicate (another relay won) is told by reading the winner.
		if stored, rerr := s.Event(wctx, ev.Org, ev.ID); rerr == nil {
			return stored, relay.ErrDuplicate
		}
		return nil, fmt.Errorf("accept %s: %w", ev.ID, err)
	}
	// A batch is stored in one run of sequences, ending at last.
	for _, q := range queued {
		s.wrote(q.ref, last-uint64(len(msgs)-1-q.i))
	}
	return ev, nil
}

// acceptRecords is how many records Accept writes for an event whose body
// takes parts records: those, the event's index entry, and for each
// delivery its record, its index entry and, while it waits, its work item.
func acceptRecords(parts int, ds []*relay.Delivery) int {
	n := parts + 1
	for _, d := range ds {
		n += 2
		if !relay.Final(d.Status) {
			n++
		}
	}
	return n
}

// overABatch is the refusal of an event that takes n records, its body
// parts of them, with deliveries deliveries: it says what one atomic batch
// holds, so exactly what an event may have. With a small body, about 330
// deliveries (three records each while they wait).
func overABatch(n, parts, deliveries int) error {
	room := (maxBatch - parts - 1) / 3 // the deliveries, all waiting, this body leaves room for
	if room < 1 {
		return fmt.Errorf("%w: %d records: the body alone takes more than one atomic batch of %d records holds beside a delivery (%d records of the NATS servers' max_payload less %s)",
			relay.ErrTooLarge, n, maxBatch, parts, units.FormatSize(headroom))
	}
	return fmt.Errorf("%w: %d records (the body in %d, the event's index in 1, %d deliveries in 3 each), more than one atomic batch of %d holds: with this body an event has at most %d deliveries",
		relay.ErrTooLarge, n, parts, deliveries, maxBatch, room)
}

// Event reads one event.
func (s *Store) Event(ctx context.Context, org, id string) (*relay.Event, error) {
	m, err := s.get(ctx, s.subj.event(org, id))
	if err != nil {
		return nil, fmt.Errorf("event %s: %w", id, err)
	}
	if m == nil {
		return nil, fmt.Errorf("event %s: %w", id, relay.ErrNotFound)
	}
	return decodeEvent(m.Data, func(i int) ([]byte, error) {
		p, err := s.get(ctx, s.subj.eventPart(org, id, i))
		if err != nil {
			return nil, err
		}
		if p == nil {
			return nil, relay.ErrNotFound
		}
		return p.Data, nil
	})
}

// indexEntry is one index subject's last token, split.
type indexEntry struct {
	key string // the token: time then id; cursors are keys
	at  time.Time
	id  string
}

// index lists an index newest first (by time, then id).
func (s *Store) index(ctx context.Context, filter string) ([]indexEntry, error) {
	subs, err := s.list(ctx, filter)
	if err != nil {
		return nil, err
	}
	out := make([]indexEntry, 0, len(subs))
	for _, subj := range subs {
		key := lastToken(subj)
		at, t, err := splitStamped(key)
		if err != nil {
			continue
		}
		id, err := untok(t)
		if err != nil {
			continue
		}
		out = append(out, indexEntry{key: key, at: at, id: id})
	}
	slices.SortFunc(out, func(a, b indexEntry) int {
		if c := a.at.Compare(b.at); c != 0 {
			return -c
		}
		return -strings.Compare(a.id, b.id)
	})
	return out, nil
}

// Cursors are "n1." + the index key of the last item shown.
const cursorPrefix = "n1."

// parseCursor reads a cursor, which comes back from an API client: only
// in the one form this store writes (stamp and tok are canonical), so a
// variant that reads as the same place (base64 with stray trailing bits,
// a plain id base64-encoded, upper-case hex) is refused as ErrBadCursor
// rather than read as a cursor this store made.
func parseCursor(c string) (time.Time, string, error) {
	if c == "" {
		return time.Time{}, "", nil
	}
	key, ok := strings.CutPrefix(c, cursorPrefix)
	if !ok {
		return time.Time{}, "", fmt.Errorf("cursor %q: %w", c, relay.ErrBadCursor)
	}
	at, t, err := splitStamped(key)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("cursor %q: %w", c, relay.ErrBadCursor)
	}
	id, err := untok(t)
	if err != nil || stamp(at)+tok(id) != key {
		return time.Time{}, "", fmt.Errorf("cursor %q: %w", c, relay.ErrBadCursor)
	}
	return at, id, nil
}

// after reports whether e comes after the cursor in newest-first order.
func after(e indexEntry, at time.Time, id string) bool {
	if c := e.at.Compare(at); c != 0 {
		return c < 0
	}
	return e.id < id
}

// page walks newest-first entries from the cursor, keeps those load
// accepts, and stops at limit (0: no limit), with a cursor when one more
// would match.
func page[T any](ctx context.Context, entries []indexEntry, cursor string, limit int, since, until time.Time,
	load func(context.Context, indexEntry) (T, bool, error)) (relay.Page[T], error) {
	var p relay.Page[T]
	cat, cid, err := parseCursor(cursor)
	if err != nil {
		return p, err
	}
	var last indexEntry
	for _, e := range entries {
		if cursor != "" && !after(e, cat, cid) {
			continue
		}
		// Index times are stamps at nanosecond precision, as stored.
		if !until.IsZero() && e.at.After(until) {
			continue
		}
		if !since.IsZero() && e.at.Before(since) {
			break
		}
		v, ok, err := load(ctx, e)
		if err != nil {
			return p, err
		}
		if !ok {
			continue
		}
		if limit > 0 && len(p.Items) == limit {
			p.Next = cursorPrefix + last.key
			return p, nil
		}
		p.Items = append(p.Items, v)
		last = e
	}
	return p, nil
}

// Events lists an organisation's events, newest first.
func (s *Store) Events(ctx context.Context, org string, f relay.EventFilter) (relay.Page[*relay.Event], error) {
	entries, err := s.index(ctx, s.subj.eventIndexOrg(org))
	if err != nil {
		return relay.Page[*relay.Event]{}, fmt.Errorf("events: %w", err)
	}
	p, err := page(ctx, entries, f.Cursor, f.Limit, f.Since, f.Until, func(ctx context.Context, e indexEntry) (*relay.Event, bool, error) {
		ev, err := s.Event(ctx, org, e.id)
		if errors.Is(err, relay.ErrNotFound) {
			return nil, false, nil // purged between the listing and now
		}
		if err != nil {
			return nil, false, err
		}
		return ev, f.Type == "" || ev.Type == f.Type, nil
	})
	if err != nil {
		return p, fmt.Errorf("events: %w", err)
	}
	return p, nil
}

// Purge deletes events received before cutoff whose deliveries are all
// final, with their deliveries, indexes and work items, oldest first. The
// event's index goes last, so a purge cut short is finished by the next
// one (see purgeOne).
func (s *Store) Purge(ctx context.Context, cutoff time.Time) (int, error) {
	subs, err := s.list(ctx, s.subj.eventIndexAll())
	if err != nil {
		return 0, fmt.Errorf("purge: %w", err)
	}
	type old struct {
		subj string
		at   time.Time
	}
	var olds []old
	for _, subj := range subs {
		at, _, err := splitStamped(lastToken(subj))
		if err == nil && at.Before(cutoff) {
			olds = append(olds, old{subj, at})
		}
	}
	slices.SortFunc(olds, func(a, b old) int { return a.at.Compare(b.at) })
	n := 0
	for _, o := range olds {
		if ctx.Err() != nil {
			return n, nil
		}
		deleted, err := s.purgeOne(ctx, o.subj)
		if err != nil {
			return n, fmt.Errorf("purge: %w", err)
		}
		if deleted {
			n++
		}
	}
	return n, nil
}

func (s *Store) purgeOne(ctx context.Context, indexSubj string) (bool, error) {
	parts := strings.Split(indexSubj, ".")
	org, err := untok(parts[len(parts)-2])
	if err != nil {
		return false, nil
	}
	_, t, err := splitStamped(parts[len(parts)-1])
	if err != nil {
		return false, nil
	}
	id, err := untok(t)
	if err != nil {
		return false, nil
	}
	ev, err := s.Event(ctx, org, id)
	if errors.Is(err, relay.ErrNotFound) {
		return false, s.remove(ctx, indexSubj) // left by a purge cut short
	}
	if err != nil {
		return false, err
	}
	type read struct {
		st  *state
		rev uint64
	}
	var finals []read
	for _, ref := range ev.Deliveries {
		st, rev, err := s.state(ctx, org, ref.ID)
		if errors.Is(err, relay.ErrNotFound) {
			// Deleted by a purge that stopped short, or that left the
			// event for another delivery requeued meanwhile: its index
			// went before it, but its work item may be left.
			for _, ordered := range []bool{false, true} {
				if err := s.deleteWork(ctx, s.subj.work(org, ref.Endpoint, ref.ID, ordered)); err != nil {
					return false, err
				}
			}
			continue
		}
		if err != nil {
			return false, err
		}
		if !relay.Final(st.Status) {
			return false, nil
		}
		finals = append(finals, read{st, rev})
	}
	// Each delivery's list index goes before its state: only the state
	// names the index (by its creation time), so an index left behind by
	// a purge cut short, or stopped by a Requeue of another delivery,
	// could never be found again. Both are deleted only as read: the state
	// up to its revision, the index up to the sequence after it, where
	// Accept writes it. A Requeue since (on any relay) wrote a newer state
	// and then the index again (see Requeue), both above those: they stay,
	// and so does the event. A Requeue after finds no state, or fails its
	// compare-and-set. Only then are the work items deleted: no write
	// makes a new one now.
	for _, f := range finals {
		if err := s.removeBefore(ctx, s.subj.deliveryIndex(org, f.st.CreatedAt, f.st.ID), f.rev+2); err != nil {
			return false, err
		}
		subj := s.subj.delivery(org, f.st.ID)
		if err := s.removeBefore(ctx, subj, f.rev+1); err != nil {
			return false, err
		}
		if m, err := s.get(ctx, subj); err != nil || m != nil {
			return false, err // changed since read: pending again, or unsure
		}
	}
	for _, f := range finals {
		if err := s.deleteWork(ctx, s.subj.work(org, f.st.Endpoint, f.st.ID, f.st.Ordered)); err != nil {
			return false, err
		}
	}
	return true, s.remove(ctx, s.subj.eventParts(org, id), s.subj.event(org, id), indexSubj)
}
