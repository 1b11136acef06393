package natsstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
)

// benchInFlight is the endpoint's max_in_flight in the delivery benchmark:
// the dispatcher asks Take for at most this many, less those in flight.
const benchInFlight = 64

// BenchmarkDeliver measures one relay's deliveries a second on an embedded
// JetStream: b.N deliveries are accepted (not timed), then taken and
// recorded delivered as the dispatcher does it, max_in_flight at a time,
// until all are delivered. "retries" has 500 more deliveries waiting for
// a retry an hour away, which every Take must not read; in "failonce"
// each delivery's first attempt fails, due again at once.
//
//	go test ./relay/natsstore -run '^$' -bench Deliver -benchtime 3000x
func BenchmarkDeliver(b *testing.B) {
	srv := startServer(b, nil)
	var prefix atomic.Int64
	for _, bc := range []struct {
		name     string
		waiting  int
		failOnce bool
	}{{"fresh", 0, false}, {"retries", 500, false}, {"failonce", 0, true}} {
		b.Run(bc.name, func(b *testing.B) {
			s := openStore(b, Config{Servers: []string{srv.ClientURL()}, Prefix: fmt.Sprintf("bench%d", prefix.Add(1)), AckWait: 30 * time.Second})
			ctx := context.Background()
			ref := relay.EndpointRef{Org: "acme", Endpoint: "a"}
			limitInFlight(s, ref, benchInFlight)
			now := time.Now()
			benchAccept(b, s, "w", bc.waiting, now)
			// The waiting ones fail once and wait an hour.
			for left := bc.waiting; left > 0; {
				ds, _, err := s.Take(ctx, ref, now, min(left, benchInFlight))
				if err != nil || len(ds) == 0 {
					b.Fatalf("take the waiting ones: %d, %v", len(ds), err)
				}
				for _, d := range ds {
					later := now.Add(time.Hour)
					if err := s.Record(ctx, attempt(d, relay.StatusFailed, now, &later), ""); err != nil {
						b.Fatal(err)
					}
				}
				left -= len(ds)
			}
			benchAccept(b, s, "e", b.N, now)

			b.ResetTimer()
			start := time.Now()
			var (
				wg        sync.WaitGroup
				delivered atomic.Int64
				errs      = make(chan error, 1)
			)
			freed := make(chan struct{}, benchInFlight)
			inflight := 0
			for delivered.Load() < int64(b.N) {
				for len(freed) > 0 {
					<-freed
					inflight--
				}
				free := benchInFlight - inflight
				var ds []*relay.Delivery
				var next time.Time
				if free > 0 {
					var err error
					if ds, next, err = s.Take(ctx, ref, time.Now(), free); err != nil {
						b.Fatal(err)
					}
				}
				if len(ds) == 0 {
					if inflight == 0 {
						if next.IsZero() {
							b.Fatalf("nothing to take, nothing in flight and nothing due later with %d of %d delivered", delivered.Load(), b.N)
						}
						time.Sleep(time.Until(next)) // as the dispatcher waits
						continue
					}
					<-freed // wait for an attempt's end, as the dispatcher does
					inflight--
					continue
				}
				inflight += len(ds)
				for _, d := range ds {
					wg.Go(func() {
						defer func() { freed <- struct{}{} }()
						status, next := relay.StatusDelivered, (*time.Time)(nil)
						if bc.failOnce && len(d.Attempts) == 0 {
							t := time.Now()
							status, next = relay.StatusFailed, &t
						}
						if err := s.Record(ctx, attempt(d, status, time.Now(), next), ""); err != nil {
							select {
							case errs <- err:
							default:
							}
							return
						}
						if status == relay.StatusDelivered {
							delivered.Add(1)
						}
					})
				}
				select {
				case err := <-errs:
					b.Fatal(err)
				default:
				}
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
		})
	}
}

// benchAccept accepts n events of one delivery each to endpoint a, due at
// now, eight at a time.
func benchAccept(b *testing.B, s *Store, prefix string, n int, now time.Time) {
	b.Helper()
	var wg sync.WaitGroup
	var failed atomic.Value
	ids := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range ids {
				ev, ds := mkEvent("acme", fmt.Sprintf("%s%06d", prefix, i), now, false, "a")
				if _, err := s.Accept(context.Background(), ev, ds); err != nil {
					failed.Store(err)
				}
			}
		})
	}
	for i := range n {
		ids <- i
	}
	close(ids)
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		b.Fatalf("accept: %v", err)
	}
}

// limitInFlight tells the store the endpoint's max_in_flight.
func limitInFlight(s *Store, ref relay.EndpointRef, n int) { s.SetMaxInFlight(ref, n) }
