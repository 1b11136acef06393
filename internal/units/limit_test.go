package units_test

import (
	"testing"

	"github.com/sidehook/sidehook/internal/units"
)

func TestStoreLimitCheck(t *testing.T) {
	l := units.StoreLimit{Store: "the Badger store", MaxBody: 63 << 20, Why: "a value log file of 64 MiB"}
	tests := []struct {
		name    string
		lim     units.StoreLimit
		maxBody int64
		want    string // "" for no error
	}{
		{"Below", l, 1 << 20, ""},
		{"AtTheLimit", l, 63 << 20, ""},
		{"Above", l, 100 << 20, "100 MiB is more than the Badger store holds of one event: at most 63 MiB (a value log file of 64 MiB)"},
		{"NoWhy", units.StoreLimit{Store: "the test store", MaxBody: 1024}, 2048, "2.0 KiB is more than the test store holds of one event: at most 1.0 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.lim.Check(tt.maxBody, "event")
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Check(%d): got %q, want %q", tt.maxBody, got, tt.want)
			}
		})
	}
}
