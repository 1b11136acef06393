package badgerstore_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
)

// TestKill9Waiting kills a process that is accepting events (crashChild)
// before its counts are folded, then reopens its store: Waiting counts
// every delivery that Take finds due, deltas replayed from the WAL included.
func TestKill9Waiting(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	for n := 0; n < 500 && sc.Scan(); n++ {
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
	}
	_ = cmd.Wait()

	s := open(t, dir)
	m, err := s.Waiting(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range []string{"a", "b"} {
		ref := relay.EndpointRef{Org: "acme", Endpoint: ep}
		ds, _, err := s.Take(ctx, ref, crashT0, 1_000_000)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) < 500 || m[ref] != int64(len(ds)) {
			t.Fatalf("after kill -9: Waiting[%s] = %d, Take found %d due (want at least 500, and both equal)", ep, m[ref], len(ds))
		}
	}
}
