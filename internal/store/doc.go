// Package store is sidehook's durable key-value store: BadgerDB v4 behind a
// group-commit writer and a write-ahead log of our own. The relay and the
// mock receiver keep everything in it.
//
// # Group commit through our WAL
//
// Write copies its ops into a request, appends it to a queue and waits. One
// writer goroutine takes everything queued (bounded by MaxBatchOps and
// MaxBatchBytes) and appends it as one record to the WAL, an append-only
// file in the data dir (sidehook.wal.NNNNNNNN, format in wal.go: every op
// of the group with its key, value and absolute expiry, length-prefixed and
// CRC-32C-checked) with a single write, then fdatasyncs it. An applier
// goroutine then commits the group to Badger, each caller's ops in one
// transaction (so a Write is atomic; the group is split between callers
// when it is too big for one), and answers the waiters. So when Write
// returns nil the write is on disk, and Get and Scan see it.
//
// Badger runs with SyncWrites off and is never synced on this path: db.Sync
// costs an msync of the memtable WAL and of the value log, ~2.4 ms per group
// under load here, where an fdatasync of a small append costs ~0.2 ms. The
// stages overlap: while the applier commits group N, the writer logs and
// syncs group N+1, and meanwhile group N+2 queues up; so the batching adapts
// to the load with no timer (about 30 writes share a sync with 64 writers).
// Overlapping the apply with the next sync measured 25% more throughput than
// doing them in turn (20-25k against 17-18k writes/s, same machine and load).
//
// What Badger would refuse (a value above its limit, a Write too large for
// a transaction) is refused before the WAL. A request whose Badger commit
// still fails after its record is durable gets the error, and an abort
// record naming it (seq, request) is logged so that a replay skips it.
//
// # Answering on sync
//
// With Options.AnswerOnSync (the receiver's and the relay's stores) the
// writer answers a group as soon as its record is synced, and the applier
// commits it to Badger after. Get and Scan first wait until the applier has
// applied every group logged so far, so a read still sees every write
// answered before it began. The writer still runs at most one group ahead
// of the applier, so that wait is short, but the answer no longer waits on
// Badger's commit, whose stalls (a page fault in its mappings, the release
// of mapped pages holding it) held up every request in flight: in the
// receiver's benchmark, p99 21.5-26.4 ms against 25.0-29.7 ms and
// 6,229-7,006 against 5,048-6,514 requests/s (four pairs, alternated). A
// Badger commit that fails after its callers had nil cannot be aborted:
// the store records the error, fails every later Write, Get, Scan and
// checkpoint with ErrUnapplied (Failed reports it, for health checks), and
// leaves the WAL in place for the next Open to replay.
//
// # Checkpoints
//
// The WAL only has to cover what Badger's files may not hold yet. When a
// segment reaches 64 MiB, every 30 s, and at Close, a checkpoint moves the
// writer to a new segment, waits until the applier has applied everything
// logged in the old ones, writes back the dirty pages of Badger's memtable
// WALs and value logs a MiB at a time (sync_file_range, waiting for each:
// all at once, the 40-60 MiB written through the mappings since the last
// checkpoint sat in front of the WAL appends' fdatasyncs on the disk and
// stalled every waiting request for 50-120 ms), syncs all of Badger
// (db.Sync, then an fsync of every memtable WAL and value log file and of
// the directory: Badger never syncs a memtable WAL when it rotates, nor old
// value log files), and only then removes the old segments, oldest first. A
// removed segment is kept as the spare that the next segment reuses: appends
// then overwrite blocks already written, so fdatasync writes the data alone,
// without the metadata write (a journal commit on a journaled ext4) that
// extending a file or writing a fallocated extent takes (0.5 ms against
// 0.9-2.5 ms per sync while other engineers loaded this disk). The segment
// number is part of each record's checksum, so the records of the spare's
// previous life do not check out. A new data dir's first segment is
// fallocated to 64 MiB instead.
//
// Open replays every segment in order into Badger, syncs Badger and retires
// them. Reading a segment stops at the end of the file, at zeros (space
// preallocated and never written) or at the first record whose length or
// checksum does not check out: torn by the crash, never acknowledged (an
// acknowledgement follows an fdatasync of everything written before it),
// and dropped with its segment. Records carry absolute sets and deletes, so
// replaying one twice is harmless; a set whose expiry has passed is replayed
// as a delete (skipping it would bring back the value it replaced). A
// record missing between two intact ones, which only corruption can cause,
// fails Open with an error naming the segment.
//
// The value log GC moves entries that may be older than the WAL, and Badger
// deletes the file they came from at once: the GC holds an iterator open,
// which makes Badger defer that deletion, until it has synced Badger.
//
// # Crash windows
//
//   - Before the WAL write completes: the record is torn or absent, no
//     caller was answered, and replay stops before it.
//   - After the fdatasync, before Badger has the group or the caller its
//     answer: replay applies it. The caller saw no answer (as with a
//     canceled ctx, the write is then all or nothing). With AnswerOnSync
//     the caller may have had its answer: replay applies it all the same.
//   - After the answer: the record is durable; Badger's copy may not be
//     (power loss), and replay restores it.
//   - During a checkpoint: a new segment is durable in the directory before
//     any record in it is answered, old segments go only after Badger's sync
//     and oldest first, so a crash leaves a suffix of the log to replay.
//   - During Open: the replayed segments stay until Badger is synced; a
//     crash replays them again.
//   - A failed append is cut back off the segment (truncate and fdatasync).
//     If even that fails, the writer moves to a new segment whose first
//     record aborts the lost one. Only if that record never reaches the disk
//     either can a write its caller saw fail come back after a crash; the
//     same holds for a failed Badger commit whose abort record fails.
//   - Badger's own state after a failed commit (a failed file creation) is
//     Badger's: it may hold part of that transaction.
//
// A kill -9 keeps the page cache, so the test of it (crash_test.go) checks
// the ordering and the replay; power loss depends on the syncs above, which
// a test in a process cannot show. The internal tests simulate the crash
// that matters by logging groups without applying them, then reopening.
//
// # Full disk
//
// Badger writes through mmap, and a write to a full filesystem through a
// mapping raises SIGBUS, which kills the process (tried on an 8 MiB tmpfs).
// So the writer checks free space before each group and answers the whole
// group ErrDiskFull (an ENOSPC) when it would leave less than MinFreeBytes,
// which must cover a memtable flush and a compaction. A WAL append that
// meets ENOSPC anyway fails its group with ErrDiskFull and is cut back
// before Badger sees anything. Writes succeed again once space returns.
//
// Close refuses new writes with ErrClosed, lets the writer and applier
// finish what is queued (those waiters get nil or the commit's error),
// stops the GC and checkpoints, waits for readers, checkpoints a last time
// and closes Badger.
//
// # Resident memory
//
// Badger maps its value log files (all of them, for as long as they
// exist), its memtable logs and its tables with MAP_SHARED and writes the
// first two through the mapping. Every page we touch stays mapped in our
// process and counts in its RSS (RssFile) until the kernel reclaims it:
// 166 MiB after 150k 1 KB writes, 2.7 GiB with a relay backlog of a million.
// It is page cache, but a container limit or an RSS alarm does not know.
//
// So a release loop (release.go, Linux only) reads /proc/self/maps once
// Open is done, every ReleaseInterval (5 s), and whenever the resident
// file-backed memory (the third field of /proc/self/statm, polled every
// 100 ms) has grown by 24 MiB since the last release, and calls
// madvise(MADV_PAGEOUT) on the mappings of Badger's files in the data dir:
// the kernel reclaims those pages now (writing dirty ones back to the
// file) instead of whenever memory runs short, and the next access faults
// the data in again. MADV_PAGEOUT rather than MADV_DONTNEED because it
// never loses data whatever the range holds: should a stale range have
// been reused by anonymous memory (once Badger unmaps a file, the Go
// runtime may map at that address), PAGEOUT at worst swaps it out, where
// DONTNEED would zero live heap. It measured the same (peak RSS 75 MiB
// after 150k writes, same time).
//
// The trigger is the resident size, not what the writer logs, because
// reads map pages as fast as writes: every access to a cold page of a
// mapping faults in its readahead window (128 KiB) and maps the cached
// pages around it, and a compaction maps every table it reads and
// writes. With a release only every 16 MiB logged or 5 s, a relay
// retrying a backlog of a million had 100-170 MiB of value log and 60-100
// MiB of tables resident at its peaks, and the restart on that backlog
// mapped 224 MiB of value log (Open reads the newest file end to end,
// then the dispatcher reads events and deliveries) before its first
// release 5 s in: 402 MiB, of which 60-73 MiB anonymous.
//
// A stale range is still avoided, so that a release never pages out what
// it did not mean to: a release advises only mappings that cannot go away
// while it runs: it
// excludes the applier's commits (the only writes, which rotate the value
// log and the memtable), holds an iterator (which pins every table and
// memtable and defers deleting value log files), skips the value log while
// the GC writes to it, advises a table only if it was in the LSM tree
// both before and after the iterator was opened or is newer than every
// table in it (being written by a compaction or a flush, and deleted only
// after a later compaction), and of the memtable logs only the current
// one. Private mappings are never advised. A release of a
// few hundred MiB takes milliseconds; it stalls the applier, not readers.
//
// # In memory
//
// InMemory keeps no files and no WAL. Badger then keeps every value in its
// LSM tree, and refuses values from its value threshold up; its error for
// that sliced the value to 1 KiB for a hex dump and panicked on shorter
// ones, so a 1 KB value crashed `--in-memory`. The store now raises the
// threshold to Badger's maximum (1 MiB), splits values above 256 KiB into
// chunks under reserved keys (chunk.go), uses 16 MiB memtables so that a
// Write of MaxInMemoryValue (2 MiB) fits one transaction, and refuses what
// Badger would refuse before Badger sees it (ErrValueTooLarge), so that no
// Badger error path can panic.
//
// # Options
//
// Badger's defaults are sized for a database server: 5 memtables of 64 MiB,
// a 256 MiB block cache, values up to 1 MiB inline in the LSM tree. For a
// sidecar we use 2 memtables of 8 MiB, values of 256 bytes or more in the
// value log (payloads; the index and state records stay in the LSM tree),
// 64 MiB value log files so that GC rewrites stay short, no compression (the
// bodies are stored as received) and so no block cache, an 8 MiB index
// cache, 2 compactors and no conflict detection (one writer). Tables are
// 2 MiB at every level: Badger doubles them per level below the base, and
// a compaction builds up to 13 in memory at once (two table sizes each), so
// the anonymous memory grew with the LSM tree: 8 MiB tables and 92 MiB of
// builders with a relay backlog of a million events.
//
// # Measurements
//
// On a shared 2-core VM (load 1.4-1.5 from other engineers), 1 KB values,
// before (Badger synced per group) and after (our WAL, pipelined): best of
// 3 and the spread, the two test binaries run in turn:
//
//	                                before               after
//	WriteParallel (64 goroutines)   23.3k (15.2-23.3k)   47.9k (39.7-47.9k) writes/s
//	  writes per sync               32                   29
//	WriteSerial p50                 479 µs (479-925)     339 µs (339-468)
//	WriteSerial p99                 0.98 ms (0.98-1.54)  0.75 ms (0.75-0.96)
//	PeakRSS time for 150k writes    8.0 s (8.0-9.8)      3.5 s (3.5-3.6)
//	PeakRSS peak anon RSS           47 MiB (47-66)       57 MiB (57-66)
//	PeakRSS peak RSS (VmHWM)        212 MiB (212-232)    224 MiB (224-232)
//	PeakRSS disk after Close        157 MiB              221 MiB
//
// An earlier round at load 2 agreed (16-20k against 41-47k writes/s, p50
// 711-811 against 353-418 µs). With one writer most of a write's time is
// the fdatasync; the rest is handing it from the caller to the writer, the
// applier and Badger's own write goroutine.
//
// BenchmarkPeakRSS writes 150,000 incompressible 1 KB values from 64
// goroutines, one process per configuration. The disk it leaves includes the
// spare WAL segment (64 MiB and a little more). Badger's defaults measured
// 612 MiB anonymous, 704 MiB peak. The release of mapped pages, three runs
// each, interleaved:
//
//	                    no release        release (5 s, every 16 MiB)
//	peak RSS (VmHWM)    220-232 MiB       76-98 MiB
//	peak RssFile        166 MiB           31 MiB
//	peak RssAnon        54-66 MiB         57-71 MiB
//	time                3.6-4.2 s         4.0-4.2 s
//
// A relay (one endpoint refusing connections) ingesting 1,000,000 1 KB
// events from 32 goroutines measured 2.7 GiB RSS before, nearly all of it
// RssFile. With the release and 2 MiB tables: RssFile 21-82 MiB when
// sampled (peaks of 124-146 MiB, compactions between two releases);
// RssAnon 118-209 MiB, peaks of 284 MiB, VmHWM 373 MiB. The Go heap is
// Badger's, the relay's own under 2 MiB: the memtable arena (10 MiB),
// memtable flushes and compaction table builders (44-92 MiB); the rest of
// RssAnon is the Go GC's headroom (GOGC 100). With GOMEMLIMIT=160MiB the
// same run peaked at 142 MiB anonymous and 251 MiB VmHWM.
//
// Sampled every 100 ms (/proc/PID/status, and smaps per mapping), that
// relay's peaks of 292-368 MiB were mostly file-backed: RssFile 237-246
// MiB (value log 100-170 MiB, tables 60-100 MiB) beside 120-143 MiB
// anonymous, and the restart's 402-468 MiB almost all value log and
// tables mapped by Open and by the dispatcher's reads, 60-73 MiB
// anonymous. The heap profile of the anonymous part: Badger's table
// builders (z.Calloc, 48-80 MiB, memtable flushes and compactions, kept
// in Badger's allocator pool between them) and its memtable arenas
// (10-21 MiB); the relay's own heap is under 2 MiB. With the release
// triggered by the resident size (and at Open, between WAL replay batches
// of 8 MiB) and the relay's heap limited to 128 MiB, the peak after the
// million was 217-249 MiB: up to 118 MiB anonymous, and RssFile peaks of
// 105-130 MiB, most of them the new tables of a compaction in progress.
// Advising those too (tables newer than the LSM tree): 197 MiB, and 124
// MiB on the restart.
package store
