package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Op is one change in a Write.
type Op struct {
	Key, Value []byte
	TTL        time.Duration // 0 = no expiry
	Delete     bool
}

// Set stores value under key.
func Set(key, value []byte) Op { return Op{Key: key, Value: value} }

// SetTTL stores value under key until ttl has passed; after that the key is
// invisible to Get and Scan.
func SetTTL(key, value []byte, ttl time.Duration) Op { return Op{Key: key, Value: value, TTL: ttl} }

// Delete removes key; deleting a missing key is not an error.
func Delete(key []byte) Op { return Op{Key: key, Delete: true} }

// opOverhead approximates Badger's per-entry header and checksum, for batch
// and free space accounting.
const opOverhead = 32

// request is one Write waiting for the writer.
type request struct {
	ops  []Op
	size int64
	done chan error // cap 1: the writer never blocks on a waiter that left
}

func validate(ops []Op) error {
	for i, op := range ops {
		switch {
		case len(op.Key) == 0:
			return fmt.Errorf("store: write: op %d: empty key", i)
		case len(op.Key) > maxKeySize:
			return fmt.Errorf("store: write: op %d: key of %d bytes exceeds %d", i, len(op.Key), maxKeySize)
		case bytes.HasPrefix(op.Key, []byte("!badger!")):
			return fmt.Errorf("store: write: op %d: key uses the reserved !badger! prefix", i)
		case op.TTL < 0:
			return fmt.Errorf("store: write: op %d: negative ttl %v", i, op.TTL)
		case op.Delete && (op.TTL != 0 || op.Value != nil):
			return fmt.Errorf("store: write: op %d: delete with a value or ttl", i)
		}
	}
	return nil
}

// newRequest copies the ops into one buffer, because the writer may still be
// using them after a canceled caller has returned and reused its slices.
func newRequest(ops []Op) *request {
	var n int
	for _, op := range ops {
		n += len(op.Key) + len(op.Value)
	}
	buf := make([]byte, 0, n)
	cp := make([]Op, len(ops))
	for i, op := range ops {
		cp[i] = op
		buf = append(buf, op.Key...)
		cp[i].Key = buf[len(buf)-len(op.Key) : len(buf) : len(buf)]
		if op.Value != nil {
			buf = append(buf, op.Value...)
			cp[i].Value = buf[len(buf)-len(op.Value) : len(buf) : len(buf)]
		}
	}
	return &request{ops: cp, size: int64(n + len(ops)*opOverhead), done: make(chan error, 1)}
}

