package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/rs/zerolog"
)

var (
	// ErrNotFound is returned by Get for a missing or expired key.
	ErrNotFound = errors.New("store: not found")
	// ErrClosed is returned by every method called after Close has begun.
	ErrClosed = errors.New("store: closed")
	// ErrStop is returned by a Scan callback to stop early without error.
	ErrStop = errors.New("store: stop iteration")
	// ErrDiskFull is returned by Write when the filesystem holding Dir has
	// less than Options.MinFreeBytes left. It wraps syscall.ENOSPC, so
	// errors.Is(err, syscall.ENOSPC) holds too.
	ErrDiskFull = fmt.Errorf("store: disk full: %w", syscall.ENOSPC)
	// ErrValueTooLarge is returned by Write for a value above the limit:
	// MaxInMemoryValue in memory, the value log file size (64 MiB) on disk.
	ErrValueTooLarge = errors.New("store: value too large")
	// ErrUnapplied is returned, with Options.AnswerOnSync, by every Write,
	// Get and Scan once a write already answered could not be committed to
	// Badger. Its WAL record is kept: reopening the store replays it.
	ErrUnapplied = errors.New("store: an answered write could not be applied; reopen the store to replay it")
)

// Defaults for the zero values of Options.
const (
	DefaultMaxBatchOps   = 10_000
	DefaultMaxBatchBytes = 4 << 20
	DefaultGCInterval    = time.Minute
	DefaultMemTableSize  = 8 << 20
	DefaultMinFreeBytes  = 128 << 20

	// MaxInMemoryValue is the largest value an InMemory store takes.
	// Without a value log Badger keeps every value in its LSM tree, below
	// 1 MiB; the store splits larger ones into chunks (see chunk.go), and
	// a Write must fit one transaction, 15% of the 16 MiB memtable.
	MaxInMemoryValue = 2 << 20
)

// Badger tuning that is not worth an option. See the package comment for
// the measurements behind these numbers.
const (
	valueThreshold   = 256      // larger values go to the value log, keeping the LSM tree small
	valueLogFileSize = 64 << 20 // GC rewrites one file at a time: small files keep a rewrite short
	numMemtables     = 2
	indexCacheSize   = 8 << 20
	baseTableSize    = 2 << 20
	numCompactors    = 2 // Badger's minimum when compaction is on
	gcDiscardRatio   = 0.5
	maxKeySize       = 65000 // Badger's limit

	// In memory every value stays in the LSM tree, and a transaction may
	// hold 15% of a memtable: 16 MiB takes a MaxInMemoryValue value with
	// room for the other ops of its Write. It costs little extra, as all
	// the data is in memory anyway (and the arena's pages are touched only
	// as it fills).
	inMemoryMemTableSize = 16 << 20

	// The WAL is checkpointed when its segment reaches walSegmentBytes (the
	// size it is preallocated to) or every checkpointInterval.
	walSegmentBytes    = 64 << 20
	checkpointInterval = 30 * time.Second
	// Open replays the WAL into Badger in batches of about this many
	// bytes of keys and values, releasing mapped pages after each.
	replayBatchBytes = 8 << 20
)

