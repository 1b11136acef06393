// Package memstore is a relay.Store kept in plain Go data structures: the
// store of --in-memory, of `dev --in-memory` and of tests. Nothing is
// written anywhere, so nothing survives Close; everything else follows the
// relay.Store contract, and the conformance suite (relay/storetest) checks
// it.
//
// One mutex guards all of it: every operation is a few map and slice
// operations, far shorter than the network round trip around it. Records
// are copied on the way in and on the way out, so a caller may change what
// it passed or got. Each endpoint's waiting deliveries sit in a min-heap
// ordered by their due key (the due time, or the creation time of an
// ordered delivery, then the id), so Take, Record and Requeue cost
// O(log n) however long the backlog.
package memstore

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
)

// Store is an in-memory relay.Store. The zero value is not usable: call New.
type Store struct {
	mu     sync.Mutex
	closed bool
	orgs   map[string]*org
	queues map[relay.EndpointRef]*queue
	keys   map[string][]byte // signing key documents by name
}

var _ relay.Store = (*Store)(nil)

// org is one organisation's records.
type org struct {
	events     map[string]*relay.Event
	eventList  []listEntry // by ReceivedAt then id, oldest first
	deliveries map[string]*delivery
	delivList  []listEntry // by CreatedAt then id, oldest first
	endpoints  map[string][]byte
	disabled   map[string]string
	token      string
}

// delivery is a stored delivery and, while it waits, its queue entry.
type delivery struct {
	d     *relay.Delivery
	entry *entry // nil when final or when its endpoint was ended
}

// listEntry places a record in a listing: newest first is the reverse of
// this order.
type listEntry struct {
	at time.Time
	id string
}

func compareList(a, b listEntry) int {
	if c := a.at.Compare(b.at); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

// BodyLimit: a body is a slice in memory, bounded by nothing of the
// store's.
func (s *Store) BodyLimit() config.StoreLimit {
	return config.StoreLimit{Store: "the in-memory store", MaxBody: math.MaxInt64}
}

// New returns an empty store.
func New() *Store {
	return &Store{orgs: make(map[string]*org), queues: make(map[relay.EndpointRef]*queue), keys: make(map[string][]byte)}
}

// lock takes the mutex, or fails once the store is closed.
func (s *Store) lock() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("memstore: %w: closed", relay.ErrUnavailable)
	}
	return nil
}

func (s *Store) org(id string) *org {
	o := s.orgs[id]
	if o == nil {
		o = &org{events: make(map[string]*relay.Event), deliveries: make(map[string]*delivery),
			endpoints: make(map[string][]byte), disabled: make(map[string]string)}
		s.orgs[id] = o
	}
	return o
}

func (s *Store) queue(ref relay.EndpointRef) *queue {
	q := s.queues[ref]
	if q == nil {
		q = newQueue()
		s.queues[ref] = q
	}
	return q
}

// Accept stores ev and its deliveries, or returns the stored event and
// relay.ErrDuplicate when ev.Org already has ev.ID.
func (s *Store) Accept(_ context.Context, ev *relay.Event, ds []*relay.Delivery) (*relay.Event, error) {
	if ev.Org == "" || ev.ID == "" {
		return nil, fmt.Errorf("memstore: accept: event without org or id")
	}
	for _, d := range ds {
		if err := relay.CheckAccepted(d); err != nil {
			return nil, fmt.Errorf("memstore: accept: %w", err)
		}
	}
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	o := s.org(ev.Org)
	if prev := o.events[ev.ID]; prev != nil {
		return cloneEvent(prev), relay.ErrDuplicate
	}
	stored := cloneEvent(ev)
	o.events[ev.ID] = stored
	o.eventList = insertSorted(o.eventList, listEntry{stored.ReceivedAt, stored.ID})
	for _, d := range ds {
		cp := cloneDelivery(d)
		cp.Org = ev.Org
		sd := &delivery{d: cp}
		o.deliveries[cp.ID] = sd
		o.delivList = insertSorted(o.delivList, listEntry{cp.CreatedAt, cp.ID})
		if !relay.Final(cp.Status) {
			s.enqueue(sd)
		}
	}
	return ev, nil
}

