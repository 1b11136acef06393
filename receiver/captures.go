package receiver

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/bits-and-blooms/bloom/v3"
	"github.com/oklog/ulid/v2"

	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/internal/store"
)

// Store keys. Capture ids are ULIDs, which sort by time, so a reverse scan
// of the capture prefix is newest first and a capture id is its own
// cursor.
var (
	prefixCapture = []byte("c/") // c/<capture id> → stored capture
	prefixWebhook = []byte("w/") // w/<webhook-id> → id of its first capture
)

func captureKey(id string) []byte  { return append(append([]byte(nil), prefixCapture...), id...) }
func webhookKey(wid string) []byte { return append(append([]byte(nil), prefixWebhook...), wid...) }

// ErrNotFound is returned for a capture id the store does not hold.
var ErrNotFound = errors.New("receiver: capture not found")

// getIndex looks up the first capture of a webhook-id in the store.
func (s *Server) getIndex(wid string) (string, bool) {
	st, err := s.store()
	if err != nil {
		return "", false
	}
	v, err := st.Get(webhookKey(wid))
	if err != nil {
		return "", false
	}
	return string(v), true
}

// Get returns one capture.
func (s *Server) Get(ctx context.Context, id string) (Capture, error) {
	if _, err := event.ParseID(event.PrefixCapture, id); err != nil {
		return Capture{}, err
	}
	st, err := s.store()
	if err != nil {
		return Capture{}, err
	}
	v, err := st.Get(captureKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return Capture{}, ErrNotFound
	}
	if err != nil {
		return Capture{}, fmt.Errorf("receiver: get capture: %w", err)
	}
	return decodeCapture(v)
}

// List returns up to limit captures matching f, newest first, starting
// after the cursor (a capture id, "" for the newest). next is the cursor
// of the following page, "" when there is none.
func (s *Server) List(ctx context.Context, f Filter, limit int, cursor string) (caps []Capture, next string, err error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	err = s.scan(ctx, f, cursor, true, func(c Capture) bool {
		if len(caps) == limit {
			// One more match exists: the page has a successor.
			next = caps[limit-1].ID
			return false
		}
		caps = append(caps, c)
		return true
	})
	return caps, next, err
}

// Count returns how many captures match f.
func (s *Server) Count(ctx context.Context, f Filter) (int, error) {
	if f.empty() {
		st, err := s.store()
		if err != nil {
			return 0, err
		}
		n := 0
		err = st.Scan(ctx, store.ScanOptions{Prefix: prefixCapture, KeysOnly: true}, func(_, _ []byte) error {
			n++
			return nil
		})
		return n, err
	}
	n := 0
	err := s.scan(ctx, f, "", true, func(Capture) bool { n++; return true })
	return n, err
}

// errCursor is returned for a cursor that is not a capture id.
var errCursor = errors.New("cursor: not a cursor from this API")

// scan calls fn with each capture matching f, newest first when reverse,
// after the cursor, until fn returns false. Captures older than f.Since
// end a newest-first scan without being decoded: their ids say their age.
func (s *Server) scan(ctx context.Context, f Filter, cursor string, reverse bool, fn func(Capture) bool) error {
	st, err := s.store()
	if err != nil {
		return err
	}
	opts := store.ScanOptions{Prefix: prefixCapture, Reverse: reverse}
	if cursor != "" {
		if _, err := event.ParseID(event.PrefixCapture, cursor); err != nil {
			return errCursor
		}
		opts.After = captureKey(cursor)
	}
	var sinceMS uint64
	if !f.Since.IsZero() && f.Since.After(time.UnixMilli(0)) {
		sinceMS = uint64(f.Since.UnixMilli())
	}
	return st.Scan(ctx, opts, func(k, v []byte) error {
		if sinceMS > 0 && reverse {
			if u, err := ulid.ParseStrict(string(k[len(prefixCapture)+len(event.PrefixCapture):])); err == nil && u.Time() < sinceMS {
				return store.ErrStop
			}
		}
		c, err := decodeCapture(v)
		if err != nil {
			s.log.Warn().Err(err).Str("key", string(k)).Msg("skipping unreadable capture")
			return nil
		}
		if !f.Match(&c) {
			return nil
		}
		if !fn(c) {
			return store.ErrStop
		}
		return nil
	})
}

