package badgerstore_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
)

// BenchmarkDeliver is the store's share of the delivery path at full load:
// events are accepted while a dispatcher-like loop takes what is due, a
// few at a time, and records each delivered. ns/op is per delivery, and
// mostly two durable writes' wait; cpu-us/op is the process's CPU time
// per delivery, which a busy machine disturbs less.
func BenchmarkDeliver(b *testing.B) {
	for _, backlog := range []int{0, 10000} {
		b.Run(fmt.Sprintf("backlog=%d", backlog), func(b *testing.B) {
			ctx := context.Background()
			s := open(b, b.TempDir())
			ref := relay.EndpointRef{Org: "acme", Endpoint: "crm"}
			n := 0
			accept := func() {
				n++
				ev, ds := newEvent(fmt.Sprintf("evt_%09d", n), "crm")
				// Each due at its own time, as the relay's clock makes them.
				at := ev.ReceivedAt.Add(time.Duration(n) * time.Microsecond)
				ev.ReceivedAt, ds[0].CreatedAt, ds[0].NextAttemptAt = at, at, &at
				if _, err := s.Accept(ctx, ev, ds); err != nil {
					b.Fatal(err)
				}
			}
			for range backlog {
				accept()
			}
			b.ResetTimer()
			cpu0 := cpuTime(b)
			for range b.N {
				accept()
				ds, _, err := s.Take(ctx, ref, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), 8)
				if err != nil {
					b.Fatal(err)
				}
				for _, d := range ds {
					d.Status, d.NextAttemptAt = relay.StatusDelivered, nil
					d.Attempts = append(d.Attempts, relay.Attempt{N: 1, At: time.Now(), Status: 200})
					if err := s.Record(ctx, d, ""); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-us/op")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
