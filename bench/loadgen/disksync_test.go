package loadgen

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestDiskSync(t *testing.T) {
	dir := t.TempDir()
	s, err := DiskSync(context.Background(), dir, 5, 2048, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if s.Count != 5 || s.P50 <= 0 || s.Max < s.P50 {
		t.Errorf("got %+v, want 5 positive latencies", s)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("left %d files behind", len(left))
	}
	for _, tt := range []struct{ n, size int }{{0, 10}, {10, 0}, {-1, -1}} {
		if _, err := DiskSync(context.Background(), dir, tt.n, tt.size, time.Millisecond); err == nil {
			t.Errorf("DiskSync(%d, %d): no error", tt.n, tt.size)
		}
	}
}
