package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/internal/units"
	"github.com/sidehook/sidehook/internal/wal"
)

var (
	// ErrNotFound is returned by Get for a missing or expired key.
	ErrNotFound = errors.New("store: not found")
	// ErrClosed is returned by every method called after Close has begun.
	ErrClosed = errors.New("store: closed")
	// ErrStop is returned by a Scan callback to stop early without error.
	ErrStop = errors.New("store: stop iteration")
	// ErrDiskFull is returned (wrapped) by Write while the filesystem
	// holding Dir has less than Options.Reserve free, by Open on such a
	// filesystem, and by Failed meanwhile. It wraps syscall.ENOSPC, so
	// errors.Is(err, syscall.ENOSPC) holds too.
	ErrDiskFull = fmt.Errorf("store: disk full: %w", syscall.ENOSPC)
	// ErrDirRemoved is returned (wrapped) by Write, Failed and Close once
	// Dir has been removed while the store was open: what would be written
	// goes to files already unlinked, and with the process.
	ErrDirRemoved = errors.New("store: its directory was removed while open")
	// ErrLocked is returned (wrapped) by Open when another process, or
	// another Store of this one, has Dir open: Badger allows one.
	ErrLocked = errors.New("store: the directory is in use by another process")
	// ErrValueTooLarge is returned by Write for a value above the limit:
	// MaxInMemoryValue in memory, Options.ValueLogFileSize on disk.
	ErrValueTooLarge = errors.New("store: value too large")
)

// Defaults for the zero values of Options.
const (
	DefaultGCInterval       = time.Minute
	DefaultMemTableSize     = 8 << 20
	DefaultValueLogFileSize = 64 << 20

	// MaxInMemoryValue is the largest value an InMemory store takes: without
	// a value log Badger keeps every value in its LSM tree, below its
	// largest value threshold (1 MiB; Badger v4.9 takes a value of exactly
	// the threshold, then panics writing it).
	MaxInMemoryValue = 1<<20 - 1
)

// Badger sizing for a sidecar that is not worth an option: Badger's defaults
// (5 memtables of 64 MiB, a 256 MiB block cache) suit a database server.
const (
	valueThreshold = 256 // larger values (bodies) go to the value log; index and state records stay in the LSM tree
	numMemtables   = 2
	indexCacheSize = 8 << 20
	// A compaction builds its tables in memory, up to 8 at once, each in
	// an allocator of twice the table size that Badger pools for reuse:
	// with 2 MiB tables they held 20 MiB of a relay's heap at a 200,000
	// event backlog. 1 MiB halves that, for twice the (small) tables.
	baseTableSize   = 1 << 20
	levelMultiplier = 10 // Badger's default: a level is ten times the one above
	numCompactors   = 2  // Badger's minimum when compaction is on
	gcDiscardRatio  = 0.5
	maxKeySize      = 65000 // Badger's limit

	// In memory a transaction may hold 15% of a memtable: 16 MiB takes a
	// MaxInMemoryValue value with room for the other ops of its Write.
	inMemoryMemTableSize = 16 << 20
)

// Options configure Open.
type Options struct {
	Dir      string         // data directory; ignored when InMemory
	InMemory bool           // no files at all (tests, --in-memory)
	Logger   zerolog.Logger // Badger's own logs are routed here, its INFO at debug level

	// MemTableSize is the size of one of Badger's two memtables (default
	// DefaultMemTableSize). It dominates resident memory.
	MemTableSize int64
	// ValueLogFileSize is the size of one value log file (default
	// DefaultValueLogFileSize), and the largest value on disk. The GC
	// rewrites a file at a time: small files keep a rewrite short.
	ValueLogFileSize int64

	// Reserve is the free space below which Write fails with ErrDiskFull
	// instead of writing, and Open fails. Badger writes its logs and tables
	// through mmap, and a write to a full filesystem through a mapping is a
	// SIGBUS that kills the process: the reserve is what turns a full disk
	// into an error. It must cover a memtable flush and a value log file
	// (see ReserveFloor); Open refuses less. The default, DefaultReserve,
	// adds room for compactions. Negative disables the check (tests on a
	// crowded disk).
	Reserve int64

	// GCInterval is how often the value log GC runs in the background
	// (default DefaultGCInterval; negative disables it).
	GCInterval time.Duration

	noRelease bool // no release of mapped pages (release.go), for a benchmark

	// Test hooks, set by internal tests before the first Write.
	failSync   func() error // replaces Badger's sync
	beforeSync func(n int)  // runs in the writer before each sync, with the group's size
	groupBytes int64        // replaces maxGroupBytes
}

