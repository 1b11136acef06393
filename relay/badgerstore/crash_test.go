package badgerstore_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/badgerstore"
)

// crashChildEnv, when set to a directory, makes the test binary the child
// of TestKill9: it accepts events into a store in that directory until it
// is killed.
const crashChildEnv = "BADGERSTORE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		os.Exit(crashChild(dir))
	}
	goleak.VerifyTestMain(m)
}

// crashChild accepts events from 4 goroutines and prints the id of each
// one acknowledged, one per line, until killed (or after 20,000 events or
// a minute, so that a lost parent leaves no process behind).
func crashChild(dir string) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := badgerstore.Open(ctx, badgerstore.Options{Dir: dir, Logger: zerolog.Nop(), Reserve: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var out sync.Mutex
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; i < 5000 && ctx.Err() == nil; i++ {
				id := fmt.Sprintf("w%d-%05d", w, i)
				ev, ds := crashEvent(id)
				if _, err := s.Accept(ctx, ev, ds); err != nil {
					fmt.Fprintln(os.Stderr, err)
					return
				}
				out.Lock()
				fmt.Fprintln(os.Stdout, id)
				out.Unlock()
			}
		})
	}
	wg.Wait()
	return 0
}

var crashT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func crashEvent(id string) (*relay.Event, []*relay.Delivery) {
	ev := &relay.Event{ID: id, Type: "order.created", Org: "acme", ReceivedAt: crashT0, Hash: "h", Body: []byte(`{"id":"` + id + `"}`)}
	var ds []*relay.Delivery
	for _, ep := range []string{"a", "b"} {
		due := crashT0
		d := &relay.Delivery{ID: id + "." + ep, EventID: id, Org: "acme", Endpoint: ep, Type: ev.Type,
			Status: relay.StatusPending, CreatedAt: crashT0, NextAttemptAt: &due}
		ev.Deliveries = append(ev.Deliveries, relay.DeliveryRef{ID: d.ID, Endpoint: ep})
		ds = append(ds, d)
	}
	return ev, ds
}

// TestKill9 kills a process that is accepting events with SIGKILL, then
// reopens its store: every event it acknowledged is there, with its
// deliveries waiting.
func TestKill9(t *testing.T) {
	const acks = 300
	dir := t.TempDir()
	cmd, sc := startCrashChild(t, dir)
	var acked []string
	killed := false
	for sc.Scan() {
		acked = append(acked, strings.TrimSpace(sc.Text()))
		if len(acked) == acks && !killed {
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err := cmd.Wait()
	if !killed {
		t.Fatalf("the child ended after %d acknowledgements, before the kill: %v", len(acked), err)
	}
	if len(acked) < acks {
		t.Fatalf("got %d acknowledgements, want at least %d", len(acked), acks)
	}

	ctx := context.Background()
	s := open(t, dir)
	for _, id := range acked {
		ev, err := s.Event(ctx, "acme", id)
		if err != nil {
			t.Fatalf("acknowledged event %s after kill -9: %v", id, err)
		}
		if string(ev.Body) != `{"id":"`+id+`"}` {
			t.Fatalf("event %s body: got %q, want %q", id, ev.Body, `{"id":"`+id+`"}`)
		}
	}
	for _, ep := range []string{"a", "b"} {
		ds, _, err := s.Take(ctx, relay.EndpointRef{Org: "acme", Endpoint: ep}, crashT0, 100000)
		if err != nil {
			t.Fatal(err)
		}
		waiting := map[string]bool{}
		for _, d := range ds {
			waiting[d.ID] = true
		}
		for _, id := range acked {
			if !waiting[id+"."+ep] {
				t.Fatalf("delivery %s.%s of an acknowledged event is not waiting after kill -9 (%d waiting)", id, ep, len(ds))
			}
		}
	}
	t.Logf("%d events acknowledged before and after the kill, all there", len(acked))
}

// startCrashChild re-runs the test binary as crashChild on dir and returns
// it with a scanner of the ids it prints once each event is acknowledged.
func startCrashChild(t *testing.T, dir string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
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
	return cmd, bufio.NewScanner(stdout)
}
