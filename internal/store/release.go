package store

import (
	"context"
	"time"
)

// Releasing the pages of Badger's files that are mapped into the process.
// Badger maps its value log, memtable logs and tables with MAP_SHARED, and
// every page it writes or reads stays in our page tables, so counted in our
// RSS, until the kernel needs the memory: 166 MiB after 150,000 writes of
// 1 KiB, and a peak of 211 MiB against the receiver's target of 200 MiB.
// It is page cache, but a container limit or an RSS alarm does not know.
//
// A compaction reads and writes tables at a hundred MiB/s and more: polled
// every 100 ms with a 24 MiB trigger, a relay filling a backlog of 400,000
// events held up to 75 MiB of such pages; polled every 25 ms with an 8 MiB
// trigger, 46 MiB, and 63 MiB at a million (about 25 MiB of it the
// binary's own pages). A poll reads one small file.
const (
	releaseEvery  = 5 * time.Second
	releasePoll   = 25 * time.Millisecond
	releaseGrowth = 8 << 20 // resident file-backed bytes that trigger a release
	// releaseQuiet is how long the resident file-backed memory stays the
	// same before the poll stops: nothing is mapping pages then, and an
	// idle process polling every 25 ms took about half of its CPU time.
	releaseQuiet = time.Second
)

// runRelease releases whenever the process's resident file-backed memory
// has grown by releaseGrowth since the last release (reads map pages as
// fast as writes do, so the trigger is the resident size, not what was
// written), and every releaseEvery what has grown less. It polls while
// that memory changes and the store is used; once it has not changed for
// releaseQuiet it waits for the next write or read (touched), looking
// only every releaseEvery meanwhile.
func (s *Store) runRelease(ctx context.Context) {
	defer close(s.releaseDone)
	if s.opts.InMemory || s.opts.noRelease || !releaseSupported {
		return
	}
	every := time.NewTicker(releaseEvery)
	defer every.Stop()
	poll := time.NewTicker(releasePoll)
	defer poll.Stop()
	var (
		base    int64 // resident file-backed bytes after the last release
		seen    int64 // at the last poll
		changed = time.Now()
	)
	release := func() {
		if err := releaseMappings(s.opts.Dir); err != nil {
			s.log.Debug().Err(err).Msg("store: release mapped pages")
		}
		// What cannot be released (the binary's own pages) stays: measure
		// after the release, so that it does not trigger one every poll.
		if n, err := residentFileBytes(); err == nil {
			base = n
		}
	}
	wake := func() {
		s.releaseIdle.Store(false)
		poll.Reset(releasePoll)
		changed = time.Now()
	}
	release() // what Open read
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.releaseWake:
			wake()
			continue
		case <-every.C:
			n, err := residentFileBytes()
			if err != nil || n <= base {
				continue
			}
			if s.releaseIdle.Load() {
				wake() // something mapped pages without a touch
			}
		case <-poll.C:
			n, err := residentFileBytes()
			if err != nil {
				continue
			}
			if n != seen {
				seen, changed = n, time.Now()
			} else if time.Since(changed) >= releaseQuiet {
				poll.Stop()
				s.releaseIdle.Store(true)
			}
			if n-base < releaseGrowth {
				continue
			}
		}
		release()
	}
}

// touched wakes the release poll if it stopped: the store is used, so
// pages are being mapped. It costs a load of one flag otherwise.
func (s *Store) touched() {
	if s.releaseIdle.Load() && s.releaseIdle.CompareAndSwap(true, false) {
		select {
		case s.releaseWake <- struct{}{}:
		default:
		}
	}
}
