package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/sidehook/sidehook/relay"
)

// Headers of JetStream atomic batch publishing (server 2.12+), which the
// client library does not wrap yet.
const (
	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"
)

// maxBatch is the server's default limit of messages in one atomic batch.
const maxBatch = 1000

// openBatches is how many atomic batches one store has open at once. The
// server allows 50 per stream by default (max_batch_inflight_per_stream):
// three relays stay below it; more relays need it raised.
const openBatches = 16

// errTooManyBatches is the server's answer when a stream has too many open
// batches: the write is tried again.
const errTooManyBatches jetstream.ErrorCode = 10210

type pubReply struct {
	Error  *jetstream.APIError `json:"error,omitempty"`
	Stream string              `json:"stream"`
	Seq    uint64              `json:"seq"`
}

// publish writes msgs to the stream as one atomic batch: every message is
// stored, or none is. It returns when the stream (its quorum, when
// replicated) has acknowledged the commit.
func (s *Store) publish(ctx context.Context, msgs []*nats.Msg) (seq uint64, err error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	if len(msgs) > maxBatch {
		return 0, fmt.Errorf("write of %d records: more than the %d of one atomic batch", len(msgs), maxBatch)
	}
	if err := s.ready(); err != nil {
		return 0, err
	}
	defer func() { s.noteWrite(err) }()
	ctx, cancel := s.writeCtx(ctx)
	defer cancel()
	if len(msgs) == 1 {
		return s.request(ctx, msgs[0])
	}
	select {
	case s.batches <- struct{}{}:
		defer func() { <-s.batches }()
	case <-ctx.Done():
		return 0, fmt.Errorf("wait to write: %w", ctx.Err())
	}
	for {
		seq, err := s.batch(ctx, msgs)
		var ae *jetstream.APIError
		if !errors.As(err, &ae) || ae.ErrorCode != errTooManyBatches {
			return seq, err
		}
		select { // other relays' batches fill the stream's allowance
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return 0, err
		}
	}
}

func (s *Store) batch(ctx context.Context, msgs []*nats.Msg) (uint64, error) {
	id := nuid.Next()
	for i, m := range msgs {
		if m.Header == nil {
			m.Header = nats.Header{}
		}
		m.Header.Set(hdrBatchID, id)
		m.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
		switch i {
		case len(msgs) - 1:
			m.Header.Set(hdrBatchCommit, "1")
			return s.request(ctx, m)
		case 0:
			// The first is a request so that a stream that refuses
			// batches says so before the rest is sent.
			if _, err := s.request(ctx, m); err != nil {
				return 0, err
			}
		default:
			if err := s.nc.PublishMsg(m); err != nil {
				return 0, fmt.Errorf("publish: %w", err)
			}
		}
	}
	return 0, errors.New("unreachable")
}

// request publishes one message and reads the stream's answer. An empty
// answer is the acknowledgement of a batch message before the commit.
func (s *Store) request(ctx context.Context, m *nats.Msg) (uint64, error) {
	r, err := s.nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		return 0, fmt.Errorf("publish to %s: %w", m.Subject, unavailable(err))
	}
	if len(r.Data) == 0 {
		return 0, nil
	}
	var rep pubReply
	if err := json.Unmarshal(r.Data, &rep); err != nil {
		return 0, fmt.Errorf("publish to %s: answer: %w", m.Subject, err)
	}
	if rep.Error != nil {
		return 0, fmt.Errorf("publish to %s: %w", m.Subject, unavailable(rep.Error))
	}
	return rep.Seq, nil
}

// casConflict reports an expected-last-sequence mismatch: someone wrote the
// subject since it was read.
func casConflict(err error) bool {
	var ae *jetstream.APIError
	return errors.As(err, &ae) && (ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// msg is a stream record; expect >= 0 adds a compare-and-set on its subject
// (0: the subject must be empty).
func msg(subject string, data []byte, expect int64) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = data
	if expect >= 0 {
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatInt(expect, 10))
	}
	return m
}

// get reads a subject's record, or nil when there is none. It asks the
// stream's leader: a direct get may be answered by a follower whose copy
// lags by a moment, so a relay would miss what it has just written (a
// stale head lock held an ordered endpoint for AckWait), and a producer
// could be told 404 for the event it was just answered 202 for. The
// legacy JetStream context asks the leader unless told DirectGet; the
// newer one uses direct gets whenever the stream allows them.
func (s *Store) get(ctx context.Context, subject string) (*nats.RawStreamMsg, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	ctx, cancel := s.bound(ctx, opTimeout)
	defer cancel()
	m, err := s.leader.GetLastMsg(s.cfg.Prefix, subject, nats.Context(ctx))
	if errors.Is(err, nats.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", subject, unavailable(err))
	}
	return m, nil
}

