// Package badgerstore is the relay's durable relay.Store: BadgerDB through
// internal/store, whose group-commit writer makes every write durable (one
// sync for all the writes queued together) before it returns.
//
// # Layout
//
// Organisation and endpoint ids never contain '/', so every key splits
// unambiguously; times are 8-byte big-endian unix nanoseconds, so byte
// order is time order.
//
//	e/{org}/{event id}                event: 4-byte meta length, meta JSON, the body
//	                                  bytes as received (never re-encoded)
//	et/{org}/{received ns}{event id}  event listing, newest first by reverse scan;
//	                                  value: the event type (the type filter reads no event)
//	d/{org}/{delivery id}             delivery JSON, with "qk": its due-index key while it waits
//	dt/{org}/{created ns}{delivery}   delivery listing, newest first by reverse scan
//	q/{org}/{endpoint}/{ns}{delivery} due index; value: due ns, then "o" when ordered.
//	                                  The key's time is the due time, or the creation
//	                                  for an ordered delivery (FIFO)
//	ep/{org}/{endpoint}               endpoint created through the API (its document)
//	epd/{org}/{endpoint}              endpoint disabled at run time (the reason)
//	tok/{org}                         the organisation's Webio token
//	sk/{name}                         signing key document
//
// # Take and leases
//
// Leases live in memory, one set per endpoint, and die with the process:
// after a restart everything in the due index is due again. Every Take
// scans the endpoint's due index from its start, skipping leased entries,
// and stops at the first entry not due yet (its due time is next) or at a
// leased ordered one (the head of a FIFO in flight). So no due entry can
// drop out of sight, whatever moved meanwhile.
//
// "From its start" skips what is known to be empty: the deletions at the
// head of a busy queue stay in Badger as tombstones until a compaction, and
// walking them on every Take would cost more the busier the queue. Each
// queue keeps a floor (a key time) such that every live entry lies at or
// above it, except entries whose writes are in flight; a write lowers the
// floor before it starts and is counted until it ends. Take scans from the
// lowest of the floor and the keys in flight, then raises the floor to the
// first entry it saw, or to the lowest key written while it scanned, if
// lower. (queue.go has the argument.)
//
// Entries that moved while a Take scanned are caught by reading the
// delivery: Take leases an entry, then reads the record, and hands it out
// only if the record's qk still names that entry.
//
// # Concurrency
//
// Accept's idempotency check and write hold a lock striped by org and id.
// Record writes the delivery, the move of its due-index entry and the
// disabled mark in one Write; a Requeue of a leased delivery is kept in
// memory and written when the lease ends (if the process dies first, the
// delivery is due again anyway, only without Base reset). Requeue and
// Expedite hold the endpoint's queue lock across their writes, so that
// Take cannot lease what they are moving. Every write runs under
// context.WithoutCancel: a client that hangs up never cuts one short.
package badgerstore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/internal/store"
	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
)

// memTableSize is half internal/store's default. A memtable is an arena in
// the heap (two of them, and the garbage of the last flushed one), and
// its log is what a start after kill -9 replays, with the WAL of as much:
// a relay's records are small and its bodies go to the value log, so a
// smaller memtable costs only more frequent (smaller) flushes, and a
// checkpoint (a Badger sync) per 4 MiB of WAL rather than per 8.
const memTableSize = 4 << 20

// ReserveFloor is the smallest Options.Reserve that Open accepts: a flush
// of every memtable and a value log file, at this store's sizes. A
// configuration can be checked against it before anything is opened.
func ReserveFloor() int64 { return store.ReserveFloor(store.Options{MemTableSize: memTableSize}) }

// metaReserve is what BodyLimit keeps of a value log file for the event
// record's metadata beside its body: the ids, the type, the Content-Type
// (within the relay's 64 KiB of headers, at most 384 KiB JSON-escaped)
// and about 130 bytes per delivery: room for thousands of deliveries,
// where BodyLimit promises relay.BodyLimitFanOut.
const metaReserve = 1 << 20

// BodyLimit is what the store holds of one event: its record (metadata
// and body) is one Badger value, at most a value log file. A
// configuration can be checked against it before anything is opened.
func BodyLimit() config.StoreLimit {
	return store.BodyLimit(store.Options{MemTableSize: memTableSize}, metaReserve, "the event's metadata")
}

// BodyLimit is the package's BodyLimit, for relay.Store.
func (s *Store) BodyLimit() config.StoreLimit { return BodyLimit() }

// ErrLocked is returned (wrapped) by Open when another process holds the
// directory: a running relay, since Badger allows one per directory.
var ErrLocked = store.ErrLocked

// BelowReserveError is Open's error (wrapped) for a filesystem with less
// free space than Options.Reserve: it says how much there is and needs.
type BelowReserveError = store.BelowReserveError

// Options configure Open.
type Options struct {
	// Dir holds Badger's files; it is created if missing.
	Dir    string
	Logger zerolog.Logger
	// Reserve is the free space below which writes fail with
	// relay.ErrDiskFull instead of filling the disk (0: internal/store's
	// default; negative: no check).
	Reserve int64
}

// Store is the Badger relay.Store. Open makes one; Close releases it.
type Store struct {
	db  *store.Store
	log zerolog.Logger

	closed    atomic.Bool // set as Close begins: calls fail from then on
	closeOnce sync.Once
	closeErr  error

	diskFull atomic.Pointer[error] // the last write's disk-full error, nil after a write that succeeded

	stripes [1024]sync.Mutex // Accept's idempotency check and write, by org and event id
	keyMu   sync.Mutex       // CreateSigningKey's check and write

	mu     sync.Mutex
	queues map[relay.EndpointRef]*queue

	// afterScan, when set (tests), runs after each scan of Take, before
	// the floor moves.
	afterScan func()
}

