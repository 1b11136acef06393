package loadgen

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/sidehook/sidehook/internal/wal"
)

// DiskSync measures what one durable write costs the disk under dir: n
// records of size bytes appended to the relay's own write-ahead log, each
// made durable by its Sync, one every interval. It is the disk's share of
// a relay's ingest-to-arrival latency, which no code of the relay can go
// below.
func DiskSync(ctx context.Context, dir string, n, size int, interval time.Duration) (Summary, error) {
	if n <= 0 || size <= 0 {
		return Summary{}, fmt.Errorf("loadgen: disk sync: %d writes of %d bytes: want positive numbers", n, size)
	}
	tmp, err := os.MkdirTemp(dir, "disksync-*")
	if err != nil {
		return Summary{}, fmt.Errorf("loadgen: disk sync: %w", err)
	}
	defer os.RemoveAll(tmp)
	// One segment holds every record, the first one untimed: it creates
	// and preallocates the segment, as a relay does at its start.
	l := wal.New(tmp, int64(n+1)*(wal.HeaderSize+int64(size)))
	if err := l.Open(); err != nil {
		return Summary{}, fmt.Errorf("loadgen: disk sync: %w", err)
	}
	defer l.Close()
	rec := make([]byte, size)
	write := func() error {
		if err := l.Append(rec); err != nil {
			return err
		}
		return l.Sync()
	}
	if err := write(); err != nil {
		return Summary{}, fmt.Errorf("loadgen: disk sync: %w", err)
	}
	lat := make([]time.Duration, 0, n)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for range n {
		select {
		case <-ctx.Done():
			return Summarize(lat), ctx.Err()
		case <-tick.C:
		}
		t0 := time.Now()
		if err := write(); err != nil {
			return Summary{}, fmt.Errorf("loadgen: disk sync: %w", err)
		}
		lat = append(lat, time.Since(t0))
	}
	return Summarize(lat), nil
}
