package badgerstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sidehook/sidehook/internal/store"
	"github.com/sidehook/sidehook/relay"
)

// Endpoints returns an organisation's API endpoints and disabled marks, by
// id.
func (s *Store) Endpoints(ctx context.Context, org string) ([]relay.StoredEndpoint, error) {
	byID := map[string]*relay.StoredEndpoint{}
	get := func(id string) *relay.StoredEndpoint {
		if byID[id] == nil {
			byID[id] = &relay.StoredEndpoint{ID: id}
		}
		return byID[id]
	}
	docs := []byte(pfxEndpoint + org + "/")
	err := s.scan(ctx, "endpoints", store.ScanOptions{Prefix: docs}, func(k, v []byte) error {
		get(string(k[len(docs):])).Doc = bytes.Clone(v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	marks := []byte(pfxDisabled + org + "/")
	err = s.scan(ctx, "endpoints", store.ScanOptions{Prefix: marks}, func(k, v []byte) error {
		get(string(k[len(marks):])).Disabled = string(v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]relay.StoredEndpoint, 0, len(byID))
	for _, e := range byID {
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b relay.StoredEndpoint) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// PutEndpoint stores an API endpoint's document and clears its mark.
func (s *Store) PutEndpoint(ctx context.Context, org, id string, doc []byte) error {
	return s.write(ctx, "put endpoint", store.Set(endpointKey(org, id), doc), store.Delete(disabledKey(org, id)))
}

// SetDisabled sets or (reason "") clears an endpoint's disabled mark.
func (s *Store) SetDisabled(ctx context.Context, org, id, reason string) error {
	if reason == "" {
		return s.write(ctx, "set disabled", store.Delete(disabledKey(org, id)))
	}
	return s.write(ctx, "set disabled", store.Set(disabledKey(org, id), []byte(reason)))
}

// DeleteEndpoint removes an API endpoint and its mark, then ends its
// waiting deliveries with reason (EndWaiting).
func (s *Store) DeleteEndpoint(ctx context.Context, org, id, reason string, ended func([]*relay.Delivery)) error {
	if err := s.write(ctx, "delete endpoint", store.Delete(endpointKey(org, id)), store.Delete(disabledKey(org, id))); err != nil {
		return err
	}
	_, err := s.EndWaiting(ctx, relay.EndpointRef{Org: org, Endpoint: id}, reason, ended)
	return err
}

// endChunk bounds the deliveries one write of EndWaiting ends, so that no
// write is too large for one Badger transaction.
const endChunk = 256

// EndWaiting makes every delivery in the endpoint's due index dead with
// reason and empties the index, in chunks: each chunk writes the records
// and deletes their entries at once, so a chunk cut short leaves its
// deliveries waiting as they were, for a later call. Leases are marked
// first, so the Record of an attempt in flight keeps the delivery out of
// the queue. It holds the queue's take and delete locks: no Take leases,
// and no Record writes, what it is ending. ended is told of each chunk's
// deliveries once the chunk is written.
func (s *Store) EndWaiting(ctx context.Context, ref relay.EndpointRef, reason string, ended func([]*relay.Delivery)) (int, error) {
	if err := s.check("end waiting"); err != nil {
		return 0, err
	}
	ctx = context.WithoutCancel(ctx)
	q := s.queue(ref)
	q.takeMu.Lock()
	defer q.takeMu.Unlock()
	q.delMu.Lock()
	defer q.delMu.Unlock()
	q.mu.Lock()
	for _, l := range q.leases {
		if !l.orphan {
			l.orphan, l.reason = true, reason
		}
	}
	clear(q.requeue)
	q.mu.Unlock()
	n := 0
	var after []byte
	for {
		var keys [][]byte
		err := s.scan(ctx, "end waiting", store.ScanOptions{Prefix: q.prefix, After: after, Limit: endChunk, KeysOnly: true},
			func(k, _ []byte) error {
				keys = append(keys, bytes.Clone(k))
				return nil
			})
		if err != nil || len(keys) == 0 {
			return n, err
		}
		ds, err := s.endChunk(ctx, q, keys, reason)
		n += len(ds)
		if ended != nil && len(ds) > 0 {
			ended(ds)
		}
		if err != nil || len(keys) < endChunk {
			return n, err
		}
		after = keys[len(keys)-1]
	}
}

// endChunk ends the deliveries of some due-index entries and deletes the
// entries, in one write, and returns the deliveries it ended.
func (s *Store) endChunk(ctx context.Context, q *queue, keys [][]byte, reason string) ([]*relay.Delivery, error) {
	ops := make([]store.Op, 0, 2*len(keys))
	var ds []*relay.Delivery
	for _, k := range keys {
		ops = append(ops, store.Delete(k))
		_, id, ok := splitTimeKey(q.prefix, k)
		if !ok {
			continue
		}
		r, err := s.record(q.ref.Org, id)
		if errors.Is(err, relay.ErrNotFound) {
			continue // a stale entry
		}
		if err != nil {
			return nil, fmt.Errorf("badgerstore: end waiting: %w", err)
		}
		if relay.Final(r.Status) || !bytes.Equal(r.QKey, k) {
			continue // a stale entry: the record is elsewhere or done
		}
		d := r.Delivery
		d.Status, d.NextAttemptAt, d.Reason = relay.StatusDead, nil, reason
		_, b, err := encodeDelivery(&d, nil)
		if err != nil {
			return nil, err
		}
		ops = append(ops, store.Set(deliveryKey(q.ref.Org, id), b))
		ds = append(ds, &d)
	}
	if err := s.write(ctx, "end waiting", ops...); err != nil {
		return nil, err
	}
	q.mu.Lock()
	for _, d := range ds {
		delete(q.hot, d.ID)
	}
	q.complete = false
	q.mu.Unlock()
	return ds, nil
}

// Token returns the organisation's Webio token, "" when none.
func (s *Store) Token(_ context.Context, org string) (string, error) {
	b, err := s.get("token", tokenKey(org))
	if errors.Is(err, relay.ErrNotFound) {
		return "", nil
	}
	return string(b), err
}

// PutToken stores the organisation's Webio token.
func (s *Store) PutToken(ctx context.Context, org, token string) error {
	return s.write(ctx, "put token", store.Set(tokenKey(org), []byte(token)))
}

// SigningKeys returns every signing key document by name.
func (s *Store) SigningKeys(ctx context.Context) (map[string][]byte, error) {
	out := make(map[string][]byte)
	err := s.scan(ctx, "signing keys", store.ScanOptions{Prefix: []byte(pfxSigningKey)}, func(k, v []byte) error {
		out[string(k[len(pfxSigningKey):])] = bytes.Clone(v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CreateSigningKey stores doc under name unless name exists, and returns
// the stored document.
func (s *Store) CreateSigningKey(ctx context.Context, name string, doc []byte) ([]byte, error) {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	prev, err := s.get("create signing key", signingKey(name))
	switch {
	case err == nil:
		return prev, nil
	case !errors.Is(err, relay.ErrNotFound):
		return nil, err
	}
	if err := s.write(ctx, "create signing key", store.Set(signingKey(name), doc)); err != nil {
		return nil, err
	}
	return bytes.Clone(doc), nil
}

// PutSigningKey stores or replaces a key document.
func (s *Store) PutSigningKey(ctx context.Context, name string, doc []byte) error {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	return s.write(ctx, "put signing key", store.Set(signingKey(name), doc))
}

// DeleteSigningKey removes a key document; a missing one is no error.
func (s *Store) DeleteSigningKey(ctx context.Context, name string) error {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	return s.write(ctx, "delete signing key", store.Delete(signingKey(name)))
}

// purgeBatch bounds the events one purge write deletes.
const purgeBatch = 256

// Purge deletes the events received before cutoff whose deliveries are all
// final, with their deliveries, a batch per write.
func (s *Store) Purge(ctx context.Context, cutoff time.Time) (int, error) {
	total := 0
	var after []byte
	for {
		// The next organisation with events: the first key past the last.
		var org string
		err := s.scan(ctx, "purge", store.ScanOptions{Prefix: []byte(pfxEventTime), After: after, Limit: 1, KeysOnly: true}, func(k, _ []byte) error {
			org, _, _ = strings.Cut(string(k[len(pfxEventTime):]), "/")
			return nil
		})
		if err != nil || org == "" {
			return total, err
		}
		n, err := s.purgeOrg(ctx, org, cutoff)
		total += n
		if err != nil {
			return total, err
		}
		// Past every "et/{org}/…" key: '0' follows '/'.
		after = []byte(pfxEventTime + org + "0")
	}
}

func (s *Store) purgeOrg(ctx context.Context, org string, cutoff time.Time) (int, error) {
	prefix := eventTimePrefix(org)
	total := 0
	var after []byte
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		var keys [][]byte
		err := s.scan(ctx, "purge", store.ScanOptions{Prefix: prefix, After: after, Limit: purgeBatch, KeysOnly: true}, func(k, _ []byte) error {
			if t, _, ok := splitTimeKey(prefix, k); !ok || !t.Before(cutoff) {
				return store.ErrStop
			}
			keys = append(keys, bytes.Clone(k))
			return nil
		})
		if err != nil || len(keys) == 0 {
			return total, err
		}
		n, err := s.purgeKeys(ctx, org, prefix, keys)
		total += n
		if err != nil {
			return total, err
		}
		if len(keys) < purgeBatch {
			return total, nil
		}
		after = keys[len(keys)-1]
	}
}

// purgeKeys deletes the events under listing keys whose deliveries are
// all final, and says how many. It holds the queue locks of their
// endpoints from its reads of the deliveries' states to its write: a
// Requeue holds its queue's lock across its own read and write, so it
// cannot make a delivery due again in between and then have its
// acknowledged retry deleted, its due-index entry left behind.
func (s *Store) purgeKeys(ctx context.Context, org string, prefix []byte, keys [][]byte) (int, error) {
	events := make([]*relay.Event, len(keys)) // nil: the event is gone
	var qs []*queue
	for i, k := range keys {
		_, id, _ := splitTimeKey(prefix, k)
		ev, err := s.Event(ctx, org, id)
		if errors.Is(err, relay.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		events[i] = ev
		for _, d := range ev.Deliveries {
			if q := s.queue(relay.EndpointRef{Org: org, Endpoint: d.Endpoint}); !slices.Contains(qs, q) {
				qs = append(qs, q)
			}
		}
	}
	// In one order, so two purges cannot each hold a lock the other wants.
	slices.SortFunc(qs, func(a, b *queue) int { return strings.Compare(a.ref.Endpoint, b.ref.Endpoint) })
	for _, q := range qs {
		q.mu.Lock()
		defer q.mu.Unlock()
	}
	var ops []store.Op
	n := 0
	for i, k := range keys {
		del, err := s.purgeOps(org, prefix, k, events[i])
		if err != nil {
			return 0, err
		}
		if del != nil {
			ops = append(ops, del...)
			n++
		}
	}
	if len(ops) == 0 {
		return 0, nil
	}
	if err := s.write(ctx, "purge", ops...); err != nil {
		return 0, err
	}
	return n, nil
}

// purgeOps are the deletions of ev, under listing key k (ev nil: the
// event is gone, only its key is left), or nil when one of its deliveries
// still waits. The caller holds the locks of ev's queues.
func (s *Store) purgeOps(org string, prefix, k []byte, ev *relay.Event) ([]store.Op, error) {
	_, id, _ := splitTimeKey(prefix, k)
	ops := []store.Op{store.Delete(k), store.Delete(eventKey(org, id))}
	if ev == nil {
		return ops, nil
	}
	for _, ref := range ev.Deliveries {
		r, err := s.record(org, ref.ID)
		if errors.Is(err, relay.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !relay.Final(r.Status) {
			return nil, nil
		}
		ops = append(ops, store.Delete(deliveryKey(org, ref.ID)), store.Delete(timeKey(deliveryTimePrefix(org), r.CreatedAt, r.ID)))
		if r.QKey != nil {
			ops = append(ops, store.Delete(r.QKey))
		}
	}
	return ops, nil
}
