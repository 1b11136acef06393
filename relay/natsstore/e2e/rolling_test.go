package e2e

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// A rolling restart under load, while the endpoint is down and then up:
// relay A stops (SIGTERM) and starts again, then relay B; every event
// answered 202 is delivered (a graceful stop gives its leases back, so
// nothing waits for AckWait). The file's store: names no servers: --store
// gives them.
func TestRollingRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("relay processes on a NATS cluster (skipped under -short)")
	}
	bin := buildSidehook(t)
	_, urls := startCluster(t)
	servers := strings.Join(urls, ",")
	hook := newSink(t)
	var down atomic.Bool
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		hook.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	cfg := writeProcConfig(t, `store:
  replicas: 3
retry: {schedule: [200ms, 500ms, 1s, 2s, 5s, 5s, 5s]}
`,
		`{id: all, url: "`+front.URL+`/all", events: [load], max_in_flight: 8}`,
		`{id: seq, url: "`+front.URL+`/seq", events: [seq], ordered: true}`)
	var (
		mu   sync.Mutex
		live = map[string]*relayProc{}
	)
	relays := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, p := range live {
			out = append(out, p.url)
		}
		return out
	}
	start := func(name string) {
		p := startRelayProc(t, bin, name, cfg, servers)
		mu.Lock()
		live[name] = p
		mu.Unlock()
	}
	stop := func(name string) {
		mu.Lock()
		p := live[name]
		delete(live, name)
		mu.Unlock()
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			// Errorf: called from a load worker, not the test's goroutine.
			t.Errorf("%s did not stop within 20s of SIGTERM", name)
		}
	}
	start("a")
	start("b")

	const n, nSeq = 400, 60
	var once [4]sync.Once
	after := func(done int) {
		switch {
		case done >= n/5 && done < 2*n/5:
			once[0].Do(func() { down.Store(true); stop("a"); start("a") })
		case done >= 2*n/5 && done < 3*n/5:
			once[1].Do(func() { stop("b") })
		case done >= 3*n/5 && done < 4*n/5:
			once[2].Do(func() { start("b"); down.Store(false) })
		}
	}
	var seqAccepted []string
	seqDone := make(chan struct{})
	go func() {
		defer close(seqDone)
		seqAccepted = load(relays, idsOf("seq", nSeq), "seq", 1, nil)
	}()
	accepted := load(relays, idsOf("load", n), "load", 4, after)
	<-seqDone
	down.Store(false)
	t.Logf("%d of %d and %d of %d accepted", len(accepted), n, len(seqAccepted), nSeq)
	waitDelivered(t, hook, "/all", accepted, 60*time.Second, relays)
	waitDelivered(t, hook, "/seq", seqAccepted, 60*time.Second, relays)
	allN, allDups := hook.distinct("/all")
	seqN, seqDups := hook.distinct("/seq")
	t.Logf("duplicates: %d of %d on /all, %d of %d on /seq", allDups, allN, seqDups, seqN)
}
