package receiver_test

import (
	"net/http"
	"os"
	"testing"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/internal/openapi/openapitest"
	"github.com/sidehook/sidehook/receiver"
)

// TestOpenAPI holds the admin API's document to the routes: every route
// registered in routes.go documented, every documented operation served,
// the document valid OpenAPI 3.1; and GET /_sidehook/openapi.json serves it.
func TestOpenAPI(t *testing.T) {
	doc, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	openapitest.Check(t, doc, openapitest.RoutesIn(t, "routes.go", "/_sidehook/ui", "/_sidehook/ui/", "/_sidehook/ws"))

	srv := start(t, receiver.Config{})
	r := send(t, "GET", srv.URL()+"/_sidehook/openapi.json", nil, nil)
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /_sidehook/openapi.json: got %d %q %s, want 200 \"application/json\"", r.status, r.header.Get("Content-Type"), r.body)
	}
	var served struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	r.json(t, &served)
	if served.OpenAPI != "3.1.0" || served.Paths["/_sidehook/requests"] == nil || served.Paths["/_sidehook/openapi.json"] == nil {
		t.Errorf("served document: openapi %q, %d paths; want 3.1.0 with /_sidehook/requests and /_sidehook/openapi.json", served.OpenAPI, len(served.Paths))
	}
}

// TestOpenAPIAnswers holds the document to what the receiver answers: a
// call of each outcome, each answer's status documented for its operation
// and its JSON as documented (openapitest.Exchanges). The NDJSON export is
// left out: the validator cannot decode application/x-ndjson.
func TestOpenAPIAnswers(t *testing.T) {
	doc, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	srv := start(t, receiver.Config{Verify: auth.VerifyConfig{JWTSecret: []byte(testSecret)}})
	x := openapitest.NewExchanges(t, doc, srv.URL())
	send(t, "POST", srv.URL()+"/hooks", []byte(`{"type":"payment"}`), nil)
	id := only(t, srv).ID
	if _, err := srv.SetRules(receiver.Rule{ID: "kept"}); err != nil {
		t.Fatal(err)
	}

	js := http.Header{"Content-Type": {"application/json"}}
	tests := []struct {
		name, method, target, body string
		header                     http.Header
		status                     int
	}{
		{"List", "GET", "/_sidehook/requests?limit=1", "", nil, 200},
		{"ListBad", "GET", "/_sidehook/requests?verdict=maybe", "", nil, 400},
		{"Count", "GET", "/_sidehook/requests/count?event=payment", "", nil, 200},
		{"CountBad", "GET", "/_sidehook/requests/count?limit=1", "", nil, 400},
		{"Wait", "GET", "/_sidehook/requests/wait?event=payment&timeout=1s", "", nil, 200},
		{"WaitTimeout", "GET", "/_sidehook/requests/wait?count=2&timeout=10ms", "", nil, 408},
		{"WaitBad", "GET", "/_sidehook/requests/wait?count=0", "", nil, 400},
		{"ExportHAR", "GET", "/_sidehook/requests/export?format=har&path=/hooks&method=POST&webhook_id=", "", nil, 200},
		{"ExportCurl", "GET", "/_sidehook/requests/export?format=curl&base=http://example.com", "", nil, 200},
		{"ExportBad", "GET", "/_sidehook/requests/export?format=xml", "", nil, 400},
		{"Get", "GET", "/_sidehook/requests/" + id, "", nil, 200},
		{"GetMalformed", "GET", "/_sidehook/requests/nope", "", nil, 400},
		{"GetMissing", "GET", "/_sidehook/requests/" + event.NewCaptureID(), "", nil, 404},
		{"Replay", "POST", "/_sidehook/requests/" + id + "/replay", `{"sign":[]}`, js, 200},
		{"ReplayCannotSign", "POST", "/_sidehook/requests/" + id + "/replay", `{"sign":["standard"]}`, js, 400},
		{"ReplayMissing", "POST", "/_sidehook/requests/" + event.NewCaptureID() + "/replay", `{}`, js, 404},
		{"ReplayUnreachable", "POST", "/_sidehook/requests/" + id + "/replay", `{"to":"http://127.0.0.1:1/x","sign":[]}`, js, 502},
		{"Rules", "GET", "/_sidehook/rules", "", nil, 200},
		{"RulesBad", "GET", "/_sidehook/rules?id=kept", "", nil, 400},
		{"AddRule", "POST", "/_sidehook/rules", `{"match":{"path":"/a"},"respond":{"status":500}}`, js, 201},
		{"AddRules", "POST", "/_sidehook/rules", `[{"respond":{"status":202}}]`, js, 201},
		{"AddRuleBad", "POST", "/_sidehook/rules", `{"respond":{"stauts":500}}`, js, 400},
		{"DeleteRule", "DELETE", "/_sidehook/rules?id=kept", "", nil, 204},
		{"DeleteRuleMissing", "DELETE", "/_sidehook/rules?id=kept", "", nil, 404},
		{"DeleteRuleBad", "DELETE", "/_sidehook/rules?rule=kept", "", nil, 400},
		{"DeleteRules", "DELETE", "/_sidehook/rules", "", nil, 204},
		{"DeleteRequestsBad", "DELETE", "/_sidehook/requests?event=payment", "", nil, 400},
		{"DeleteRequests", "DELETE", "/_sidehook/requests", "", nil, 204},
		{"ResetBad", "POST", "/_sidehook/reset?all=1", "", nil, 400},
		{"Reset", "POST", "/_sidehook/reset", "", nil, 204},
		{"Healthz", "GET", "/_sidehook/healthz", "", nil, 200},
		{"Metrics", "GET", "/_sidehook/metrics", "", nil, 200},
		{"OpenAPI", "GET", "/_sidehook/openapi.json", "", nil, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			status, _, got := x.Do(t, tt.method, tt.target, tt.header, body)
			if status != tt.status {
				t.Errorf("got %d %.300s, want %d", status, got, tt.status)
			}
		})
	}
}
