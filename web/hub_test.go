package web_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/web"
)

func newHub(tb testing.TB, opts web.HubOptions) *web.Hub {
	tb.Helper()
	opts.Logger = zerolog.Nop()
	h := web.NewHub(opts)
	tb.Cleanup(func() { _ = h.Close() })
	return h
}

func item(n int) web.Item {
	return web.Item{
		Kind: web.KindCapture, ID: fmt.Sprintf("cap_%06d", n), Time: time.Unix(1764064800, int64(n)).UTC(),
		Event: "payment", Method: "POST", Path: "/webhooks", Status: "valid", Data: []byte(`{}`),
	}
}

func recv(tb testing.TB, s *web.Subscription) (web.Item, bool) {
	tb.Helper()
	select {
	case it, ok := <-s.C():
		return it, ok
	case <-time.After(5 * time.Second):
		tb.Fatal("no item within 5s")
		return web.Item{}, false
	}
}

func TestHub(t *testing.T) {
	t.Run("PublishReachesEverySubscriberInOrder", func(t *testing.T) {
		h := newHub(t, web.HubOptions{})
		a, b := h.Subscribe(t.Context()), h.Subscribe(t.Context())
		for i := range 3 {
			h.Publish(item(i))
		}
		for _, s := range []*web.Subscription{a, b} {
			for i := range 3 {
				got, ok := recv(t, s)
				if !ok || got.ID != item(i).ID {
					t.Fatalf("got %v (open %v), want %v", got.ID, ok, item(i).ID)
				}
			}
		}
	})

	t.Run("CloseSubscriptionTwice", func(t *testing.T) {
		h := newHub(t, web.HubOptions{})
		s := h.Subscribe(t.Context())
		s.Close()
		s.Close()
		if _, ok := <-s.C(); ok {
			t.Fatal("got an open channel after Close, want closed")
		}
		if got := h.Subscribers(); got != 0 {
			t.Fatalf("got %d subscribers, want 0", got)
		}
		h.Publish(item(1)) // must not panic on the closed channel
	})

	t.Run("UnsubscribeOnContextEnd", func(t *testing.T) {
		h := newHub(t, web.HubOptions{})
		ctx, cancel := context.WithCancel(t.Context())
		s := h.Subscribe(ctx)
		other := h.Subscribe(t.Context())
		cancel()
		select {
		case <-s.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("subscription still open 5s after its context ended")
		}
		h.Publish(item(7))
		if got, _ := recv(t, other); got.ID != item(7).ID {
			t.Fatalf("other subscriber got %v, want %v", got.ID, item(7).ID)
		}
		if got := h.Subscribers(); got != 1 {
			t.Fatalf("got %d subscribers, want 1", got)
		}
	})

	t.Run("CloseHubTwice", func(t *testing.T) {
		h := newHub(t, web.HubOptions{})
		s := h.Subscribe(t.Context())
		if err := h.Close(); err != nil {
			t.Fatalf("first Close: %v", err)
		}
		if err := h.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if _, ok := <-s.C(); ok {
			t.Fatal("subscription open after hub Close, want closed")
		}
		s.Close()
		h.Publish(item(1))
		late := h.Subscribe(t.Context())
		if _, ok := <-late.C(); ok {
			t.Fatal("subscription on a closed hub is open, want closed")
		}
	})

	t.Run("FullSubscriberDropsAndIsToldSo", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		h := newHub(t, web.HubOptions{ClientBuffer: 4, Registerer: reg})
		stalled := h.Subscribe(t.Context())
		live := h.Subscribe(t.Context())
		got := make(chan int, 1)
		go func() {
			n := 0
			for range live.C() {
				n++
				if n == 10000 {
					break
				}
			}
			got <- n
		}()
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range 10000 {
				h.Publish(item(i))
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Publish blocked on a subscriber that never reads")
		}
		select {
		case <-stalled.Lagged():
		default:
			t.Fatal("Lagged not signalled")
		}
		if n := stalled.TakeDropped(); n != 10000-4 {
			t.Fatalf("stalled subscriber dropped %d, want %d", n, 10000-4)
		}
		if n := stalled.TakeDropped(); n != 0 {
			t.Fatalf("TakeDropped twice gave %d, want 0", n)
		}
		for i := range 4 {
			if it, _ := recv(t, stalled); it.ID != item(i).ID {
				t.Fatalf("stalled got %v, want the first items in order (%v)", it.ID, item(i).ID)
			}
		}
		// The reading subscriber may have lost some too; what it lost is
		// counted, what it got is in order.
		live.Close()
		dropped := metricValue(t, reg, "sidehook_dashboard_dropped_messages_total")
		if dropped < 10000-4 {
			t.Fatalf("dropped counter %v, want >= %d", dropped, 10000-4)
		}
		<-got
	})

	t.Run("TwoHubsShareMetrics", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		newHub(t, web.HubOptions{Registerer: reg})
		newHub(t, web.HubOptions{Registerer: reg}) // must not fail or panic
		mfs, err := reg.Gather()
		if err != nil || len(mfs) != 2 {
			t.Fatalf("got %d metric families (%v), want 2", len(mfs), err)
		}
	})
}

// metricValue sums the named counter or gauge in reg (0 if absent).
func metricValue(tb testing.TB, reg *prometheus.Registry, name string) float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatalf("gather metrics: %v", err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return v
}

func BenchmarkPublishWithStalledSubscriber(b *testing.B) {
	h := newHub(b, web.HubOptions{ClientBuffer: 256})
	h.Subscribe(b.Context()) // never read
	it := item(1)
	b.ReportAllocs()
	for b.Loop() {
		h.Publish(it)
	}
}
