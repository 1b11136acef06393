package store

import (
	"errors"
	"io/fs"
	"testing"
)

func TestSpaceGuard(t *testing.T) {
	const min = 100
	type step struct {
		disk      int64 // what statfs reports
		statErr   error // what statfs fails with
		need      int64 // the group admit is asked about; 0: check only
		wantFull  bool  // admit refuses
		wantCheck bool  // check then reports the disk full
		wantErr   bool  // the statfs error comes back
		// wantRemoved: admit (when asked) refuses and check reports
		// the directory removed.
		wantRemoved bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"room above the reserve", []step{
			{disk: 1000, need: 10},
		}},
		{"a group that would dip into the reserve is refused", []step{
			{disk: 150, need: 60, wantFull: true, wantCheck: true},
		}},
		{"after a refusal, check says full until the group fits", []step{
			{disk: 150, need: 60, wantFull: true, wantCheck: true},
			{disk: 150, wantCheck: true},
			{disk: 160},
		}},
		{"a smaller group passes, and clears the refusal", []step{
			{disk: 150, need: 60, wantFull: true, wantCheck: true},
			{disk: 150, need: 40},
			{disk: 110},
		}},
		{"below the reserve, check says full with no refusal", []step{
			{disk: 99, wantCheck: true},
		}},
		{"a failed reading admits and is reported", []step{
			{disk: 0, statErr: errors.New("EIO"), need: 10, wantErr: true},
		}},
		{"a removed directory refuses every write", []step{
			{disk: 1000, need: 10},
			{statErr: fs.ErrNotExist, need: 10, wantRemoved: true},
			{statErr: fs.ErrNotExist, wantRemoved: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var disk int64
			var statErr error
			g := newSpaceGuard("dir", min)
			g.statfs = func(string) (int64, bool, error) { return disk, statErr == nil, statErr }
			for i, s := range tt.steps {
				disk, statErr = s.disk, s.statErr
				if s.need > 0 {
					refused, err := g.admit(s.need)
					full, removed := errors.Is(refused, ErrDiskFull), errors.Is(refused, ErrDirRemoved)
					if full != s.wantFull || removed != s.wantRemoved || (refused != nil && !full && !removed) {
						t.Errorf("step %d: admit refused = %v, want disk full = %v, removed = %v", i, refused, s.wantFull, s.wantRemoved)
					}
					if (err != nil) != s.wantErr {
						t.Errorf("step %d: statErr = %v, want error = %v", i, err, s.wantErr)
					}
				}
				if err := g.check(); errors.Is(err, ErrDiskFull) != s.wantCheck || errors.Is(err, ErrDirRemoved) != s.wantRemoved {
					t.Errorf("step %d: check = %v, want disk full = %v, removed = %v", i, err, s.wantCheck, s.wantRemoved)
				}
			}
		})
	}
}
