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

// Badger's file names: memtable logs are %05d.mem, value logs %06d.vlog,
// each numbered one above the last.
const (
	memExt  = ".mem"
	vlogExt = ".vlog"
	sstExt  = ".sst"
)

// logFiles covers what Badger's Sync leaves out with SyncWrites off (v4.9):
// Sync syncs the current memtable log and value log file only, and Badger
// syncs neither the memtable log it leaves when a memtable fills (its tail
// is durable only once the memtable is flushed to a table, in the
// background) nor the directory entries of the files it creates. A group
// commit that made Badger move to a new log must sync those too.
type logFiles struct {
	dir       string
	mem, vlog int // the newest memtable log and value log numbers seen
}

// rotated reports whether Badger has created a memtable log or a value log
// file since the last syncAll: one stat each, for every group commit.
func (l *logFiles) rotated() bool {
	return exists(filepath.Join(l.dir, fmt.Sprintf("%05d%s", l.mem+1, memExt))) ||
		exists(filepath.Join(l.dir, fmt.Sprintf("%06d%s", l.vlog+1, vlogExt)))
}

// syncAll fsyncs every memtable log and the directory, and notes the newest
// logs. A value log file is synced by Badger when it moves to the next.
func (l *logFiles) syncAll() error {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		switch ext := filepath.Ext(name); ext {
		case memExt:
			l.mem = max(l.mem, fileNumber(name, ext))
			errs = append(errs, fsyncFile(filepath.Join(l.dir, name)))
		case vlogExt:
			l.vlog = max(l.vlog, fileNumber(name, ext))
		}
	}
	errs = append(errs, fsyncFile(l.dir))
	return errors.Join(errs...)
}

func fileNumber(name, ext string) int {
	n, _ := strconv.Atoi(strings.TrimSuffix(name, ext)) // not Badger's: ignored
	return n
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// makeDir creates dir and its missing parents, and syncs each new entry in
// its parent, so that a new data directory survives a power loss.
func makeDir(dir string) error {
	dir = filepath.Clean(dir)
	var missing []string // deepest first
	for d := dir; ; d = filepath.Dir(d) {
		_, err := os.Stat(d)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := fsyncFile(filepath.Dir(missing[i])); err != nil {
			return err
		}
	}
	return nil
}

// fsyncFile syncs a file or directory. A file Badger deleted meanwhile (a
// flushed memtable's log) needs no sync.
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

// dirSizes reports the space Badger's files take. Its logs are preallocated
// sparse files, so their allocated size is what counts.
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
