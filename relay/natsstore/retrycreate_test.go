package natsstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// TestRetryCreateKeepsTheServersAnswer: when the time for a create runs
// out during a try, after the servers said they lack the nodes for the
// replicas, the error is their answer (which says what to do), not the
// deadline. TestThreeReplicasOfTwoNodes met the deadline once under load.
func TestRetryCreateKeepsTheServersAnswer(t *testing.T) {
	var log logBuf
	s := &Store{cfg: Config{Replicas: 3}, log: zerolog.New(&log)}
	lacking := &jetstream.APIError{ErrorCode: errCodeNoPeers, Description: "insufficient resources"}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	tries := 0
	err := s.retryCreate(ctx, createTry, func(ctx context.Context) error {
		if tries++; tries == 1 {
			return lacking
		}
		<-ctx.Done() // a try the servers never answer
		return ctx.Err()
	})
	if !errors.Is(err, lacking) {
		t.Errorf("retryCreate: %v after %d tries, want the servers' answer %v", err, tries, lacking)
	}
	if n := log.lines("warn", "waiting for them"); n != 1 {
		t.Errorf("%d warnings of the wait, want 1; log:\n%s", n, log.b.String())
	}
}

// notReadyConsumer is a consumer whose first notFound infos answer "not
// found", as one whose replicas have not yet elected a leader does.
type notReadyConsumer struct {
	jetstream.Consumer
	notFound, reads int
}

func (c *notReadyConsumer) Info(ctx context.Context) (*jetstream.ConsumerInfo, error) {
	if c.reads++; c.reads <= c.notFound {
		return nil, jetstream.ErrConsumerNotFound
	}
	return &jetstream.ConsumerInfo{}, nil
}

// TestAwaitConsumerLeader: a consumer just made is used once it answers;
// one that never does ends with the try's context.
func TestAwaitConsumerLeader(t *testing.T) {
	c := &notReadyConsumer{notFound: 2}
	if err := awaitConsumerLeader(context.Background(), c); err != nil || c.reads != 3 {
		t.Errorf("awaitConsumerLeader: %v after %d reads, want nil after 3", err, c.reads)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	never := &notReadyConsumer{notFound: 1 << 30}
	if err := awaitConsumerLeader(ctx, never); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("awaitConsumerLeader of a consumer never ready: %v, want the try's deadline", err)
	}
}
