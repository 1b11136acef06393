// Package badgerstore is the durable receiver.Store, on internal/store
// (Badger with group commit): a capture is on disk when Append returns.
//
// Keys: c/<capture id> holds a capture's binary form; ids are ULIDs, which
// sort by time, so a reverse scan is newest first and an id is its own
// cursor. h/<SHA-256 of a webhook-id> holds the id of the webhook-id's first
// capture: hashed, so that a webhook-id of any length has a key.
package badgerstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/internal/store"
	"github.com/sidehook/sidehook/receiver"
)

var (
	prefixCapture = []byte("c/")
	prefixWebhook = []byte("h/")
	// prefixLegacyWebhook held webhook-ids unhashed, before a webhook-id of
	// over 64 KB could be captured; Open moves its entries to prefixWebhook.
	prefixLegacyWebhook = []byte("w/")
)

func captureKey(id string) []byte  { return append(bytes.Clone(prefixCapture), id...) }
func webhookKey(sum widSum) []byte { return append(bytes.Clone(prefixWebhook), sum[:]...) }

// DefaultDedupeCache is how many webhook-ids the duplicate detection keeps
// in memory; older ones are looked up in the store.
const DefaultDedupeCache = 100_000

// metaReserve is what MaxBody keeps of a value log file for a capture's
// metadata beside its body: the request's headers and line (Go's server
// reads up to 1 MiB of them), JSON-escaped, the verdict and the answer
// (at most receiver.MaxResponseBody of its body).
const metaReserve = 2 << 20

// BodyLimit is what the store holds of one capture: a capture is one
// Badger value, at most a value log file, and Append fails with
// receiver.ErrTooLarge for one over it. A receiver's MaxBody can be
// checked against it before the store is opened.
func BodyLimit() receiver.StoreLimit {
	return store.BodyLimit(store.Options{}, metaReserve, "the request's headers")
}

// ReserveFloor is the smallest Options.Reserve that Open accepts: a flush
// of every memtable and a value log file, at this store's sizes. A flag
// can be checked against it before anything is opened.
func ReserveFloor() int64 { return store.ReserveFloor(store.Options{}) }

// DefaultReserve is the Reserve Open takes for 0: the floor and room for
// the compactions that may be writing when it is reached.
func DefaultReserve() int64 { return store.DefaultReserve(store.Options{}) }

// ErrLocked is returned (wrapped) by Open when another process holds the
// directory: a running receiver, since Badger allows one per directory.
var ErrLocked = store.ErrLocked

// BodyLimit is the package's BodyLimit; see receiver.Store.
func (s *Store) BodyLimit() receiver.StoreLimit { return BodyLimit() }

// Options configure Open.
type Options struct {
	// Dir is the data directory; required.
	Dir string
	// Logger gets the store's own logs and warnings.
	Logger zerolog.Logger
	// DedupeCache is how many webhook-ids are kept in memory for
	// duplicate_of (DefaultDedupeCache when 0).
	DedupeCache int
	// Reserve is the free space below which captures are refused (503)
	// rather than fill the disk (0: internal/store's default, which covers
	// a memtable flush; negative: no check).
	Reserve int64
}

// Store is the durable capture store. Open it, pass it to receiver.New, and
// Close it after the receiver has closed.
type Store struct {
	st     *store.Store
	log    zerolog.Logger
	dedupe *dedupe
	// diskFull is set while the last write was refused for lack of space.
	diskFull atomic.Bool
	// edit is held by SetResponse's read and write of a capture, and by
	// DeleteAll: a capture deleted between them is not written back.
	edit sync.Mutex

	// loadStop ends the load of the webhook-id filter and loadDone is
	// closed when it has ended, before the store closes.
	loadStop  context.CancelFunc
	loadDone  chan struct{}
	closeOnce sync.Once
	closeErr  error
}

var _ receiver.Store = (*Store)(nil)