// Options configure Open.
type Options struct {
	Dir      string         // data directory; ignored when InMemory
	InMemory bool           // no files at all (tests, --in-memory)
	Logger   zerolog.Logger // Badger's own logs are routed here, its INFO at debug level

	// MaxBatchOps and MaxBatchBytes bound one group commit (defaults
	// DefaultMaxBatchOps, DefaultMaxBatchBytes). A single Write larger than
	// the bounds still goes through, alone.
	MaxBatchOps   int
	MaxBatchBytes int64

	// GCInterval is how often the value log GC runs in the background
	// (default DefaultGCInterval; negative disables it).
	GCInterval time.Duration

	// MemTableSize is the size of one of Badger's two memtables (default
	// DefaultMemTableSize). It dominates resident memory. In memory it is
	// at least 16 MiB, so that a Write of MaxInMemoryValue fits.
	MemTableSize int64

	// MinFreeBytes is the free space below which Write fails with
	// ErrDiskFull instead of writing (default DefaultMinFreeBytes; negative
	// disables the check). Badger writes through mmap, and a write to a
	// full filesystem through a mapping is a SIGBUS that kills the process,
	// so this headroom is what turns a full disk into an error. It must
	// cover a memtable flush and a compaction.
	MinFreeBytes int64

	// AnswerOnSync answers a Write once its WAL record is synced, before
	// Badger has it, instead of after; Get and Scan first wait until Badger
	// has every write answered so far, so a read still sees every write
	// whose Write has returned. Writes then do not wait on Badger's
	// commits, which stall now and then for tens of milliseconds (page
	// faults in its mappings, the release of mapped pages); reads do,
	// which suits a store written far more often than read. If Badger then
	// fails to commit an answered write, the store fails every later call
	// with ErrUnapplied and keeps the WAL for the next Open. Ignored in
	// memory, where there is no WAL.
	AnswerOnSync bool

	// ReleaseInterval is how often the store drops its page-table entries
	// for Badger's mmapped files, which otherwise keep every page of the
	// value log it has touched in our RSS (default DefaultReleaseInterval;
	// negative disables it). A release also runs whenever the process's
	// resident file-backed memory has grown by 24 MiB since the last one.
	// Linux only; off in memory.
	ReleaseInterval time.Duration

	// badgerDefaults opens Badger with its stock options (apart from
	// SyncWrites and the logger), for the comparison benchmarks.
	badgerDefaults bool
	// valueLogFileSize overrides valueLogFileSize, for tests of the GC.
	valueLogFileSize int64
	// walSegmentBytes and checkpointInterval override the constants, for
	// tests of the checkpoint.
	walSegmentBytes    int64
	checkpointInterval time.Duration
	// replayBatch overrides replayBatchBytes, for tests of the replay.
	replayBatch int64
	// clock replaces time.Now for TTLs, for tests of expiry in replay.
	clock func() time.Time
}

func (o *Options) segmentBytes() int64 {
	if o.walSegmentBytes > 0 {
		return o.walSegmentBytes
	}
	return walSegmentBytes
}

func (o *Options) replayBatchBytes() int64 {
	if o.replayBatch > 0 {
		return o.replayBatch
	}
	return replayBatchBytes
}

func (o *Options) checkpointEvery() time.Duration {
	if o.checkpointInterval > 0 {
		return o.checkpointInterval
	}
	return checkpointInterval
}

func (o *Options) now() time.Time {
	if o.clock != nil {
		return o.clock()
	}
	return time.Now()
}

// maxValueSize is the largest value Badger accepts.
func (o *Options) maxValueSize() int64 {
	if o.InMemory {
		return MaxInMemoryValue
	}
	if o.badgerDefaults {
		return badger.DefaultOptions("").ValueLogFileSize
	}
	return o.vlogFileSize()
}