func (o *Options) setDefaults() {
	o.setDefaultSizes()
	if o.GCInterval == 0 {
		o.GCInterval = DefaultGCInterval
	}
	if o.Reserve == 0 {
		o.Reserve = DefaultReserve(*o)
	}
}

// flushBytes is what flushing every memtable writes: an L0 table of about
// a memtable's size each. Badger's Close flushes the current one.
func flushBytes(o Options) int64 { return numMemtables * o.MemTableSize }

// ReserveFloor is the smallest Reserve that Open accepts for o's sizing: a
// flush of every memtable plus a value log file (which a GC rewrite writes
// before it deletes the old one). Zero sizes count as their defaults.
func ReserveFloor(o Options) int64 {
	o.setDefaultSizes()
	return flushBytes(o) + o.ValueLogFileSize
}

// DefaultReserve is ReserveFloor plus room for the compactions that may be
// writing their new tables (before they delete the old ones) when the
// reserve is reached.
func DefaultReserve(o Options) int64 {
	return ReserveFloor(o) + numCompactors*(levelMultiplier+1)*baseTableSize
}

func (o *Options) setDefaultSizes() {
	if o.MemTableSize <= 0 {
		o.MemTableSize = DefaultMemTableSize
	}
	if o.ValueLogFileSize <= 0 {
		o.ValueLogFileSize = DefaultValueLogFileSize
	}
}

// MaxValue is the largest value Write takes for o's sizing: zero sizes
// count as their defaults. A larger one fails with ErrValueTooLarge.
func MaxValue(o Options) int64 {
	o.setDefaultSizes()
	return o.maxValueSize()
}

// BodyLimit is what a store of o's sizing holds of one record whose body
// shares its value with up to reserve bytes of other data (kept names
// them, "the event's metadata"): the relay's and the receiver's Badger
// stores say it the same way.
func BodyLimit(o Options, reserve int64, kept string) units.StoreLimit {
	vlog := MaxValue(o)
	return units.StoreLimit{
		Store:   "the Badger store",
		MaxBody: vlog - reserve,
		Why:     fmt.Sprintf("a value log file of %s, less %s kept for %s", units.FormatSize(vlog), units.FormatSize(reserve), kept),
	}
}

// maxValueSize is the largest value Badger accepts.
func (o *Options) maxValueSize() int64 {
	if o.InMemory {
		return MaxInMemoryValue
	}
	return o.ValueLogFileSize
}

func (o *Options) badgerOptions() badger.Options {
	dir := o.Dir
	if o.InMemory {
		dir = ""
	}
	bo := badger.DefaultOptions(dir).
		WithInMemory(o.InMemory).
		WithLogger(badgerLogger{log: o.Logger}).
		// The writer syncs once per group commit (Store.sync).
		WithSyncWrites(false).
		// Only the writer goroutine writes, so there is nothing to conflict.
		WithDetectConflicts(false).
		// Badger's metrics are process-wide expvars; we keep our own.
		WithMetricsEnabled(false).
		WithNumMemtables(numMemtables).
		WithCompression(options.None).
		// Without compression or encryption Badger reads blocks straight
		// from the mapped tables: a block cache would only duplicate them.
		WithBlockCacheSize(0).
		WithIndexCacheSize(indexCacheSize).
		WithNumCompactors(numCompactors)
	if o.InMemory {
		// Badger keeps every value in the LSM tree in memory, but refuses
		// those above ValueThreshold: raise it to Badger's maximum.
		return bo.WithValueThreshold(MaxInMemoryValue + 1).
			WithMemTableSize(max(o.MemTableSize, inMemoryMemTableSize))
	}
	bo = bo.
		WithMemTableSize(o.MemTableSize).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithValueThreshold(valueThreshold).
		WithValueLogFileSize(o.ValueLogFileSize).
		WithBaseTableSize(baseTableSize)
	// Badger doubles the table size at every level below the base, and a
	// compaction builds its tables in memory: with a million events queued
	// the builders held 92 MiB. One size for every level bounds that.
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
	readers sync.WaitGroup // Get, Scan, open snapshots, Stats and RunGC in flight

	wake       chan struct{} // cap 1: something was queued
	closing    chan struct{} // closed when Close begins
	writerDone chan struct{}
	gcStop     context.CancelFunc
	gcDone     chan struct{}

	releaseStop context.CancelFunc
	releaseDone chan struct{}
	releaseIdle atomic.Bool   // the release poll has stopped: see touched
	releaseWake chan struct{} // cap 1: touched restarts it

	closeOnce sync.Once
	closeErr  error

	syncMu sync.Mutex // one sync at a time: the writer's and the GC's
	logs   *logFiles  // nil in memory; guarded by syncMu
	failed atomic.Pointer[error]

	space *spaceGuard // nil when the free space is not guarded; the writer's

	// The writer's: the write-ahead log (nil in memory), and what it holds
	// since the last checkpoint.
	wal            *wal.Log
	walBytes       int64
	lastCheckpoint time.Time
	recBuf         []byte
	ckpt           checkpointer

	stats counters
}

