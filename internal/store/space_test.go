package store

import (
	"errors"
	"testing"
	"time"
)

func TestSpaceGuard(t *testing.T) {
	const min = 100
	type step struct {
		advance  time.Duration
		disk     int64 // what statfs reports from this step on
		statErr  error // what statfs fails with at this step
		need     int64
		wantRead bool // statfs is called
		wantFull bool
		wantErr  bool // statErr comes back
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"first group reads", []step{
			{disk: 1000, need: 10, wantRead: true},
		}},
		{"far from the reserve, trusts the reading", []step{
			{disk: 1000, need: 10, wantRead: true},
			{advance: 10 * time.Millisecond, need: 10},
			{advance: 10 * time.Millisecond, disk: 150, need: 10}, // others wrote: not seen yet
		}},
		{"reads again after spaceRecheck", []step{
			{disk: 1000, need: 10, wantRead: true},
			{advance: spaceRecheck, disk: 150, need: 10, wantRead: true},
		}},
		{"near the reserve, reads every group", []step{
			{disk: 1000, need: 10, wantRead: true},
			{need: 850, wantRead: true}, // 990-850 < 2*min: reads 1000, 150 left
			{need: 10, wantRead: true},  // 150-10 < 2*min
		}},
		{"counts what it let through", []step{
			{disk: 1000, need: 300, wantRead: true},
			{need: 300},                 // 700-300 = 400 >= 2*min
			{need: 300, wantRead: true}, // 400-300 < 2*min: reads 1000
		}},
		{"refuses below the reserve, admits once space is back", []step{
			{disk: 150, need: 60, wantRead: true, wantFull: true},
			{need: 60, wantRead: true, wantFull: true},
			{disk: 10_000, need: 60, wantRead: true},
		}},
		{"a failed reading admits and is reported", []step{
			{disk: 1000, statErr: errors.New("EIO"), need: 10, wantRead: true, wantErr: true},
			{need: 10, wantRead: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Unix(1_700_000_000, 0)
			var disk int64
			var statErr error
			reads := 0
			g := newSpaceGuard("dir", min)
			g.now = func() time.Time { return now }
			g.statfs = func(dir string) (int64, bool, error) {
				reads++
				return disk, true, statErr
			}
			for i, s := range tt.steps {
				now = now.Add(s.advance)
				if s.disk != 0 {
					disk = s.disk
				}
				statErr = s.statErr
				before := reads
				refused, gotErr := g.admit(s.need)
				if read := reads > before; read != s.wantRead {
					t.Errorf("step %d: statfs called = %v, want %v", i, read, s.wantRead)
				}
				if full := errors.Is(refused, ErrDiskFull); full != s.wantFull || (refused != nil && !full) {
					t.Errorf("step %d: refused = %v, want disk full = %v", i, refused, s.wantFull)
				}
				if (gotErr != nil) != s.wantErr {
					t.Errorf("step %d: statErr = %v, want error = %v", i, gotErr, s.wantErr)
				}
			}
		})
	}
}
