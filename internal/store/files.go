package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Badger's file names: memtable WALs are %05d.mem, value logs %06d.vlog.
const (
	memExt  = ".mem"
	vlogExt = ".vlog"
	sstExt  = ".sst"
)

// fileState remembers the newest memtable WAL and value log seen at the last
// sync, to notice rotations.
type fileState struct {
	maxMem, maxVlog int
}

type dirListing struct {
	mems            []int
	maxMem, maxVlog int
}

func list(dir string) (dirListing, error) {
	l := dirListing{maxMem: -1, maxVlog: -1}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return l, fmt.Errorf("list %s: %w", dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, memExt):
			if fid, err := strconv.Atoi(strings.TrimSuffix(name, memExt)); err == nil {
				l.mems = append(l.mems, fid)
				l.maxMem = max(l.maxMem, fid)
			}
		case strings.HasSuffix(name, vlogExt):
			if fid, err := strconv.Atoi(strings.TrimSuffix(name, vlogExt)); err == nil {
				l.maxVlog = max(l.maxVlog, fid)
			}
		}
	}
	return l, nil
}

func (f *fileState) scan(dir string) error {
	l, err := list(dir)
	if err != nil {
		return err
	}
	f.maxMem, f.maxVlog = l.maxMem, l.maxVlog
	return nil
}

// sweep fsyncs what db.Sync misses when files rotated since the last call.
//
// With SyncWrites off, Badger (v4.9) never syncs a memtable WAL when it
// rotates to a new memtable: the old WAL's tail is durable only once the
// memtable is flushed to an L0 table, later and in the background. That
// tail can hold acknowledged writes: those of an earlier transaction of the
// same group commit, or of a request Badger batched together with a value
// log GC rewrite. Likewise the old value log file is msynced on rotation only
// when Badger has to truncate it, and neither new file's directory entry is
// synced. So on a rotation we fsync every WAL, the value log files that were
// active since the last sweep, and the directory.
func (f *fileState) sweep(dir string) (bool, error) {
	l, err := list(dir)
	if err != nil {
		return false, err
	}
	if l.maxMem == f.maxMem && l.maxVlog == f.maxVlog {
		return false, nil
	}
	var errs []error
	for _, fid := range l.mems {
		errs = append(errs, fsyncFile(filepath.Join(dir, fmt.Sprintf("%05d%s", fid, memExt))))
	}
	for fid := max(f.maxVlog, 0); fid < l.maxVlog; fid++ {
		errs = append(errs, fsyncFile(filepath.Join(dir, fmt.Sprintf("%06d%s", fid, vlogExt))))
	}
	errs = append(errs, fsyncFile(dir))
	if err := errors.Join(errs...); err != nil {
		return true, err
	}
	f.maxMem, f.maxVlog = l.maxMem, l.maxVlog
	return true, nil
}

// fsyncFile syncs a file or directory. A file Badger deleted meanwhile (a
// flushed WAL, a collected value log) needs no sync.
func fsyncFile(path string) error {
	fh, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	err = fh.Sync()
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	return nil
}

// dirSizes reports the space Badger's files take. WALs and value logs are
// preallocated sparse files, so their allocated size is what counts.
func dirSizes(dir string) (lsm, vlog, wal int64) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, 0
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			continue
		}
		switch filepath.Ext(e.Name()) {
		case sstExt:
			lsm += fi.Size()
		case vlogExt:
			vlog += allocated(fi)
		case memExt:
			wal += allocated(fi)
		}
	}
	return lsm, vlog, wal
}
