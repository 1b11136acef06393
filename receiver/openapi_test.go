package receiver_test

import (
	"net/http"
	"os"
	"testing"

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
		t.Fatalf("GET /_sidehook/openapi.json: got %d %q %s", r.status, r.header.Get("Content-Type"), r.body)
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
