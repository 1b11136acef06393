package receiver

import _ "embed"

// openapiDoc describes the receiver's admin API; receiver/openapi_test.go
// checks it against routes.go, so a route cannot be added without
// documenting it.
//
//go:embed openapi.yaml
var openapiDoc []byte
