package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSendCommand(t *testing.T) {
	srv, got := hookSink(t)
	url := startRelayCLI(t, nil, "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--api-key", "k", "--endpoint", srv.URL)
	file := filepath.Join(t.TempDir(), "order.json")
	os.WriteFile(file, []byte(`{"order":"A-1"}`), 0o600)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"Fixture", []string{"--event", "delivery_report"}, 0, `"type":"delivery_report"`},
		{"File", []string{"--event", "order.created", "--file", file}, 0, `"type":"order.created"`},
		{"WrongKey", []string{"--event", "payment", "--api-key", "nope"}, 1, "401 unauthorized"},
		{"NoEvent", []string{}, 2, "give --event"},
		{"UnknownFixture", []string{"--event", "order.created"}, 2, "no fixture"},
		{"CustomValueRequest", []string{"--event", "custom_value_request"}, 2, "synchronous GET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"send", "--relay", url, "--api-key", "k"}, tt.args...)
			code, out, stderr := runCLI(t, nil, args...)
			if code != tt.code || !strings.Contains(out+stderr, tt.want) {
				t.Errorf("got exit %d, out %q, err %q; want %d and %q", code, out, stderr, tt.code, tt.want)
			}
		})
	}
	h := waitHeaders(t, got, 2)
	if h[0].Get("sidehook-event") == "" {
		t.Errorf("delivery headers: %v", h[0])
	}
}
