package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Badger's file names: memtable WALs are %05d.mem, value logs %06d.vlog.
const (
	memExt  = ".mem"
	vlogExt = ".vlog"
	sstExt  = ".sst"
)

// syncBadgerFiles fsyncs every memtable WAL and value log file in dir, and
// dir itself. db.Sync msyncs only the active memtable WAL and value log:
// with SyncWrites off, Badger (v4.9) never syncs a memtable WAL when it
// rotates to a new memtable (its tail is durable only once the memtable is
// flushed to an L0 table, later and in the background), the old value log
// file only when it has to truncate it, and no new file's directory entry.
// A checkpoint may drop the WAL segments only once all of that is on disk.
func syncBadgerFiles(dir string) error {
	paths, err := badgerLogs(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, path := range paths {
		errs = append(errs, fsyncFile(path))
	}
	errs = append(errs, fsyncFile(dir))
	return errors.Join(errs...)
}

// badgerLogs lists the paths of Badger's memtable WALs and value logs in
// dir: the files it writes through mappings.
func badgerLogs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var paths []string
	for _, e := range entries {
		if name := e.Name(); strings.HasSuffix(name, memExt) || strings.HasSuffix(name, vlogExt) {
			paths = append(paths, filepath.Join(dir, name))
		}
	}
	return paths, nil
}

// writeBackChunk is how much of a file writeBack writes back at a time.
const writeBackChunk = 1 << 20

// writeBack writes back the dirty pages of Badger's value log and memtable
// files, writeBackChunk at a time, waiting for each chunk. Badger writes
// them through their mappings, and the kernel writes dirty pages back only
// once they are 30 s old, so a checkpoint's syncs wrote the 40-60 MiB
// since the last one at once; a WAL append's fdatasync queued behind that
// on the disk, and stalled every waiting request for 50-120 ms every few
// seconds under load. In chunks, an append waits for one chunk at most.
// Errors only cost that: the syncs after it write what it could not, and
// report failures.
func (s *Store) writeBack() {
	paths, _ := badgerLogs(s.opts.Dir) // unlisted: the syncs write it all
	for _, path := range paths {
		writeBackFile(path)
	}
}

// writeBackFile writes back a file's dirty pages a chunk at a time. A file
// Badger deleted meanwhile has nothing to write.
func writeBackFile(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return
	}
	for off := int64(0); off < fi.Size(); off += writeBackChunk {
		if writeBackRange(f, off, writeBackChunk) != nil {
			return
		}
	}
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

// dirSizes reports the space the store's files take. Badger's WALs and
// value logs and our WAL segments are preallocated, so their allocated size
// is what counts.
func dirSizes(dir string) (lsm, vlog, wal, log int64) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, 0, 0
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			continue
		}
		switch name := e.Name(); {
		case strings.HasPrefix(name, walPrefix):
			log += allocated(fi)
		case filepath.Ext(name) == sstExt:
			lsm += fi.Size()
		case filepath.Ext(name) == vlogExt:
			vlog += allocated(fi)
		case filepath.Ext(name) == memExt:
			wal += allocated(fi)
		}
	}
	return lsm, vlog, wal, log
}
