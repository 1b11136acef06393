package tunnel

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	c := backoffClient(t)
	tests := []struct {
		failures int
		lo, hi   time.Duration
	}{
		{0, 80 * time.Millisecond, 120 * time.Millisecond},
		{1, 160 * time.Millisecond, 240 * time.Millisecond},
		{3, 640 * time.Millisecond, 960 * time.Millisecond},
		{4, 800 * time.Millisecond, time.Second},
		{50, 800 * time.Millisecond, time.Second},
	}
	for _, tt := range tests {
		for range 100 {
			if d := c.backoff(tt.failures); d < tt.lo || d > tt.hi {
				t.Fatalf("backoff(%d): got %v, want within [%v, %v]", tt.failures, d, tt.lo, tt.hi)
			}
		}
	}
}

// TestHeld: a connection that was ready starts the backoff over only when
// it lasted at least the wait it would be followed by: one dropped at
// once, every time, is not dialled again at the shortest wait for ever,
// and one that held while a developer worked is back at once after a
// relay restart, whatever waits came before.
func TestHeld(t *testing.T) {
	c := backoffClient(t)
	tests := []struct {
		failures int
		lasted   time.Duration
		want     bool
	}{
		{0, time.Millisecond, false},
		{0, 100 * time.Millisecond, true},
		{3, 500 * time.Millisecond, false},
		{3, 800 * time.Millisecond, true},
		{50, 999 * time.Millisecond, false},
		{50, time.Second, true},
	}
	for _, tt := range tests {
		if got := c.held(tt.lasted, tt.failures); got != tt.want {
			t.Errorf("held(%v, %d): got %v, want %v", tt.lasted, tt.failures, got, tt.want)
		}
	}
}

// TestForwardBudget: the local app gets the relay's timeout less a tenth,
// at most a second, so its answer can travel back before the relay gives
// up; no timeout from the relay is the default.
func TestForwardBudget(t *testing.T) {
	tests := []struct {
		timeoutMS int64
		want      time.Duration
	}{
		{0, DefaultForwardTimeout},
		{-5, DefaultForwardTimeout},
		{1, 900 * time.Microsecond},
		{100, 90 * time.Millisecond},
		{5_000, 4_500 * time.Millisecond},
		{15_000, 14 * time.Second},
		{60_000, 59 * time.Second},
	}
	for _, tt := range tests {
		if got := forwardBudget(tt.timeoutMS); got != tt.want {
			t.Errorf("forwardBudget(%d): got %v, want %v", tt.timeoutMS, got, tt.want)
		}
	}
}

// backoffClient is a client whose backoff runs from 100 ms to 1 s.
func backoffClient(t *testing.T) *Client {
	t.Helper()
	c, err := NewClient(ClientConfig{RelayURL: "http://relay", APIKey: "k", Name: "laptop", Forward: "http://localhost:3000",
		BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
