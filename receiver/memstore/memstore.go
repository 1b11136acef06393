// Package memstore is a receiver.Store in memory, for --in-memory and
// receivertest: a slice of captures sorted by id and a map of webhook-ids,
// nothing on disk.
package memstore

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sidehook/sidehook/receiver"
)

// Store keeps captures in memory. The zero value is not usable; call New.
type Store struct {
	mu   sync.RWMutex
	caps []entry // sorted by id, oldest first
	// first maps a webhook-id to the id of its first capture; a Go map
	// takes keys of any length, so long webhook-ids need no hashing here.
	first map[string]string
}

// entry is a stored capture: its encoded form, which shares nothing with
// the caller's Capture, and the fields the filters read.
type entry struct {
	id         string
	receivedAt time.Time
	method     string
	path       string
	event      string
	webhookID  string
	verdict    string
	data       []byte
}

func (e *entry) matches(f *receiver.Filter) bool {
	c := receiver.Capture{
		ReceivedAt: e.receivedAt,
		Method:     e.method,
		Path:       e.path,
		Event:      e.event,
		WebhookID:  e.webhookID,
		Verdict:    receiver.Verdict{Status: e.verdict},
	}
	return f.Match(&c)
}

var _ receiver.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{first: make(map[string]string)}
}

// BodyLimit: a body is a slice in memory, bounded by nothing of the
// store's; see receiver.Store.
func (s *Store) BodyLimit() receiver.StoreLimit {
	return receiver.StoreLimit{Store: "the in-memory store", MaxBody: math.MaxInt64}
}

// Append stores c; see receiver.Store.
func (s *Store) Append(_ context.Context, c *receiver.Capture) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.DuplicateOf = ""
	claimed := false
	if c.WebhookID != "" {
		if first, ok := s.first[c.WebhookID]; ok {
			c.DuplicateOf = first
		} else {
			s.first[c.WebhookID] = c.ID
			claimed = true
		}
	}
	data, err := c.MarshalBinary()
	if err != nil {
		if claimed {
			delete(s.first, c.WebhookID)
		}
		return fmt.Errorf("memstore: append: %w", err)
	}
	// The filters read the capture as it is stored, as a durable store's
	// do: the encoding keeps received_at to the microsecond and replaces
	// invalid UTF-8, so a filter on the raw fields could match a capture
	// that the same filter on the durable store would not.
	var stored receiver.Capture
	if err := stored.UnmarshalBinary(data); err != nil {
		if claimed {
			delete(s.first, c.WebhookID)
		}
		return fmt.Errorf("memstore: append: %w", err)
	}
	e := entry{
		id: stored.ID, receivedAt: stored.ReceivedAt, method: stored.Method, path: stored.Path, event: stored.Event,
		webhookID: stored.WebhookID, verdict: stored.Verdict.Status, data: data,
	}
	// Captures nearly always arrive in id order: look from the end.
	i := len(s.caps)
	for i > 0 && s.caps[i-1].id > e.id {
		i--
	}
	s.caps = slices.Insert(s.caps, i, e)
	return nil
}

// SetResponse replaces a capture's response; see receiver.Store.
func (s *Store) SetResponse(_ context.Context, id string, r receiver.CaptureResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.find(id)
	if !ok {
		return fmt.Errorf("memstore: %s: %w", id, receiver.ErrNotFound)
	}
	c, err := decode(s.caps[i].data)
	if err != nil {
		return err
	}
	c.Response = r
	data, err := c.MarshalBinary()
	if err != nil {
		return fmt.Errorf("memstore: set response: %w", err)
	}
	s.caps[i].data = data
	return nil
}

// Get returns one capture; see receiver.Store.
func (s *Store) Get(_ context.Context, id string) (receiver.Capture, error) {
	s.mu.RLock()
	i, ok := s.find(id)
	var data []byte
	if ok {
		data = s.caps[i].data
	}
	s.mu.RUnlock()
	if !ok {
		return receiver.Capture{}, fmt.Errorf("memstore: %s: %w", id, receiver.ErrNotFound)
	}
	return decode(data)
}

// find returns the position of id, or where it would be.
func (s *Store) find(id string) (int, bool) {
	return slices.BinarySearchFunc(s.caps, id, func(e entry, id string) int { return strings.Compare(e.id, id) })
}

// List returns a page of captures; see receiver.Store.
func (s *Store) List(ctx context.Context, q receiver.Query) ([]receiver.Capture, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	var (
		datas      [][]byte
		last, next string
	)
	s.mu.RLock()
	// The entries' data is never modified once stored, so it is decoded
	// after the lock is released.
	visit := func(e *entry) bool {
		if !e.matches(&q.Filter) {
			return true
		}
		if q.Limit > 0 && len(datas) == q.Limit {
			next = last
			return false
		}
		datas, last = append(datas, e.data), e.id
		return true
	}
	if q.Oldest {
		i := 0
		if q.After != "" {
			j, found := s.find(q.After)
			if found {
				j++
			}
			i = j
		}
		for ; i < len(s.caps) && visit(&s.caps[i]); i++ {
		}
	} else {
		i := len(s.caps) - 1
		if q.After != "" {
			j, _ := s.find(q.After)
			i = j - 1
		}
		for ; i >= 0 && visit(&s.caps[i]); i-- {
		}
	}
	s.mu.RUnlock()
	caps := make([]receiver.Capture, 0, len(datas))
	for _, d := range datas {
		c, err := decode(d)
		if err != nil {
			return nil, "", err
		}
		caps = append(caps, c)
	}
	return caps, next, nil
}

// Count returns how many captures match f; see receiver.Store.
func (s *Store) Count(ctx context.Context, f receiver.Filter) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if f == (receiver.Filter{}) {
		return len(s.caps), nil
	}
	n := 0
	for i := range s.caps {
		if s.caps[i].matches(&f) {
			n++
		}
	}
	return n, nil
}

// DeleteAll deletes every capture and webhook-id; see receiver.Store.
func (s *Store) DeleteAll(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.caps = nil
	clear(s.first)
	return nil
}

// Err is always nil: memory does not fill up the way a disk does.
func (s *Store) Err() error { return nil }

// Close releases the captures; the store must not be used after it. It is
// safe to call more than once.
func (s *Store) Close() error {
	return s.DeleteAll(context.Background())
}

func decode(data []byte) (receiver.Capture, error) {
	var c receiver.Capture
	if err := c.UnmarshalBinary(data); err != nil {
		return receiver.Capture{}, fmt.Errorf("memstore: %w", err)
	}
	return c, nil
}