// Write applies ops atomically. When it returns nil the ops are committed and
// synced to disk (unless InMemory), so they survive a crash of the process.
//
// Writes from concurrent callers are group-committed: see the package
// comment. Canceling ctx only abandons the wait: the ops are then either
// applied in full or not at all, and the caller cannot tell which.
func (s *Store) Write(ctx context.Context, ops ...Op) error {
	if len(ops) == 0 {
		return nil
	}
	if err := validate(ops); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r := newRequest(ops)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.queue = append(s.queue, r)
	queued := int64(len(s.queue))
	s.mu.Unlock()
	storeMax(&s.stats.queueHighWater, queued)
	select {
	case s.wake <- struct{}{}:
	default: // the writer is already due to look at the queue
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func storeMax(v *atomic.Int64, n int64) {
	for {
		old := v.Load()
		if n <= old || v.CompareAndSwap(old, n) {
			return
		}
	}
}

// runWriter is the only goroutine that writes to Badger. It commits whatever
// is queued as one group, and drains the queue before Close closes Badger.
func (s *Store) runWriter() {
	defer close(s.writerDone)
	for {
		if batch := s.take(); len(batch) > 0 {
			s.commitGroup(batch)
			continue
		}
		select {
		case <-s.wake:
		case <-s.closing:
			// Write checks closed under mu, and Close set it before closing
			// s.closing: what is queued now is all there will ever be.
			for batch := s.take(); len(batch) > 0; batch = s.take() {
				s.commitGroup(batch)
			}
			return
		}
	}
}

// take removes the longest prefix of the queue that fits the batch bounds,
// and at least one request.
func (s *Store) take() []*request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ops int
	var size int64
	i := 0
	for ; i < len(s.queue); i++ {
		r := s.queue[i]
		if i > 0 && (ops+len(r.ops) > s.opts.MaxBatchOps || size+r.size > s.opts.MaxBatchBytes) {
			break
		}
		ops += len(r.ops)
		size += r.size
	}
	batch := s.queue[:i:i]
	if i == len(s.queue) {
		s.queue = nil
	} else {
		s.queue = append([]*request(nil), s.queue[i:]...)
	}
	return batch
}

// commitGroup commits batch in as few Badger transactions as possible, syncs
// once, and answers every waiter.
func (s *Store) commitGroup(batch []*request) {
	s.stats.groups.Add(1)
	storeMax(&s.stats.maxGroup, int64(len(batch)))
	errs := make([]error, len(batch))
	defer s.answer(batch, errs)

	if err := s.checkSpace(batch); err != nil {
		for i := range errs {
			errs[i] = err
		}
		s.stats.diskFull.Add(uint64(len(batch)))
		return
	}

	txn := s.db.NewTransaction(true)
	var members []int // indexes of the requests in txn
	commit := func() {
		if len(members) == 0 {
			txn.Discard()
			return
		}
		err := txn.Commit()
		if err != nil {
			err = fmt.Errorf("store: commit: %w", err)
		} else {
			s.stats.txns.Add(1)
		}
		for _, i := range members {
			errs[i] = err
		}
		members = nil
	}
	// A failed add leaves part of a request in txn: start over with the
	// members only. They fitted before, so adding them again cannot fail;
	// if it does anyway, they fail rather than commit half.
	rebuild := func() {
		txn.Discard()
		txn = s.db.NewTransaction(true)
		for _, i := range members {
			if err := addOps(txn, batch[i].ops); err != nil {
				txn.Discard()
				txn = s.db.NewTransaction(true)
				for _, j := range members {
					errs[j] = fmt.Errorf("store: commit: %w", err)
				}
				members = nil
				return
			}
		}
	}
	for i, r := range batch {
		err := addOps(txn, r.ops)
		if err == nil {
			members = append(members, i)
			continue
		}
		rebuild()
		if errors.Is(err, badger.ErrTxnTooBig) && len(members) > 0 {
			// Split between callers, never inside one.
			commit()
			txn = s.db.NewTransaction(true)
			if err = addOps(txn, r.ops); err == nil {
				members = append(members, i)
				continue
			}
			rebuild()
		}
		errs[i] = fmt.Errorf("store: write: %w", err)
	}
	commit()

	if s.opts.InMemory {
		return
	}
	for _, err := range errs {
		if err == nil {
			if err := s.sync(); err != nil {
				for i := range errs {
					if errs[i] == nil {
						errs[i] = err
					}
				}
			}
			return
		}
	}
}

func (s *Store) answer(batch []*request, errs []error) {
	for i, r := range batch {
		if errs[i] == nil {
			s.stats.writes.Add(1)
			s.stats.ops.Add(uint64(len(r.ops)))
		} else {
			s.stats.failed.Add(1)
		}
		r.done <- errs[i]
	}
}

func addOps(txn *badger.Txn, ops []Op) error {
	for _, op := range ops {
		var err error
		if op.Delete {
			err = txn.Delete(op.Key)
		} else {
			e := badger.NewEntry(op.Key, op.Value)
			if op.TTL > 0 {
				e = e.WithTTL(op.TTL)
			}
			err = txn.SetEntry(e)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// checkSpace refuses a group that would leave less than MinFreeBytes free.
// Each op is written twice at worst (value log and memtable WAL).
func (s *Store) checkSpace(batch []*request) error {
	if s.opts.InMemory || s.opts.MinFreeBytes < 0 {
		return nil
	}
	free, ok, err := freeBytes(s.opts.Dir)
	if err != nil {
		// Not knowing is no reason to refuse a write; Badger will report
		// what it can.
		s.log.Warn().Err(err).Msg("store: statfs")
		return nil
	}
	if !ok {
		return nil
	}
	var need int64
	for _, r := range batch {
		need += 2 * r.size
	}
	if free-need < s.opts.MinFreeBytes {
		return fmt.Errorf("%w: %d bytes free, %d needed plus %d reserved", ErrDiskFull, free, need, s.opts.MinFreeBytes)
	}
	return nil
}

// sync makes everything committed so far durable. db.Sync msyncs only the
// active memtable WAL and the active value log file; sweep covers the files
// that rotated out since the last sync.
func (s *Store) sync() error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.stats.syncs.Add(1)
	err := s.db.Sync()
	swept, serr := s.files.sweep(s.opts.Dir)
	if swept {
		s.stats.walSweeps.Add(1)
	}
	if err = errors.Join(err, serr); err != nil {
		return fmt.Errorf("store: sync: %w", err)
	}
	return nil
}

// runGC runs the value log GC every GCInterval until ctx is canceled.
func (s *Store) runGC(ctx context.Context) {
	defer close(s.gcDone)
	if s.opts.InMemory || s.opts.GCInterval < 0 {
		return
	}
	t := time.NewTicker(s.opts.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.gc(ctx); err != nil {
			s.log.Warn().Err(err).Msg("store: value log gc")
		}
	}
}

// RunGC runs one value log GC pass now: it rewrites value log files while
// at least half of one is garbage. It is a no-op in memory.
func (s *Store) RunGC(ctx context.Context) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.readers.Done()
	if s.opts.InMemory {
		return nil
	}
	return s.gc(ctx)
}

func (s *Store) gc(ctx context.Context) error {
	if s.opts.MinFreeBytes >= 0 {
		// A rewrite writes up to one value log file before it frees one.
		if free, ok, err := freeBytes(s.opts.Dir); err == nil && ok && free < s.opts.MinFreeBytes+s.opts.vlogFileSize() {
			s.log.Debug().Int64("free", free).Msg("store: value log gc skipped: low disk space")
			return nil
		}
	}
	s.stats.gcRuns.Add(1)
	var rewrites uint64
	var gcErr error
	for ctx.Err() == nil {
		err := s.db.RunValueLogGC(gcDiscardRatio)
		if err == nil {
			rewrites++
			continue
		}
		if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
			s.stats.gcErrors.Add(1)
			gcErr = fmt.Errorf("store: gc: %w", err)
		}
		break
	}
	if rewrites == 0 {
		return gcErr
	}
	s.stats.gcRewrites.Add(rewrites)
	// The rewritten entries were written without a sync, and Badger has
	// already deleted the files they came from.
	return errors.Join(gcErr, s.sync())
}