// enqueue gives a waiting delivery its queue entry.
func (s *Store) enqueue(sd *delivery) {
	d := sd.d
	q := s.queue(relay.EndpointRef{Org: d.Org, Endpoint: d.Endpoint})
	sd.entry = &entry{id: d.ID, key: dueKey(d), due: *d.NextAttemptAt, ordered: d.Ordered}
	q.push(sd.entry)
}

// dueKey is a delivery's place in its queue: its creation for an ordered
// delivery (FIFO), else its due time.
func dueKey(d *relay.Delivery) time.Time {
	if d.Ordered {
		return d.CreatedAt
	}
	return *d.NextAttemptAt
}

func insertSorted(list []listEntry, e listEntry) []listEntry {
	// Records mostly arrive in time order: appending is the common case.
	if n := len(list); n == 0 || compareList(list[n-1], e) < 0 {
		return append(list, e)
	}
	i, _ := slices.BinarySearchFunc(list, e, compareList)
	return slices.Insert(list, i, e)
}

// Event returns one event, or relay.ErrNotFound.
func (s *Store) Event(_ context.Context, org, id string) (*relay.Event, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if o := s.orgs[org]; o != nil {
		if ev := o.events[id]; ev != nil {
			return cloneEvent(ev), nil
		}
	}
	return nil, fmt.Errorf("memstore: event %s/%s: %w", org, id, relay.ErrNotFound)
}

// Delivery returns one delivery, or relay.ErrNotFound.
func (s *Store) Delivery(_ context.Context, org, id string) (*relay.Delivery, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	sd, err := s.delivery(org, id)
	if err != nil {
		return nil, err
	}
	return cloneDelivery(sd.d), nil
}

func (s *Store) delivery(org, id string) (*delivery, error) {
	if o := s.orgs[org]; o != nil {
		if sd := o.deliveries[id]; sd != nil {
			return sd, nil
		}
	}
	return nil, fmt.Errorf("memstore: delivery %s/%s: %w", org, id, relay.ErrNotFound)
}

// Endpoints returns the organisation's API endpoints and disabled marks,
// by id.
func (s *Store) Endpoints(_ context.Context, orgID string) ([]relay.StoredEndpoint, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	o := s.orgs[orgID]
	if o == nil {
		return nil, nil
	}
	byID := make(map[string]*relay.StoredEndpoint)
	get := func(id string) *relay.StoredEndpoint {
		if byID[id] == nil {
			byID[id] = &relay.StoredEndpoint{ID: id}
		}
		return byID[id]
	}
	for id, doc := range o.endpoints {
		get(id).Doc = slices.Clone(doc)
	}
	for id, reason := range o.disabled {
		get(id).Disabled = reason
	}
	out := make([]relay.StoredEndpoint, 0, len(byID))
	for _, e := range byID {
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b relay.StoredEndpoint) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// PutEndpoint stores an API endpoint's document and clears its mark.
func (s *Store) PutEndpoint(_ context.Context, orgID, id string, doc []byte) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	o := s.org(orgID)
	o.endpoints[id] = slices.Clone(doc)
	delete(o.disabled, id)
	return nil
}

// SetDisabled sets or (reason "") clears an endpoint's disabled mark.
func (s *Store) SetDisabled(_ context.Context, orgID, id, reason string) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	o := s.org(orgID)
	if reason == "" {
		delete(o.disabled, id)
	} else {
		o.disabled[id] = reason
	}
	return nil
}

// DeleteEndpoint removes an API endpoint and its mark, and ends its
// waiting deliveries with reason, telling ended of them.
func (s *Store) DeleteEndpoint(_ context.Context, orgID, id, reason string, ended func([]*relay.Delivery)) error {
	if err := s.lock(); err != nil {
		return err
	}
	o := s.org(orgID)
	delete(o.endpoints, id)
	delete(o.disabled, id)
	ds := s.endWaiting(relay.EndpointRef{Org: orgID, Endpoint: id}, reason)
	s.mu.Unlock()
	tell(ended, ds)
	return nil
}

// Token returns the organisation's Webio token, "" when none.
func (s *Store) Token(_ context.Context, orgID string) (string, error) {
	if err := s.lock(); err != nil {
		return "", err
	}
	defer s.mu.Unlock()
	if o := s.orgs[orgID]; o != nil {
		return o.token, nil
	}
	return "", nil
}

// PutToken stores the organisation's Webio token.
func (s *Store) PutToken(_ context.Context, orgID, token string) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.org(orgID).token = token
	return nil
}

