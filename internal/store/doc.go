// Package store is sidehook's durable key-value store: BadgerDB v4 behind a
// group-commit writer that answers after one fdatasync of its own
// write-ahead log (internal/wal).
//
// # Contract
//
// Write applies its ops atomically. When it returns nil they are durable
// (synced to disk; not in memory) and visible to every Get and Scan that
// starts after it. Writes from concurrent callers are group-committed: one
// writer goroutine takes what is queued (up to 64 MiB of it, at least one
// Write, so that a group's WAL record stays well below the WAL's 1 GiB
// bound), prepares it in as few Badger transactions as fit (each Write
// whole in one), appends the group's ops to the WAL as one record, syncs
// the WAL once, commits the transactions and answers every waiter; the
// groups grow with the load, with no timer.
// Badger has the ops before the answer, so a caller reads its own write,
// and after the WAL sync, so that the WAL always holds whatever Badger's
// unsynced logs hold. A write once queued is carried
// out whatever the caller's context does: canceling only abandons the wait,
// and the write then lands in full or not at all, unseen by the caller.
//
// # Why a second log
//
// Badger runs with SyncWrites off, and making it durable is db.Sync, an
// msync of its mapped memtable log and value log, plus, when it has moved
// to new logs, an fsync of every memtable log and of the directory (Badger
// syncs neither the memtable log it leaves nor the entries of the files it
// creates: files.go). Acknowledging each group after that doubled the
// receiver's capture latency (~188 to ~380 us); an fdatasync of a
// preallocated, recycled plain file is the cheaper sync (the A/B is in
// docs/BENCHMARKS.md). So Badger is synced only at a checkpoint, every
// memtable's worth of WAL or 5 s and at Close, after which the WAL drops
// the segments it covers; the sync runs beside the writer, so no write
// waits for it. The data directory holds Badger's files and the
// WAL's directory, wal/, nothing else.
//
// # Crash semantics
//
//   - Killed before the WAL sync: no caller of the group was answered, and
//     Badger never saw it; the WAL keeps a prefix of its records (each a
//     group): a Write is there in full or not at all.
//   - Killed after the WAL sync: Open replays the WAL into Badger, in order
//     (records Badger already has are written again, to the same final
//     state), syncs Badger and drops the WAL.
//   - A failed sync, or a Badger commit that fails after the WAL sync,
//     fails its group and the store (Failed), until it is reopened: what
//     it held may or may not be there after the next Open.
//   - The value log GC deletes the file it rewrote before the store syncs
//     the values it moved, right after: a power loss (not a crash of the
//     process) in that window can lose them.
//
// # Full disk
//
// Badger writes its logs and tables through mmap, and a write to a full
// filesystem through a mapping is a SIGBUS that kills the process. So
// every group first reads the free space and is refused with ErrDiskFull
// when writing it to both logs (and preallocating a new WAL segment, if it
// needs one) would leave less than Options.Reserve, whose floor covers a flush
// of every memtable and a value log file (ReserveFloor); Failed reports it
// meanwhile, and writes succeed again once space is freed. Open refuses a
// filesystem below the reserve before Badger touches a file, and Close
// leaves Badger unclosed (its close flushes the memtable through a mapping)
// when there is not room for that flush: the synced WAL is replayed at the
// next Open. The WAL is written with write(2), where a full disk is an
// error, into preallocated segments. Another process can still take the
// reserve faster than the store sees it.
//
// # Resident memory
//
// Badger maps its files with MAP_SHARED, and every page it touches stays in
// the process's RSS until the kernel needs it: 150,000 writes of 1 KiB
// peaked at 210 MiB (166 MiB of it file-backed). On Linux the store asks
// the kernel to page those mappings out (release.go) every 5 s and whenever
// the resident file-backed memory has grown by 8 MiB (polled every 25 ms):
// a peak of 61 MiB, 19 MiB of it file-backed (BenchmarkPeakRSS).
package store
