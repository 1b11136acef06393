package natsstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidehook/sidehook/relay"
)

// noDelete is a stream whose message deletes fail, as during a leader
// election.
type noDelete struct{ jetstream.Stream }

func (noDelete) DeleteMsg(context.Context, uint64) error {
	return errors.New("nats: timeout")
}

// A delivered delivery whose work item could not be deleted (the stream
// lost its leader just then) leaves no work item for ever: acknowledged
// first, the item was never offered again, so no Take dropped it, and
// every relay counted it as waiting (queue depth, max_queue) from then on.
func TestEndedWorkItemDeletedLater(t *testing.T) {
	srv := startServer(t, nil)
	s := openStore(t, Config{Servers: []string{srv.ClientURL()}, AckWait: time.Second})
	ctx := context.Background()
	ref := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	ev, ds := mkEvent("acme", "e0", t0, false, "a")
	accept(t, s, ev, ds)
	got, _ := take(t, s, ref, t0, 1)
	if len(got) != 1 {
		t.Fatalf("took %v, want e0_a", ids(got))
	}
	stream := s.stream
	s.stream = noDelete{stream}
	err := s.Record(ctx, attempt(got[0], relay.StatusDelivered, t0, nil), "")
	s.stream = stream
	if err != nil {
		t.Fatalf("record: %v", err)
	}
	waitFor(t, 10*time.Second, "the delivered delivery's work item to go", func() bool {
		if ds, _ := take(t, s, ref, t0.Add(time.Minute), 10); len(ds) != 0 {
			t.Fatalf("took %v after it was delivered", ids(ds))
		}
		w, err := s.Waiting(ctx)
		return err == nil && w[ref] == 0
	})
}