// DeleteCaptures deletes every capture and the webhook-id index.
func (s *Server) DeleteCaptures(ctx context.Context) error {
	st, err := s.store()
	if err != nil {
		return err
	}
	s.dedupe.clear()
	if err := st.DeletePrefix(ctx, prefixCapture); err != nil {
		return fmt.Errorf("receiver: delete captures: %w", err)
	}
	if err := st.DeletePrefix(ctx, prefixWebhook); err != nil {
		return fmt.Errorf("receiver: delete webhook index: %w", err)
	}
	s.dedupe.clear()
	return nil
}

// ErrWaitTimeout is returned by Wait when ctx ends first; the captures
// found so far are returned with it.
var ErrWaitTimeout = errors.New("receiver: timed out waiting for captures")

// Wait blocks until n captures match f and returns the n newest of them,
// newest first. It looks at the store once, then listens to the capture
// feed (published after commit): no polling. When ctx ends or the server
// stops first it returns what it found and ErrWaitTimeout (or the store's
// error).
func (s *Server) Wait(ctx context.Context, f Filter, n int) ([]Capture, error) {
	if n <= 0 {
		n = 1
	}
	// Subscribe before looking at the store, so nothing committed in
	// between is missed; ids already seen are not counted twice.
	sub := s.bc.Subscribe(ctx, 1024)
	defer sub.Close()
	found, err := s.newest(ctx, f, n)
	if err != nil {
		return nil, err
	}
	dropped := sub.Dropped()
	for len(found) < n {
		select {
		case c, ok := <-sub.C():
			if !ok {
				return found, ErrWaitTimeout
			}
			if d := sub.Dropped(); d != dropped {
				// The feed overflowed: the store is the truth.
				dropped = d
				if found, err = s.newest(ctx, f, n); err != nil {
					return nil, err
				}
				continue
			}
			if f.Match(&c) && !slices.ContainsFunc(found, func(x Capture) bool { return x.ID == c.ID }) {
				found = append(found, c)
			}
		case <-ctx.Done():
			return found, ErrWaitTimeout
		case <-s.stopping:
			return found, ErrWaitTimeout
		}
	}
	slices.SortFunc(found, func(a, b Capture) int { return -compareIDs(a.ID, b.ID) })
	return found[:n], nil
}

