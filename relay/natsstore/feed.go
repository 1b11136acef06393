package natsstore

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/sidehook/sidehook/relay"
)

// ShareChanges sends msg, a batch of the relay's changes, to the other
// relays sharing this store (the relay's changeSharer). It does not wait
// for them or for the server: nats.go buffers the message, and one that
// cannot go (the connection lost for longer than its buffer holds) is an
// error here and lost, which is what a best-effort feed may do.
func (s *Store) ShareChanges(msg []byte) error {
	if err := s.nc.Publish(s.subj.feed(s.id), msg); err != nil {
		return fmt.Errorf("share changes: %w", err)
	}
	return nil
}

// HearChanges calls heard with each message another store of this
// prefix shared, and with the id of the store that shared it, until ctx
// ends or the store is closed. One subscription calls it, so a store's
// messages come in the order it shared them; heard must not block.
func (s *Store) HearChanges(ctx context.Context, heard func(from string, msg []byte)) error {
	// Under mu, as Close sets closed before it closes the connection: a
	// subscription made after Close would fail there, one made before it
	// ends with the connection.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("hear changes: %w: store closed", relay.ErrUnavailable)
	}
	sub, err := s.nc.Subscribe(s.subj.feedAll(), func(m *nats.Msg) {
		if from, err := s.subj.parseFeed(m.Subject); err == nil && from != s.id {
			heard(from, m.Data)
		}
	})
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("hear changes: %w", err)
	}
	context.AfterFunc(ctx, func() { _ = sub.Unsubscribe() })
	// The server has the subscription once it answers a ping: from then
	// on it passes on everything shared.
	fctx, cancel := s.bound(ctx, opTimeout)
	defer cancel()
	if err := s.nc.FlushWithContext(fctx); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("hear changes: %w", err)
	}
	return nil
}

// Notices of work given back (subjects.back): a Release gives its work
// item back to the consumer, or frees the head lock, and writes nothing
// the others hear (Wake hears what is written): the notice wakes them to
// take it now rather than at their next tick, up to a quarter of AckWait
// later. Core NATS, never stored, as the feed.

// tellGivenBack wakes every store of this prefix (this one too) for ref.
// Best effort: a notice lost leaves the work to the tick.
func (s *Store) tellGivenBack(ref relay.EndpointRef) {
	if err := s.nc.Publish(s.subj.back(ref.Org, ref.Endpoint), nil); err != nil {
		s.log.Debug().Err(err).Msg("tell the relays of work given back")
	}
}

// onBack hears tellGivenBack.
func (s *Store) onBack(m *nats.Msg) {
	org, ep, err := s.subj.parseBack(m.Subject)
	if err != nil {
		return
	}
	s.notify(relay.EndpointRef{Org: org, Endpoint: ep})
}
