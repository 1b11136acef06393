package badgerstore_test

import (
	"context"
	"testing"

	"github.com/sidehook/sidehook/relay"
)

// TestKill9Waiting kills a process that is accepting events (crashChild)
// before its counts are folded, then reopens its store: Waiting counts
// every delivery that Take finds due, deltas replayed from the WAL included.
func TestKill9Waiting(t *testing.T) {
	dir := t.TempDir()
	cmd, sc := startCrashChild(t, dir)
	for n := 0; n < 500 && sc.Scan(); n++ {
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
	}
	_ = cmd.Wait()

	ctx := context.Background()
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