type counters struct {
	writes, ops, failed, diskFull atomic.Uint64
	groups, txns, syncs           atomic.Uint64
	checkpoints, replayed         atomic.Uint64
	gcRuns, gcRewrites, gcErrors  atomic.Uint64
	queueHighWater, maxGroup      atomic.Int64
}

// badgerLocked is in Badger's error when another process holds the
// directory's lock (its words on every platform).
const badgerLocked = "Another process is using this Badger database"

// Open opens (or creates) the store and starts the writer and GC
// goroutines. On a filesystem with less than Options.Reserve free it fails
// with ErrDiskFull, before Badger touches a file.
func Open(opts Options) (*Store, error) {
	opts.setDefaults()
	s := &Store{
		opts:        opts,
		log:         opts.Logger,
		wake:        make(chan struct{}, 1),
		closing:     make(chan struct{}),
		writerDone:  make(chan struct{}),
		gcDone:      make(chan struct{}),
		releaseDone: make(chan struct{}),
		releaseWake: make(chan struct{}, 1),
	}
	if !opts.InMemory {
		if err := s.prepareDir(); err != nil {
			return nil, err
		}
	}
	db, err := badger.Open(opts.badgerOptions())
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return nil, fmt.Errorf("%w: open %s: %w", ErrDiskFull, opts.Dir, err)
		}
		// Badger gives its lock's error as text only.
		if strings.Contains(err.Error(), badgerLocked) {
			return nil, fmt.Errorf("%w: open %s: %w", ErrLocked, opts.Dir, err)
		}
		return nil, fmt.Errorf("store: open %s: %w", opts.Dir, err)
	}
	s.db = db
	if !opts.InMemory {
		// Badger does not sync the directory entries of the files it
		// creates: sync them once, and note its newest logs.
		s.logs = &logFiles{dir: opts.Dir}
		if err := s.logs.syncAll(); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("store: open %s: %w", opts.Dir, err)
		}
		if err := s.openWAL(); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("store: open %s: %w", opts.Dir, err)
		}
	}
	gcCtx, gcStop := context.WithCancel(context.Background())
	s.gcStop = gcStop
	relCtx, relStop := context.WithCancel(context.Background())
	s.releaseStop = relStop
	go s.runWriter()
	go s.runGC(gcCtx)
	go s.runRelease(relCtx)
	return s, nil
}

// prepareDir checks the reserve and creates Dir (made durable in its
// parent) if needed.
func (s *Store) prepareDir() error {
	o := &s.opts
	if o.Dir == "" {
		return errors.New("store: open: empty Dir and not InMemory")
	}
	if o.Reserve >= 0 {
		if floor := ReserveFloor(*o); o.Reserve < floor {
			return fmt.Errorf("store: open %s: a reserve of %s is below the floor of %s (a flush of every memtable and a value log file)",
				o.Dir, mib(o.Reserve), mib(floor))
		}
	}
	if err := makeDir(o.Dir); err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return fmt.Errorf("%w: create %s: %w", ErrDiskFull, o.Dir, err)
		}
		return fmt.Errorf("store: open: %w", err)
	}
	if o.Reserve >= 0 {
		s.space = newSpaceGuard(o.Dir, o.Reserve)
		if err := s.space.check(); err != nil {
			return err
		}
	}
	return nil
}

// Close lets the writer finish what is queued, stops the GC, waits for
// readers and closes Badger. Writes that arrive after Close has begun fail
// with ErrClosed. Close waits for Scans in progress, so it must not be
// called from a Scan callback. It is safe to call more than once; every
// call returns the first call's result.
//
// On a filesystem with less free space than a memtable flush, Close leaves
// Badger open and returns ErrDiskFull: Badger's close flushes its memtable
// through a mapping, which would kill the process with SIGBUS, and every
// acknowledged write is already in its synced log, which the next Open
// replays. The process is then expected to exit.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.closing)
		<-s.writerDone
		s.gcStop()
		<-s.gcDone
		s.releaseStop()
		<-s.releaseDone
		s.readers.Wait()
		if err := s.unflushable(); err != nil {
			// Badger's close flushes its memtable and retries a failed
			// flush every second, for ever: it is left unclosed, and the
			// WAL, synced at every group, is what the next Open replays.
			s.closeErr = err
			if s.wal != nil {
				_ = s.wal.Close()
			}
			return
		}
		var errs []error
		if s.wal != nil {
			errs = append(errs, s.checkpoint(), s.wal.Close())
		}
		if err := s.db.Close(); err != nil {
			errs = append(errs, err)
		}
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("store: close: %w", err)
		}
	})
	return s.closeErr
}

