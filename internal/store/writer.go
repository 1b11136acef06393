package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/skl"
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

// validate refuses what Badger would refuse, so that no op reaches Badger's
// own checks: its error for an oversized value slices the value to 1 KiB for
// a hex dump and panics when the value is shorter than that (an in-memory
// store refuses values above its value threshold).
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
		case isReserved(op.Key):
			return fmt.Errorf("store: write: op %d: key uses the reserved %s prefix", i, reservedPrefix)
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
// disk (unless InMemory), so they survive a crash of the process, and every
// Get and Scan that starts after it sees them (with AnswerOnSync, by waiting
// for Badger to have them).
//
// Writes from concurrent callers are group-committed: see the package
// comment. Canceling ctx only abandons the wait: the ops are then either
// applied in full or not at all, and the caller cannot tell which.
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
	if err := s.unappliedErr(); err != nil {
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

// runWriter takes whatever is queued as one group and logs it; the applier
// applies it to Badger (see commitGroup). Both drain what is queued before
// Close closes Badger.
func (s *Store) runWriter() {
	defer close(s.writerDone)
	if !s.opts.InMemory {
		go s.runApplier()
		defer func() {
			close(s.applyCh)
			<-s.applierDone
		}()
	}
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

// applyJob is a group whose WAL record is durable, on its way to Badger.
type applyJob struct {
	batch    []*request
	errs     []error
	reqs     []int // the requests in the record
	seq      uint64
	now      time.Time
	answered bool // with AnswerOnSync: the writer has answered the batch
}

// commitGroup logs batch to the WAL as one record, syncs it and hands it to
// the applier, which applies it to Badger and answers every waiter. Nothing
// of a request is visible before its record is durable, and a request that
// fails leaves nothing visible (nor replayable).
//
// The two stages overlap: while the applier commits group N to Badger, the
// writer logs and syncs group N+1. Badger applies the groups in order, and
// a checkpoint waits for the applier before it syncs Badger (see
// checkpoint).
func (s *Store) commitGroup(batch []*request) {
	s.stats.groups.Add(1)
	storeMax(&s.stats.maxGroup, int64(len(batch)))
	errs := make([]error, len(batch))

	if err := s.checkSpace(batch); err != nil {
		for i := range errs {
			errs[i] = err
		}
		s.stats.diskFull.Add(uint64(len(batch)))
		s.answer(batch, errs)
		return
	}
	now := s.opts.now()
	all := make([]int, 0, len(batch))
	for i := range batch {
		all = append(all, i)
	}
	if s.opts.InMemory {
		// No WAL: commit each transaction as soon as it is full, so that the
		// next one sees it (an in-memory write reads what it overwrites).
		s.buildTxns(batch, all, errs, now)
		s.answer(batch, errs)
		return
	}

	// What Badger would refuse must never reach the WAL.
	reqs := all[:0]
	for i, r := range batch {
		if err := s.fitsTxn(r); err != nil {
			errs[i] = err
			continue
		}
		reqs = append(reqs, i)
	}
	if len(reqs) == 0 {
		s.answer(batch, errs)
		return
	}
	w := &s.wal
	w.mu.Lock()
	seq, err := w.appendGroup(batch, reqs, now)
	if err == nil {
		w.appended.Add(1)
	}
	full := w.seg.off >= w.segSize
	w.mu.Unlock()
	s.stats.syncs.Add(1)
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			err = fmt.Errorf("%w: %w", ErrDiskFull, err)
			s.stats.diskFull.Add(uint64(len(reqs)))
		} else {
			err = fmt.Errorf("store: commit: %w", err)
		}
		for _, i := range reqs {
			errs[i] = err
		}
		s.answer(batch, errs)
		return
	}
	if full {
		select {
		case s.ckptWake <- struct{}{}:
		default:
		}
	}
	j := applyJob{batch: batch, errs: errs, reqs: reqs, seq: seq, now: now}
	if s.answerOnSync() {
		// The record is durable: the callers need not wait for Badger.
		// They have their errors by value, so the applier may go on
		// filling errs (nil so far for every request in the record).
		s.answer(batch, errs)
		j.answered = true
	}
	s.applyCh <- j
}

