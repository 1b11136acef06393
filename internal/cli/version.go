package cli

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"
)

// buildInfo is what the Go toolchain recorded in the binary: the module
// version (`go install …@v1.2.0` gives v1.2.0; a build in a clone a
// pseudo-version), and the VCS revision of a build in a clone.
type buildInfo struct {
	Version   string `json:"version"`
	Revision  string `json:"revision,omitempty"`
	Time      string `json:"time,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

// readBuildInfo reads debug.ReadBuildInfo's answer; a binary without one
// (or a test binary) is version "dev".
func readBuildInfo(bi *debug.BuildInfo, ok bool) buildInfo {
	b := buildInfo{Version: "dev", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if !ok || bi == nil {
		return b
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		b.Version = v
	}
	if bi.GoVersion != "" {
		b.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// UserAgent is how sidehook names itself to the servers it calls.
func (b buildInfo) UserAgent() string { return "sidehook/" + b.Version }

func versionCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, the VCS revision and the Go toolchain of this binary",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print them as one JSON object"},
		},
		Action: func(c *cli.Context) error {
			b := e.build
			if c.Bool("json") {
				return json.NewEncoder(e.stdout).Encode(b)
			}
			e.printf("sidehook %s\n", b.Version)
			if b.Revision != "" {
				e.printf("revision  %s", b.Revision)
				if b.Time != "" {
					e.printf(" (%s)", b.Time)
				}
				if b.Modified {
					e.printf(", with uncommitted changes")
				}
				e.printf("\n")
			}
			_, err := fmt.Fprintf(e.stdout, "go        %s %s\n", b.GoVersion, b.Platform)
			return err
		},
	}
}
