package badgerstore_test

import (
	"context"
	"fmt"
	"maps"
	"testing"

	"github.com/sidehook/sidehook/relay"
)

// TestKill9Waiting kills a process that is accepting events (crashChild),
// then reopens its store: Waiting counts every delivery that Take finds
// due.
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

// TestWaitingSnapshot: what WaitingSnapshot's count says is the due
// indexes as they were when it returned, whatever is written before the
// count runs; Waiting after those writes says them too.
func TestWaitingSnapshot(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	acceptN := func(from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			ev, ds := crashEvent(fmt.Sprintf("e%03d", i))
			if _, err := s.Accept(ctx, ev, ds); err != nil {
				t.Fatal(err)
			}
		}
	}
	a := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	b := relay.EndpointRef{Org: "acme", Endpoint: "b"}
	acceptN(0, 30)

	count, err := s.WaitingSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// After the snapshot: 20 more events, and 10 of a's deliveries end.
	acceptN(30, 20)
	ds, _, err := s.Take(ctx, a, crashT0, 10)
	if err != nil || len(ds) != 10 {
		t.Fatalf("Take: %d deliveries, %v; want 10", len(ds), err)
	}
	for _, d := range ds {
		d.Status, d.NextAttemptAt = relay.StatusDelivered, nil
		d.Attempts = append(d.Attempts, relay.Attempt{N: 1, At: crashT0, Status: 200})
		if err := s.Record(ctx, d, ""); err != nil {
			t.Fatal(err)
		}
	}

	got, err := count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[relay.EndpointRef]int64{a: 30, b: 30}; !maps.Equal(got, want) {
		t.Errorf("the snapshot's count: got %v, want %v (the due indexes when it was taken)", got, want)
	}
	now, err := s.Waiting(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[relay.EndpointRef]int64{a: 40, b: 50}; !maps.Equal(now, want) {
		t.Errorf("Waiting after the writes: got %v, want %v", now, want)
	}
}

// TestWaitingSnapshotHoldsClose: a snapshot not yet counted holds Close
// (a count never reads a closed Badger), and counting releases it.
func TestWaitingSnapshotHoldsClose(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	ev, ds := crashEvent("e1")
	if _, err := s.Accept(ctx, ev, ds); err != nil {
		t.Fatal(err)
	}
	count, err := s.WaitingSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	got, err := count(ctx)
	if err != nil {
		t.Fatalf("count during Close: %v", err)
	}
	if n := got[relay.EndpointRef{Org: "acme", Endpoint: "a"}]; n != 1 {
		t.Errorf("count during Close: got %v, want acme/a 1", got)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.WaitingSnapshot(ctx); err == nil {
		t.Fatal("WaitingSnapshot on a closed store: no error")
	}
}