// runApplier applies logged groups to Badger in order and answers their
// waiters.
func (s *Store) runApplier() {
	defer close(s.applierDone)
	for j := range s.applyCh {
		if s.hooks.beforeApply != nil {
			s.hooks.beforeApply()
		}
		s.apply(j)
		if !j.answered {
			s.answer(j.batch, j.errs)
		}
		s.applyMu.Lock()
		s.applied++
		s.applyCond.Broadcast()
		s.applyMu.Unlock()
	}
}

func (s *Store) apply(j applyJob) {
	if s.hooks.skipApply.Load() {
		return
	}
	// Badger's writes can rotate its value log and memtable files: the
	// release of mapped pages must not run meanwhile (release.go).
	s.mapMu.Lock()
	s.buildTxns(j.batch, j.reqs, j.errs, j.now)
	s.mapMu.Unlock()
	if j.answered {
		s.failAnswered(j)
		return
	}
	var aborts []walAbort
	for k, i := range j.reqs {
		if j.errs[i] != nil {
			aborts = append(aborts, walAbort{seq: j.seq, req: uint32(k)})
		}
	}
	if len(aborts) == 0 {
		return
	}
	// The record is durable but these requests failed: mark them so that
	// a replay skips them.
	s.wal.mu.Lock()
	err := s.wal.abort(aborts, j.now)
	s.wal.mu.Unlock()
	if err != nil {
		s.log.Error().Err(err).Msg("store: failed writes stay in the wal until an abort record is written")
	}
}

// failAnswered handles the Badger errors of a group its callers have had
// nil for: their writes are in the WAL, so the store keeps the WAL (no abort
// record, no checkpoint) and fails from now on, for the next Open to replay
// them.
func (s *Store) failAnswered(j applyJob) {
	for _, i := range j.reqs {
		err := j.errs[i]
		if err == nil {
			continue
		}
		err = fmt.Errorf("%w: %w", ErrUnapplied, err)
		if s.unapplied.CompareAndSwap(nil, &err) {
			s.log.Error().Err(err).Msg("store: an answered write did not reach badger; the store fails until it is reopened")
		}
		return
	}
}

// waitApplied waits until the applier has applied n groups.
func (s *Store) waitApplied(n uint64) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	for s.applied < n {
		s.applyCond.Wait()
	}
}

// maxWriteBytes bounds one Write, which is one WAL record (values in the
// value log count only as pointers in a Badger transaction).
const maxWriteBytes = walMaxRecord / 2

// fitsTxn refuses a request too large for one WAL record or one Badger
// transaction, the way Badger's Txn.checkSize would (v4.9). Were Badger to count differently,
// the applier would still catch it, at the cost of an abort record.
func (s *Store) fitsTxn(r *request) error {
	if r.size > maxWriteBytes {
		return fmt.Errorf("store: write: %w: a write of %d bytes, limit %d", ErrValueTooLarge, r.size, maxWriteBytes)
	}
	bo := s.db.Opts()
	maxSize := 15 * bo.MemTableSize / 100
	maxCount := maxSize / int64(skl.MaxNodeSize)
	var size int64
	for _, op := range r.ops {
		v := int64(len(op.Value))
		if v >= bo.ValueThreshold {
			v = 12 // a value pointer
		}
		size += int64(len(op.Key)) + v + 2 + 10
	}
	if int64(len(r.ops)) >= maxCount || size >= maxSize {
		return fmt.Errorf("store: write: %w: %d ops, about %d bytes in the LSM tree, limit %d", badger.ErrTxnTooBig, len(r.ops), size, maxSize)
	}
	return nil
}

