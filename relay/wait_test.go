package relay_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
)

// eventually waits until cond returns nil, asking every few milliseconds,
// and fails the test with cond's last answer after within.
func eventually(tb testing.TB, within time.Duration, cond func() error) {
	tb.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		select {
		case <-deadline.C:
			tb.Fatalf("not within %s: %v", within, err)
		case <-tick.C:
		}
	}
}

// shiftedClock is the wall clock moved forward by what a test adds, so a
// retention or a due time passes without the test waiting for it.
type shiftedClock struct {
	relay.RealClock
	by atomic.Int64 // nanoseconds
}

func (c *shiftedClock) Now() time.Time { return time.Now().Add(time.Duration(c.by.Load())) }

func (c *shiftedClock) advance(d time.Duration) { c.by.Add(int64(d)) }
