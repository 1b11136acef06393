package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// walState is the writer's side of the WAL.
type walState struct {
	// mu is held by the writer to append a group, by the applier to append
	// aborts and by a checkpoint to switch segments.
	mu      sync.Mutex
	spareMu sync.Mutex // serialises openSegment and retireSegments
	// appended counts the groups logged and handed to the applier. It is
	// written under mu, and atomic for readers with AnswerOnSync, which
	// must not wait for mu: it is held through every append's sync.
	appended atomic.Uint64
	dir      string
	segSize  int64
	seg      *segment
	nextNum  uint64     // number for the next segment
	seq      uint64     // last record number used
	broken   bool       // seg's tail is unknown: append to a new segment
	aborts   []walAbort // not yet in a durable record
	retired  bool       // segments below seg.num are still on disk
	buf      []byte     // the record being written, reused
}

// appendGroup logs the requests of batch at the indexes in reqs as one
// record and syncs it. The caller holds w.mu.
func (w *walState) appendGroup(batch []*request, reqs []int, now time.Time) (uint64, error) {
	if w.broken {
		if err := w.rotate(); err != nil {
			return 0, err
		}
	}
	seq := w.seq + 1
	w.buf = appendRecord(w.buf[:0], seq, w.aborts, batch, reqs, now)
	broken, err := w.seg.append(w.buf)
	if cap(w.buf) > 2*DefaultMaxBatchBytes {
		w.buf = nil // a huge write once must not pin its buffer
	}
	switch {
	case err == nil:
		w.seq, w.aborts = seq, nil
		return seq, nil
	case broken:
		// The record may be on disk in full: the next one, in a new
		// segment, says that it does not count.
		w.seq = seq
		w.aborts = append(w.aborts, walAbort{seq: seq, req: abortAll})
		w.broken = true
	}
	return 0, err
}

// abort makes aborts durable in a record of their own. The caller holds
// w.mu. If that fails they stay pending and ride the next record.
func (w *walState) abort(aborts []walAbort, now time.Time) error {
	w.aborts = append(w.aborts, aborts...)
	_, err := w.appendGroup(nil, nil, now)
	return err
}

// newSegment opens segment num, reusing the spare if there is one.
func (w *walState) newSegment(num uint64) (*segment, error) {
	w.spareMu.Lock()
	defer w.spareMu.Unlock()
	return openSegment(w.dir, num, w.segSize)
}

// retire removes the segments below num (see retireSegments).
func (w *walState) retire(below uint64) error {
	w.spareMu.Lock()
	defer w.spareMu.Unlock()
	return retireSegments(w.dir, below)
}

// rotate switches the writer to a new segment. The caller holds w.mu.
func (w *walState) rotate() error {
	next, err := w.newSegment(w.nextNum)
	if err != nil {
		return err
	}
	w.nextNum++
	w.switchTo(next)
	return nil
}

func (w *walState) switchTo(next *segment) {
	if w.seg != nil {
		_ = w.seg.close()
		w.retired = true
	}
	w.seg, w.broken = next, false
}

// runCheckpoints checkpoints every CheckpointInterval and whenever the
// writer finds the segment full, until ctx is canceled.
func (s *Store) runCheckpoints(ctx context.Context) {
	defer close(s.ckptDone)
	if s.opts.InMemory {
		return
	}
	t := time.NewTicker(s.opts.checkpointEvery())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.ckptWake:
		}
		if err := s.checkpoint(); err != nil {
			s.log.Warn().Err(err).Msg("store: checkpoint")
		}
	}
}

// checkpoint moves the writer to a new WAL segment, syncs all of Badger and
// deletes the older segments: what they hold is then in Badger's files.
func (s *Store) checkpoint() error {
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	if err := s.unappliedErr(); err != nil {
		return fmt.Errorf("store: checkpoint: %w", err)
	}
	w := &s.wal
	w.mu.Lock()
	if w.seg.off == 0 && !w.retired {
		w.mu.Unlock()
		return nil
	}
	num := w.nextNum
	w.nextNum++
	w.mu.Unlock()

	// Making the segment takes a directory sync: the writer goes on
	// meanwhile.
	next, err := w.newSegment(num)
	if err != nil {
		return fmt.Errorf("store: checkpoint: %w", err)
	}
	w.mu.Lock()
	if next.num > w.seg.num {
		w.switchTo(next)
	} else {
		// The writer moved to a newer segment meanwhile (after a failed
		// append): this one stays empty, and goes with the old ones.
		_ = next.close()
	}
	active, appended := w.seg.num, w.appended.Load()
	w.mu.Unlock()

	// Every record in the retired segments must be in Badger before the
	// sync that makes them redundant.
	s.waitApplied(appended)
	if err := s.unappliedErr(); err != nil {
		// The retired segments hold answered writes Badger does not.
		return fmt.Errorf("store: checkpoint: %w", err)
	}
	s.writeBack()
	if err := s.syncBadger(); err != nil {
		return fmt.Errorf("store: checkpoint: %w", err)
	}
	if err := w.retire(active); err != nil {
		return fmt.Errorf("store: checkpoint: %w", err)
	}
	w.mu.Lock()
	if w.seg.num == active {
		w.retired = false
	}
	w.mu.Unlock()
	s.stats.checkpoints.Add(1)
	return nil
}

