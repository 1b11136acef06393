package relay_test

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
)

func TestOutcomes(t *testing.T) {
	tests := []struct {
		name     string
		answers  []int // per attempt; the last repeats. 0 breaks the connection, -1 is too slow
		status   string
		attempts int
	}{
		{"OK", []int{200}, "delivered", 1},
		{"Accepted", []int{204}, "delivered", 1},
		{"RetryThenOK", []int{500, 502, 200}, "delivered", 3},
		{"RequestTimeoutRetried", []int{408, 200}, "delivered", 2},
		{"TooManyRequestsRetried", []int{429, 200}, "delivered", 2},
		{"ConnectionErrorRetried", []int{0, 200}, "delivered", 2},
		{"TimeoutRetried", []int{-1, 200}, "delivered", 2},
		{"ServerErrorsDead", []int{503}, "dead", 4},
		{"ClientErrorDead", []int{400}, "dead", 1},
		{"NotFoundDead", []int{404}, "dead", 1},
		{"GoneDead", []int{410}, "dead", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rcv := newSink(t, nil, func(r *http.Request, n int) int {
				s := tt.answers[min(n, len(tt.answers)-1)]
				if s == -1 {
					// Past the endpoint's timeout: a second, so that a
					// quick answer on a machine loaded with -race tests
					// is never one (it was 100 ms, and an "OK" timed out).
					time.Sleep(2 * time.Second)
					return 200
				}
				return s
			})
			r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL(), Timeout: "1s"}), relay.Options{})
			ans := ingest(t, r, `{"type":"payment","amount":"1.00"}`, nil)
			d := waitDelivery(t, r, ans.Deliveries[0].ID, tt.status, 10*time.Second)
			if len(d.Attempts) != tt.attempts {
				t.Errorf("attempts: got %d, want %d (%+v)", len(d.Attempts), tt.attempts, d.Attempts)
			}
			if d.NextAttemptAt != nil {
				t.Errorf("next_attempt_at: got %v, want null once final", d.NextAttemptAt)
			}
			for i, a := range d.Attempts {
				if a.N != i+1 {
					t.Errorf("attempt %d: n = %d, want %d", i, a.N, i+1)
				}
			}
			if tt.name == "GoneDead" {
				var ep struct {
					Enabled        bool   `json:"enabled"`
					DisabledReason string `json:"disabled_reason"`
				}
				call(t, "GET", r.URL()+"/v1/endpoints/crm", apiKey, nil, nil).decode(t, &ep)
				if ep.Enabled || ep.DisabledReason == "" {
					t.Errorf("endpoint after 410: got %+v, want disabled with a reason", ep)
				}
				// A disabled endpoint gets no new deliveries.
				if ans := ingest(t, r, `{"type":"payment"}`, nil); len(ans.Deliveries) != 0 {
					t.Errorf("deliveries to a disabled endpoint: got %+v, want none", ans.Deliveries)
				}
			}
		})
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	var n atomic.Int32
	rcv := newSink(t, nil, func(r *http.Request, _ int) int {
		if n.Add(1) == 1 {
			return 429
		}
		return 200
	})
	srv := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Load() == 0 {
			w.Header().Set("Retry-After", "3600")
		}
		rcv.serve(w, r)
	})
	rcv.handle(srv)
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL()}), relay.Options{MaxRetryAfter: 300 * time.Millisecond})
	ans := ingest(t, r, `{"type":"payment"}`, nil)
	var d struct {
		Attempts []struct {
			At time.Time `json:"at"`
		} `json:"attempts"`
	}
	waitDelivery(t, r, ans.Deliveries[0].ID, "delivered", 5*time.Second)
	call(t, "GET", r.URL()+"/v1/deliveries/"+ans.Deliveries[0].ID, apiKey, nil, nil).decode(t, &d)
	if len(d.Attempts) != 2 {
		t.Fatalf("attempts: got %d, want 2", len(d.Attempts))
	}
	// The schedule says 10ms; Retry-After says an hour, bounded to 300ms.
	if gap := d.Attempts[1].At.Sub(d.Attempts[0].At); gap < 300*time.Millisecond || gap > 3*time.Second {
		t.Errorf("gap between attempts: got %s, want the bounded Retry-After of 300ms", gap)
	}
}

