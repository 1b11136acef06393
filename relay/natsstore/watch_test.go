package natsstore

import (
	"context"
	"testing"

	"go.uber.org/goleak"
)

// TestCloseEndsControlWatch: Close stops the watch WatchControl started,
// whose ctx may never end, and waits for it: it closes changed as it
// ends, and no goroutine of the store outlives Close.
func TestCloseEndsControlWatch(t *testing.T) {
	s, _ := newStore(t)
	// After Open: the stream's and bucket's goroutines in the server are
	// the server's, not the store's.
	before := goleak.IgnoreCurrent()
	changed := make(chan string, 1)
	if err := s.WatchControl(context.Background(), changed); err != nil {
		t.Fatalf("WatchControl: got %v, want nil", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: got %v, want nil", err)
	}
	select {
	case what, ok := <-changed:
		if ok {
			t.Errorf("after Close: got %q on changed, want it closed", what)
		}
	default:
		t.Errorf("after Close: got changed open, want it closed (the watch ended)")
	}
	if err := goleak.Find(before); err != nil {
		t.Errorf("after Close: got goroutines left, want none:\n%v", err)
	}
}

// TestWatchControlAfterClose: a watch asked for after Close fails and
// starts nothing.
func TestWatchControlAfterClose(t *testing.T) {
	s, _ := newStore(t)
	s.Close()
	if err := s.WatchControl(context.Background(), make(chan string)); err == nil {
		t.Errorf("WatchControl after Close: got nil, want an error")
	}
}
