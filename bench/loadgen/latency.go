package loadgen

import (
	"math"
	"slices"
	"time"
)

// Summary describes a set of latencies. Percentiles are exact (nearest
// rank over every sample), not estimated: a run holds at most a few million
// samples, which sort in well under a second.
type Summary struct {
	Count                    int
	Mean, P50, P90, P99, Max time.Duration
}

// Summarize sorts samples in place and summarises them; no samples give
// the zero Summary.
func Summarize(samples []time.Duration) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	slices.Sort(samples)
	var sum float64
	for _, s := range samples {
		sum += float64(s)
	}
	return Summary{
		Count: len(samples),
		Mean:  time.Duration(sum / float64(len(samples))),
		P50:   Percentile(samples, 50),
		P90:   Percentile(samples, 90),
		P99:   Percentile(samples, 99),
		Max:   samples[len(samples)-1],
	}
}

// Percentile is the nearest-rank p-th percentile (0 < p <= 100) of sorted:
// the smallest sample with at least p% of the samples at or below it.
// Out-of-range p is clamped; an empty slice gives 0.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = max(1, min(n, rank))
	return sorted[rank-1]
}
