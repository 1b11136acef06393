//go:build !linux

package store

import (
	"fmt"
	"os"
)

// freeBytes does not know free space outside Linux: the guard is off there.
func freeBytes(string) (int64, bool, error) { return 0, false, nil }

func allocated(fi os.FileInfo) int64 { return fi.Size() }

func fdatasync(f *os.File) error {
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", f.Name(), err)
	}
	return nil
}

// fdatasyncKeepP has no raw system call to make here.
func fdatasyncKeepP(f *os.File) error { return fdatasync(f) }

func preallocate(*os.File, int64) {}

// writeBackRange has no partial writeback to ask for here: the syncs that
// follow write everything.
func writeBackRange(*os.File, int64, int64) error { return nil }
