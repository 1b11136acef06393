package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/sidehook/sidehook/internal/wal"
)

// The write-ahead log answers the writes; Badger is synced only at a
// checkpoint, after which the WAL drops what it held. An fdatasync of a
// preallocated plain file costs half of Badger's Sync, an msync of its
// mapped memtable and value logs (docs/BENCHMARKS.md).
//
// A WAL segment is a memtable's size (the WAL then takes about what the
// memtable log it stands in for takes), and a checkpoint comes after a
// segment's worth of records or checkpointInterval, which bounds what Open
// replays.
const (
	walDir             = "wal"
	checkpointInterval = 5 * time.Second
)

// A WAL record is one group: its ops in order, each
//
//	kind    byte: opSet, opSetExpiring or opDelete
//	key     uvarint length + bytes
//	value   uvarint length + bytes, unless opDelete
//	expiry  uint64 LE, Unix seconds, if opSetExpiring
//
// The expiry is absolute, so that a replayed op expires when it would have.
const (
	opSet byte = iota + 1
	opSetExpiring
	opDelete
)

// openWAL opens the WAL in Dir/wal, replays it into Badger, syncs Badger and
// drops what the WAL held.
func (s *Store) openWAL() error {
	s.wal = wal.New(filepath.Join(s.opts.Dir, walDir), s.opts.MemTableSize)
	if err := s.wal.Open(); err != nil {
		return err
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	err := s.wal.Replay(func(rec []byte) error {
		s.stats.replayed.Add(1)
		// The batch keeps the slices until it commits; rec is the WAL's.
		return applyRecord(wb, bytes.Clone(rec))
	})
	if err == nil {
		err = wb.Flush()
	}
	if err != nil {
		_ = s.wal.Close()
		return fmt.Errorf("replay the wal: %w", err)
	}
	if err := s.checkpoint(); err != nil {
		_ = s.wal.Close()
		return err
	}
	return nil
}

func applyRecord(wb *badger.WriteBatch, rec []byte) error {
	for len(rec) > 0 {
		kind := rec[0]
		rec = rec[1:]
		key, rest, err := readBytes(rec)
		if err != nil {
			return err
		}
		rec = rest
		if kind == opDelete {
			if err := wb.Delete(key); err != nil {
				return err
			}
			continue
		}
		if kind != opSet && kind != opSetExpiring {
			return fmt.Errorf("wal record: unknown op kind %d", kind)
		}
		value, rest, err := readBytes(rec)
		if err != nil {
			return err
		}
		rec = rest
		e := badger.NewEntry(key, value)
		if kind == opSetExpiring {
			if len(rec) < 8 {
				return errors.New("wal record: short expiry")
			}
			e.ExpiresAt = binary.LittleEndian.Uint64(rec)
			rec = rec[8:]
		}
		if err := wb.SetEntry(e); err != nil {
			return err
		}
	}
	return nil
}

func readBytes(b []byte) (field, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, errors.New("wal record: bad length")
	}
	return b[k : k+int(n)], b[k+int(n):], nil
}

func appendOps(buf []byte, ops []Op, now time.Time) []byte {
	for _, op := range ops {
		kind := opSet
		switch {
		case op.Delete:
			kind = opDelete
		case op.TTL > 0:
			kind = opSetExpiring
		}
		buf = append(buf, kind)
		buf = binary.AppendUvarint(buf, uint64(len(op.Key)))
		buf = append(buf, op.Key...)
		if kind == opDelete {
			continue
		}
		buf = binary.AppendUvarint(buf, uint64(len(op.Value)))
		buf = append(buf, op.Value...)
		if kind == opSetExpiring {
			buf = binary.LittleEndian.AppendUint64(buf, expiresAt(now, op.TTL))
		}
	}
	return buf
}

// logGroup appends the ops of the requests that fitted a transaction, as
// one record, and syncs the WAL once. Badger commits them next, before the
// answer, so a caller answered reads its own write.
func (s *Store) logGroup(batch []*request, now time.Time) error {
	s.recBuf = s.recBuf[:0]
	for _, r := range batch {
		if r.err == nil {
			s.recBuf = appendOps(s.recBuf, r.ops, now)
		}
	}
	if len(s.recBuf) == 0 {
		return nil
	}
	if s.opts.beforeSync != nil {
		s.opts.beforeSync(len(batch))
	}
	s.stats.syncs.Add(1)
	err := s.wal.Append(s.recBuf)
	if err == nil {
		if s.opts.failSync != nil {
			err = s.opts.failSync()
		} else {
			err = s.wal.Sync()
		}
	}
	s.walBytes += int64(len(s.recBuf))
	if int64(cap(s.recBuf)) > s.opts.MemTableSize {
		s.recBuf = nil // a large write's buffer is not worth keeping
	}
	return s.failWith(err)
}

