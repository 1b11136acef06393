package loadgen

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// DiskSync measures what one durable write costs the disk under dir: n
// writes of size bytes, each followed by its sync (fdatasync where there
// is one), into a file preallocated as a write-ahead log's segment is, one
// every interval. It is the disk's share of a relay's ingest-to-arrival
// latency, which no code of the relay can go below.
func DiskSync(ctx context.Context, dir string, n, size int, interval time.Duration) (Summary, error) {
	if n <= 0 || size <= 0 {
		return Summary{}, fmt.Errorf("loadgen: disk sync: %d writes of %d bytes: want positive numbers", n, size)
	}
	f, err := os.CreateTemp(dir, "disksync-*")
	if err != nil {
		return Summary{}, fmt.Errorf("loadgen: disk sync: %w", err)
	}
	defer os.Remove(filepath.Clean(f.Name()))
	defer f.Close()
	if err := preallocate(f, int64(n*size)); err != nil {
		return Summary{}, fmt.Errorf("loadgen: disk sync: preallocate: %w", err)
	}
	if err := f.Sync(); err != nil {
		return Summary{}, fmt.Errorf("loadgen: disk sync: %w", err)
	}
	buf := make([]byte, size)
	lat := make([]time.Duration, 0, n)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := range n {
		select {
		case <-ctx.Done():
			return Summarize(lat), ctx.Err()
		case <-tick.C:
		}
		t0 := time.Now()
		if _, err := f.WriteAt(buf, int64(i*size)); err != nil {
			return Summary{}, fmt.Errorf("loadgen: disk sync: %w", err)
		}
		if err := datasync(f); err != nil {
			return Summary{}, fmt.Errorf("loadgen: disk sync: %w", err)
		}
		lat = append(lat, time.Since(t0))
	}
	return Summarize(lat), nil
}
