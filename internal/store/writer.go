package store

import (
	"bytes"
	"cmp"
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

// opOverhead approximates Badger's per-entry header and checksum, for the
// free space accounting.
const opOverhead = 32

// request is one Write waiting for the writer.
type request struct {
	ops  []Op
	size int64      // bytes of keys and values, with opOverhead per op
	err  error      // set by the writer before it answers
	done chan error // cap 1: the writer never blocks on a waiter that left
}

// validate refuses what Badger would refuse for one op, so that a bad op
// fails its own Write before it is queued beside others.
func (s *Store) validate(ops []Op) error {
	maxValue := s.opts.maxValueSize()
	for i, op := range ops {
		switch {
		case int64(len(op.Value)) > maxValue:
			return fmt.Errorf("store: write: op %d: %w: %d bytes, limit %d", i, ErrValueTooLarge, len(op.Value), maxValue)
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

// Write applies ops atomically. When it returns nil the ops are synced to
// disk (unless InMemory), so they survive a crash, and every Get and Scan
// that starts after it sees them.
//
// Writes from concurrent callers are group-committed: see the package
// comment. A write once queued is carried out whatever ctx does: canceling
// ctx only abandons the wait, and the ops are then applied in full or not
// at all, unseen by the caller.
func (s *Store) Write(ctx context.Context, ops ...Op) error {
	if len(ops) == 0 {
		return nil
	}
	if err := s.validate(ops); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.syncFailure(); err != nil {
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

// runWriter takes what is queued (up to take's budget) as one group and
// commits it, until Close; it drains the queue before Close closes
// Badger.
func (s *Store) runWriter() {
	defer close(s.writerDone)
	if s.wal != nil {
		s.startCheckpointer()
		// Close checkpoints once the writer is done: no sync of ours may
		// run then.
		defer s.stopCheckpointer()
	}
	for {
		batch := s.take()
		if len(batch) > 0 {
			s.commitGroup(batch)
		}
		s.maybeCheckpoint()
		if len(batch) > 0 {
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

// maxGroupBytes bounds a group's writes (their size, which is more than
// what the WAL logs of them): the WAL logs a group as one record of at
// most 1 GiB, and a record over it fails the store until it is reopened;
// seventeen events of 63 MiB queued at once made one. It bounds the
// record's buffer too, and leaves room for one write of a whole value log
// file beside the budget.
const maxGroupBytes = 64 << 20

// take takes the queue's writes, oldest first, up to the group budget
// and at least one. Waiting callers pile up while a group is being
// committed and synced, so the groups grow with the load, with no timer.
func (s *Store) take() []*request {
	budget := cmp.Or(s.opts.groupBytes, maxGroupBytes)
	s.mu.Lock()
	defer s.mu.Unlock()
	n, size := 0, int64(0)
	for n < len(s.queue) && (n == 0 || size+s.queue[n].size <= budget) {
		size += s.queue[n].size
		n++
	}
	// Capped, so that Write appending to the rest never writes into it.
	batch := s.queue[:n:n]
	s.queue = s.queue[n:]
	if len(s.queue) == 0 {
		s.queue = nil // the next Write starts a new array
	}
	return batch
}

// commitGroup prepares batch in as few Badger transactions as fit, each
// request whole in one, logs what fitted to the WAL as one record and syncs
// it, then commits the transactions and answers every waiter. The WAL is
// durable before Badger sees a write: Badger's unsynced logs reach the disk
// in any order, and a group Badger kept but the WAL lost would be partly
// undone by the replay of the groups before it.
func (s *Store) commitGroup(batch []*request) {
	s.touched()
	s.stats.groups.Add(1)
	storeMax(&s.stats.maxGroup, int64(len(batch)))
	defer s.answer(batch)

	if err := s.syncFailure(); err != nil {
		fail(batch, err)
		return
	}
	if err := s.checkSpace(batch); err != nil {
		s.stats.diskFull.Add(uint64(len(batch)))
		fail(batch, err)
		return
	}
	now := time.Now()
	var txns []preparedTxn
	defer func() {
		for _, t := range txns {
			t.txn.Discard()
		}
	}()
	for reqs := batch; len(reqs) > 0; {
		t, n := s.prepare(reqs, now)
		if t != nil {
			txns = append(txns, preparedTxn{txn: t, reqs: reqs[:n]})
		}
		reqs = reqs[n:]
	}
	if !s.opts.InMemory {
		if err := s.logGroup(batch, now); err != nil {
			for _, r := range batch {
				if r.err == nil {
					r.err = err
				}
			}
			return
		}
	}
	for _, t := range txns {
		err := t.txn.Commit()
		if err != nil {
			// The WAL has what Badger refused: the store is failed, and
			// the next Open replays it.
			err = s.failWith(fmt.Errorf("store: commit: %w", err))
		} else {
			s.stats.txns.Add(1)
		}
		for _, r := range t.reqs {
			r.err = err
		}
	}
}

// preparedTxn is a transaction holding requests, not yet committed.
type preparedTxn struct {
	txn  *badger.Txn
	reqs []*request
}

// prepare adds the longest prefix of reqs that fits one Badger transaction
// to a new one, and returns it with the prefix's length: at least one, as
// a request that fits no transaction fails alone (with a nil txn).
func (s *Store) prepare(reqs []*request, now time.Time) (*badger.Txn, int) {
	txn := s.db.NewTransaction(true)
	for i, r := range reqs {
		if err := addOps(txn, r.ops, now); err != nil {
			txn.Discard()
			if i == 0 {
				r.err = fmt.Errorf("store: write: %w", err)
				return nil, 1
			}
			// txn holds part of r: prepare the requests before it in a
			// fresh one. They fitted, so that one takes them all.
			return s.prepare(reqs[:i], now)
		}
	}
	return txn, len(reqs)
}

// addOps adds ops to txn, a TTL as an absolute expiry.
func addOps(txn *badger.Txn, ops []Op, now time.Time) error {
	for _, op := range ops {
		var err error
		if op.Delete {
			err = txn.Delete(op.Key)
		} else {
			e := badger.NewEntry(op.Key, op.Value)
			e.ExpiresAt = expiresAt(now, op.TTL)
			err = txn.SetEntry(e)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// expiresAt turns a TTL into the absolute expiry (Unix seconds, 0 for
// none) that Badger's WithTTL would give it at now.
func expiresAt(now time.Time, ttl time.Duration) uint64 {
	if ttl <= 0 {
		return 0
	}
	return uint64(now.Add(ttl).Unix())
}

// syncBadger makes every committed write durable in Badger: its sync covers
// its current memtable log and value log file, and logFiles what Badger
// leaves unsynced when it moves to new ones. A failed sync fails the store: what
// it should have made durable is unknown.
func (s *Store) syncBadger() error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if err := s.syncFailure(); err != nil {
		return err
	}
	err := s.db.Sync()
	if err == nil && s.logs.rotated() {
		err = s.logs.syncAll()
	}
	return s.failWith(err)
}

// failWith fails the store with a failed sync's error, if any: what the
// sync should have made durable is unknown.
func (s *Store) failWith(err error) error {
	if err == nil {
		return nil
	}
	err = fmt.Errorf("store: sync failed, the store refuses writes until it is reopened: %w", err)
	if s.failed.CompareAndSwap(nil, &err) {
		s.log.Error().Err(err).Msg("store: sync")
	}
	return *s.failed.Load()
}

func fail(batch []*request, err error) {
	for _, r := range batch {
		r.err = err
	}
}

func (s *Store) answer(batch []*request) {
	for _, r := range batch {
		if r.err == nil {
			s.stats.writes.Add(1)
			s.stats.ops.Add(uint64(len(r.ops)))
		} else {
			s.stats.failed.Add(1)
		}
		r.done <- r.err
	}
}

// checkSpace refuses a group that would leave less than the reserve free.
// Each op is written three times at most: to the WAL, to a Badger log (the
// value log or the memtable's), then a table; and the WAL may need a new
// preallocated segment.
func (s *Store) checkSpace(batch []*request) error {
	if s.space == nil {
		return nil
	}
	var need, logged int64
	for _, r := range batch {
		need += 2 * r.size
		logged += r.size
	}
	if s.wal != nil {
		need += logged + s.wal.Grows(1, logged)
	}
	refused, statErr := s.space.admit(need)
	if refused != nil && s.ckpt.busy.Load() {
		// Not full yet: the running checkpoint frees WAL segments.
		s.finishCheckpoint()
		refused, statErr = s.space.admit(need)
	}
	if statErr != nil {
		s.log.Warn().Err(statErr).Msg("store: statfs")
	}
	return refused
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
	if s.space != nil {
		// A rewrite writes up to a value log file before it frees one.
		if free, ok, err := freeBytes(s.opts.Dir); err == nil && ok && free < s.opts.Reserve+s.opts.ValueLogFileSize {
			s.log.Debug().Int64("free", free).Msg("store: value log gc skipped: low disk space")
			return nil
		}
	}
	s.stats.gcRuns.Add(1)
	for ctx.Err() == nil {
		err := s.db.RunValueLogGC(gcDiscardRatio)
		if errors.Is(err, badger.ErrNoRewrite) || errors.Is(err, badger.ErrRejected) {
			return nil
		}
		if err != nil {
			s.stats.gcErrors.Add(1)
			return fmt.Errorf("store: gc: %w", err)
		}
		s.stats.gcRewrites.Add(1)
		// Badger has deleted the rewritten file already: sync the moved
		// values at once, to keep the window in which a power loss could
		// lose them short.
		if err := s.syncBadger(); err != nil {
			return fmt.Errorf("store: gc: %w", err)
		}
	}
	return nil
}
