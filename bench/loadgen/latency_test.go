package loadgen_test

import (
	"testing"
	"time"

	"github.com/sidehook/sidehook/bench/loadgen"
)

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"Empty", nil, 50, 0},
		{"One", []time.Duration{7}, 99, 7},
		{"P50", hundred, 50, 50 * time.Millisecond},
		{"P90", hundred, 90, 90 * time.Millisecond},
		{"P99", hundred, 99, 99 * time.Millisecond},
		{"P100", hundred, 100, 100 * time.Millisecond},
		{"NearestRankRoundsUp", []time.Duration{1, 2, 3}, 50, 2},
		{"BelowZeroClamped", hundred, -5, time.Millisecond},
		{"AboveHundredClamped", hundred, 250, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := loadgen.Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	t.Run("Empty", func(t *testing.T) {
		if got := loadgen.Summarize(nil); got != (loadgen.Summary{}) {
			t.Errorf("got %+v, want zero", got)
		}
	})
	t.Run("Unsorted", func(t *testing.T) {
		samples := []time.Duration{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
		got := loadgen.Summarize(samples)
		want := loadgen.Summary{Count: 10, Mean: 5, P50: 5, P90: 9, P99: 10, Max: 10}
		if got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
}
