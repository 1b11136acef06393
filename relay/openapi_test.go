package relay_test

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/internal/openapi/openapitest"
	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
)

// TestOpenAPI holds the document to the routes: every route registered in
// routes.go documented, every documented operation served, the document
// valid OpenAPI 3.1; and GET /openapi.json serves it.
func TestOpenAPI(t *testing.T) {
	doc, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	openapitest.Check(t, doc, openapitest.RoutesIn(t, "routes.go", "/_sidehook/ui", "/_sidehook/ui/", "/_sidehook/ws"))

	r := startRelay(t, orgConfig(t), relay.Options{})
	a := call(t, "GET", r.URL()+"/openapi.json", "", nil, nil)
	if a.Status != http.StatusOK || a.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json: got %d %q, want 200 \"application/json\"", a.Status, a.Header.Get("Content-Type"))
	}
	var served struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(a.Body, &served); err != nil {
		t.Fatalf("decode served document: %v", err)
	}
	if served.OpenAPI != "3.1.0" || served.Paths["/v1/replay"] == nil || served.Paths["/openapi.json"] == nil {
		t.Errorf("served document: openapi %q, %d paths; want 3.1.0 with /v1/replay and /openapi.json", served.OpenAPI, len(served.Paths))
	}
}

// TestOpenAPIAnswers holds the document to what the relay answers: a call
// of each outcome, each answer's status documented for its operation and
// its JSON as documented, and no request the document refuses answered
// 2xx (openapitest.Exchanges).
func TestOpenAPIAnswers(t *testing.T) {
	doc, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const platformSecret = "platform-secret-0123456789abcdefghijklmnop"
	rcv := newSink(t, nil, nil)
	f := config.File{Listen: "127.0.0.1:0", Organisations: []config.RawOrg{
		{ID: "demo", APIKeys: []string{apiKey}, SecretKey: secretKey, Endpoints: []config.RawEndpoint{
			{ID: "crm", URL: rcv.URL() + "/crm", Events: []string{"payment"}},
			{ID: "values", URL: rcv.URL() + "/values", Events: []string{"custom_value_request"}},
		}},
		{ID: "locked", APIKeys: []string{"key-locked"}, InboundAuth: "webio-token", InboundSecret: platformSecret},
	}}
	f.Limits.MaxBody = "1KiB"
	cfg, err := f.Validate(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Data = t.TempDir()
	r := startRelay(t, cfg, relay.Options{})
	x := openapitest.NewExchanges(t, doc, r.URL())

	ans := ingest(t, r, `{"type":"payment"}`, nil)
	dlv := ans.Deliveries[0].ID
	waitDelivery(t, r, dlv, "delivered", 5*time.Second)
	before := time.Now().UTC().Add(time.Minute).Format(time.RFC3339Nano)

	js := map[string]string{"Content-Type": "application/json"}
	big := `{"type":"payment","x":"` + strings.Repeat("a", 2048) + `"}`
	failValues := func() { rcv.handle(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }) }
	missingValues := func() { rcv.handle(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(404) }) }
	tests := []struct {
		name, method, target, key, body string
		header                          map[string]string
		before                          func() // sets up the endpoint's answer
		status                          int
	}{
		{"Ingest", "POST", "/v1/events", apiKey, `{"type":"payment"}`, js, nil, 202},
		{"IngestRepeat", "POST", "/v1/events", apiKey, `{"type":"payment"}`, map[string]string{"Content-Type": "application/json", "webhook-id": ans.ID}, nil, 200},
		{"IngestConflict", "POST", "/v1/events", apiKey, `{"type":"payment","x":"1"}`, map[string]string{"Content-Type": "application/json", "webhook-id": ans.ID}, nil, 409},
		{"IngestNoType", "POST", "/v1/events", apiKey, `{"x":"1"}`, js, nil, 400},
		{"IngestNoKey", "POST", "/v1/events", "", `{"type":"payment"}`, js, nil, 401},
		{"IngestTooLarge", "POST", "/v1/events", apiKey, big, js, nil, 413},
		{"Inbound", "POST", "/in/demo", "", `{"type":"payment"}`, js, nil, 202},
		{"InboundConflict", "POST", "/in/demo", "", `{"type":"payment","x":"2"}`, map[string]string{"Content-Type": "application/json", "webhook-id": ans.ID}, nil, 409},
		{"InboundTooLarge", "POST", "/in/demo", "", big, js, nil, 413},
		{"InboundUnknownOrg", "POST", "/in/nope", "", `{"type":"payment"}`, js, nil, 404},
		{"InboundNoToken", "POST", "/in/locked", "", `{"type":"payment"}`, js, nil, 401},
		{"InboundValues", "GET", "/in/demo?customerUID=ACC-10023&fields=fullname", "", "", nil, nil, 200},
		{"InboundValuesNoToken", "GET", "/in/locked?fields=fullname", "", "", nil, nil, 401},
		{"InboundValuesUnknownOrg", "GET", "/in/nope?fields=fullname", "", "", nil, nil, 404},
		{"InboundValuesPassedThrough", "GET", "/in/demo?fields=fullname", "", "", nil, missingValues, 404},
		{"ListEvents", "GET", "/v1/events?limit=2", apiKey, "", nil, nil, 200},
		{"ListEventsLimitAbove", "GET", "/v1/events?limit=5000", apiKey, "", nil, nil, 200},
		{"ListEventsLimitZero", "GET", "/v1/events?limit=0", apiKey, "", nil, nil, 400},
		{"GetEvent", "GET", "/v1/events/" + ans.ID, apiKey, "", nil, nil, 200},
		{"GetEventMissing", "GET", "/v1/events/evt_nope", apiKey, "", nil, nil, 404},
		{"ListDeliveries", "GET", "/v1/deliveries?status=delivered", apiKey, "", nil, nil, 200},
		{"ListDeliveriesBadStatus", "GET", "/v1/deliveries?status=weird", apiKey, "", nil, nil, 400},
		{"GetDelivery", "GET", "/v1/deliveries/" + dlv, apiKey, "", nil, nil, 200},
		{"GetDeliveryMissing", "GET", "/v1/deliveries/dlv_nope", apiKey, "", nil, nil, 404},
		{"Retry", "POST", "/v1/deliveries/" + dlv + "/retry", apiKey, "", nil, nil, 202},
		{"RetryMissing", "POST", "/v1/deliveries/dlv_nope/retry", apiKey, "", nil, nil, 404},
		{"ReplayToEndpoint", "POST", "/v1/replay", apiKey, `{"filter":{"ids":["` + dlv + `"]}}`, js, nil, 200},
		{"ReplayTo", "POST", "/v1/replay", apiKey, `{"filter":{"ids":["` + dlv + `"]},"to":"` + rcv.URL() + `/x"}`, js, nil, 200},
		{"ReplayEmptyFilter", "POST", "/v1/replay", apiKey, `{}`, js, nil, 400},
		{"ListEndpoints", "GET", "/v1/endpoints", apiKey, "", nil, nil, 200},
		{"CreateEndpoint", "POST", "/v1/endpoints", apiKey, `{"id":"extra","url":"` + rcv.URL() + `/extra"}`, js, nil, 201},
		{"CreateEndpointAgain", "POST", "/v1/endpoints", apiKey, `{"id":"extra","url":"` + rcv.URL() + `/extra"}`, js, nil, 409},
		{"CreateEndpointInvalid", "POST", "/v1/endpoints", apiKey, `{"id":"bad id","url":"nope"}`, js, nil, 400},
		{"GetEndpoint", "GET", "/v1/endpoints/extra", apiKey, "", nil, nil, 200},
		{"PutEndpoint", "PUT", "/v1/endpoints/extra", apiKey, `{"id":"extra","url":"` + rcv.URL() + `/extra2"}`, js, nil, 200},
		{"DeleteEndpoint", "DELETE", "/v1/endpoints/extra", apiKey, "", nil, nil, 204},
		{"GetEndpointMissing", "GET", "/v1/endpoints/extra", apiKey, "", nil, nil, 404},
		{"Test", "POST", "/v1/endpoints/crm/test", apiKey, `{"event":"payment"}`, js, nil, 200},
		{"TestUnknownEvent", "POST", "/v1/endpoints/crm/test", apiKey, `{"event":"nope"}`, js, nil, 400},
		{"TestMissingEndpoint", "POST", "/v1/endpoints/nope/test", apiKey, `{}`, js, nil, 404},
		{"Token", "POST", "/v1/tokens", apiKey, `{"secret_key":"` + secretKey + `"}`, js, nil, 200},
		{"TokenWrongSecret", "POST", "/v1/tokens", apiKey, `{"secret_key":"wrong"}`, js, nil, 403},
		{"TokenNoSecret", "POST", "/v1/tokens", apiKey, `{}`, js, nil, 400},
		{"CustomValues", "POST", "/v1/custom-values", apiKey, `{"customer_uid":"ACC-10023","fields":["fullname"]}`, js, nil, 200},
		{"CustomValuesNoFields", "POST", "/v1/custom-values", apiKey, `{"customer_uid":"ACC-10023"}`, js, nil, 400},
		{"CustomValuesFailed", "POST", "/v1/custom-values", apiKey, `{"fields":["fullname"]}`, js, failValues, 502},
		{"Render", "POST", "/v1/render", apiKey, `{"template":"Hi <<fullname>>"}`, js, nil, 200},
		{"RenderNoTemplate", "POST", "/v1/render", apiKey, `{}`, js, nil, 400},
		{"RenderFailed", "POST", "/v1/render", apiKey, `{"template":"Hi <<fullname>>"}`, js, failValues, 502},
		{"TunnelsDisabled", "GET", "/v1/tunnel?name=laptop", apiKey, "", nil, nil, 404},
		{"Tunnels", "GET", "/v1/tunnels", apiKey, "", nil, nil, 200},
		{"DashboardOlder", "GET", "/_sidehook/deliveries?before=" + before + "&limit=5", "", "", nil, nil, 200},
		{"DashboardOlderLimitAbove", "GET", "/_sidehook/deliveries?before=" + before + "&limit=5000", "", "", nil, nil, 200},
		{"DashboardOlderNoBefore", "GET", "/_sidehook/deliveries", "", "", nil, nil, 400},
		{"DashboardTunnels", "GET", "/_sidehook/tunnels", "", "", nil, nil, 200},
		{"DashboardReplayToEndpoint", "POST", "/_sidehook/replay", "", `{"ids":["` + dlv + `"]}`, js, nil, 200},
		{"DashboardReplayTo", "POST", "/_sidehook/replay", "", `{"ids":["` + dlv + `"],"to":"` + rcv.URL() + `/x"}`, js, nil, 200},
		{"DashboardReplayNoIDs", "POST", "/_sidehook/replay", "", `{"ids":[]}`, js, nil, 400},
		{"DashboardRetry", "POST", "/_sidehook/deliveries/" + dlv + "/retry", "", "", js, nil, 202},
		{"DashboardRetryMissing", "POST", "/_sidehook/deliveries/dlv_01KBRZ3Y6E3Q6QF0Z0Z0Z0Z0Z0/retry", "", "", js, nil, 404},
		{"JWKS", "GET", "/.well-known/jwks.json", "", "", nil, nil, 200},
		{"Healthz", "GET", "/healthz", "", "", nil, nil, 200},
		{"Readyz", "GET", "/readyz", "", "", nil, nil, 200},
		{"Metrics", "GET", "/metrics", "", "", nil, nil, 200},
		{"OpenAPI", "GET", "/openapi.json", "", "", nil, nil, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before()
				defer rcv.handle(nil)
			}
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			if tt.key != "" {
				h.Set("Authorization", "Bearer "+tt.key)
			}
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			if status, _, got := x.Do(t, tt.method, tt.target, h, body); status != tt.status {
				t.Errorf("got %d %.300s, want %d", status, got, tt.status)
			}
		})
	}
}
