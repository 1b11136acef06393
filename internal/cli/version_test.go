package cli

import (
	"encoding/json"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestReadBuildInfo(t *testing.T) {
	clone := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/sidehook/sidehook", Version: "v0.0.0-20261204133420-c143eb9a1b2c+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "c143eb9a1b2c3d4e5f60718293a4b5c6d7e8f901"},
			{Key: "vcs.time", Value: "2026-12-04T13:34:20Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want buildInfo
	}{
		{"Install", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}}, true,
			buildInfo{Version: "v1.4.0", GoVersion: "go1.26.8"}},
		{"Clone", clone, true, buildInfo{
			Version: "v0.0.0-20261204133420-c143eb9a1b2c+dirty", Revision: "c143eb9a1b2c3d4e5f60718293a4b5c6d7e8f901",
			Time: "2026-12-04T13:34:20Z", Modified: true, GoVersion: "go1.26.8"}},
		{"GoRun", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, true,
			buildInfo{Version: "dev", GoVersion: "go1.26.8"}},
		{"NoBuildInfo", nil, false, buildInfo{Version: "dev", GoVersion: runtime.Version()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readBuildInfo(tt.bi, tt.ok)
			tt.want.Platform = runtime.GOOS + "/" + runtime.GOARCH
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if ua := readBuildInfo(clone, true).UserAgent(); ua != "sidehook/v0.0.0-20261204133420-c143eb9a1b2c+dirty" {
		t.Errorf("user agent: got %q, want sidehook/v0.0.0-20261204133420-c143eb9a1b2c+dirty", ua)
	}
}

func TestVersionCommand(t *testing.T) {
	code, out, stderr := runCLI(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "sidehook ") || !strings.Contains(out, runtime.Version()) {
		t.Fatalf("got %d %q %q, want 0, the version and the Go toolchain", code, out, stderr)
	}
	code, out, stderr = runCLI(t, nil, "version", "--json")
	var got buildInfo
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil {
		t.Fatalf("--json: got %d %q %q, want one JSON object", code, out, stderr)
	}
	if got.Version == "" || got.GoVersion != runtime.Version() || got.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("--json: got %+v, want a version, this Go version and platform", got)
	}
	// --version (urfave/cli's) says the same version.
	_, v, _ := runCLI(t, nil, "--version")
	if !strings.Contains(v, got.Version) {
		t.Errorf("--version: got %q, want %q in it", v, got.Version)
	}
}