var _ relay.Store = (*Store)(nil)

// Open opens (creating if needed) the store in opts.Dir.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("badgerstore: open: %w", err)
	}
	if opts.Dir == "" {
		return nil, errors.New("badgerstore: open: no directory")
	}
	db, err := store.Open(store.Options{Dir: opts.Dir, Logger: opts.Logger, Reserve: opts.Reserve, MemTableSize: memTableSize})
	if err != nil {
		return nil, (&Store{}).wrap("open "+opts.Dir, err)
	}
	s := &Store{db: db, log: opts.Logger, queues: make(map[relay.EndpointRef]*queue)}
	if err := s.dropObsoleteCounts(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("badgerstore: open %s: %w", opts.Dir, err)
	}
	return s, nil
}

// Close closes Badger; every write that returned nil is on disk. Calling
// it twice, or from several goroutines, is safe: every call returns once
// Badger is closed (its directory free to open again), with the first
// call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("badgerstore: close: %w", err)
		}
	})
	return s.closeErr
}

// Health is nil while the store takes writes.
func (s *Store) Health() error {
	if s.closed.Load() {
		return fmt.Errorf("badgerstore: %w: closed", relay.ErrUnavailable)
	}
	if err := s.db.Failed(); err != nil {
		if errors.Is(err, store.ErrDiskFull) {
			// relay.ErrDiskFull, as Store.Health asks: callers tell a
			// full disk from a failed store by it, not by the text.
			return fmt.Errorf("badgerstore: %w: %w", relay.ErrDiskFull, err)
		}
		return fmt.Errorf("badgerstore: %w: %w", relay.ErrUnavailable, err)
	}
	if p := s.diskFull.Load(); p != nil {
		return *p
	}
	return nil
}

// check fails a call on a closed store.
func (s *Store) check(what string) error {
	if s.closed.Load() {
		return fmt.Errorf("badgerstore: %s: %w: closed", what, relay.ErrUnavailable)
	}
	return nil
}

// write commits ops durably, whatever happens to ctx meanwhile.
func (s *Store) write(ctx context.Context, what string, ops ...store.Op) error {
	if err := s.check(what); err != nil {
		return err
	}
	err := s.db.Write(context.WithoutCancel(ctx), ops...)
	if err == nil {
		if s.diskFull.Load() != nil {
			s.diskFull.Store(nil)
		}
		return nil
	}
	err = s.wrap(what, err)
	if errors.Is(err, relay.ErrDiskFull) {
		s.diskFull.Store(&err)
	}
	return err
}

// get reads one key; relay.ErrNotFound when missing.
func (s *Store) get(what string, key []byte) ([]byte, error) {
	if err := s.check(what); err != nil {
		return nil, err
	}
	b, err := s.db.Get(key)
	if err != nil {
		return nil, s.wrap(what, err)
	}
	return b, nil
}

// scan runs a Scan, with the store's errors translated.
func (s *Store) scan(ctx context.Context, what string, o store.ScanOptions, fn func(k, v []byte) error) error {
	if err := s.check(what); err != nil {
		return err
	}
	if err := s.db.Scan(ctx, o, fn); err != nil {
		return s.wrap(what, err)
	}
	return nil
}

// wrap puts internal/store's errors in the relay's words.
func (s *Store) wrap(what string, err error) error {
	switch {
	case errors.Is(err, relay.ErrNotFound), errors.Is(err, relay.ErrDiskFull), errors.Is(err, relay.ErrUnavailable):
		return fmt.Errorf("badgerstore: %s: %w", what, err)
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("badgerstore: %s: %w", what, relay.ErrNotFound)
	case errors.Is(err, store.ErrDiskFull):
		return fmt.Errorf("badgerstore: %s: %w: %w", what, relay.ErrDiskFull, err)
	case errors.Is(err, store.ErrValueTooLarge):
		// The record is over a value log file: no retry will store it.
		return fmt.Errorf("badgerstore: %s: %w: %w", what, relay.ErrTooLarge, err)
	case s.closed.Load():
		return fmt.Errorf("badgerstore: %s: %w: %w", what, relay.ErrUnavailable, err)
	}
	return fmt.Errorf("badgerstore: %s: %w", what, err)
}

func (s *Store) stripe(org, id string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(org))
	h.Write([]byte{'/'})
	h.Write([]byte(id))
	return &s.stripes[h.Sum32()%uint32(len(s.stripes))]
}

// leased returns the ids of org's deliveries held leased.
func (s *Store) leased(org string) map[string]bool {
	s.mu.Lock()
	var qs []*queue
	for ref, q := range s.queues {
		if ref.Org == org {
			qs = append(qs, q)
		}
	}
	s.mu.Unlock()
	out := make(map[string]bool)
	for _, q := range qs {
		q.mu.Lock()
		for id := range q.leases {
			out[id] = true
		}
		q.mu.Unlock()
	}
	return out
}

// queue returns the in-memory state of an endpoint's queue.
func (s *Store) queue(ref relay.EndpointRef) *queue {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[ref]
	if q == nil {
		q = newQueue(ref)
		s.queues[ref] = q
	}
	return q
}