// buildTxns commits the requests of batch at the indexes in reqs in as few
// Badger transactions as possible, each request whole in one. Each
// transaction is committed once no more fits, so that the next one sees it.
// Requests that fail get their error in errs.
func (s *Store) buildTxns(batch []*request, reqs []int, errs []error, now time.Time) {
	addOps := addOps
	if s.opts.InMemory {
		addOps = addOpsChunked
	}
	txn := s.db.NewTransaction(true)
	var members []int // indexes of the requests in txn
	flush := func() {
		if len(members) == 0 {
			txn.Discard()
		} else {
			s.commitTxn(txn, members, errs)
		}
		txn, members = s.db.NewTransaction(true), nil
	}
	// A failed add leaves part of a request in txn: start over with the
	// members only. They fitted before, so adding them again cannot fail;
	// if it does anyway, they fail rather than commit half.
	rebuild := func() {
		txn.Discard()
		txn = s.db.NewTransaction(true)
		for _, i := range members {
			if err := addOps(txn, batch[i].ops, now); err != nil {
				txn.Discard()
				txn = s.db.NewTransaction(true)
				for _, j := range members {
					errs[j] = fmt.Errorf("store: write: %w", err)
				}
				members = nil
				return
			}
		}
	}
	for _, i := range reqs {
		r := batch[i]
		err := addOps(txn, r.ops, now)
		if err == nil {
			members = append(members, i)
			continue
		}
		rebuild()
		if errors.Is(err, badger.ErrTxnTooBig) && len(members) > 0 {
			// Split between callers, never inside one.
			flush()
			if err = addOps(txn, r.ops, now); err == nil {
				members = append(members, i)
				continue
			}
			rebuild()
		}
		errs[i] = fmt.Errorf("store: write: %w", err)
	}
	flush()
	txn.Discard()
}

// commitTxn commits txn, whose requests are members.
func (s *Store) commitTxn(txn *badger.Txn, members []int, errs []error) {
	var err error
	if s.hooks.failCommit.Load() {
		txn.Discard()
		err = errors.New("injected commit failure")
	} else {
		err = txn.Commit()
	}
	if err != nil {
		for _, i := range members {
			errs[i] = fmt.Errorf("store: commit: %w", err)
		}
		return
	}
	s.stats.txns.Add(1)
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

// addOps adds ops to txn. A TTL becomes the same absolute expiry that the
// WAL record holds.
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

// checkSpace refuses a group that would leave less than MinFreeBytes free.
// Each op is written three times at worst (our WAL, Badger's value log and
// its memtable WAL).
func (s *Store) checkSpace(batch []*request) error {
	if s.space == nil {
		return nil
	}
	var need int64
	for _, r := range batch {
		need += 3 * r.size
	}
	refused, statErr := s.space.admit(need)
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
		err := s.gcOnce()
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
	s.stats.gcRewrites.Add(rewrites)
	return gcErr
}

// gcOnce rewrites one value log file. The entries it moves may be older than
// the WAL, so the file they came from must outlive their new copies'
// reaching the disk: Badger defers deleting a rewritten file while an
// iterator is open, so one is held open until the sync is done.
func (s *Store) gcOnce() error {
	// The GC writes to the value log and deletes a file of it: see release.
	s.vlogMu.Lock()
	defer s.vlogMu.Unlock()
	if !s.vlogDeleted() {
		return badger.ErrRejected // the last rewritten file is still there
	}
	before := vlogFiles(s.opts.Dir)
	txn := s.db.NewTransaction(false)
	it := txn.NewIterator(badger.IteratorOptions{})
	err := s.db.RunValueLogGC(gcDiscardRatio)
	if err == nil {
		err = s.syncBadger()
	}
	it.Close() // deletes the rewritten file, unless a Scan holds an iterator
	txn.Discard()
	if err == nil {
		s.vlogPending = before
		deadline := time.Now().Add(vlogDeleteWait)
		for !s.vlogDeleted() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	return err
}

// vlogDeleteWait bounds how long gcOnce waits for a Scan to end, so that
// the file it rewrote is deleted while it still excludes a release.
const vlogDeleteWait = 2 * time.Second

// vlogDeleted reports whether the file of the last rewrite has been
// deleted: Badger defers that to the end of the last iterator, whichever
// goroutine ends it, and unmaps the file before it removes it. Until then a
// release leaves the value log alone. Called with vlogMu held.
func (s *Store) vlogDeleted() bool {
	if s.vlogPending == nil {
		return true
	}
	now := vlogFiles(s.opts.Dir)
	for name := range s.vlogPending {
		if !now[name] {
			s.vlogPending = nil
			return true
		}
	}
	return false
}

func vlogFiles(dir string) map[string]bool {
	entries, _ := os.ReadDir(dir) // unreadable: nothing looks deleted, so nothing is advised
	files := make(map[string]bool, len(entries))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".vlog") {
			files[e.Name()] = true
		}
	}
	return files
}
