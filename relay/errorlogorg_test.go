package relay_test

import (
	"net"
	"net/http"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
)

// A request that fails on the relay's side (a custom-value endpoint down,
// answered 502 to the bot) is logged with the organisation it was for: on
// a relay of several, POST /v1/render's line said neither whose endpoint
// was down nor whose bot was failing.
func TestFailedRequestLogNamesTheOrganisation(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String() + "/values"
	l.Close() // nothing listens there now: connection refused
	logs := &lockedBuffer{}
	r := runRelay(t, orgConfig(t, config.RawEndpoint{ID: "values", URL: down, Events: []string{"custom_value_request"}}),
		relay.Options{Logger: zerolog.New(logs)})
	for _, tc := range []struct {
		name, method, path, body string
	}{
		{"render", "POST", "/v1/render", `{"template":"Hi <<fullname>>","customer_uid":"A","channel_id":"1"}`},
		{"custom values", "POST", "/v1/custom-values", `{"customer_uid":"A","channel_id":"1","fields":["fullname"]}`},
		{"platform GET", "GET", "/in/demo?customerUID=A&channelId=1&fields=fullname", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(logs.errorLines(t))
			var body []byte
			if tc.body != "" {
				body = []byte(tc.body)
			}
			if a := call(t, tc.method, r.URL()+tc.path, apiKey, body, nil); a.Status != http.StatusBadGateway {
				t.Fatalf("got %d %s, want 502", a.Status, a.Body)
			}
			lines := logs.errorLines(t)[before:]
			if len(lines) != 1 {
				t.Fatalf("got %d error lines, want 1: %v", len(lines), lines)
			}
			if lines[0]["org"] != "demo" {
				t.Errorf("error line %v: want org demo", lines[0])
			}
		})
	}
}
