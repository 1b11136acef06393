package relay_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
)

// A 429 queue_full says why in numbers that add up: an event going to two
// endpoints with 2 of max_queue 3 waiting was refused as "has 2
// deliveries waiting (max_queue 3)", which reads as a relay refusing below
// its own limit.
func TestQueueFullSaysWhatTheEventWouldAdd(t *testing.T) {
	rcv := newSink(t, nil, func(*http.Request, int) int { return 500 })
	retry := &config.RawRetry{Schedule: []string{"1h"}}
	for _, tc := range []struct {
		name     string
		eps      []config.RawEndpoint
		accepted int
		want     []string
	}{
		{"one endpoint", []config.RawEndpoint{{ID: "a", URL: rcv.URL(), Retry: retry}}, 3,
			[]string{"3 deliveries waiting", "this event would add 1", "max_queue 3"}},
		{"two endpoints", []config.RawEndpoint{{ID: "a", URL: rcv.URL(), Retry: retry}, {ID: "b", URL: rcv.URL(), Retry: retry}}, 1,
			[]string{"2 deliveries waiting", "this event would add 2", "max_queue 3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := orgConfig(t, tc.eps...)
			cfg.Limits.MaxQueue = 3
			r := startRelay(t, cfg, relay.Options{})
			for range tc.accepted {
				ingest(t, r, `{"type":"payment"}`, nil)
			}
			a := call(t, "POST", r.URL()+"/v1/events", apiKey, []byte(`{"type":"payment"}`), nil)
			var e struct{ Error, Reason string }
			a.decode(t, &e)
			if a.Status != http.StatusTooManyRequests || e.Error != "queue_full" {
				t.Fatalf("got %d %s, want 429 queue_full", a.Status, a.Body)
			}
			for _, w := range tc.want {
				if !strings.Contains(e.Reason, w) {
					t.Errorf("reason %q lacks %q", e.Reason, w)
				}
			}
		})
	}
}