func compareIDs(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// newest returns up to n captures matching f, newest first.
func (s *Server) newest(ctx context.Context, f Filter, n int) ([]Capture, error) {
	var found []Capture
	err := s.scan(ctx, f, "", true, func(c Capture) bool {
		found = append(found, c)
		return len(found) < n
	})
	return found, err
}

// dedupe decides duplicate_of: the first capture of each webhook-id. A
// bounded in-memory map answers most lookups, and concurrent requests with
// the same new webhook-id share one lookup, so exactly one of them is the
// first. A miss would cost one store Get, which is most of the cost of a
// webhook-id never seen before, the common case: a Bloom filter of every
// webhook-id the store may hold answers "not there" without it.
//
// The map and its eviction ring hold no pointers (keys are hashes, ids are
// inline), so the garbage collector never scans them: with strings, a
// channel and an entry per webhook-id, a full map was some 200,000 objects
// for every collection to mark (docs/BENCHMARKS.md).
type dedupe struct {
	mu     sync.Mutex
	ready  *sync.Cond // broadcast whenever a claim resolves, or the map is cleared
	max    int
	m      map[widKey]dedupeEntry
	ring   []widKey // insertion order, for eviction
	filled int      // entries of ring in use
	next   int
	claims uint64 // claims made, to tell a claim from a later one for the same key
	lookup func(wid string) (string, bool)

	// known holds every webhook-id claimed by this process (added when
	// claimed, before its write, so a failed write only leaves a false
	// positive) and, once complete, every one stored before it started.
	// It is never cleared: after a reset its stale entries only cost a
	// Get each, whereas clearing it could race with a claim in flight.
	known    *bloom.BloomFilter
	complete bool
}

// Sizing of the known filter: about 1.2 MiB. Past knownIDs webhook-ids the
// false positives rise, and each costs one store Get, as before the filter.
const (
	knownIDs           = 1_000_000
	knownFalsePositive = 0.01
)

// widKey is a webhook-id in the map: the first 16 bytes of its SHA-256.
// Two webhook-ids share a key only by a SHA-256 collision.
type widKey [16]byte

func newWidKey(wid string) widKey {
	sum := sha256.Sum256([]byte(wid))
	return widKey(sum[:len(widKey{})])
}

// maxInlineID bounds the capture ids the map holds (ours are 30 bytes);
// the answer for a longer one, only ever read from a foreign store, is not
// kept.
const maxInlineID = 32

type dedupeEntry struct {
	claim   uint64 // the claim that made it
	pending bool   // its claim is still looking the first capture up
	n       uint8
	first   [maxInlineID]byte
}

func (e *dedupeEntry) firstID() string { return string(e.first[:e.n]) }

func newDedupe(max int, lookup func(string) (string, bool)) *dedupe {
	d := &dedupe{
		max: max, m: make(map[widKey]dedupeEntry), ring: make([]widKey, max), lookup: lookup,
		known: bloom.NewWithEstimates(knownIDs, knownFalsePositive),
	}
	d.ready = sync.NewCond(&d.mu)
	return d
}

// load adds the webhook-ids of st's index to the filter and marks it
// complete; until then every miss asks the store. An error leaves it
// incomplete, which is only slower.
func (d *dedupe) load(ctx context.Context, st *store.Store) error {
	var batch []string
	flush := func() {
		d.mu.Lock()
		for _, wid := range batch {
			d.known.AddString(wid)
		}
		d.mu.Unlock()
		batch = batch[:0]
	}
	err := st.Scan(ctx, store.ScanOptions{Prefix: prefixWebhook, KeysOnly: true}, func(key, _ []byte) error {
		batch = append(batch, string(key[len(prefixWebhook):]))
		if len(batch) == 1024 {
			flush()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("receiver: load webhook-id index: %w", err)
	}
	flush()
	d.mu.Lock()
	d.complete = true
	d.mu.Unlock()
	return nil
}

// first returns the id of the first capture of wid; mine reports that it
// is id itself (the caller then writes the index entry). forget undoes a
// claim whose capture could not be stored.
func (d *dedupe) first(wid, id string) (first string, mine bool) {
	k := newWidKey(wid)
	d.mu.Lock()
	for {
		e, ok := d.m[k]
		if !ok {
			break
		}
		if !e.pending {
			d.mu.Unlock()
			first = e.firstID()
			return first, first == id
		}
		d.ready.Wait() // another request with wid is looking it up
	}
	if d.filled == d.max {
		delete(d.m, d.ring[d.next])
	} else {
		d.filled++
	}
	d.ring[d.next] = k
	d.next = (d.next + 1) % d.max
	d.claims++
	claim := d.claims
	d.m[k] = dedupeEntry{claim: claim, pending: true}
	mayBeStored := d.known.TestOrAddString(wid) || !d.complete
	d.mu.Unlock()

	first = id
	if mayBeStored {
		if prev, ok := d.lookup(wid); ok {
			first = prev
		}
	}

	d.mu.Lock()
	if e, ok := d.m[k]; ok && e.claim == claim { // not evicted or cleared meanwhile
		if len(first) <= maxInlineID {
			e.pending, e.n = false, uint8(copy(e.first[:], first))
			d.m[k] = e
		} else {
			delete(d.m, k)
		}
	}
	d.ready.Broadcast()
	d.mu.Unlock()
	return first, first == id
}

// forget drops wid's entry if it names id (its capture was not stored).
func (d *dedupe) forget(wid, id string) {
	k := newWidKey(wid)
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.m[k]; ok && !e.pending && e.firstID() == id {
		delete(d.m, k)
	}
}

// clear forgets the cached answers (the captures were deleted); the filter
// stays, see known.
func (d *dedupe) clear() {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.m)
	d.filled, d.next = 0, 0
	d.ready.Broadcast() // waiters find no entry and claim wid themselves
}
