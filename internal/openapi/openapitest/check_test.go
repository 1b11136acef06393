package openapitest_test

import (
	"os"
	"testing"

	"github.com/sidehook/sidehook/internal/openapi/openapitest"
)

// TestRelayDocumentLoads keeps the relay's document valid on its own; the
// relay's tests check it against its routes.
func TestRelayDocumentLoads(t *testing.T) {
	doc, err := os.ReadFile("../../../relay/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	openapitest.Validate(t, doc)
}

func TestReceiverDocumentLoads(t *testing.T) {
	doc, err := os.ReadFile("../../../receiver/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	openapitest.Validate(t, doc)
}