// The default seven-step schedule (about 33 hours) runs in about a second
// on a clock 100000 times faster than real time.
func TestDefaultScheduleFastClock(t *testing.T) {
	rcv := newSink(t, nil, func(*http.Request, int) int { return 500 })
	f := config.File{Listen: "127.0.0.1:0", Data: t.TempDir(),
		Organisations: []config.RawOrg{{ID: "demo", APIKeys: []string{apiKey}, Endpoints: []config.RawEndpoint{{ID: "crm", URL: rcv.URL()}}}}}
	cfg, err := f.Validate(nil)
	if err != nil {
		t.Fatal(err)
	}
	// No purge: on this clock the 72h retention passes in under 3s of a
	// busy machine, and would take the dead delivery before it is read.
	r := startRelay(t, cfg, relay.Options{Clock: relay.NewScaledClock(100_000), PurgeInterval: -1})
	ans := ingest(t, r, `{"type":"payment"}`, nil)
	waitDelivery(t, r, ans.Deliveries[0].ID, "dead", 20*time.Second)
	var d struct {
		Attempts []struct {
			At time.Time `json:"at"`
		} `json:"attempts"`
	}
	call(t, "GET", r.URL()+"/v1/deliveries/"+ans.Deliveries[0].ID, apiKey, nil, nil).decode(t, &d)
	sched := config.DefaultSchedule()
	if len(d.Attempts) != len(sched)+1 {
		t.Fatalf("attempts: got %d, want %d", len(d.Attempts), len(sched)+1)
	}
	for i, step := range sched {
		gap := d.Attempts[i+1].At.Sub(d.Attempts[i].At)
		// Never earlier than the step less 20% jitter. Later is scheduling
		// noise (1ms of real time is 100s here), bounded loosely so a
		// schedule that is not followed still shows.
		if lo, hi := time.Duration(float64(step)*0.8), 3*step+2*time.Hour; gap < lo || gap > hi {
			t.Errorf("wait after attempt %d: got %s, want %s -20%% (at most %s)", i+1, gap, step, hi)
		}
	}
}

func TestOrderedFIFO(t *testing.T) {
	rcv := newSink(t, nil, func(r *http.Request, n int) int {
		if n < 2 {
			return 500 // the first event fails twice
		}
		return 200
	})
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL(), Ordered: true}), relay.Options{})
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, ingest(t, r, fmt.Sprintf(`{"type":"payment","n":"%d"}`, i), nil).ID)
	}
	reqs := rcv.wait(t, 10*time.Second, func(c []captured) bool { return len(delivered(c)) == 5 })
	var order []string
	for _, c := range reqs {
		order = append(order, c.Header.Get("webhook-id"))
	}
	want := append([]string{ids[0], ids[0]}, ids...)
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Errorf("arrival order:\n got %v\nwant %v", order, want)
	}
}

func TestMaxInFlight(t *testing.T) {
	var cur, peak atomic.Int32
	rcv := newSink(t, nil, func(*http.Request, int) int { return 200 })
	rcv.handle(func(w http.ResponseWriter, r *http.Request) {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		cur.Add(-1)
		rcv.serve(w, r)
	})
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL(), MaxInFlight: new(3)}), relay.Options{})
	for i := 0; i < 20; i++ {
		ingest(t, r, `{"type":"payment"}`, nil)
	}
	rcv.wait(t, 10*time.Second, func(c []captured) bool { return len(delivered(c)) == 20 })
	if p := peak.Load(); p > 3 || p < 2 {
		t.Errorf("peak concurrency: got %d, want at most max_in_flight 3 (and some parallelism)", p)
	}
}

func TestRateLimit(t *testing.T) {
	rcv := newSink(t, nil, nil)
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL(), Rate: "20/s"}), relay.Options{})
	start := time.Now()
	for i := 0; i < 30; i++ {
		ingest(t, r, `{"type":"payment"}`, nil)
	}
	rcv.wait(t, 10*time.Second, func(c []captured) bool { return len(delivered(c)) == 30 })
	// A burst of 20, then 10 more at 20/s: at least about half a second.
	if el := time.Since(start); el < 400*time.Millisecond {
		t.Errorf("30 deliveries at 20/s took %s, want at least ~0.5s", el)
	}
}
