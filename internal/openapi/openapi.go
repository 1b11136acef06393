// Package openapi serves a server's OpenAPI document: written as YAML next
// to the routes it describes, served as JSON (GET /openapi.json on the
// relay, GET /_sidehook/openapi.json on the receiver). The package
// openapitest checks a document against the routes actually registered.
package openapi

import (
	"encoding/json"
	"fmt"
	"net/http"

	"go.yaml.in/yaml/v3"
)

// JSON converts a YAML OpenAPI document to JSON.
func JSON(doc []byte) ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(doc, &v); err != nil {
		return nil, fmt.Errorf("openapi: parse document: %w", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("openapi: encode document: %w", err)
	}
	return b, nil
}

// Handler serves doc (YAML) as JSON. The conversion is done once; a
// document that does not convert (a build with a broken file, which the
// tests catch) answers 500 rather than crash the server.
func Handler(doc []byte) http.Handler {
	b, err := JSON(doc)
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, `{"error":"internal","reason":%q}`+"\n", "the OpenAPI document does not load")
			return
		}
		w.Write(b)
	})
}
