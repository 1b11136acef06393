package relay_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
)

// hangingSink is an endpoint that does not answer: each request waits
// until the relay gives up on it (the endpoint's timeout) or the test ends.
func hangingSink(tb testing.TB) *sink {
	tb.Helper()
	s := newSink(tb, nil, nil)
	done := make(chan struct{})
	tb.Cleanup(func() { close(done) }) // before the sink closes
	s.handle(func(_ http.ResponseWriter, r *http.Request) {
		// Read to the end, so the server sees the relay hang up.
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-done:
		}
	})
	return s
}

// TestSyncCallsAnswer: the calls that wait on endpoints one after another
// answer even when that takes longer than the server's WriteTimeout, which
// would otherwise close the connection with no answer.
func TestSyncCallsAnswer(t *testing.T) {
	// Each wait is longer than the server's write timeout, and the answer
	// has the write timeout to be written once the waits end: two
	// seconds, as a machine loaded with other tests under -race took
	// over half a second.
	const timeout = "2500ms"
	hang := hangingSink(t)
	ok := newSink(t, nil, nil)
	cfg := orgConfig(t,
		config.RawEndpoint{ID: "slow", URL: hang.URL(), Events: []string{"payment"}, Timeout: timeout},
		config.RawEndpoint{ID: "values", URL: hang.URL(), Events: []string{"custom_value_request"}, Timeout: timeout},
		config.RawEndpoint{ID: "crm", URL: ok.URL(), Events: []string{"payment"}, Timeout: timeout},
	)
	r := startRelay(t, cfg, relay.Options{WriteTimeout: 2 * time.Second})
	var crm []string
	for i := 0; i < 2; i++ {
		for _, d := range ingest(t, r, fmt.Sprintf(`{"type":"payment","n":"%d"}`, i), nil).Deliveries {
			if d.Endpoint == "crm" {
				crm = append(crm, d.ID)
			}
		}
	}
	for _, id := range crm {
		waitDelivery(t, r, id, "delivered", 5*time.Second)
	}
	ids := `"` + strings.Join(crm, `","`) + `"`
	tests := []struct {
		name, path, body string
		header           map[string]string
		status           int
		want             string // in the answer
	}{
		{"ConnectionTest", "/v1/endpoints/slow/test", `{"event":"payment"}`, nil, 200, `"error":"timeout`},
		{"ReplayTo", "/v1/replay", `{"filter":{"ids":[` + ids + `]},"to":"` + hang.URL() + `/x"}`, nil, 200, `"replayed":0`},
		{"DashboardReplayTo", "/_sidehook/replay", `{"ids":[` + ids + `],"to":"` + hang.URL() + `/x"}`, jsonType, 502, `"replayed":0`},
		{"CustomValues", "/v1/custom-values", `{"fields":["fullname"]}`, nil, 502, "timeout"},
		{"Render", "/v1/render", `{"template":"<<fullname>>"}`, nil, 502, "timeout"},
		{"InboundGET", "/in/demo?fields=fullname", "", nil, 502, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			method, key := "POST", apiKey
			var body []byte
			if tt.body == "" {
				method, key = "GET", ""
			} else {
				body = []byte(tt.body)
			}
			a := call(t, method, r.URL()+tt.path, key, body, tt.header)
			if a.Status != tt.status || !strings.Contains(string(a.Body), tt.want) {
				t.Errorf("got %d %s, want %d with %s", a.Status, a.Body, tt.status, tt.want)
			}
		})
	}
}

// TestSyncCallsBounded: a call whose requests could wait longer than its
// bound in all starts none that could end past it, and says which did not
// run, so that it answers.
func TestSyncCallsBounded(t *testing.T) {
	hang := hangingSink(t)
	cfg := orgConfig(t, config.RawEndpoint{ID: "slow", URL: hang.URL(), Events: []string{"payment"}, Timeout: "750ms"})
	r := startRelay(t, cfg, relay.Options{WriteTimeout: 500 * time.Millisecond})
	// Room for two requests, not three: each waits its whole timeout.
	relay.SetMaxSyncWork(r, 1800*time.Millisecond)

	t.Run("ConnectionTest", func(t *testing.T) {
		a := call(t, "POST", r.URL()+"/v1/endpoints/slow/test", apiKey, []byte(`{}`), nil)
		var ans struct{ Results []relay.TestResult }
		a.decode(t, &ans)
		if a.Status != 200 || len(ans.Results) != 5 {
			t.Fatalf("got %d %s, want 200 with 5 results", a.Status, a.Body)
		}
		ran := 0
		for i, res := range ans.Results {
			notRun := strings.HasPrefix(res.Error, "not run:")
			if !notRun && ran != i {
				t.Errorf("result %d ran after one that did not: %+v", i, ans.Results)
			}
			if !notRun {
				ran++
			}
		}
		if ran == 0 || ran > 2 {
			t.Errorf("%d tests ran, want 1 or 2 within the bound: %+v", ran, ans.Results)
		}
	})
	t.Run("ReplayTo", func(t *testing.T) {
		var ids []string
		for i := 0; i < 3; i++ {
			ids = append(ids, ingest(t, r, fmt.Sprintf(`{"type":"payment","n":"%d"}`, i), nil).Deliveries[0].ID)
		}
		body := `{"filter":{"ids":["` + strings.Join(ids, `","`) + `"]},"to":"` + hang.URL() + `/x"}`
		a := call(t, "POST", r.URL()+"/v1/replay", apiKey, []byte(body), nil)
		var ans struct {
			Replayed int
			Results  []relay.ReplayResult
		}
		a.decode(t, &ans)
		if a.Status != 200 || len(ans.Results) != 3 {
			t.Fatalf("got %d %s, want 200 with 3 results", a.Status, a.Body)
		}
		sent := 0
		for i, res := range ans.Results {
			if !res.NotSent && sent != i {
				t.Errorf("result %d sent after one that was not: %s", i, a.Body)
			}
			if !res.NotSent {
				sent++
			} else if !strings.Contains(res.Error, "not sent") {
				t.Errorf("result %d: got error %q, want it to say not sent", i, res.Error)
			}
		}
		if sent == 0 || sent > 2 || ans.Replayed != 0 {
			t.Errorf("sent %d, replayed %d: want 1 or 2 sent within the bound, none replayed well: %s", sent, ans.Replayed, a.Body)
		}
	})
}