// unflushable says why Badger's close could not flush its memtable: its
// directory was removed, or its disk has too little free for the flush.
func (s *Store) unflushable() error {
	if s.opts.InMemory {
		return nil
	}
	if _, err := os.Stat(s.opts.Dir); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s: nothing is left to close", ErrDirRemoved, s.opts.Dir)
	}
	if s.space == nil {
		return nil
	}
	if free, ok, err := freeBytes(s.opts.Dir); err == nil && ok && free < flushBytes(s.opts)+flushSlack {
		return fmt.Errorf("%w: close %s: %s free, a memtable flush needs %s: Badger left for the next open to recover",
			ErrDiskFull, s.opts.Dir, mib(free), mib(flushBytes(s.opts)+flushSlack))
	}
	return nil
}

// flushSlack covers what Badger's close writes beside the tables: its
// manifest, discard stats and value log truncation.
const flushSlack = 1 << 20

// Failed returns why the store refuses writes, or nil: ErrDiskFull
// (wrapped) while the free space is below the reserve, which clears once
// space is freed; or a failed sync, which fails the store until it is
// reopened (what was synced before stays; what the failed sync held may
// be lost, and its callers had the error). Health checks report it.
func (s *Store) Failed() error {
	if err := s.syncFailure(); err != nil {
		return err
	}
	if s.space == nil {
		return nil
	}
	return s.space.check()
}

func (s *Store) syncFailure() error {
	if p := s.failed.Load(); p != nil {
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
	s.touched()
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
	var val []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if err != nil {
			return err
		}
		val, err = item.ValueCopy(nil)
		return err
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
	if err := ctx.Err(); err != nil {
		return err
	}
	sn, err := s.Snapshot()
	if err != nil {
		return err
	}
	defer sn.Close()
	return sn.Scan(ctx, opts, fn)
}

// Snapshot is the store as it was when Snapshot returned: a write that
// returns later is not in it, however long it is read. It holds the store
// open, and Badger keeps the versions it sees, until Close.
type Snapshot struct {
	s     *Store
	txn   *badger.Txn
	close sync.Once
}

// Snapshot fixes a snapshot to read; Close it when done.
func (s *Store) Snapshot() (*Snapshot, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	return &Snapshot{s: s, txn: s.db.NewTransaction(false)}, nil
}

// Scan is Store.Scan over the snapshot.
func (sn *Snapshot) Scan(ctx context.Context, opts ScanOptions, fn func(key, value []byte) error) error {
	if opts.Limit < 0 {
		return fmt.Errorf("store: scan: negative limit %d", opts.Limit)
	}
	err := scan(ctx, sn.txn, opts, fn)
	if errors.Is(err, ErrStop) {
		return nil
	}
	return err
}

// Close releases the snapshot; calling it again does nothing.
func (sn *Snapshot) Close() {
	sn.close.Do(func() {
		sn.txn.Discard()
		sn.s.readers.Done()
	})
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
		var err error
		if opts.KeysOnly {
			err = fn(item.Key(), nil)
		} else {
			err = item.Value(func(v []byte) error { return fn(item.Key(), v) })
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
	WALBytes  int64 // Badger's memtable logs (allocated size)

	Writes       uint64 // Write calls committed
	Ops          uint64 // ops in those Writes
	FailedWrites uint64 // Write calls the writer answered with an error
	DiskFull     uint64 // Write calls refused with ErrDiskFull
	Groups       uint64 // group commits
	Txns         uint64 // Badger transactions committed
	Syncs        uint64 // WAL syncs: one per group on disk, what acknowledges writes
	Checkpoints  uint64 // Badger syncs that let the WAL drop what it held
	Replayed     uint64 // WAL records applied to Badger by Open
	MaxGroup     int64  // largest group commit, in Write calls
	QueuedMax    int64  // most Write calls ever waiting at once

	GCRuns     uint64 // GC passes
	GCRewrites uint64 // value log files rewritten by GC
	GCErrors   uint64
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
		Checkpoints:  s.stats.checkpoints.Load(),
		Replayed:     s.stats.replayed.Load(),
		MaxGroup:     s.stats.maxGroup.Load(),
		QueuedMax:    s.stats.queueHighWater.Load(),
		GCRuns:       s.stats.gcRuns.Load(),
		GCRewrites:   s.stats.gcRewrites.Load(),
		GCErrors:     s.stats.gcErrors.Load(),
	}
	if s.opts.InMemory || s.acquire() != nil {
		return st
	}
	defer s.readers.Done()
	st.LSMBytes, st.VLogBytes, st.WALBytes = dirSizes(s.opts.Dir)
	return st
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
