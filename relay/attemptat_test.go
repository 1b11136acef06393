package relay_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
)

// An attempt's at is when it was sent, as a receiver's own log shows it
// arriving, not when its answer came: with a slow endpoint (or one that
// times out after 15 s) the two are far apart, and an operator matching
// the relay's record against the receiver's has only at to go by.
func TestAttemptAtIsWhenSent(t *testing.T) {
	const delay = 400 * time.Millisecond
	for _, tc := range []struct {
		name   string
		answer []int // per attempt
	}{
		{"delivered", []int{200}},
		{"failed then delivered", []int{500, 200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var arrived []time.Time
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				arrived = append(arrived, time.Now())
				n := len(arrived)
				mu.Unlock()
				select {
				case <-time.After(delay):
				case <-r.Context().Done():
				}
				w.WriteHeader(tc.answer[min(n, len(tc.answer))-1])
			}))
			t.Cleanup(srv.Close)
			r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "slow", URL: srv.URL, Events: []string{"*"}}), relay.Options{})
			ans := ingest(t, r, `{"type":"payment"}`, nil)
			waitDelivery(t, r, ans.Deliveries[0].ID, relay.StatusDelivered, 10*time.Second)

			var d struct {
				Attempts []struct {
					At        time.Time `json:"at"`
					LatencyMS float64   `json:"latency_ms"`
				} `json:"attempts"`
			}
			call(t, "GET", r.URL()+"/v1/deliveries/"+ans.Deliveries[0].ID, apiKey, nil, nil).decode(t, &d)
			mu.Lock()
			defer mu.Unlock()
			if len(d.Attempts) != len(tc.answer) || len(arrived) != len(tc.answer) {
				t.Fatalf("got %d attempts recorded, %d requests, want %d", len(d.Attempts), len(arrived), len(tc.answer))
			}
			for i, a := range d.Attempts {
				if a.At.After(arrived[i]) {
					t.Errorf("attempt %d: at %s, after the request arrived at %s (latency %.0fms): at is when the answer came",
						i+1, a.At.Format(time.RFC3339Nano), arrived[i].Format(time.RFC3339Nano), a.LatencyMS)
				}
				if a.LatencyMS < float64(delay/time.Millisecond) {
					t.Errorf("attempt %d: latency %.0fms, want at least %s", i+1, a.LatencyMS, delay)
				}
			}
		})
	}
}