// checkpointer syncs Badger for a checkpoint off the writer's goroutine:
// the sync (an msync of the mapped logs) takes milliseconds to tens of
// them, and every write waiting behind it would pay that in its latency.
// The writer rotates the WAL and hands the new segment's number over; once
// Badger is synced the writer trims what the segments before it held (the
// WAL is the writer's alone).
type checkpointer struct {
	busy    atomic.Bool    // a sync is running: no new checkpoint starts
	trim    atomic.Uint64  // a segment number to trim before, once synced; 0: none
	next    chan uint64    // to the syncing goroutine; nil in memory
	running sync.WaitGroup // the writer's: added before a hand-over
	done    chan struct{}
}

// startCheckpointer starts the goroutine that syncs Badger for the writer.
func (s *Store) startCheckpointer() {
	s.ckpt.next = make(chan uint64, 1)
	s.ckpt.done = make(chan struct{})
	go func() {
		defer close(s.ckpt.done)
		for seg := range s.ckpt.next {
			if err := s.syncBadger(); err != nil {
				s.log.Error().Err(err).Msg("store: checkpoint")
			} else {
				s.ckpt.trim.Store(seg)
			}
			s.ckpt.busy.Store(false)
			s.ckpt.running.Done()
			select {
			case s.wake <- struct{}{}: // the writer trims, even when idle
			default:
			}
		}
	}()
}

// stopCheckpointer waits for a running sync; the writer calls it last.
func (s *Store) stopCheckpointer() {
	if s.ckpt.next == nil {
		return
	}
	close(s.ckpt.next)
	<-s.ckpt.done
	s.trimSynced()
}

// maybeCheckpoint trims what a finished sync covers, and starts a
// checkpoint when the WAL has grown or aged enough and none is running.
func (s *Store) maybeCheckpoint() {
	if s.wal == nil || s.ckpt.next == nil {
		return
	}
	s.trimSynced()
	if s.walBytes == 0 || s.syncFailure() != nil || s.ckpt.busy.Load() {
		return
	}
	if s.walBytes < s.opts.MemTableSize && time.Since(s.lastCheckpoint) < checkpointInterval {
		return
	}
	seg, err := s.wal.Rotate()
	if err != nil {
		s.log.Error().Err(s.failWith(err)).Msg("store: checkpoint")
		return
	}
	s.walBytes = 0
	s.lastCheckpoint = time.Now()
	s.ckpt.busy.Store(true)
	s.ckpt.running.Add(1)
	s.ckpt.next <- seg
}

// finishCheckpoint waits for a running checkpoint and trims what it
// covers: a full disk may have room once it has (the writer's).
func (s *Store) finishCheckpoint() {
	if s.ckpt.next == nil {
		return
	}
	s.ckpt.running.Wait()
	s.trimSynced()
}

// trimSynced drops the WAL segments a finished sync covers.
func (s *Store) trimSynced() {
	seg := s.ckpt.trim.Swap(0)
	if seg == 0 {
		return
	}
	if err := s.wal.TrimBefore(seg); err != nil {
		s.log.Error().Err(err).Msg("store: checkpoint")
		return
	}
	s.stats.checkpoints.Add(1)
}

// checkpoint syncs Badger and drops the WAL segments it covers, at once
// (Close): a new segment takes the next records, and those before are all
// in Badger.
func (s *Store) checkpoint() error {
	if err := s.syncFailure(); err != nil {
		return nil // the WAL stays for the next Open
	}
	next, err := s.wal.Rotate()
	if err != nil {
		return fmt.Errorf("checkpoint: %w", s.failWith(err))
	}
	if err := s.syncBadger(); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := s.wal.TrimBefore(next); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	s.stats.checkpoints.Add(1)
	s.walBytes = 0
	s.lastCheckpoint = time.Now()
	return nil
}
