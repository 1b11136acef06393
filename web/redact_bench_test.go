package web_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/sidehook/sidehook/web"
)

// BenchmarkRedactJSONClean is the cost Publish pays for an item with no
// credential in it: the pre-check alone.
func BenchmarkRedactJSONClean(b *testing.B) {
	data, _ := json.Marshal(map[string]any{"headers": map[string][]string{"content-type": {"application/json"}, "webhook-id": {"evt_1"}},
		"body": string(bytes.Repeat([]byte("x"), 8<<10))})
	b.ReportAllocs()
	for b.Loop() {
		web.RedactJSON(data)
	}
}