func (o *Options) setDefaults() {
	if o.MaxBatchOps <= 0 {
		o.MaxBatchOps = DefaultMaxBatchOps
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if o.GCInterval == 0 {
		o.GCInterval = DefaultGCInterval
	}
	if o.MemTableSize <= 0 {
		o.MemTableSize = DefaultMemTableSize
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = DefaultMinFreeBytes
	}
	if o.ReleaseInterval == 0 {
		o.ReleaseInterval = DefaultReleaseInterval
	}
}

func (o *Options) vlogFileSize() int64 {
	if o.valueLogFileSize > 0 {
		return o.valueLogFileSize
	}
	return valueLogFileSize
}

func (o *Options) badgerOptions() badger.Options {
	dir := o.Dir
	if o.InMemory {
		dir = ""
	}
	bo := badger.DefaultOptions(dir).
		WithInMemory(o.InMemory).
		WithLogger(badgerLogger{log: o.Logger}).
		// We sync once per group commit ourselves (see Store.sync).
		WithSyncWrites(false).
		// Only the writer goroutine writes, so there is nothing to conflict.
		WithDetectConflicts(false).
		// Badger's metrics are process-wide expvars; we keep our own.
		WithMetricsEnabled(false)
	if o.InMemory {
		// Badger keeps values in the LSM tree in memory, but still refuses
		// those from ValueThreshold up: raise it to Badger's maximum, above
		// the chunks.
		bo = bo.WithValueThreshold(1 << 20).
			WithMemTableSize(max(o.MemTableSize, inMemoryMemTableSize))
		if o.badgerDefaults {
			return bo
		}
		return bo.WithNumMemtables(numMemtables).
			WithCompression(options.None).
			WithBlockCacheSize(0).
			WithIndexCacheSize(indexCacheSize).
			WithNumCompactors(numCompactors)
	}
	if o.badgerDefaults {
		return bo
	}
	bo = bo.
		WithMemTableSize(o.MemTableSize).
		WithNumMemtables(numMemtables).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithValueThreshold(valueThreshold).
		WithValueLogFileSize(o.vlogFileSize()).
		WithBaseTableSize(baseTableSize).
		WithCompression(options.None).
		// Without compression or encryption Badger reads blocks straight
		// from the mmapped tables: a block cache would only duplicate them.
		WithBlockCacheSize(0).
		WithIndexCacheSize(indexCacheSize).
		WithNumCompactors(numCompactors)
	// Badger doubles the table size at every level below the base, and a
	// compaction builds its tables in memory (two table sizes per builder,
	// up to 13 builders at once): with a million events queued the tables
	// were 8 MiB and the builders held 92 MiB. One size for every level
	// keeps that bounded whatever the backlog.
	bo.TableSizeMultiplier = 1
	return bo
}

// Store is a durable key-value store with a group-commit writer. All methods
// are safe for concurrent use.
type Store struct {
	db   *badger.DB
	opts Options
	log  zerolog.Logger

	mu      sync.Mutex
	closed  bool
	queue   []*request
	readers sync.WaitGroup // Get, Scan and Stats in flight

	wake       chan struct{} // cap 1: something was queued
	closing    chan struct{} // closed when Close begins
	writerDone chan struct{}
	gcStop     context.CancelFunc
	gcDone     chan struct{}

	closeOnce sync.Once
	closeErr  error

	wal      walState
	ckptMu   sync.Mutex    // one checkpoint at a time
	ckptWake chan struct{} // cap 1: the writer found the segment full
	ckptStop context.CancelFunc
	ckptDone chan struct{}

	applyCh     chan applyJob // cap 1: the writer runs one group ahead
	applierDone chan struct{}
	applyMu     sync.Mutex
	applyCond   *sync.Cond            // signalled when applied grows
	applied     uint64                // groups applied (guarded by applyMu)
	unapplied   atomic.Pointer[error] // set once, with AnswerOnSync: see ErrUnapplied

	syncMu sync.Mutex // serialises full Badger syncs (checkpoints, GC)

	// The release of mapped pages (release.go) holds mapMu against the
	// applier's Badger commits, and vlogMu against the value log GC.
	mapMu       sync.Mutex
	vlogMu      sync.Mutex
	releaseStop context.CancelFunc
	releaseDone chan struct{}
	vlogPending map[string]bool // value log files before a rewrite whose file is not yet deleted (guarded by vlogMu)

	space *spaceGuard // nil when the free space is not guarded; the writer's

	stats counters
	hooks testHooks
}

// testHooks let internal tests simulate a crash.
type testHooks struct {
	skipApply    atomic.Bool // log groups to the WAL but leave Badger alone
	noCheckpoint atomic.Bool // Close keeps the WAL, as a crash would
	failCommit   atomic.Bool // Badger commits fail after the WAL append
	// beforeApply, when set before the first Write, runs in the applier
	// before each group: a test holds it to see what is answered first.
	beforeApply func()
}

type counters struct {
	writes, ops, failed, diskFull    atomic.Uint64
	groups, txns, syncs, badgerSyncs atomic.Uint64
	checkpoints, replayed            atomic.Uint64
	releases, releaseErrors          atomic.Uint64
	releasedBytes                    atomic.Int64
	gcRuns, gcRewrites, gcErrors     atomic.Uint64
	queueHighWater, maxGroup         atomic.Int64
}

// Open opens (or creates) the store, replays the WAL left by a crash, and
// starts the writer, checkpoint and GC goroutines.
func Open(opts Options) (*Store, error) {
	opts.setDefaults()
	if !opts.InMemory {
		if opts.Dir == "" {
			return nil, errors.New("store: open: empty Dir and not InMemory")
		}
		if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: open: %w", err)
		}
	}
	db, err := badger.Open(opts.badgerOptions())
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", opts.Dir, err)
	}
	s := &Store{
		db:          db,
		opts:        opts,
		log:         opts.Logger,
		wake:        make(chan struct{}, 1),
		closing:     make(chan struct{}),
		writerDone:  make(chan struct{}),
		gcDone:      make(chan struct{}),
		ckptWake:    make(chan struct{}, 1),
		ckptDone:    make(chan struct{}),
		applyCh:     make(chan applyJob, 1),
		applierDone: make(chan struct{}),
		releaseDone: make(chan struct{}),
	}
	s.applyCond = sync.NewCond(&s.applyMu)
	if !opts.InMemory && opts.MinFreeBytes >= 0 {
		s.space = newSpaceGuard(opts.Dir, opts.MinFreeBytes)
	}
	if !opts.InMemory {
		if err := s.openWAL(); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("store: open %s: %w", opts.Dir, err)
		}
	}
	gcCtx, gcStop := context.WithCancel(context.Background())
	s.gcStop = gcStop
	ckptCtx, ckptStop := context.WithCancel(context.Background())
	s.ckptStop = ckptStop
	relCtx, relStop := context.WithCancel(context.Background())
	s.releaseStop = relStop
	go s.runWriter()
	go s.runRelease(relCtx)
	go s.runGC(gcCtx)
	go s.runCheckpoints(ckptCtx)
	return s, nil
}

