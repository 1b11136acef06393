package tunnel

import (
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestInspectorPageOrder: a forward is recorded when it ends, but listed
// and paged by when it began (its id): one that began before another still
// in flight, and ended after it, is paged in its place, not skipped by a
// cursor already past it.
func TestInspectorPageOrder(t *testing.T) {
	in := newInspector(nil, zerolog.Nop())
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	// Ended in this order; began at t0 plus these milliseconds.
	began := []int{2, 0, 3, 1}
	byStart := map[int]string{}
	for _, ms := range began {
		r := in.add(&Message{Method: "POST"}, forwarded{start: t0.Add(time.Duration(ms) * time.Millisecond)}, "")
		byStart[ms] = r.ID
	}
	tests := []struct {
		name     string
		cursor   string
		n        int
		want     []int // starts, newest first
		wantNext string
	}{
		{"Newest", "", 2, []int{3, 2}, byStart[2]},
		{"Next", byStart[2], 2, []int{1, 0}, ""},
		{"All", "", 10, []int{3, 2, 1, 0}, ""},
		{"AfterOne", byStart[3], 1, []int{2}, byStart[2]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, next := in.page(tt.cursor, tt.n)
			var got []string
			for _, r := range recs {
				got = append(got, r.ID)
			}
			var want []string
			for _, ms := range tt.want {
				want = append(want, byStart[ms])
			}
			if len(got) != len(want) || next != tt.wantNext {
				t.Fatalf("got %v next %q, want %v next %q", got, next, want, tt.wantNext)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("got %v, want %v (newest first by start)", got, want)
					break
				}
			}
		})
	}
}
