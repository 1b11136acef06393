package store

import (
	"fmt"
	"time"
)

// spaceRecheck is how long the writer trusts a reading of the free space
// while it is far from the reserve.
const spaceRecheck = 50 * time.Millisecond

// spaceGuard refuses groups that would leave less than min bytes free. It
// belongs to the writer goroutine.
//
// A statfs per group put a system call through the scheduler on every
// group's path: under load the writer, back from it, waited for a P behind
// the request handlers, up to 5 ms (docs/BENCHMARKS.md). Far from the
// reserve the guard trusts its last reading, less what it has let through
// since, for up to spaceRecheck; within 2×min of the reserve it reads the
// free space for every group, as before. So what others write between two
// readings (Badger's new files among them) eats into a margin as large as
// the reserve, above it, before the reserve itself.
type spaceGuard struct {
	dir    string
	min    int64
	statfs func(dir string) (free int64, ok bool, err error)
	now    func() time.Time

	free int64     // at the last reading, less what was let through since
	at   time.Time // of the last reading; zero when there is none to trust
}

func newSpaceGuard(dir string, min int64) *spaceGuard {
	return &spaceGuard{dir: dir, min: min, statfs: freeBytes, now: time.Now}
}

// admit reports whether need more bytes may be written. A failure to read
// the free space admits the write (Badger reports what it can) and comes
// back as statErr, for the caller to log.
func (g *spaceGuard) admit(need int64) (refused, statErr error) {
	now := g.now()
	if g.at.IsZero() || now.Sub(g.at) >= spaceRecheck || g.free-need < 2*g.min {
		free, ok, err := g.statfs(g.dir)
		if err != nil || !ok {
			g.at = time.Time{}
			return nil, err
		}
		g.free, g.at = free, now
	}
	if g.free-need < g.min {
		return fmt.Errorf("%w: %d bytes free, %d needed plus %d reserved", ErrDiskFull, g.free, need, g.min), nil
	}
	g.free -= need
	return nil, nil
}
