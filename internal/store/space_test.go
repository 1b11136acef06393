package store

import (
	"errors"
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
					if full := errors.Is(refused, ErrDiskFull); full != s.wantFull || (refused != nil && !full) {
						t.Errorf("step %d: admit refused = %v, want disk full = %v", i, refused, s.wantFull)
					}
					if (err != nil) != s.wantErr {
						t.Errorf("step %d: statErr = %v, want error = %v", i, err, s.wantErr)
					}
				}
				if err := g.check(); errors.Is(err, ErrDiskFull) != s.wantCheck {
					t.Errorf("step %d: check = %v, want disk full = %v", i, err, s.wantCheck)
				}
			}
		})
	}
}