// openWAL replays what a crash left in the WAL, makes it durable in Badger,
// and starts a new segment for the writer.
func (s *Store) openWAL() error {
	w := &s.wal
	w.dir, w.segSize = s.opts.Dir, s.opts.segmentBytes()
	lastNum, lastSeq, err := s.replay()
	if err != nil {
		return err
	}
	w.seq, w.nextNum = lastSeq, lastNum+1
	if lastNum > 0 {
		if err := s.syncBadger(); err != nil {
			return err
		}
		// The last segment becomes the spare the new one reuses.
		if err := w.retire(w.nextNum); err != nil {
			return err
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rotate()
}

// Close flushes the writes already queued, stops the GC, checkpoints (so
// that the next Open has no WAL to replay) and closes Badger. Writes that
// arrive after Close has begun fail with ErrClosed. Close waits for Scans in
// progress, so it must not be called from a Scan callback. It is safe to
// call more than once; every call returns the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.closing)
		<-s.writerDone
		s.releaseStop()
		<-s.releaseDone
		s.gcStop()
		<-s.gcDone
		s.ckptStop()
		<-s.ckptDone
		s.readers.Wait()
		var errs []error
		if !s.opts.InMemory {
			errs = append(errs, s.closeWAL())
		}
		errs = append(errs, s.db.Close())
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("store: close: %w", err)
		}
	})
	return s.closeErr
}

// closeWAL syncs Badger and retires every WAL segment. If the sync fails
// the WAL stays, for the next Open to replay.
func (s *Store) closeWAL() error {
	w := &s.wal
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.seg.close()
	if s.hooks.noCheckpoint.Load() {
		return err
	}
	if uerr := s.unappliedErr(); uerr != nil {
		return errors.Join(err, uerr) // the WAL stays, to be replayed
	}
	if err := s.syncBadger(); err != nil {
		return err
	}
	return errors.Join(err, w.retire(w.nextNum))
}

// answerOnSync says whether writes are answered before Badger has them.
func (s *Store) answerOnSync() bool { return s.opts.AnswerOnSync && !s.opts.InMemory }

// readBarrier, with AnswerOnSync, waits until Badger has every group
// answered so far, and reports a write that never reached it.
func (s *Store) readBarrier() error {
	if !s.answerOnSync() {
		return nil
	}
	s.waitApplied(s.wal.appended.Load())
	return s.unappliedErr()
}

// Failed returns the error that has failed the store until it is reopened
// (one wrapping ErrUnapplied: an answered write that Badger did not take),
// or nil. A server reports itself unhealthy on it, so that it is restarted
// and the next Open replays the write.
func (s *Store) Failed() error { return s.unappliedErr() }

// unappliedErr is the error that ErrUnapplied wraps, once there is one.
func (s *Store) unappliedErr() error {
	if p := s.unapplied.Load(); p != nil {
		return *p
	}
	return nil
}

