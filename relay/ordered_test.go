package relay_test

import (
	"context"
	"strings"
	"testing"

	"github.com/sidehook/sidehook/relay"
)

// TestOrderedHasOneInFlight: an ordered endpoint sends one delivery at a
// time, so a larger max_in_flight written with it is refused, and the API
// shows the 1 it keeps. One stored by an older relay, which wrote its
// default of 16 beside ordered, still loads.
func TestOrderedHasOneInFlight(t *testing.T) {
	rcv := newSink(t, nil, nil)
	cfg := orgConfig(t)
	st := storeFor(t, cfg)
	older := `{"id":"old","url":"` + rcv.URL() + `/old","ordered":true,"max_in_flight":16,"enabled":true}`
	if err := st.PutEndpoint(context.Background(), "demo", "old", []byte(older)); err != nil {
		t.Fatal(err)
	}
	r := startRelay(t, cfg, relay.Options{Store: st})

	tests := []struct {
		name, method, path, body string
		status                   int
		want                     string // in the answer
	}{
		{"Refused", "POST", "/v1/endpoints", `{"id":"crm","url":"` + rcv.URL() + `/crm","ordered":true,"max_in_flight":8}`, 400,
			"max_in_flight: 8 with ordered: true, which sends one delivery at a time: set it to 1 or leave it out"},
		{"LeftOut", "POST", "/v1/endpoints", `{"id":"crm","url":"` + rcv.URL() + `/crm","ordered":true}`, 201, `"max_in_flight":1`},
		{"One", "PUT", "/v1/endpoints/crm", `{"id":"crm","url":"` + rcv.URL() + `/crm","ordered":true,"max_in_flight":1}`, 200, `"max_in_flight":1`},
		{"StoredByOlderRelay", "GET", "/v1/endpoints/old", "", 200, `"max_in_flight":1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := call(t, tt.method, r.URL()+tt.path, apiKey, []byte(tt.body), nil)
			if a.Status != tt.status || !strings.Contains(string(a.Body), tt.want) {
				t.Errorf("%s %s: got %d %s, want %d with %s", tt.method, tt.path, a.Status, a.Body, tt.status, tt.want)
			}
		})
	}
}
