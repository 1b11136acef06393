// Package store is sidehook's durable key-value store: BadgerDB v4 behind a
// group-commit writer. Badger's own logs are the only log.
//
// # Contract
//
// Write applies its ops atomically. When it returns nil they are durable
// (synced to disk; not in memory) and visible to every Get and Scan that
// starts after it. Writes from concurrent callers are group-committed: one
// writer goroutine takes everything queued, commits it in as few Badger
// transactions as fit (each Write whole in one), syncs Badger once, and
// answers every waiter; the groups grow with the load, with no timer. A
// write once queued is carried out whatever the caller's context does:
// canceling only abandons the wait, and the write then lands in full or
// not at all, unseen by the caller.
//
// Badger runs with SyncWrites off, and a group's sync is db.Sync (its
// current memtable log and value log file) plus, when the group made Badger
// start a new log, an fsync of every memtable log and of the directory:
// Badger syncs neither the memtable log it leaves nor the directory entries
// of the files it creates (files.go).
//
// # Crash semantics
//
//   - Killed before the sync: no caller of the group was answered; Badger's
//     recovery keeps a prefix of its logs, and each Write is one
//     transaction, so a Write is there in full or not at all.
//   - Killed after the sync: every answered write is in Badger's synced
//     logs, and Open replays them.
//   - A failed sync fails its group and the store (Failed), until it is
//     reopened: what it should have made durable is unknown.
//   - The value log GC deletes the file it rewrote before the store syncs
//     the values it moved, right after: a power loss (not a crash of the
//     process) in that window can lose them.
//
// # Full disk
//
// Badger writes its logs and tables through mmap, and a write to a full
// filesystem through a mapping is a SIGBUS that kills the process. So
// every group first reads the free space and is refused with ErrDiskFull
// when it would leave less than Options.Reserve, whose floor covers a flush
// of every memtable and a value log file (ReserveFloor); Failed reports it
// meanwhile, and writes succeed again once space is freed. Open refuses a
// filesystem below the reserve before Badger touches a file, and Close
// leaves Badger unclosed (its close flushes the memtable through a mapping)
// when there is not room for that flush: the synced logs are replayed at
// the next Open. Another process can still take the reserve faster than
// the store sees it.
//
// # Resident memory
//
// Badger maps its files with MAP_SHARED, and every page it touches stays in
// the process's RSS until the kernel needs it: 150,000 writes of 1 KiB
// peaked at 210 MiB (166 MiB of it file-backed). On Linux the store asks
// the kernel to page those mappings out (release.go) every 5 s and whenever
// the resident file-backed memory has grown by 24 MiB: a peak of 74 MiB.
package store
