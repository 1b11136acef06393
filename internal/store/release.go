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
	// releasePoll is how often the release loop reads how much of the
	// process's file-backed memory is resident, and releaseGrowth how much
	// that may grow since the last release before the next one. Reads
	// fault pages in as fast as writes do (a restart retrying a backlog
	// mapped 60 MiB/s of value log it only read), and a compaction maps
	// every table it reads and writes, so the trigger is the resident
	// size itself rather than what the writer logged: the peak stays
	// within about releaseGrowth of what a release leaves.
	releasePoll   = 100 * time.Millisecond
	releaseGrowth = 24 << 20
)

// runRelease releases the mapped pages of Badger's files every
// ReleaseInterval, and whenever the resident file-backed memory has grown
// by releaseGrowth since the last release.
func (s *Store) runRelease(ctx context.Context) {
	defer close(s.releaseDone)
	if !s.releaseOn() {
		return
	}
	t := time.NewTicker(s.opts.ReleaseInterval)
	defer t.Stop()
	poll := time.NewTicker(releasePoll)
	defer poll.Stop()
	trig := releaseTrigger{growth: releaseGrowth}
	release := func() {
		s.releaseAndLog()
		// What a release cannot advise (tables a compaction is writing,
		// memtables being flushed, the binary) stays resident: measuring
		// after the release keeps that from triggering one every poll.
		if n, err := residentFileBytes(); err == nil {
			trig.reset(n)
		}
	}
	// Open has just read through Badger's files (the newest value log
	// file from end to end, the memtable logs, every table's index) and
	// replayed our WAL: release that at once rather than carry it into
	// the first interval.
	release()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-poll.C:
			n, err := residentFileBytes()
			if err != nil || !trig.due(n) {
				continue
			}
		}
		release()
	}
}

// releaseDuringOpen releases the pages Open has mapped so far, before the
// release loop runs. Open calls it only while no write is in flight (after
// Badger's open, and between WAL replay batches), so the release's
// exclusions hold.
func (s *Store) releaseDuringOpen() {
	if s.releaseOn() {
		s.releaseAndLog()
	}
}

// releaseAndLog releases, counting and logging a failure: a release that
// fails costs memory, not correctness, so its callers go on.
func (s *Store) releaseAndLog() {
	if err := s.release(); err != nil {
		s.stats.releaseErrors.Add(1)
		s.log.Warn().Err(err).Msg("store: release mapped pages")
	}
}

// releaseTrigger decides when the resident file-backed memory has grown
// enough since the last release to release again.
type releaseTrigger struct {
	growth int64 // bytes of growth that trigger a release
	base   int64 // resident bytes measured after the last release
}

func (r *releaseTrigger) reset(resident int64) { r.base = resident }

func (r *releaseTrigger) due(resident int64) bool { return resident-r.base >= r.growth }

func (s *Store) releaseOn() bool {
	return releaseSupported && !s.opts.InMemory && s.opts.ReleaseInterval > 0
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
//   - Tables that were in the LSM tree both before and after the iterator
//     was opened, hence pinned by it, and tables newer than all of those:
//     the ones a compaction or a memtable flush is writing, which are
//     deleted only once they have joined the tree and been compacted
//     again, which takes far longer than a release (or when their
//     compaction fails). Without them a large L0 compaction kept up to
//     100 MiB of new tables resident until it was done. A table a
//     compaction has replaced, which another reader may still hold until
//     Badger deletes it, is left alone.
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
	newest := newestTable(before, after)

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
			if adviseTable(id, before, after, newest) {
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

// adviseTable says whether a release may advise the mapping of table id
// (see release).
func adviseTable(id uint64, before, after map[uint64]bool, newest uint64) bool {
	return before[id] && after[id] || id > newest
}

// newestTable is the largest table id in either set (0 if both are empty).
func newestTable(sets ...map[uint64]bool) uint64 {
	var n uint64
	for _, set := range sets {
		for id := range set {
			n = max(n, id)
		}
	}
	return n
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