// list returns the subjects matching filter that hold a record.
func (s *Store) list(ctx context.Context, filter string) ([]string, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	ctx, cancel := s.bound(ctx, opTimeout)
	defer cancel()
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", filter, err)
	}
	out := make([]string, 0, len(info.State.Subjects))
	for subj, n := range info.State.Subjects {
		if n > 0 {
			out = append(out, subj)
		}
	}
	return out, nil
}

// remove deletes every record of the subjects (a purge of each).
func (s *Store) remove(ctx context.Context, subjects ...string) error {
	if err := s.ready(); err != nil {
		return err
	}
	ctx, cancel := s.writeCtx(ctx)
	defer cancel()
	for _, subj := range subjects {
		if err := s.stream.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
			return fmt.Errorf("delete %s: %w", subj, err)
		}
	}
	return nil
}

// deleteWork deletes a work item by its sequence. A purge by subject would
// do too, but the server then drops every given-back item of the matching
// consumer from its redelivery queue (they would wait for AckWait).
func (s *Store) deleteWork(ctx context.Context, subject string) error {
	m, err := s.get(ctx, subject)
	if err != nil || m == nil {
		return err
	}
	if err := s.deleteSeq(ctx, m.Sequence); err != nil {
		return fmt.Errorf("delete %s: %w", subject, err)
	}
	return nil
}

// deleteSeq deletes the stream's message at seq. One already gone (another
// path deleted it first) is no error: the server's answer for that is only
// the text of a failed delete, so the leader is asked whether it is gone.
func (s *Store) deleteSeq(ctx context.Context, seq uint64) error {
	ctx, cancel := s.writeCtx(ctx)
	defer cancel()
	err := s.stream.DeleteMsg(ctx, seq)
	if err == nil {
		return nil
	}
	if found, serr := s.stored(ctx, seq); serr == nil && !found {
		return nil
	}
	return unavailable(err)
}

// unavailableError is an error of the transport or of a JetStream that
// cannot answer now (a leader election, a lost connection): the relay
// answers 503 and the producer retries.
type unavailableError struct{ err error }

func (e unavailableError) Error() string   { return e.err.Error() }
func (e unavailableError) Unwrap() []error { return []error{e.err, relay.ErrUnavailable} }

func unavailable(err error) error {
	var ae *jetstream.APIError
	var lae *nats.APIError // from get's legacy context
	switch {
	case errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, context.DeadlineExceeded),
		// A stream replica left without a leader (a lost quorum) answers
		// a publish at once with no responders, not after a timeout.
		errors.Is(err, jetstream.ErrNoStreamResponse),
		// A request the lost connection ended (see bound); one its caller
		// gave up on is answered to no one.
		errors.Is(err, context.Canceled),
		errors.As(err, &ae) && ae.Code == 503, errors.As(err, &lae) && lae.Code == 503:
		return unavailableError{err}
	}
	return err
}

// removeBefore deletes a subject's records below sequence seq (0: all of
// them), so a record written since a state was read at seq stays.
func (s *Store) removeBefore(ctx context.Context, subject string, seq uint64) error {
	if err := s.ready(); err != nil {
		return err
	}
	ctx, cancel := s.writeCtx(ctx)
	defer cancel()
	opts := []jetstream.StreamPurgeOpt{jetstream.WithPurgeSubject(subject)}
	if seq > 0 {
		opts = append(opts, jetstream.WithPurgeSequence(seq))
	}
	if err := s.stream.Purge(ctx, opts...); err != nil {
		return fmt.Errorf("delete %s: %w", subject, err)
	}
	return nil
}

// stored reports whether the stream holds the message at seq, as its
// leader says (see get).
func (s *Store) stored(ctx context.Context, seq uint64) (bool, error) {
	if err := s.ready(); err != nil {
		return false, err
	}
	ctx, cancel := s.bound(ctx, opTimeout)
	defer cancel()
	_, err := s.leader.GetMsg(s.cfg.Prefix, seq, nats.Context(ctx))
	if errors.Is(err, nats.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read message %d: %w", seq, unavailable(err))
	}
	return true, nil
}
