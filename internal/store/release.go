package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Releasing Badger's mapped pages (see "Resident memory" in the package
// comment).
const (
	DefaultReleaseInterval = 5 * time.Second
	// releaseEveryBytes triggers a release after this much has been logged
	// since the last one, so that a burst between two ticks cannot raise
	// the peak RSS by more than about this much of value log.
	releaseEveryBytes = 16 << 20
)

// runRelease releases the mapped pages of Badger's files every
// ReleaseInterval, and when the writer has logged releaseEveryBytes.
func (s *Store) runRelease(ctx context.Context) {
	defer close(s.releaseDone)
	if !s.releaseOn() {
		return
	}
	t := time.NewTicker(s.opts.ReleaseInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.releaseWake:
		}
		if err := s.release(); err != nil {
			s.stats.releaseErrors.Add(1)
			s.log.Warn().Err(err).Msg("store: release mapped pages")
		}
	}
}

func (s *Store) releaseOn() bool {
	return releaseSupported && !s.opts.InMemory && s.opts.ReleaseInterval > 0
}

// noteWritten counts what the writer logged and wakes the release loop
// every releaseEveryBytes.
func (s *Store) noteWritten(n int64) {
	if !s.releaseOn() || s.sinceRelease.Add(n) < releaseEveryBytes {
		return
	}
	s.sinceRelease.Store(0)
	select {
	case s.releaseWake <- struct{}{}:
	default:
	}
}

// release asks the kernel to page out the shared mappings of Badger's
// value log, table and memtable files. MADV_PAGEOUT loses no data even on a
// range that is no longer such a mapping (after Badger unmaps a file,
// anonymous memory can be mapped at the same address: it would at worst be
// swapped out), but a release should not touch what it does not mean to,
// so it advises only ranges that cannot be unmapped while it runs:
//
//   - It holds mapMu, which the applier holds while it commits to Badger:
//     no write can rotate the value log (truncating the mapping of the
//     file it fills) or the memtable.
//   - It holds an iterator open: Badger then defers deleting value log
//     files, and the iterator holds a reference on every table in the LSM
//     tree and every memtable.
//   - Value log files only when the GC, the other writer, is not running
//     (vlogMu), and when the file of its last rewrite is gone: Badger
//     deletes it when the last iterator closes, maybe a Scan's, after the
//     GC has returned (see gcOnce).
//   - Tables only if they were in the LSM tree both before and after the
//     iterator was opened, hence pinned by it; a table a compaction has
//     just built, or one another reader still holds, is left alone.
//   - Only the newest memtable file, the current memtable: with writes
//     held it stays current, and the iterator holds it. The immutable ones
//     are flushed and dropped within seconds anyway.
func (s *Store) release() error {
	if err := s.acquire(); err != nil {
		return nil // closing
	}
	defer s.readers.Done()
	s.mapMu.Lock()
	defer s.mapMu.Unlock()
	vlogs := s.vlogMu.TryLock()
	if vlogs {
		defer s.vlogMu.Unlock()
		vlogs = s.vlogDeleted()
	}

	before := tableIDs(s.db)
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{})
	defer it.Close()
	after := tableIDs(s.db)

	maps, err := dirMappings(s.opts.Dir)
	if err != nil {
		return fmt.Errorf("store: release: %w", err)
	}
	newestMem, memMap := -1, -1
	var errs, n int
	var firstErr error
	var bytes int64
	advise := func(m mapping) {
		if err := dontNeed(m); err != nil {
			errs++
			if firstErr == nil {
				firstErr = err
			}
			return
		}
		n++
		bytes += int64(m.end - m.start)
	}
	for i, m := range maps {
		base, ext, _ := strings.Cut(m.name, ".")
		id, err := strconv.ParseUint(base, 10, 64)
		if err != nil {
			continue
		}
		switch ext {
		case "vlog":
			if vlogs {
				advise(m)
			}
		case "sst":
			if before[id] && after[id] {
				advise(m)
			}
		case "mem":
			if int(id) > newestMem {
				newestMem, memMap = int(id), i
			}
		}
	}
	if memMap >= 0 {
		advise(maps[memMap])
	}
	s.stats.releases.Add(1)
	s.stats.releasedBytes.Add(bytes)
	if firstErr != nil {
		return fmt.Errorf("store: release: %d of %d mappings: %w", errs, errs+n, firstErr)
	}
	return nil
}

func tableIDs(db *badger.DB) map[uint64]bool {
	ts := db.Tables()
	ids := make(map[uint64]bool, len(ts))
	for _, t := range ts {
		ids[t.ID] = true
	}
	return ids
}

// Release drops the store's page-table entries for Badger's mapped files
// now, as the background loop does every ReleaseInterval. It is a no-op in
// memory and where unsupported (not Linux).
func (s *Store) Release() error {
	if !releaseSupported || s.opts.InMemory {
		return nil
	}
	return s.release()
}
