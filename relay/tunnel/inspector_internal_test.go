package tunnel

import (
	"encoding/json"
	"net/http"
	"strings"
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

// TestInspectorKeepsTheJustEnded: at the limit, a forward that began
// before every record kept and ended last is kept, and the oldest other
// record goes: the request the user just made shows.
func TestInspectorKeepsTheJustEnded(t *testing.T) {
	in := newInspector(nil, zerolog.Nop())
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := 1; i <= inspectKeep; i++ {
		in.add(&Message{Method: "POST"}, forwarded{start: t0.Add(time.Duration(i) * time.Millisecond)}, "")
	}
	oldest := in.records[0].ID
	slow := in.add(&Message{Method: "POST"}, forwarded{start: t0}, "")
	if got := len(in.records); got != inspectKeep {
		t.Errorf("records: got %d, want %d", got, inspectKeep)
	}
	if in.get(slow.ID) == nil {
		t.Errorf("the forward that just ended (began first) is gone, want it kept")
	}
	if in.get(oldest) != nil {
		t.Errorf("the oldest other record %s is kept, want it gone", oldest)
	}
	if recs, _ := in.page("", inspectKeep); len(recs) != inspectKeep || recs[len(recs)-1].ID != slow.ID {
		t.Errorf("page: got %d records, want %d ending with the slow forward", len(recs), inspectKeep)
	}
}

// TestInspectorRecordsReplays: the inspector's record of a replay (the
// relay's, named by sidehook-replay-of, or its own) says what it repeats,
// and neither a replay nor an endpoint test shows the number of the
// delivery's next attempt the relay sends with it, as the tunnel's lines
// do not (TestReplayLineNoAttempt).
func TestInspectorRecordsReplays(t *testing.T) {
	tests := []struct {
		name         string
		header       http.Header
		replayOf     string // the inspector's own record
		wantReplayOf string
		wantAttempt  int
	}{
		{"Delivery", http.Header{}, "", "", 3},
		{"RelayReplay", http.Header{"Sidehook-Replay-Of": {"dlv_1"}}, "", "dlv_1", 0},
		{"InspectorReplay", http.Header{"Sidehook-Replay-Of": {"fwd_1"}}, "fwd_1", "fwd_1", 0},
		{"Test", http.Header{"Sidehook-Test": {"true"}}, "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := newInspector(nil, zerolog.Nop())
			m := &Message{Type: TypeDelivery, DeliveryID: "dlv_1", Attempt: 3, Method: "POST", Path: "/webhooks", Headers: tt.header}
			v := in.add(m, forwarded{start: time.Now(), status: 200}, tt.replayOf).view(false)
			if v.ReplayOf != tt.wantReplayOf || v.Attempt != tt.wantAttempt {
				t.Errorf("got replay_of %q attempt %d, want %q and %d", v.ReplayOf, v.Attempt, tt.wantReplayOf, tt.wantAttempt)
			}
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if has := strings.Contains(string(b), `"attempt"`); has != (tt.wantAttempt != 0) {
				t.Errorf("got %s, want an attempt field %v", b, tt.wantAttempt != 0)
			}
		})
	}
}
