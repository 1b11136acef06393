package relay_test

import (
	"encoding/json"
	"net/http"
	"os"
	"testing"

	"github.com/sidehook/sidehook/internal/openapi/openapitest"
	"github.com/sidehook/sidehook/relay"
)

// TestOpenAPI holds the document to the routes: every route registered in
// routes.go documented, every documented operation served, the document
// valid OpenAPI 3.1; and GET /openapi.json serves it.
func TestOpenAPI(t *testing.T) {
	doc, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	openapitest.Check(t, doc, openapitest.RoutesIn(t, "routes.go"))

	r := startRelay(t, orgConfig(t), relay.Options{})
	a := call(t, "GET", r.URL()+"/openapi.json", "", nil, nil)
	if a.Status != http.StatusOK || a.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json: got %d %q", a.Status, a.Header.Get("Content-Type"))
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
