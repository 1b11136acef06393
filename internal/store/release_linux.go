//go:build linux

package store

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// mapping is one line of /proc/self/maps that maps a file of the data dir.
type mapping struct {
	start, end uintptr
	name       string // base name: 000012.vlog, 000034.sst, 00005.mem
}

// dirMappings lists the shared mappings of the files directly inside dir.
// Private mappings are left out: they are not Badger's files' pages but
// copy-on-write copies, which paging out would only move to swap.
func dirMappings(dir string) ([]mapping, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real // the kernel prints resolved paths
	}
	data, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return nil, err
	}
	var out []mapping
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		m, ok := parseMapsLine(sc.Text(), abs)
		if ok {
			out = append(out, m)
		}
	}
	return out, sc.Err()
}

// parseMapsLine parses "start-end perms offset dev inode path" and keeps
// shared mappings of regular files directly in dir.
func parseMapsLine(line, dir string) (mapping, bool) {
	f := strings.Fields(line)
	if len(f) < 6 || len(f[1]) < 4 || f[1][3] != 's' {
		return mapping{}, false
	}
	path := strings.Join(f[5:], " ")
	if filepath.Dir(path) != dir {
		return mapping{}, false // also "(deleted)" files, anonymous and special mappings
	}
	lo, hi, ok := strings.Cut(f[0], "-")
	if !ok {
		return mapping{}, false
	}
	start, err1 := strconv.ParseUint(lo, 16, 64)
	end, err2 := strconv.ParseUint(hi, 16, 64)
	if err1 != nil || err2 != nil || end <= start {
		return mapping{}, false
	}
	return mapping{start: uintptr(start), end: uintptr(end), name: filepath.Base(path)}, true
}

// dontNeed drops the range's page-table entries. For a shared file mapping
// the pages stay in the page cache (dirty ones keep their dirty bit and are
// written back as usual) and the next access maps them again: see
// madvise(2), "repopulating the memory contents from the up-to-date contents
// of the underlying mapped file".
func dontNeed(m mapping) error {
	_, _, errno := unix.Syscall(unix.SYS_MADVISE, m.start, m.end-m.start, unix.MADV_PAGEOUT)
	if errno != 0 {
		return fmt.Errorf("madvise %s: %w", m.name, errno)
	}
	return nil
}

const releaseSupported = true

// residentFileBytes is how much file-backed (and shared) memory of the
// process is resident: the third field of /proc/self/statm, which the
// kernel keeps as a counter, so reading it is cheap enough to poll.
func residentFileBytes() (int64, error) {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return 0, fmt.Errorf("/proc/self/statm: %q: want at least 3 fields", data)
	}
	pages, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/self/statm: %w", err)
	}
	return pages * int64(os.Getpagesize()), nil
}
