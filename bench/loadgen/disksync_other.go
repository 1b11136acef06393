//go:build !linux

package loadgen

import "os"

// preallocate: outside Linux the file grows as it is written.
func preallocate(f *os.File, size int64) error { return nil }

// datasync: outside Linux, a whole fsync.
func datasync(f *os.File) error { return f.Sync() }
