package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRelayStartOnFullDiskSaysWhatToDo: a relay started while its disk has
// less free than limits.min_free_disk exits 1 with one line saying what
// to change, the reserve in the size it was written in. It said "disk
// full: store: disk full: no space left on device: … below the reserve of
// 943718400.0 MiB" for min_free_disk: 900TiB, and nothing of the key.
func TestRelayStartOnFullDiskSaysWhatToDo(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sidehook.yaml")
	yaml := "listen: 127.0.0.1:0\ndata: data\nlimits: {min_free_disk: 900TiB}\norganisations:\n  - id: acme\n    api_keys: [acme-key]\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(t, nil, "relay", "--config", cfg)
	if code != 1 || out != "" || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("got %d %q %q, want 1 and one line", code, out, stderr)
	}
	for _, want := range []string{"limits.min_free_disk in " + cfg, "below the 900 TiB it keeps free", "free space in " + filepath.Join(dir, "data")} {
		if !strings.Contains(stderr, want) {
			t.Errorf("%q lacks %q", stderr, want)
		}
	}
	for _, not := range []string{"disk full: store: disk full", "MiB free in", "943718400"} {
		if strings.Contains(stderr, not) {
			t.Errorf("%q has %q", stderr, not)
		}
	}
}