// SigningKeys returns every signing key document by name.
func (s *Store) SigningKeys(context.Context) (map[string][]byte, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	out := make(map[string][]byte, len(s.keys))
	for name, doc := range s.keys {
		out[name] = slices.Clone(doc)
	}
	return out, nil
}

// CreateSigningKey stores doc under name unless name exists, and returns
// the stored document.
func (s *Store) CreateSigningKey(_ context.Context, name string, doc []byte) ([]byte, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if prev, ok := s.keys[name]; ok {
		return slices.Clone(prev), nil
	}
	s.keys[name] = slices.Clone(doc)
	return slices.Clone(doc), nil
}

// PutSigningKey stores or replaces a key document.
func (s *Store) PutSigningKey(_ context.Context, name string, doc []byte) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.keys[name] = slices.Clone(doc)
	return nil
}

// DeleteSigningKey removes a key document; a missing one is no error.
func (s *Store) DeleteSigningKey(_ context.Context, name string) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	delete(s.keys, name)
	return nil
}

// purgeBatch bounds how many events one hold of the lock examines.
const purgeBatch = 256

// Purge deletes the events received before cutoff whose deliveries are all
// final, with their deliveries.
func (s *Store) Purge(ctx context.Context, cutoff time.Time) (int, error) {
	total := 0
	if err := s.lock(); err != nil {
		return 0, err
	}
	orgs := make([]string, 0, len(s.orgs))
	for id := range s.orgs {
		orgs = append(orgs, id)
	}
	s.mu.Unlock()
	for _, id := range orgs {
		// The listing is walked oldest first; kept events are stepped
		// over by position, so each batch resumes where the last ended.
		var after *listEntry
		for {
			if err := ctx.Err(); err != nil {
				return total, err
			}
			n, last, done, err := s.purgeBatch(id, cutoff, after)
			total += n
			if err != nil || done {
				if err != nil {
					return total, err
				}
				break
			}
			after = &last
		}
	}
	return total, nil
}

// purgeBatch examines up to purgeBatch events of one organisation after
// the position after, and reports the last one examined and whether the
// organisation is done.
func (s *Store) purgeBatch(orgID string, cutoff time.Time, after *listEntry) (deleted int, last listEntry, done bool, err error) {
	if err := s.lock(); err != nil {
		return 0, last, true, err
	}
	defer s.mu.Unlock()
	o := s.orgs[orgID]
	if o == nil {
		return 0, last, true, nil
	}
	start := 0
	if after != nil {
		start, _ = slices.BinarySearchFunc(o.eventList, *after, compareList)
		if start < len(o.eventList) && compareList(o.eventList[start], *after) == 0 {
			start++
		}
	}
	gone := map[string]bool{}
	goneDeliveries := map[string]bool{}
	i := start
	for ; i < len(o.eventList) && i-start < purgeBatch; i++ {
		le := o.eventList[i]
		last = le
		if !le.at.Before(cutoff) {
			done = true
			break
		}
		ev := o.events[le.id]
		if !allFinal(o, ev) {
			continue
		}
		gone[le.id] = true
		for _, ref := range ev.Deliveries {
			if o.deliveries[ref.ID] != nil {
				goneDeliveries[ref.ID] = true
				delete(o.deliveries, ref.ID)
			}
		}
		delete(o.events, le.id)
		deleted++
	}
	if i >= len(o.eventList) {
		done = true
	}
	if len(gone) > 0 {
		o.eventList = slices.DeleteFunc(o.eventList, func(e listEntry) bool { return gone[e.id] })
	}
	if len(goneDeliveries) > 0 {
		o.delivList = slices.DeleteFunc(o.delivList, func(e listEntry) bool { return goneDeliveries[e.id] })
	}
	return deleted, last, done, nil
}

func allFinal(o *org, ev *relay.Event) bool {
	for _, ref := range ev.Deliveries {
		if sd := o.deliveries[ref.ID]; sd != nil && !relay.Final(sd.d.Status) {
			return false
		}
	}
	return true
}

// Health is nil until Close.
func (s *Store) Health() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("memstore: %w: closed", relay.ErrUnavailable)
	}
	return nil
}

// Close drops everything; later calls fail with relay.ErrUnavailable.
// Calling it twice is safe.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.orgs, s.queues, s.keys = nil, nil, nil
	return nil
}
