package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// timedRunHeadroom is how much the heap may grow during a timed run before
// the collector runs after all: a 10 s run at 20,000 requests/s allocates
// under 2 GiB on the client side.
const timedRunHeadroom = 3 << 30

// withoutGC runs a timed run with the load generator's own collector held
// off. The precomputed requests make a heap of up to 1.5 GiB full of
// pointers (a header map each), and a collection of it during a run took
// a few hundred milliseconds of CPU from the machine the server under test
// shares: one run in two or three, at a random moment, it cut the server's
// requests/s by a tenth or more and added to its tail. Collecting first and
// then not at all (unless the heap reaches what it held plus
// timedRunHeadroom) makes the runs comparable; both targets of a run get
// the same treatment.
func withoutGC[T any](run func() (T, error)) (T, error) {
	runtime.GC()
	live := liveHeap()
	gcPercent := debug.SetGCPercent(-1)
	limit := debug.SetMemoryLimit(int64(live) + timedRunHeadroom)
	defer func() {
		debug.SetGCPercent(gcPercent)
		debug.SetMemoryLimit(limit)
	}()
	return run()
}

// liveHeap is the heap the last collection left, without a stop-the-world
// (runtime.ReadMemStats would).
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
