package natsstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ackWaitKey is the control bucket's record of the AckWait the running
// relays share: the duration, rewritten by each of them every AckWait/3.
const ackWaitKey = "relays.ack_wait"

// AckWait is every relay's lease and head lock lifetime, and the ack wait
// of the endpoints' consumers, which every relay updates to its own. Two
// relays with two values would each set the consumers to theirs, the last
// one silently winning: with it shorter than the other's heartbeats, that
// relay's leases lapse mid-attempt and its deliveries are sent twice; with
// it longer, a dead relay's deliveries wait longer than configured. So, as
// a durable consumer bound with another ack wait is refused by NATS's own
// clients, a relay asking for another than the running relays' refuses to
// start. The record is theirs while one of them rewrote it within twice
// its AckWait (by the server's timestamp and this relay's clock); once none
// runs, the next relay to start makes it its own, and the consumers follow
// (see ensureConsumer).
func (s *Store) agreeAckWait(ctx context.Context) error {
	mine := []byte(s.cfg.AckWait.String())
	for try := 0; try < 3; try++ {
		e, err := s.ctl.Get(ctx, ackWaitKey)
		var rev uint64
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			rev, err = s.ctl.Create(ctx, ackWaitKey, mine)
		case err != nil:
			return fmt.Errorf("read %s: %w", ackWaitKey, err)
		default:
			have, live := sharedAckWait(e)
			switch {
			case live && have == s.cfg.AckWait:
				// Rewritten by holdAckWait, as by the others; once now,
				// so that a store that claimed it and closes at once
				// (see Close) leaves it to this one. Failing, another
				// rewrote it just now, which does as well.
				s.ctl.Update(ctx, ackWaitKey, mine, e.Revision())
				return nil
			case live:
				return misconfigured(fmt.Errorf("relays on stream %s use store.ack_wait %s and this relay asks for %s: set store.ack_wait to %s; to change it, stop them all and wait %s",
					s.cfg.Prefix, have, s.cfg.AckWait, have, 2*have))
			}
			// Compare-and-set: of two relays finding it stale, the one
			// that did not write it reads the other's.
			rev, err = s.ctl.Update(ctx, ackWaitKey, mine, e.Revision())
		}
		if err == nil {
			s.ackWaitRev = rev
			return nil
		}
		if !casConflict(err) && !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("write %s: %w", ackWaitKey, err)
		}
	}
	return fmt.Errorf("write %s: changed by other relays on every try", ackWaitKey)
}

// sharedAckWait is the AckWait a record names, and whether a relay that
// runs wrote it (an unreadable one is no relay's).
func sharedAckWait(e jetstream.KeyValueEntry) (time.Duration, bool) {
	d, err := time.ParseDuration(string(e.Value()))
	if err != nil || d <= 0 {
		return 0, false
	}
	return d, time.Since(e.Created()) < 2*d
}

// unclaimAckWait deletes the AckWait record if this store claimed it
// (agreeAckWait found no relay running) and nobody has rewritten it since,
// holdAckWait included: a store open for a moment, as sidehook relay
// rotate-key's, would otherwise hold the setting for twice its AckWait
// after it closed, and a relay started then with another would be refused,
// told of relays that do not run.
func (s *Store) unclaimAckWait() {
	if s.ackWaitRev == 0 || !s.nc.IsConnected() {
		return // nothing claimed, or no one to tell: it lapses
	}
	ctx, cancel := context.WithTimeout(context.Background(), unclaimTimeout)
	defer cancel()
	err := s.ctl.Delete(ctx, ackWaitKey, jetstream.LastRevision(s.ackWaitRev))
	if err != nil && !casConflict(err) {
		s.log.Debug().Err(err).Msg("give up the shared ack wait")
	}
}

// unclaimTimeout bounds unclaimAckWait, so that Close never waits long on
// a lost server.
const unclaimTimeout = 2 * time.Second

// holdAckWait rewrites the AckWait record while the store runs, so that a
// relay with another one is refused (see agreeAckWait).
func (s *Store) holdAckWait() {
	defer s.done.Done()
	t := time.NewTicker(s.cfg.AckWait / 3)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.refreshAckWait(); err != nil {
				s.log.Debug().Err(err).Msg("refresh the shared ack wait")
			}
		}
	}
}

func (s *Store) refreshAckWait() error {
	ctx, cancel := s.writeCtx(context.Background())
	defer cancel()
	e, err := s.ctl.Get(ctx, ackWaitKey)
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		s.noteWrite(err) // the write would fail as well
		return fmt.Errorf("read %s: %w", ackWaitKey, err)
	}
	if err == nil {
		if have, live := sharedAckWait(e); live && have != s.cfg.AckWait {
			// Only after this relay could not rewrite it for twice its
			// AckWait (cut off from NATS) could another have started.
			s.log.Error().Str("ack_wait", s.cfg.AckWait.String()).Str("others", have.String()).
				Msg("another relay started with another store.ack_wait while this one was cut off; restart this one with the same")
			return nil
		}
	}
	_, err = s.ctl.Put(ctx, ackWaitKey, []byte(s.cfg.AckWait.String()))
	s.noteWrite(err) // an idle relay's only write: Health learns from it
	if err != nil {
		return fmt.Errorf("write %s: %w", ackWaitKey, err)
	}
	return nil
}
