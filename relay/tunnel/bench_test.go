package tunnel_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/tunnel"
)

// BenchmarkDelivery compares, in one run, 1 KB deliveries to a local sink
// sent directly over HTTP (as the relay sends to an http:// endpoint) and
// through one tunnel (relay side → websocket → client → sink), 16 in
// flight as an endpoint's default max_in_flight allows. It reports
// deliveries/s and the p50 and p99 latency of each.
//
//	go test -run '^$' -bench Delivery -benchtime 5s ./relay/tunnel/
func BenchmarkDelivery(b *testing.B) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, `{"ok":true}`)
	}))
	b.Cleanup(sink.Close)
	body := bytes.Repeat([]byte("x"), 1024)
	header := http.Header{"Content-Type": {"application/json"}, "Sidehook-Event": {"payment"}, "Webhook-Id": {"evt_1"}}

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	tr.DisableCompression = true
	direct := &http.Client{Transport: tr}
	b.Run("Direct", func(b *testing.B) {
		runDeliveries(b, func(ctx context.Context) error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, sink.URL+"/hooks", bytes.NewReader(body))
			req.Header = header.Clone()
			resp, err := direct.Do(req)
			if err != nil {
				return err
			}
			io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
			return resp.Body.Close()
		})
	})

	b.Run("Tunnel", func(b *testing.B) {
		fr := newFakeRelay(b, tunnel.ServerOptions{Logger: zerolog.Nop()})
		cfg := clientConfig(fr.URL, sink.URL)
		cfg.PingInterval, cfg.PongWait = 0, 0
		// As on a terminal: one text line per delivery, not kept.
		cfg.Stdout, cfg.JSON = io.Discard, false
		c, err := tunnel.NewClient(cfg)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		b.Cleanup(func() { cancel(); <-done })
		fr.waitConnected(b, 1)
		runDeliveries(b, func(ctx context.Context) error {
			_, err := fr.tunnels().Send(ctx, &relay.OutboundRequest{Method: http.MethodPost, URL: "tunnel://" + testName + "/hooks",
				Header: header, Body: body, Org: testOrg, DeliveryID: "dlv_1", Attempt: 1}, 4096)
			return err
		})
	})
}

// runDeliveries runs send b.N times, 16 at a time, and reports the rate
// and latency percentiles.
func runDeliveries(b *testing.B, send func(context.Context) error) {
	workers := benchWorkers
	ctx := context.Background()
	lat := make([][]time.Duration, workers)
	next := make(chan struct{}, workers)
	var wg sync.WaitGroup
	b.ResetTimer()
	cpu0 := cpuTime(b)
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				t0 := time.Now()
				if err := send(ctx); err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	for range b.N {
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime(b) - cpu0
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	// CPU per delivery (relay side, client and sink together) says what
	// the machine's load does not: on a busy machine, rates follow it.
	b.ReportMetric(float64(cpu.Microseconds())/float64(len(all)), "cpu-us/delivery")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchWorkers is how many deliveries are in flight at once.
var benchWorkers = func() int {
	if n, err := strconv.Atoi(os.Getenv("TUNNEL_BENCH_WORKERS")); err == nil && n > 0 {
		return n
	}
	return 16
}()
