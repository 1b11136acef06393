package main

import (
	"errors"
	"math"
	"runtime/debug"
	"testing"
)

// TestWithoutGC: the collector is off during the run (its memory limit
// raised), the run's result and error come back, and the settings are
// restored after it, failed or not.
func TestWithoutGC(t *testing.T) {
	prevPercent := debug.SetGCPercent(50)
	prevLimit := debug.SetMemoryLimit(1 << 40)
	t.Cleanup(func() {
		debug.SetGCPercent(prevPercent)
		debug.SetMemoryLimit(prevLimit)
	})
	boom := errors.New("boom")
	for _, wantErr := range []error{nil, boom} {
		var percent int
		var limit int64
		got, err := withoutGC(func() (int, error) {
			percent = debug.SetGCPercent(-1)
			limit = debug.SetMemoryLimit(-1)
			return 7, wantErr
		})
		if got != 7 || !errors.Is(err, wantErr) {
			t.Errorf("got %d, %v; want 7, %v", got, err, wantErr)
		}
		if percent != -1 || limit < timedRunHeadroom || limit == math.MaxInt64 {
			t.Errorf("during the run: GC percent %d, memory limit %d; want -1 and the live heap plus %d", percent, limit, timedRunHeadroom)
		}
		if p, l := debug.SetGCPercent(50), debug.SetMemoryLimit(-1); p != 50 || l != 1<<40 {
			t.Errorf("after the run: GC percent %d, memory limit %d; want 50 and %d", p, l, int64(1<<40))
		}
	}
}
