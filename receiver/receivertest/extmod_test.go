package receivertest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExternalModule runs the tests of testdata/extmod, a module of its
// own that requires sidehook and uses receivertest through its exported
// API only: anything a user outside this repository could not write fails
// to compile there. The module is copied to a temp dir with its replace
// directive pointed at this checkout, so the run never writes to the
// source tree.
func TestExternalModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds another module")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the external module: %v", err)
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join("testdata", "extmod")
	dir := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "go.mod" {
			const rel = "=> ../../../.."
			if !strings.Contains(string(data), rel) {
				t.Fatalf("testdata/extmod/go.mod has no %q replace directive", rel)
			}
			data = []byte(strings.Replace(string(data), rel, "=> "+root, 1))
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.CommandContext(t.Context(), goBin, "test", "-count=1", "./...")
	cmd.Dir = dir
	// -mod=mod lets the copy catch up with this module's requirements
	// from the module cache; GOWORK=off keeps a workspace out of it.
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test in the external module: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "ok  \texample.com/extmod") {
		t.Errorf("the external module's tests did not run:\n%s", out)
	}
}
