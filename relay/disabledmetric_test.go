package relay_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
)

// An endpoint that answered 410 is disabled: from then on its events are
// not even queued for it, so its queue depth stays 0 and nothing in
// /metrics moved but one dead. An operator alerts on the endpoint's state
// itself, sidehook_relay_endpoint_enabled, as on Svix's disabled
// endpoints.
func TestMetricsSayWhichEndpointsAreDisabled(t *testing.T) {
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) }))
	t.Cleanup(gone.Close)
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(ok.Close)
	off := false
	r := startRelay(t, orgConfig(t,
		config.RawEndpoint{ID: "gone", URL: gone.URL, Events: []string{"payment"}},
		config.RawEndpoint{ID: "ok", URL: ok.URL, Events: []string{"payment"}},
		config.RawEndpoint{ID: "paused", URL: ok.URL, Events: []string{"payment"}, Enabled: &off},
	), relay.Options{})

	for _, tc := range []struct {
		when string
		want []string
	}{
		{"at start", []string{
			`sidehook_relay_endpoint_enabled{endpoint="gone",organisation="demo"} 1`,
			`sidehook_relay_endpoint_enabled{endpoint="ok",organisation="demo"} 1`,
			`sidehook_relay_endpoint_enabled{endpoint="paused",organisation="demo"} 0`,
		}},
		{"after a 410", []string{
			`sidehook_relay_endpoint_enabled{endpoint="gone",organisation="demo"} 0`,
			`sidehook_relay_endpoint_enabled{endpoint="ok",organisation="demo"} 1`,
			`sidehook_relay_endpoint_enabled{endpoint="paused",organisation="demo"} 0`,
		}},
	} {
		if tc.when == "after a 410" {
			ans := ingest(t, r, `{"type":"payment"}`, nil)
			for _, d := range ans.Deliveries {
				if d.Endpoint == "gone" {
					waitDelivery(t, r, d.ID, relay.StatusDead, 10*time.Second)
				}
			}
		}
		m := string(call(t, "GET", r.URL()+"/metrics", "", nil, nil).Body)
		for _, w := range tc.want {
			if !strings.Contains(m, w+"\n") {
				t.Errorf("%s: /metrics lacks %s", tc.when, w)
			}
		}
	}
}