// Open opens (or creates) the store in opts.Dir. The webhook-id filter
// loads in the background: until it is complete, a new webhook-id costs
// one lookup.
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("badgerstore: a data directory is required")
	}
	if opts.DedupeCache <= 0 {
		opts.DedupeCache = DefaultDedupeCache
	}
	st, err := store.Open(store.Options{Dir: opts.Dir, Logger: opts.Logger.With().Str("component", "store").Logger(), Reserve: opts.Reserve})
	if err != nil {
		return nil, fmt.Errorf("badgerstore: open: %w", err)
	}
	s := &Store{st: st, log: opts.Logger}
	s.dedupe = newDedupe(opts.DedupeCache, s.lookupFirst)
	if err := s.migrate(); err != nil {
		st.Close()
		return nil, fmt.Errorf("badgerstore: open: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	s.loadStop, s.loadDone = stop, make(chan struct{})
	go func() {
		defer close(s.loadDone)
		if err := s.loadKnown(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn().Err(err).Msg("duplicate detection stays on store lookups")
		}
	}()
	return s, nil
}

// migrate moves the entries of the unhashed webhook-id index, if any, to
// the hashed one.
func (s *Store) migrate() error {
	ctx := context.Background()
	var ops []store.Op
	flush := func() error {
		err := s.st.Write(ctx, ops...)
		ops = ops[:0]
		return err
	}
	err := s.st.Scan(ctx, store.ScanOptions{Prefix: prefixLegacyWebhook}, func(k, v []byte) error {
		ops = append(ops, store.Set(webhookKey(sumOf(string(k[len(prefixLegacyWebhook):]))), bytes.Clone(v)))
		if len(ops) == 1000 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err == nil {
		err = s.st.DeletePrefix(ctx, prefixLegacyWebhook)
	}
	if err != nil {
		return fmt.Errorf("migrate the webhook-id index: %w", err)
	}
	return nil
}

// loadKnown adds the stored webhook-ids to the dedupe filter and marks it
// complete. An error leaves it incomplete, which is only slower.
func (s *Store) loadKnown(ctx context.Context) error {
	var batch []widSum
	err := s.st.Scan(ctx, store.ScanOptions{Prefix: prefixWebhook, KeysOnly: true}, func(k, _ []byte) error {
		var sum widSum
		if copy(sum[:], k[len(prefixWebhook):]) == len(sum) {
			batch = append(batch, sum)
		}
		if len(batch) == 1024 {
			s.dedupe.addKnown(batch)
			batch = batch[:0]
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("badgerstore: load webhook-id index: %w", err)
	}
	s.dedupe.addKnown(batch)
	s.dedupe.markComplete()
	return nil
}

// lookupFirst reads the first capture of a webhook-id from the index.
func (s *Store) lookupFirst(sum widSum) (string, bool) {
	v, err := s.st.Get(webhookKey(sum))
	if err != nil {
		return "", false
	}
	return string(v), true
}

// Append stores c and, when it is the first of its webhook-id, the index
// entry, in one durable write; see receiver.Store.
func (s *Store) Append(ctx context.Context, c *receiver.Capture) error {
	c.DuplicateOf = ""
	var sum widSum
	mine := false
	if c.WebhookID != "" {
		sum = sumOf(c.WebhookID)
		var first string
		if first, mine = s.dedupe.first(sum, c.ID); !mine {
			c.DuplicateOf = first
		}
	}
	err := s.write(ctx, c, sum, mine)
	if err != nil && mine {
		s.dedupe.forget(sum, c.ID)
	}
	return err
}

func (s *Store) write(ctx context.Context, c *receiver.Capture, sum widSum, first bool) error {
	enc, err := c.MarshalBinary()
	if err != nil {
		return fmt.Errorf("badgerstore: append: %w", err)
	}
	ops := make([]store.Op, 1, 2)
	ops[0] = store.Set(captureKey(c.ID), enc)
	if first {
		ops = append(ops, store.Set(webhookKey(sum), []byte(c.ID)))
	}
	return s.writeOps(ctx, "append", ops...)
}

// writeOps writes ops durably, its errors in the receiver's words.
func (s *Store) writeOps(ctx context.Context, what string, ops ...store.Op) error {
	// A write once begun is finished, whatever the client does.
	err := s.st.Write(context.WithoutCancel(ctx), ops...)
	s.diskFull.Store(errors.Is(err, store.ErrDiskFull))
	if errors.Is(err, store.ErrDiskFull) {
		return fmt.Errorf("badgerstore: %s: %w: %w", what, receiver.ErrDiskFull, err)
	}
	if errors.Is(err, store.ErrValueTooLarge) {
		return fmt.Errorf("badgerstore: %s: %w: %w", what, receiver.ErrTooLarge, err)
	}
	if err != nil {
		return fmt.Errorf("badgerstore: %s: %w", what, err)
	}
	return nil
}

// SetResponse replaces a capture's response; see receiver.Store.
func (s *Store) SetResponse(ctx context.Context, id string, r receiver.CaptureResponse) error {
	s.edit.Lock()
	defer s.edit.Unlock()
	c, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	c.Response = r
	enc, err := c.MarshalBinary()
	if err != nil {
		return fmt.Errorf("badgerstore: set response: %w", err)
	}
	return s.writeOps(ctx, "set response", store.Set(captureKey(id), enc))
}

// Get returns one capture; see receiver.Store.
func (s *Store) Get(_ context.Context, id string) (receiver.Capture, error) {
	v, err := s.st.Get(captureKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return receiver.Capture{}, fmt.Errorf("badgerstore: %s: %w", id, receiver.ErrNotFound)
	}
	if err != nil {
		return receiver.Capture{}, fmt.Errorf("badgerstore: get: %w", err)
	}
	var c receiver.Capture
	if err := c.UnmarshalBinary(v); err != nil {
		return receiver.Capture{}, fmt.Errorf("badgerstore: get %s: %w", id, err)
	}
	return c, nil
}

// List returns a page of captures; see receiver.Store. Newest first, the
// scan ends at the first capture older than the filter's since without
// decoding it: its id says its age.
func (s *Store) List(ctx context.Context, q receiver.Query) (caps []receiver.Capture, next string, err error) {
	err = s.scan(ctx, q, func(c receiver.Capture) bool {
		if q.Limit > 0 && len(caps) == q.Limit {
			next = caps[len(caps)-1].ID
			return false
		}
		caps = append(caps, c)
		return true
	})
	if err != nil {
		return nil, "", err
	}
	return caps, next, nil
}

// Count returns how many captures match f; see receiver.Store. Counting
// everything reads keys only.
func (s *Store) Count(ctx context.Context, f receiver.Filter) (int, error) {
	n := 0
	if f == (receiver.Filter{}) {
		err := s.st.Scan(ctx, store.ScanOptions{Prefix: prefixCapture, KeysOnly: true}, func(_, _ []byte) error {
			n++
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("badgerstore: count: %w", err)
		}
		return n, nil
	}
	err := s.scan(ctx, receiver.Query{Filter: f}, func(receiver.Capture) bool { n++; return true })
	return n, err
}

// scan calls fn with each capture matching q.Filter in q's order, after
// q.After, until fn returns false.
func (s *Store) scan(ctx context.Context, q receiver.Query, fn func(receiver.Capture) bool) error {
	opts := store.ScanOptions{Prefix: prefixCapture, Reverse: !q.Oldest}
	if q.After != "" {
		opts.After = captureKey(q.After)
	}
	var sinceMS uint64
	if since := q.Filter.Since; !since.IsZero() && since.After(time.UnixMilli(0)) {
		sinceMS = uint64(since.UnixMilli())
	}
	idAt := len(prefixCapture) + len(event.PrefixCapture)
	err := s.st.Scan(ctx, opts, func(k, v []byte) error {
		if sinceMS > 0 && !q.Oldest && len(k) > idAt {
			if u, err := ulid.ParseStrict(string(k[idAt:])); err == nil && u.Time() < sinceMS {
				return store.ErrStop
			}
		}
		var c receiver.Capture
		if err := c.UnmarshalBinary(v); err != nil {
			s.log.Warn().Err(err).Str("key", string(k)).Msg("skipping unreadable capture")
			return nil
		}
		if !q.Filter.Match(&c) {
			return nil
		}
		if !fn(c) {
			return store.ErrStop
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("badgerstore: scan: %w", err)
	}
	return nil
}

// DeleteAll deletes every capture and the webhook-id index; see
// receiver.Store.
func (s *Store) DeleteAll(ctx context.Context) error {
	s.edit.Lock()
	defer s.edit.Unlock()
	s.dedupe.clear()
	ctx = context.WithoutCancel(ctx)
	if err := s.st.DeletePrefix(ctx, prefixCapture); err != nil {
		return fmt.Errorf("badgerstore: delete captures: %w", err)
	}
	if err := s.st.DeletePrefix(ctx, prefixWebhook); err != nil {
		return fmt.Errorf("badgerstore: delete the webhook-id index: %w", err)
	}
	// Again: an append that claimed a webhook-id during the delete cached
	// an answer the delete may have removed from the store.
	s.dedupe.clear()
	return nil
}

// Err reports a full disk or a failed store; see receiver.Store.
func (s *Store) Err() error {
	if err := s.st.Failed(); err != nil {
		return fmt.Errorf("badgerstore: %w: %w", receiver.ErrStoreFailed, err)
	}
	if s.diskFull.Load() {
		return fmt.Errorf("badgerstore: %w", receiver.ErrDiskFull)
	}
	return nil
}

// Close stops the filter's load and closes the store. It is safe to call
// more than once; later calls return the first one's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.loadStop()
		<-s.loadDone
		if err := s.st.Close(); err != nil {
			s.closeErr = fmt.Errorf("badgerstore: close: %w", err)
		}
	})
	return s.closeErr
}
