package relay_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
)

// storedEventIDs lists every event of org in st.
func storedEventIDs(tb testing.TB, st relay.Store, org string) map[string]bool {
	tb.Helper()
	ids := map[string]bool{}
	cursor := ""
	for {
		page, err := st.Events(context.Background(), org, relay.EventFilter{Limit: 1000, Cursor: cursor})
		if err != nil {
			tb.Fatalf("list stored events: %v", err)
		}
		for _, ev := range page.Items {
			ids[ev.ID] = true
		}
		if page.Next == "" {
			return ids
		}
		cursor = page.Next
	}
}

// waitDelivered waits until the sink has answered 2xx for every id.
func waitDelivered(tb testing.TB, rcv *sink, within time.Duration, ids map[string]bool) {
	tb.Helper()
	rcv.wait(tb, within, func(c []captured) bool {
		got := delivered(c)
		for id := range ids {
			if got[id] == 0 {
				return false
			}
		}
		return true
	})
}

// TestCancelledIngestIsDelivered: a producer that hangs up right after
// sending its body, at a random moment, thousands of times. Every event
// answered 202, and every event that landed in the store whatever the
// answer, is delivered without a restart (issue 13: the durable write used
// the request's context, and a canceled write that landed was never
// dispatched).
func TestCancelledIngestIsDelivered(t *testing.T) {
	for _, tt := range []struct {
		name string
		open func(testing.TB, *config.Config) relay.Store
	}{
		{"Memory", storeFor},
		{"Badger", diskStore},
	} {
		t.Run(tt.name, func(t *testing.T) { testCancelledIngest(t, tt.open) })
	}
}

func testCancelledIngest(t *testing.T, open func(testing.TB, *config.Config) relay.Store) {
	const n = 2000
	rcv := newSink(t, nil, nil)
	cfg := orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL(), MaxInFlight: new(32)})
	st := open(t, cfg)
	r := startRelay(t, cfg, relay.Options{Store: st})
	addr := r.Addr().String()

	var (
		mu    sync.Mutex
		acked = map[string]bool{}
		next  atomic.Int64
		wg    sync.WaitGroup
	)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				id := fmt.Sprintf("evt_cancel_%d", i)
				if hangUpAfterBody(t, addr, id) {
					mu.Lock()
					acked[id] = true
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	landed := storedEventIDs(t, st, "demo")
	for id := range acked {
		if !landed[id] {
			t.Errorf("%s was answered 202 but is not in the store", id)
		}
	}
	t.Logf("%d of %d hang-ups answered 202 first; %d events landed", len(acked), n, len(landed))
	if len(landed) == 0 {
		t.Fatal("no event landed: the hang-ups came before the bodies were read")
	}
	waitDelivered(t, rcv, 30*time.Second, landed)
}

// hangUpAfterBody sends one whole ingest request on a new connection,
// waits a random moment of up to 2ms for the answer, and closes the
// connection. It reports whether a 202 came back before the hang-up.
func hangUpAfterBody(tb testing.TB, addr, id string) bool {
	tb.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Errorf("dial: %v", err)
		return false
	}
	defer conn.Close()
	body := `{"type":"payment","amount":"1.00"}`
	req := fmt.Sprintf("POST /v1/events HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nwebhook-id: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		addr, apiKey, id, len(body), body)
	if _, err := conn.Write([]byte(req)); err != nil {
		tb.Errorf("write: %v", err)
		return false
	}
	conn.SetReadDeadline(time.Now().Add(time.Duration(rand.IntN(2000)) * time.Microsecond))
	line, err := bufio.NewReader(conn).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "HTTP/1.1 202 ")
}

// TestOutageThenUp: an endpoint is down for seconds while ~300 events/s
// arrive, with a sub-second retry schedule, so more than 512 deliveries
// wait at once (the size of the old in-memory window, whose boundary race
// stranded deliveries: issue 13). Once it is up, every acknowledged
// delivery arrives without a restart.
func TestOutageThenUp(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for several seconds")
	}
	var down atomic.Bool
	down.Store(true)
	rcv := newSink(t, nil, func(*http.Request, int) int {
		if down.Load() {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	// 100ms … 800ms, then 800ms steps: about 20s before a delivery would
	// be dead, far beyond the outage.
	sched := []string{"100ms", "200ms", "400ms"}
	for len(sched) < 28 {
		sched = append(sched, "800ms")
	}
	cfg := orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL(), MaxInFlight: new(16), Retry: &config.RawRetry{Schedule: sched}})
	r := startRelay(t, cfg, relay.Options{})

	const (
		rate   = 300 // events/s, when the machine keeps up
		outage = 4 * time.Second
		// The outage lasts until this many events wait, however slow
		// the machine: more than the old window of 512.
		minWaiting = 600
	)
	var (
		mu    sync.Mutex
		acked = map[string]bool{}
		wg    sync.WaitGroup
		seq   atomic.Int64
		stop  = make(chan struct{})
	)
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	start := time.Now()
	const producers = 10
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Second * producers / rate)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				id := fmt.Sprintf("evt_outage_%d", seq.Add(1))
				req, _ := http.NewRequest("POST", r.URL()+"/v1/events", strings.NewReader(`{"type":"payment"}`))
				req.Header.Set("Authorization", "Bearer "+apiKey)
				req.Header.Set("webhook-id", id)
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("ingest: %v", err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					t.Errorf("ingest: got %d, want 202", resp.StatusCode)
					return
				}
				mu.Lock()
				acked[id] = true
				mu.Unlock()
			}
		}()
	}
	deadline := start.Add(20 * time.Second)
	for time.Since(start) < outage || ackedCount() < minWaiting {
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatalf("only %d events acknowledged in %s", ackedCount(), time.Since(start))
		}
		time.Sleep(10 * time.Millisecond)
	}
	depth := queueDepth(t, r, "crm")
	down.Store(false)
	// Events keep arriving for a while after the endpoint is back.
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("%d events acknowledged in %s; %d waiting when the endpoint came back", len(acked), time.Since(start), depth)
	if depth <= 512 {
		t.Fatalf("queue depth at the end of the outage: got %d, want more than 512", depth)
	}
	waitDelivered(t, rcv, 20*time.Second, acked)
	// The last outcomes are recorded just after their answers arrived.
	deadline = time.Now().Add(5 * time.Second)
	for d := queueDepth(t, r, "crm"); d != 0; d = queueDepth(t, r, "crm") {
		if time.Now().After(deadline) {
			t.Fatalf("queue depth once all arrived: got %d, want 0", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// queueDepth reads the endpoint's queue-depth gauge.
func queueDepth(tb testing.TB, r *relay.Relay, ep string) int {
	tb.Helper()
	prefix := `sidehook_relay_queue_depth{endpoint="` + ep + `",organisation="demo"} `
	for _, line := range strings.Split(string(call(tb, "GET", r.URL()+"/metrics", "", nil, nil).Body), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			var n int
			fmt.Sscan(v, &n)
			return n
		}
	}
	tb.Fatalf("no queue depth for %s", ep)
	return 0
}