// acquire registers a reader, so that Close waits for it before closing
// Badger. A reader that starts after Close has begun gets ErrClosed, which
// also keeps a Get inside a Scan callback from deadlocking with Close.
func (s *Store) acquire() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.readers.Add(1)
	return nil
}

// Get returns a copy of the value stored under key, or ErrNotFound.
func (s *Store) Get(key []byte) ([]byte, error) {
	if len(key) == 0 {
		return nil, errors.New("store: get: empty key")
	}
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.readers.Done()
	if err := s.readBarrier(); err != nil {
		return nil, err
	}
	var val []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if err != nil {
			return err
		}
		return itemValue(txn, item, func(v []byte) error {
			val = bytes.Clone(v)
			return nil
		})
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get: %w", err)
	}
	return val, nil
}

// ScanOptions select the keys Scan visits.
type ScanOptions struct {
	Prefix   []byte
	Reverse  bool   // newest-first when keys embed ULIDs/timestamps
	After    []byte // exclusive cursor: start strictly after this key in the scan direction (nil = from the start)
	Limit    int    // 0 = no limit
	KeysOnly bool   // don't fetch values (fast key-only iteration); fn gets a nil value
}

// Scan calls fn for each live key selected by opts, in key order (or reverse
// key order), over one consistent snapshot. key and value are valid only
// during fn. fn returns ErrStop to end the scan early; Scan then returns nil.
// Any other error from fn ends the scan and is returned as is.
func (s *Store) Scan(ctx context.Context, opts ScanOptions, fn func(key, value []byte) error) error {
	if opts.Limit < 0 {
		return fmt.Errorf("store: scan: negative limit %d", opts.Limit)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.readers.Done()
	if err := s.readBarrier(); err != nil {
		return err
	}
	err := s.db.View(func(txn *badger.Txn) error {
		return scan(ctx, txn, opts, fn)
	})
	if errors.Is(err, ErrStop) {
		return nil
	}
	return err
}

func scan(ctx context.Context, txn *badger.Txn, opts ScanOptions, fn func(key, value []byte) error) error {
	io := badger.DefaultIteratorOptions
	io.Reverse = opts.Reverse
	io.Prefix = opts.Prefix
	io.PrefetchValues = !opts.KeysOnly
	if opts.Limit > 0 && opts.Limit < io.PrefetchSize {
		io.PrefetchSize = opts.Limit
	}
	if opts.Reverse {
		// In reverse, Badger's Rewind seeks to the prefix itself (finding
		// nothing after it), and its Valid hides the key our reverse Seek
		// lands on, just past the prefix, that we must step over. The
		// prefix is only a table filter for Badger: we check it ourselves.
		io.Prefix = nil
	}
	it := txn.NewIterator(io)
	defer it.Close()

	if !opts.Reverse {
		start := opts.Prefix
		if opts.After != nil {
			// The smallest key strictly greater than After.
			next := append(bytes.Clone(opts.After), 0)
			if bytes.Compare(next, start) > 0 {
				start = next
			}
		}
		it.Seek(start)
	} else {
		// Keys must be strictly below bound; nil means unbounded.
		bound := prefixEnd(opts.Prefix)
		if opts.After != nil && (bound == nil || bytes.Compare(opts.After, bound) < 0) {
			bound = opts.After
		}
		if bound == nil {
			it.Rewind()
		} else {
			// In reverse, Seek lands on the largest key <= bound.
			it.Seek(bound)
			if it.Valid() && bytes.Equal(it.Item().Key(), bound) {
				it.Next()
			}
		}
	}

	n := 0
	for ; it.ValidForPrefix(opts.Prefix); it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		item := it.Item()
		if isReserved(item.Key()) {
			continue // the chunks of an in-memory store's large values
		}
		var err error
		if opts.KeysOnly {
			err = fn(item.Key(), nil)
		} else {
			err = itemValue(txn, item, func(v []byte) error { return fn(item.Key(), v) })
		}
		if err != nil {
			return err
		}
		n++
		if opts.Limit > 0 && n >= opts.Limit {
			return nil
		}
	}
	return nil
}

