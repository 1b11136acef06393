// Package store is sidehook's durable key-value store: BadgerDB v4 behind a
// group-commit writer. The relay and the mock receiver keep everything in it.
//
// # Group commit
//
// Write copies its ops into a request, appends it to a queue and waits. One
// writer goroutine takes everything queued (bounded by MaxBatchOps and
// MaxBatchBytes), puts it in as few Badger transactions as possible, syncs
// once, and then answers every waiter. Each caller's ops stay in one
// transaction, so a Write is atomic; the group is split between callers
// only when Badger says ErrTxnTooBig. While one group is being synced the
// next one queues up, so the batching adapts to the load with no timer:
// with 64 concurrent writers about 32 writes share each sync.
//
// Badger runs with SyncWrites off and the writer syncs instead. db.Sync in
// Badger v4.9 msyncs the active memtable WAL and the active value log file,
// but nothing older: after a memtable rotation, the previous WAL, which may
// hold acknowledged writes (an earlier transaction of the same group, or a
// request Badger batched with a value log GC rewrite), stays unsynced until
// its memtable is flushed to L0 in the background. So after db.Sync the
// writer lists the directory, and when a WAL or value log rotated it also
// fsyncs every WAL, the rotated value log and the directory (Stats.WALSweeps).
// When Write returns nil the write has reached the disk, not just the page
// cache. The kill -9 test checks the ordering (no ack before the write);
// surviving power loss depends on the syncs above, which a test in a process
// cannot show. One gap is left in Badger: value log GC deletes the old file
// before we can sync the rewritten entries, so a power cut in that instant
// could lose entries that GC was moving.
//
// A full disk must become an error: Badger writes through mmap, and a write
// to a full filesystem through a mapping raises SIGBUS, which kills the
// process (tried on an 8 MiB tmpfs). So the writer checks free space before
// each group and answers the whole group ErrDiskFull (an ENOSPC) when it
// would leave less than MinFreeBytes, which must cover a memtable flush and
// a compaction. Writes succeed again once space returns.
//
// Close refuses new writes with ErrClosed, lets the writer commit what is
// already queued (those waiters get nil or the commit's error), stops the GC,
// waits for readers and closes Badger.
//
// # Options
//
// Badger's defaults are sized for a database server: 5 memtables of 64 MiB,
// a 256 MiB block cache, values up to 1 MiB inline in the LSM tree. For a
// sidecar we use 2 memtables of 8 MiB, values of 256 bytes or more in the
// value log (payloads; the index and state records stay in the LSM tree),
// 64 MiB value log files so that GC rewrites stay short, no compression (the
// bodies are stored as received) and so no block cache, an 8 MiB index
// cache, 2 compactors and no conflict detection (one writer).
//
// Measured with BenchmarkPeakRSS (150,000 incompressible 1 KB values from
// 64 goroutines, one process per configuration) on a shared 2-core VM:
//
//	                      peak anon RSS   peak RSS (VmHWM)   syncs/write
//	these options              40-44 MiB           209 MiB         0.031
//	Badger defaults              612 MiB           704 MiB         0.031
//
// The peak RSS beyond the anonymous memory is the mmapped value log: page
// cache the kernel reclaims under pressure. A 16 MiB memtable measured the
// same as 8 MiB (41 MiB anonymous), as the LSM entries are small.
//
// BenchmarkWriteParallel (1 KB values, 64 goroutines, every write synced)
// gives 7,000-15,000 writes/s on that VM with these options and
// 11,000-13,000 with Badger's (the VM was shared; the spread is noise), at
// 0.031 syncs per write: about 32 writes share each sync. Nine tenths of the
// writer's time is in msync; 16 MiB value log files made it slower, not
// faster (more rotations, each swept).
package store
