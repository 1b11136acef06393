//go:build linux

package store

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// smapsBytes sums the fields named in keys ("Rss:", "Shared_Dirty:", ...)
// over the shared mappings of files in dir, from /proc/self/smaps.
func smapsBytes(t testing.TB, dir string, keys ...string) int64 {
	t.Helper()
	abs, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	inDir := false // the mapping being read is one of dir's files
	for _, line := range strings.Split(string(data), "\n") {
		if _, ok := parseMapsLine(line, abs); ok {
			inDir = true
			continue
		}
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && !strings.HasSuffix(f[0], ":"):
			inDir = false // a mapping of something else
		case inDir && len(f) >= 2 && slices.Contains(keys, f[0]):
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatalf("smaps: %q: %v", line, err)
			}
			total += kb << 10
		}
	}
	return total
}
