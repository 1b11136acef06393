package store

import (
	"errors"
	"fmt"
	"io/fs"
	"sync/atomic"
)

// spaceGuard refuses writes that would leave less than min bytes free on
// the filesystem holding dir, and every write once dir has been removed.
// It reads the free space for every group: a statfs is a few microseconds
// beside the group's sync, and a reading trusted for longer would let a
// group through onto a disk another process has just filled, where
// Badger's writes through its mappings are a SIGBUS.
type spaceGuard struct {
	dir    string
	min    int64
	statfs func(dir string) (free int64, ok bool, err error)

	// refused is the size of the last group, if it was refused for want of
	// space (0 once a group is let through): until that much fits above
	// the reserve, check reports the disk full too.
	refused atomic.Int64
}

func newSpaceGuard(dir string, min int64) *spaceGuard {
	return &spaceGuard{dir: dir, min: min, statfs: freeBytes}
}

// admit reports whether need more bytes may be written. A failure to read
// the free space admits the write (Badger reports what it can) and comes
// back as statErr, for the caller to log.
func (g *spaceGuard) admit(need int64) (refused, statErr error) {
	free, ok, err := g.statfs(g.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrDirRemoved, g.dir), nil
	}
	if err != nil || !ok {
		return nil, err
	}
	if free-need < g.min {
		g.refused.Store(max(need, 1))
		return fmt.Errorf("%w: %s free in %s, %s needed and %s kept in reserve", ErrDiskFull, mib(free), g.dir, mib(need), mib(g.min)), nil
	}
	g.refused.Store(0)
	return nil, nil
}

// check reads the free space now and reports the disk full when it is
// below the reserve, or too little above it for the last group refused,
// and the directory gone when it was removed. A filesystem whose free
// space cannot be read otherwise passes.
func (g *spaceGuard) check() error {
	free, ok, err := g.statfs(g.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrDirRemoved, g.dir)
	}
	if err != nil || !ok || free-g.refused.Load() >= g.min {
		return nil
	}
	return &BelowReserveError{Dir: g.dir, Free: free, Reserve: g.min}
}

// BelowReserveError is ErrDiskFull from Open or Failed when the
// filesystem holding Dir has less than the reserve free: what a command
// tells its operator to change.
type BelowReserveError struct {
	Dir           string
	Free, Reserve int64
}

func (e *BelowReserveError) Error() string {
	return fmt.Sprintf("%v: %s free in %s, below the reserve of %s", ErrDiskFull, mib(e.Free), e.Dir, mib(e.Reserve))
}

func (e *BelowReserveError) Unwrap() error { return ErrDiskFull }