// syncBadger makes everything Badger holds durable (see syncBadgerFiles).
func (s *Store) syncBadger() error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.stats.badgerSyncs.Add(1)
	if err := errors.Join(s.db.Sync(), syncBadgerFiles(s.opts.Dir)); err != nil {
		return fmt.Errorf("sync badger: %w", err)
	}
	return nil
}

// replay applies the WAL segments left in the data dir to Badger, and
// returns the numbers of the last segment and the last record found.
//
// A first pass reads every segment to collect the aborts (an abort comes in
// a later record than the request it cancels) and to check that no record
// is missing between two intact ones, which only corruption can cause: the
// writer never appends past a record it could not write. A second pass
// applies the records in order, skipping aborted requests. Reading stops at
// the first torn or corrupt record of a segment: nothing after it was ever
// acknowledged, because every acknowledgement follows an fdatasync of all
// that came before. Sets and deletes carry absolute values and expiries, so
// applying a record twice (after a crash during a checkpoint or a replay)
// gives the same state.
func (s *Store) replay() (lastNum, lastSeq uint64, err error) {
	dir := s.opts.Dir
	nums, err := listSegments(dir)
	if err != nil || len(nums) == 0 {
		return 0, 0, err
	}
	lastNum = nums[len(nums)-1]

	aborted := make(map[walAbort]bool)
	type missing struct {
		from, to uint64 // records absent between two intact ones
		where    string // the damage seen last before them
	}
	var (
		prev   uint64 // last intact record
		damage = "no damaged segment"
		gaps   []missing
	)
	for _, n := range nums {
		path := filepath.Join(dir, segmentName(n))
		end, err := readSegment(dir, n, func(r walRecord) error {
			if prev != 0 && r.seq <= prev {
				return fmt.Errorf("wal %s: record %d after record %d", path, r.seq, prev)
			}
			if prev != 0 && r.seq > prev+1 {
				gaps = append(gaps, missing{from: prev + 1, to: r.seq - 1, where: damage})
			}
			for _, a := range r.aborts {
				aborted[a] = true
			}
			prev = r.seq
			return nil
		})
		if err != nil {
			return 0, 0, fmt.Errorf("replay: %w", err)
		}
		if end.damaged {
			s.log.Info().Str("file", path).Int64("offset", end.off).Str("reason", end.why).
				Msg("store: wal segment ends in a record never acknowledged")
			damage = fmt.Sprintf("%s damaged at offset %d: %s", path, end.off, end.why)
		}
	}
	// A record can be missing only when the writer gave up on it and
	// aborted it in the next one; otherwise the log is corrupt and
	// acknowledged writes are gone.
	for _, g := range gaps {
		for seq := g.from; seq <= g.to; seq++ {
			if !aborted[walAbort{seq: seq, req: abortAll}] {
				return 0, 0, fmt.Errorf("replay: wal records %d to %d are lost (%s); move the segment away to open without them", g.from, g.to, g.where)
			}
		}
	}
	lastSeq = prev

	now := s.opts.now()
	// Badger's open has just read its newest value log file end to end
	// and replayed its memtable logs through their mappings.
	s.releaseDuringOpen()
	wb := s.db.NewWriteBatch()
	defer func() { wb.Cancel() }()
	var records uint64
	var batched int64 // bytes of ops in wb
	for _, n := range nums {
		path := filepath.Join(dir, segmentName(n))
		_, err := readSegment(dir, n, func(r walRecord) error {
			if aborted[walAbort{seq: r.seq, req: abortAll}] {
				return nil
			}
			records++
			for i, ops := range r.reqs {
				if aborted[walAbort{seq: r.seq, req: uint32(i)}] {
					continue
				}
				for _, op := range ops {
					if err := replayOp(wb, op, now); err != nil {
						return err
					}
					batched += int64(len(op.key) + len(op.value))
				}
			}
			if batched < s.opts.replayBatchBytes() {
				return nil
			}
			// A segment holds up to 64 MiB: applied in one batch, its
			// records, Badger's pending transactions and the value log
			// and memtable pages the batch writes through their mappings
			// all stay resident until the end. Flushing and releasing
			// every batch bounds that.
			if err := wb.Flush(); err != nil {
				return err
			}
			s.releaseDuringOpen()
			wb, batched = s.db.NewWriteBatch(), 0
			return nil
		})
		if err != nil {
			return 0, 0, fmt.Errorf("replay %s: %w", path, err)
		}
	}
	if err := wb.Flush(); err != nil {
		return 0, 0, fmt.Errorf("replay: %w", err)
	}
	s.stats.replayed.Add(records)
	if records > 0 {
		s.log.Info().Uint64("records", records).Int("segments", len(nums)).Msg("store: replayed the wal")
	}
	return lastNum, lastSeq, nil
}

// replayOp applies one logged op. A set whose expiry has passed becomes a
// delete rather than being skipped: skipping it would bring back whatever
// value the key had before.
func replayOp(wb *badger.WriteBatch, op walOp, now time.Time) error {
	if op.kind == opDelete || (op.expiresAt != 0 && op.expiresAt <= uint64(now.Unix())) {
		return wb.Delete(op.key)
	}
	e := badger.NewEntry(op.key, op.value)
	e.ExpiresAt = op.expiresAt
	return wb.SetEntry(e)
}
