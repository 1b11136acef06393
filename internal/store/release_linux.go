//go:build linux

package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

const releaseSupported = true

// releaseMappings asks the kernel to reclaim the pages of every shared
// mapping of a file directly in dir (madvise MADV_PAGEOUT): they leave our
// page tables now; dirty ones stay dirty in the page cache until written
// back; the next access faults them in again. It takes no lock against
// Badger: should Badger unmap a file between the read of /proc/self/maps
// and the madvise, and the range be reused meanwhile, PAGEOUT at worst
// pages out memory that is in use (it never discards data, unlike
// MADV_DONTNEED), and a range no longer mapped is an error skipped.
func releaseMappings(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real // the kernel prints resolved paths
	}
	data, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return err
	}
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		start, end, ok := parseMapsLine(sc.Text(), abs)
		if !ok {
			continue
		}
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, start, end-start, unix.MADV_PAGEOUT); errno != 0 && errno != unix.ENOMEM {
			errs = append(errs, fmt.Errorf("madvise: %w", errno))
		}
	}
	return errors.Join(append(errs, sc.Err())...)
}

// parseMapsLine parses "start-end perms offset dev inode path" and keeps
// shared mappings of files directly in dir. Private mappings are not
// Badger's files' pages but copies, which paging out would move to swap.
func parseMapsLine(line, dir string) (start, end uintptr, ok bool) {
	f := strings.Fields(line)
	if len(f) < 6 || len(f[1]) < 4 || f[1][3] != 's' {
		return 0, 0, false
	}
	path := strings.Join(f[5:], " ")
	if strings.HasSuffix(path, " (deleted)") || filepath.Dir(path) != dir {
		return 0, 0, false // also anonymous and special mappings
	}
	lo, hi, found := strings.Cut(f[0], "-")
	if !found {
		return 0, 0, false
	}
	s, err1 := strconv.ParseUint(lo, 16, 64)
	e, err2 := strconv.ParseUint(hi, 16, 64)
	if err1 != nil || err2 != nil || e <= s {
		return 0, 0, false
	}
	return uintptr(s), uintptr(e), true
}

// residentFileBytes is how much file-backed (and shared) memory of the
// process is resident: the third field of /proc/self/statm, a counter the
// kernel keeps, cheap enough to poll.
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
