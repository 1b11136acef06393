package relay

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/rs/zerolog"
)

// countSharer counts what share sends.
type countSharer struct{ messages, changes int }

func (c *countSharer) ShareChanges(msg []byte) error {
	c.messages++
	c.changes += bytes.Count(msg, []byte{'\n'}) - 1 // the header's line
	return nil
}

func (*countSharer) HearChanges(context.Context, func(string, []byte)) error { return nil }

// TestShareBatches: changes a relay makes within moments of each other,
// each after share has taken the one before, go to the other relays as a
// few messages, not one each: a NATS message per change cost the relays
// about a quarter more CPU per event.
func TestShareBatches(t *testing.T) {
	h := newHub(true)
	sub := h.subscribeOwn(context.Background())
	sh := &countSharer{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		share(sub, sh, zerolog.Nop())
	}()
	const n = 100
	for i := range n {
		h.publish(Change{Kind: ChangeEvent, Org: "demo", EventID: fmt.Sprintf("evt_%d", i), Type: "payment"})
		for len(sub.C()) > 0 {
			runtime.Gosched() // until share has taken it
		}
	}
	h.close()
	<-done
	if sh.changes != n {
		t.Errorf("got %d changes shared, want %d", sh.changes, n)
	}
	if sh.messages > n/10 {
		t.Errorf("got %d messages for %d changes, want at most %d", sh.messages, n, n/10)
	}
}
