package pubsub_test

import (
	"context"
	"sync"
	"testing"

	"github.com/sidehook/sidehook/internal/pubsub"
)

func TestPublishReachesEverySubscriber(t *testing.T) {
	h := pubsub.New[int](nil)
	a := h.Subscribe(context.Background(), pubsub.Options{Buffer: 4})
	b := h.Subscribe(context.Background(), pubsub.Options{Buffer: 4})
	h.Publish(1, 2)
	for _, s := range []*pubsub.Subscription[int]{a, b} {
		for _, want := range []int{1, 2} {
			if got := <-s.C(); got != want {
				t.Fatalf("got %d, want %d", got, want)
			}
		}
	}
}

func TestSlowSubscriberLosesAndIsTold(t *testing.T) {
	var onDrop int
	h := pubsub.New[int](func() { onDrop++ })
	s := h.Subscribe(context.Background(), pubsub.Options{Buffer: 2})
	h.Publish(1, 2, 3, 4, 5)
	select {
	case <-s.Lagged():
	default:
		t.Fatal("got no Lagged signal, want one after a drop")
	}
	if got := s.TakeDropped(); got != 3 {
		t.Fatalf("got %d dropped, want 3", got)
	}
	if got := s.TakeDropped(); got != 0 {
		t.Fatalf("got %d dropped after taking, want 0", got)
	}
	if s.Dropped() != 3 || h.Dropped() != 3 || onDrop != 3 {
		t.Fatalf("got subscription %d, hub %d, onDrop %d, want 3 each", s.Dropped(), h.Dropped(), onDrop)
	}
}

// TestLostReachesEverySubscriber: a loss upstream of the hub reaches each
// subscriber as its own drops would, and is not counted again on the hub.
func TestLostReachesEverySubscriber(t *testing.T) {
	var onDrop int
	h := pubsub.New[int](func() { onDrop++ })
	a := h.Subscribe(context.Background(), pubsub.Options{Buffer: 4})
	b := h.Subscribe(context.Background(), pubsub.Options{Buffer: 4})
	off := h.Subscribe(context.Background(), pubsub.Options{Buffer: 4, Wanted: func() bool { return false }})
	h.Lost(0)
	h.Lost(3)
	for name, s := range map[string]*pubsub.Subscription[int]{"a": a, "b": b} {
		select {
		case <-s.Lagged():
		default:
			t.Fatalf("%s: got no Lagged signal, want one", name)
		}
		if got := s.TakeDropped(); got != 3 || s.Dropped() != 3 {
			t.Fatalf("%s: got %d taken, %d dropped, want 3 and 3", name, got, s.Dropped())
		}
	}
	if off.Dropped() != 0 {
		t.Fatalf("a subscriber that wants nothing now got %d dropped, want 0", off.Dropped())
	}
	if h.Dropped() != 0 || onDrop != 0 {
		t.Fatalf("got hub %d, onDrop %d, want 0 each: the hub lost nothing", h.Dropped(), onDrop)
	}
}

func TestUnwantedIsSkippedNotDropped(t *testing.T) {
	h := pubsub.New[int](nil)
	var want bool
	s := h.Subscribe(context.Background(), pubsub.Options{Buffer: 1, Wanted: func() bool { return want }})
	h.Publish(1, 2, 3)
	if s.Dropped() != 0 || len(s.C()) != 0 {
		t.Fatalf("got %d dropped and %d queued, want neither", s.Dropped(), len(s.C()))
	}
	want = true
	h.Publish(4)
	if got := <-s.C(); got != 4 {
		t.Fatalf("got %d, want 4", got)
	}
}

func TestSubscriptionEnds(t *testing.T) {
	cases := []struct {
		name string
		end  func(h *pubsub.Hub[int], s *pubsub.Subscription[int], cancel context.CancelFunc)
	}{
		{"Close", func(_ *pubsub.Hub[int], s *pubsub.Subscription[int], _ context.CancelFunc) { s.Close(); s.Close() }},
		{"ContextDone", func(_ *pubsub.Hub[int], _ *pubsub.Subscription[int], cancel context.CancelFunc) { cancel() }},
		{"HubClosed", func(h *pubsub.Hub[int], _ *pubsub.Subscription[int], _ context.CancelFunc) { h.Close(); h.Close() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := pubsub.New[int](nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s := h.Subscribe(ctx, pubsub.Options{})
			tc.end(h, s, cancel)
			<-s.Done()
			if _, ok := <-s.C(); ok {
				t.Fatal("got an item, want C closed")
			}
			h.Publish(1) // must not panic on a closed channel
			if n := h.Subscribers(); n != 0 {
				t.Fatalf("got %d subscribers, want 0", n)
			}
		})
	}
}

func TestSubscribeOnClosedHub(t *testing.T) {
	h := pubsub.New[string](nil)
	h.Close()
	s := h.Subscribe(context.Background(), pubsub.Options{})
	if _, ok := <-s.C(); ok {
		t.Fatal("got an item, want a closed subscription")
	}
}

// TestConcurrentPublishAndClose is for the race detector: publishers,
// subscribers coming and going, and a closing hub never send on a closed
// channel.
func TestConcurrentPublishAndClose(t *testing.T) {
	h := pubsub.New[int](nil)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				h.Publish(i)
			}
		}()
		go func() {
			defer wg.Done()
			for range 100 {
				ctx, cancel := context.WithCancel(context.Background())
				s := h.Subscribe(ctx, pubsub.Options{Buffer: 1})
				cancel()
				<-s.Done()
			}
		}()
	}
	h.Close()
	wg.Wait()
}