// prefixEnd returns the smallest key greater than every key with prefix p,
// or nil when there is none (p empty or all 0xFF).
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xFF {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// deletePrefixChunk bounds one Write of DeletePrefix, so that deleting a
// large prefix never makes a transaction too big or holds a huge key list.
const deletePrefixChunk = 1000

// DeletePrefix deletes every key with the given (non-empty) prefix, in
// chunks through the group-commit writer; the deletions are durable when it
// returns nil. It is not atomic: keys written under the prefix concurrently
// may survive, and an error leaves a part deleted.
func (s *Store) DeletePrefix(ctx context.Context, prefix []byte) error {
	if len(prefix) == 0 {
		return errors.New("store: delete prefix: empty prefix")
	}
	var after []byte
	for {
		ops := make([]Op, 0, deletePrefixChunk)
		err := s.Scan(ctx, ScanOptions{Prefix: prefix, After: after, Limit: deletePrefixChunk, KeysOnly: true},
			func(key, _ []byte) error {
				ops = append(ops, Delete(bytes.Clone(key)))
				return nil
			})
		if err != nil {
			return fmt.Errorf("store: delete prefix: %w", err)
		}
		if len(ops) == 0 {
			return nil
		}
		if err := s.Write(ctx, ops...); err != nil {
			return fmt.Errorf("store: delete prefix: %w", err)
		}
		if len(ops) < deletePrefixChunk {
			return nil
		}
		after = ops[len(ops)-1].Key
	}
}

// Stats is a snapshot of the store's counters and sizes.
type Stats struct {
	LSMBytes  int64 // SST files
	VLogBytes int64 // value log files (allocated, not preallocated, size)
	WALBytes  int64 // Badger's memtable write-ahead logs (allocated size)
	LogBytes  int64 // our WAL segments, sidehook.wal.* (allocated size)

	Writes       uint64 // Write calls committed
	Ops          uint64 // ops in those Writes
	FailedWrites uint64 // Write calls the writer answered with an error
	DiskFull     uint64 // Write calls refused with ErrDiskFull
	Groups       uint64 // group commits (one WAL record and sync each)
	Txns         uint64 // Badger transactions committed
	Syncs        uint64 // WAL appends, each synced: what acknowledges writes
	WALSweeps    uint64 // full Badger syncs (every WAL, value log and the dir): checkpoints, GC, Open, Close
	Checkpoints  uint64 // WAL segments retired after a full Badger sync
	Replayed     uint64 // WAL records applied by Open
	MaxGroup     int64  // largest group commit, in Write calls
	QueuedMax    int64  // most Write calls ever waiting at once

	GCRuns     uint64 // GC passes
	GCRewrites uint64 // value log files rewritten by GC
	GCErrors   uint64

	Releases      uint64 // releases of Badger's mapped pages
	ReleaseErrors uint64
	ReleasedBytes int64 // mapped bytes advised away, summed over releases
}

// Stats returns the current counters. Sizes are zero in memory and after
// Close.
func (s *Store) Stats() Stats {
	st := Stats{
		Writes:       s.stats.writes.Load(),
		Ops:          s.stats.ops.Load(),
		FailedWrites: s.stats.failed.Load(),
		DiskFull:     s.stats.diskFull.Load(),
		Groups:       s.stats.groups.Load(),
		Txns:         s.stats.txns.Load(),
		Syncs:        s.stats.syncs.Load(),
		WALSweeps:    s.stats.badgerSyncs.Load(),
		Checkpoints:  s.stats.checkpoints.Load(),
		Replayed:     s.stats.replayed.Load(),
		MaxGroup:     s.stats.maxGroup.Load(),
		QueuedMax:    s.stats.queueHighWater.Load(),
		GCRuns:       s.stats.gcRuns.Load(),
		GCRewrites:   s.stats.gcRewrites.Load(),
		GCErrors:     s.stats.gcErrors.Load(),

		Releases:      s.stats.releases.Load(),
		ReleaseErrors: s.stats.releaseErrors.Load(),
		ReleasedBytes: s.stats.releasedBytes.Load(),
	}
	if s.opts.InMemory || s.acquire() != nil {
		return st
	}
	defer s.readers.Done()
	st.LSMBytes, st.VLogBytes, st.WALBytes, st.LogBytes = dirSizes(s.opts.Dir)
	return st
}
