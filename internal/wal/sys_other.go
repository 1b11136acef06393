//go:build !linux

package wal

import "os"

// preallocate extends f to size: a sparse file where that is all there is.
func preallocate(f *os.File, size int64) error {
	if fi, err := f.Stat(); err != nil || fi.Size() >= size {
		return err
	}
	return f.Truncate(size)
}

func datasync(f *os.File) error { return f.Sync() }

// datasyncKeepP has no raw system call to make here.
func datasyncKeepP(f *os.File) error { return datasync(f) }
