package natsstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidehook/sidehook/relay"
)

// Limits of one Take: how many work items one fetch asks for, and how many
// due retries it moves back to the consumer (the rest wait for the next).
const (
	fetchBatch   = 256
	promoteBatch = 256
)

// fullPoll is how soon a Take that found every slot of the endpoint's
// consumer held by other relays asks to be called again.
const fullPoll = 100 * time.Millisecond

// hearWait bounds how long a Take waits for the endpoint's consumer to
// know of a work item this store wrote (see wrote). Past it one waiting
// pull, which reads the stream whatever the consumer counts, looks for it.
const hearWait = time.Second

// pullEvery is how often at most a Take whose no-wait fetch came back
// short makes one waiting pull, besides the one awaitHeard may call for;
// shorter than the dispatcher's idle recheck (30 s), so each of an idle
// endpoint's rechecks makes one.
const pullEvery = 20 * time.Second

type candidate struct {
	msg jetstream.Msg
	st  *state
	rev uint64
	key time.Time // due time
}

// Take leases up to n of the endpoint's deliveries due at now: the head
// of its ordered deliveries (see takeOrdered), then those its consumer
// offers (see takeQueued).
func (s *Store) Take(ctx context.Context, ref relay.EndpointRef, now time.Time, n int) ([]*relay.Delivery, time.Time, error) {
	if err := s.ready(); err != nil {
		return nil, time.Time{}, fmt.Errorf("take %s: %w", ref, err)
	}
	if n <= 0 {
		return nil, time.Time{}, nil
	}
	// One Take per endpoint at a time in this store: two would move the
	// same due retries and fetch past each other's slots.
	mu := s.takeLock(ref)
	mu.Lock()
	defer mu.Unlock()
	out, next, err := s.takeOrdered(ctx, ref, now)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("take %s: %w", ref, err)
	}
	more, qnext, err := s.takeQueued(ctx, ref, now, n-len(out))
	out = append(out, more...)
	next = earliest(next, qnext)
	if err != nil && len(out) == 0 {
		return nil, next.UTC(), fmt.Errorf("take %s: %w", ref, err)
	}
	if err != nil {
		// What was leased is handed out: a caller that drops a Take's
		// deliveries on error would leave their leases heartbeating.
		s.log.Warn().Err(err).Str("endpoint", ref.String()).Msg("take: some waiting deliveries were not read")
	}
	return out, next.UTC(), nil
}

// earliest is the earlier of two times, zero meaning none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// takeQueued moves the endpoint's due retries into its consumer (see
// promote), then fetches at most the n it may lease: a due delivery is
// leased, one not due yet is parked on a retry item (see park), a stale
// copy is dropped. When the consumer limits its pending messages (the
// endpoint's max_in_flight, across relays) it asks for no more than the
// free slots, since a pull beyond them would wait for a slot.
func (s *Store) takeQueued(ctx context.Context, ref relay.EndpointRef, now time.Time, n int) ([]*relay.Delivery, time.Time, error) {
	if n <= 0 {
		return nil, time.Time{}, nil
	}
	// Made here too, not only by Accept: another relay may have deleted
	// the endpoint (and its consumer) and then made it again.
	c, limited, err := s.ensureConsumer(ctx, ref)
	if err != nil {
		return nil, time.Time{}, err
	}
	next, err := s.promote(ctx, ref, now)
	if err != nil {
		return nil, next, err
	}
	unheard := s.unheardOf(ref)
	var (
		out    []candidate
		back   []jetstream.Msg
		ferr   error
		pull   bool // the next fetch waits (see awaitHeard's fallback below)
		pulled bool // this Take made a waiting pull
	)
	seen := map[string]bool{}
	for ferr == nil && len(out) < n {
		k := min(n-len(out), fetchBatch)
		full := false
		if limited {
			free, err := s.freeSlots(ctx, c)
			if err != nil {
				ferr = err
				break
			}
			if full = free <= 0; !full {
				k = min(k, free)
			}
		}
		var batch jetstream.MessageBatch
		var err error
		if full {
			// Every slot is held, maybe by a relay that died: the server
			// redelivers its messages once their AckWait ends, within the
			// limit they already count against, but only to a pull. A
			// short one takes them, or ends empty after fullPoll while
			// every holder lives (a pull that waits for no time would
			// wait for a free slot instead).
			next = earliest(next, now.Add(fullPoll))
		}
		if full || pull {
			pull, pulled = false, true
			s.notePull(ref)
			batch, err = c.Fetch(k, jetstream.FetchMaxWait(fullPoll))
		} else {
			batch, err = c.FetchNoWait(k)
		}
		if err != nil {
			ferr = err
			break
		}
		got := 0
		var shown uint64 // the last stream sequence fetched
		var due []candidate
		for m := range batch.Messages() {
			got++
			if meta, err := m.Metadata(); err == nil {
				shown = max(shown, meta.Sequence.Stream)
			}
			if ferr != nil {
				back = append(back, m)
				continue
			}
			_, _, id, err := s.subj.parseWork(m.Subject())
			if err != nil {
				_ = m.Term() // not ours to read
				continue
			}
			if seen[id] {
				back = append(back, m)
				continue
			}
			seen[id] = true
			st, rev, err := s.state(ctx, ref.Org, id)
			switch {
			case errors.Is(err, relay.ErrNotFound) && s.young(m),
				err == nil && workGen(m) > st.Gen:
				// The item was written with a state this read does not
				// show yet (see young): offered again, never dropped.
				back = append(back, m)
				next = earliest(next, now.Add(lagRecheck))
				continue
			case errors.Is(err, relay.ErrNotFound) || err == nil && relay.Final(st.Status):
				s.finishEnded(ctx, m) // a leftover of a Record or a Purge cut short
				continue
			case err != nil:
				ferr = err
				back = append(back, m)
				continue
			case workGen(m) < st.Gen:
				// A copy replaced by a newer item (parked, requeued,
				// expedited): only the newest may be leased.
				s.finish(ctx, m)
				continue
			}
			st.settle() // a lease that timed out, with its requeue mark
			at := st.due()
			if at.After(now) {
				if err := s.park(ctx, m, st, rev); err != nil {
					back = append(back, m)
					if !casConflict(err) {
						ferr = err
					}
					next = earliest(next, now) // changed under us: look again soon
					continue
				}
				next = earliest(next, at)
				continue
			}
			due = append(due, candidate{msg: m, st: st, rev: rev, key: at})
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) && ferr == nil {
			ferr = err
		}
		for _, cd := range due {
			if ferr != nil {
				back = append(back, cd.msg)
				continue
			}
			if err := s.lease(ctx, ref, cd); err != nil {
				back = append(back, cd.msg)
				if !casConflict(err) {
					ferr = err
				}
				next = earliest(next, now)
				continue
			}
			out = append(out, cd)
		}
		if unheard > 0 && shown >= unheard {
			s.heard(ref, unheard)
			unheard = 0
		}
		if got < k && !full && unheard > 0 && ferr == nil {
			// A short no-wait fetch that did not show a work item this
			// store wrote: the consumer may not know of it yet.
			ok, err := s.awaitHeard(ctx, c, unheard)
			s.heard(ref, unheard) // waited for once, whatever came of it
			unheard = 0
			if err != nil {
				ferr = err
				break
			}
			if ok {
				continue // fetch again: now it finds the item
			}
			// The consumer still counts nothing for an item stored here.
			// Its count can miss messages for good (a consumer made while
			// they were written, on a busy cluster), and the server answers
			// a no-wait fetch by that count: "no messages", on every Take
			// until another item comes. A waiting pull reads the stream.
			pull = true
			continue
		}
		if got < k && !full && !pulled && ferr == nil && s.pullDue(ref) {
			// Items this store did not write, or wrote before a restart,
			// are not tracked (see wrote); if the count missed them, no
			// no-wait fetch finds them until another item comes. A waiting
			// pull now and then does, within an idle recheck.
			pull = true
			continue
		}
		if got < k || full {
			break
		}
	}
	// A pull request to a deleted consumer finds no responder.
	if errors.Is(ferr, jetstream.ErrConsumerNotFound) || errors.Is(ferr, jetstream.ErrConsumerDeleted) ||
		errors.Is(ferr, nats.ErrNoResponders) {
		s.dropConsumer(ref) // the endpoint was deleted; the next Take makes it again
		ferr = nil
	}
	s.giveBack(ctx, back...)
	slices.SortFunc(out, func(a, b candidate) int {
		if c := a.key.Compare(b.key); c != 0 {
			return c
		}
		return strings.Compare(a.st.ID, b.st.ID)
	})
	ds := make([]*relay.Delivery, len(out))
	for i, cd := range out {
		ds[i] = cd.st.out()
	}
	return ds, next, ferr
}

// wrote notes a work item this store wrote at seq in ref's consumer. The
// server acknowledges a write before it tells the stream's consumers of it
// (another of its goroutines does, a moment later), and a no-wait fetch of
// a consumer that knows of no message answers "no messages" at once
// without reading the stream. So a Take just after a write here (an
// Accept, a retry it moved, a Requeue, an Expedite) could come back empty
// though the item is due; it waits for the consumer instead (see
// awaitHeard). A fetch that returns the item, or one after it, spares the
// wait.
// Another relay's writes are not waited for: Wake names their endpoint
// when they land, and the Take it brings about finds them.
func (s *Store) wrote(ref relay.EndpointRef, seq uint64) {
	s.mu.Lock()
	s.unheard[ref] = max(s.unheard[ref], seq)
	s.mu.Unlock()
}

// unheardOf is the sequence of ref's last work item written here that its
// consumer may not know of (0: none).
func (s *Store) unheardOf(ref relay.EndpointRef) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unheard[ref]
}

// heard forgets ref's written work items up to seq; a later one stays.
func (s *Store) heard(ref relay.EndpointRef, seq uint64) {
	s.mu.Lock()
	if s.unheard[ref] <= seq {
		delete(s.unheard, ref)
	}
	s.mu.Unlock()
}

// notePull notes that a Take of ref makes a waiting pull now.
func (s *Store) notePull(ref relay.EndpointRef) {
	s.mu.Lock()
	s.pulled[ref] = time.Now()
	s.mu.Unlock()
}

// pullDue reports whether ref's Take made no waiting pull for pullEvery,
// or none since this store opened.
func (s *Store) pullDue(ref relay.EndpointRef) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.pulled[ref]
	return !ok || time.Since(at) >= pullEvery
}

// awaitHeard waits, for at most hearWait, until the consumer knows of the
// work item at seq: it counts messages not yet delivered (a fetch then
// reads the stream, and finds the item), or it has delivered past it (to
// any relay). It reports whether the consumer does.
func (s *Store) awaitHeard(ctx context.Context, c jetstream.Consumer, seq uint64) (bool, error) {
	ctx, cancel := s.bound(ctx, hearWait)
	defer cancel()
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		info, err := c.Info(ctx)
		if ctx.Err() != nil {
			return false, nil // given up: a later Take finds the item
		}
		if err != nil {
			return false, fmt.Errorf("read consumer: %w", unavailable(err))
		}
		if info.NumPending > 0 || info.Delivered.Stream >= seq {
			return true, nil
		}
		select {
		case <-ctx.Done():
			return false, nil
		case <-time.After(wait):
		}
	}
}

// freeSlots is how many more messages the consumer hands out before its
// MaxAckPending stops it, counting every relay's leases. A consumer's
// answer can be lost (its leader moving, or just made): the read is
// bounded as a create's try is, and the Take that asked fails, to be made
// again soon, instead of holding up the endpoint's deliveries.
func (s *Store) freeSlots(ctx context.Context, c jetstream.Consumer) (int, error) {
	ictx, cancel := s.bound(ctx, consumerTry)
	defer cancel()
	info, err := c.Info(ictx)
	if err != nil {
		return 0, fmt.Errorf("read consumer: %w", unavailable(err))
	}
	if info.Config.MaxAckPending <= 0 {
		return fetchBatch, nil
	}
	return info.Config.MaxAckPending - info.NumAckPending, nil
}

// park takes a work item that is not due yet out of the consumer: its
// delivery gets a retry item and a state a generation newer that names
// it (see writeRetry), then the old item is acknowledged and deleted. A
// slot of the endpoint's max_in_flight is never held by a delivery that
// waits.
func (s *Store) park(ctx context.Context, m jetstream.Msg, st *state, rev uint64) error {
	wctx, cancel := s.writeCtx(ctx)
	defer cancel()
	if err := s.writeRetry(wctx, s.retryItem(st)); err != nil {
		return err
	}
	if _, err := s.putState(wctx, st, rev); err != nil {
		return err
	}
	s.noteRetry(relay.EndpointRef{Org: st.Org, Endpoint: st.Endpoint}, st.due())
	s.finish(wctx, m)
	return nil
}

// retryItem marks st as waiting on a retry item, a generation newer (its
// work item is stale), and returns the item.
func (s *Store) retryItem(st *state) *nats.Msg {
	st.Gen++
	st.Retry = true
	return msg(s.subj.retry(st.Org, st.Endpoint, st.due(), st.ID), nil, -1)
}

// writeRetry writes a retry item before the state that names it, each one
// record: an atomic batch costs the server far more than two records (on
// one replica it makes a file store per batch). The order keeps it safe:
// until the state lands, the item is above the state's revision, and a
// Take deletes a retry item as stale only below the revision of a state
// that does not name it (promoteOne); the work item stays until the state
// lands. So a crash in between costs an attempt's record at worst, as a
// relay dying mid-attempt does, and leaves an item that the delivery's
// next state makes stale.
func (s *Store) writeRetry(ctx context.Context, item *nats.Msg) error {
	if _, err := s.publish(ctx, []*nats.Msg{item}); err != nil {
		return fmt.Errorf("write retry item: %w", err)
	}
	return nil
}

// retryOf is the subject of st's retry item, "" when it has none.
func (s *Store) retryOf(st *state) string {
	if !st.Retry {
		return ""
	}
	return s.subj.retry(st.Org, st.Endpoint, st.due(), st.ID)
}

// promote moves the endpoint's retries due at now back into its consumer,
// in due order, at most promoteBatch of them (see promoteOne). It returns
// when to look again: the earliest retry not due yet (zero: none), or now
// when some due ones are left. Retry items are named by their due time,
// so one listing tells which are due and nothing waiting is read; between
// listings the store's view of them (retryView) spares the listing.
func (s *Store) promote(ctx context.Context, ref relay.EndpointRef, now time.Time) (time.Time, error) {
	if next, ok := s.retriesQuiet(ref, now); ok {
		return next, nil
	}
	listed := time.Now()
	next, err := s.promoteListed(ctx, ref, now)
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.retries[ref]
	if !old.heard.Before(listed) {
		// Heard of while listing: maybe not in the listing.
		next = earliest(next, old.next)
	}
	if err != nil || next.Equal(now) {
		delete(s.retries, ref)
		return next, err
	}
	s.retries[ref] = retryView{next: next, listed: listed}
	return next, nil
}

// retryView is what a store knows of an endpoint's retry items since it
// last listed them: the earliest due time then not due, lowered by every
// retry item written since (heard on P.r.>, or written here). It may name
// an item moved since (a wasted listing), never miss one it heard of.
type retryView struct {
	next   time.Time // zero: none
	listed time.Time // by the real clock; zero: not listed, not trusted
	heard  time.Time // the last noteRetry, by the real clock
}

// retriesQuiet reports whether no retry of ref can be due at now by what
// this store knows, and the earliest due time it knows. A view older than
// AckWait is not trusted: the subscription may have missed a write while
// the connection was down.
func (s *Store) retriesQuiet(ref relay.EndpointRef, now time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.retries[ref]
	if !ok || time.Since(v.listed) >= s.cfg.AckWait || !v.next.IsZero() && !now.Before(v.next) {
		return time.Time{}, false
	}
	return v.next, true
}

// noteRetry lowers ref's view to a retry item due at due, written by any
// relay. A Take listing at the same time keeps it (see promote).
func (s *Store) noteRetry(ref relay.EndpointRef, due time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.retries[ref]
	v.next, v.heard = earliest(v.next, due), time.Now()
	s.retries[ref] = v
}

// forgetRetries drops ref's view, so the next Take lists its retries:
// this store moved one, and its due time must not be Take's next.
func (s *Store) forgetRetries(ref relay.EndpointRef) {
	s.mu.Lock()
	delete(s.retries, ref)
	s.mu.Unlock()
}

// promoteListed lists the endpoint's retry items and moves those due.
func (s *Store) promoteListed(ctx context.Context, ref relay.EndpointRef, now time.Time) (time.Time, error) {
	subs, err := s.list(ctx, s.subj.retryOf(ref.Org, ref.Endpoint))
	if err != nil || len(subs) == 0 {
		return time.Time{}, err
	}
	type item struct {
		subj string
		due  time.Time
		id   string
	}
	items := make([]item, 0, len(subs))
	for _, subj := range subs {
		_, _, due, id, err := s.subj.parseRetry(subj)
		if err != nil {
			continue
		}
		items = append(items, item{subj, due, id})
	}
	slices.SortFunc(items, func(a, b item) int {
		if c := a.due.Compare(b.due); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	var next time.Time
	moved := 0
	for _, it := range items {
		if it.due.After(now) {
			return earliest(next, it.due), nil
		}
		if moved == promoteBatch {
			return now, nil
		}
		ok, err := s.promoteOne(ctx, ref, it.subj, it.id)
		if casConflict(err) {
			next = now // changed under us: look again soon
			continue
		}
		if err != nil {
			return next, err
		}
		if ok {
			moved++
		}
	}
	return next, nil
}

// promoteOne moves one due retry into the consumer: a work item of the
// delivery's generation, then the retry item is deleted. It deletes a
// retry item its delivery no longer waits on instead (a Record, Requeue or
// Purge cut short, or a move whose delete was). It reports whether it
// moved one.
func (s *Store) promoteOne(ctx context.Context, ref relay.EndpointRef, subj, id string) (bool, error) {
	st, rev, err := s.state(ctx, ref.Org, id)
	if errors.Is(err, relay.ErrNotFound) {
		return false, s.removeBefore(ctx, subj, 0)
	}
	if err != nil {
		return false, err
	}
	if st.Leased || relay.Final(st.Status) || s.retryOf(st) != subj {
		// Stale: written with an older state than rev, so below it; a
		// newer item on the same subject stays.
		return false, s.removeBefore(ctx, subj, rev)
	}
	// A work item of the state's generation, one record: the subject must
	// be empty, so of two relays moving it at once one writes it. The
	// state keeps naming the retry item until the delivery is leased
	// (lease clears Retry); until then a second move finds the work item
	// there and does nothing.
	work := s.subj.work(ref.Org, st.Endpoint, st.ID, false)
	for try := 0; ; try++ {
		m := msg(work, nil, 0)
		m.Header.Set(hdrGen, strconv.FormatUint(st.Gen, 10))
		seq, err := s.publish(ctx, []*nats.Msg{m})
		if err == nil {
			s.wrote(ref, seq)
			return true, s.removeBefore(ctx, subj, seq)
		}
		if !casConflict(err) || try > 0 {
			return false, err
		}
		have, err := s.get(ctx, work)
		if err != nil || have == nil {
			return false, err // gone since: the next Take moves it
		}
		g, _ := strconv.ParseUint(have.Header.Get(hdrGen), 10, 64)
		if g == st.Gen {
			return false, nil // moved already
		}
		if g > st.Gen {
			// A newer state wrote it since the read (a Requeue or an
			// Expedite on any relay): it is the delivery's item, and the
			// retry item is stale, deleted when a Take lists it again.
			return false, nil
		}
		// A stale item left by a Record cut short: it blocks the subject.
		// Deleted by its sequence, so an item written since stays.
		if err := s.deleteSeq(ctx, have.Sequence); err != nil {
			return false, fmt.Errorf("delete %s: %w", work, err)
		}
	}
}

func (s *Store) takeLock(ref relay.EndpointRef) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	mu := s.taking[ref]
	if mu == nil {
		mu = &sync.Mutex{}
		s.taking[ref] = mu
	}
	return mu
}

// lease marks a due delivery leased (compare-and-set on the revision Take
// read) and keeps its work item unacknowledged: it holds one of the
// consumer's slots until Record or Release, or until the relay dies and
// AckWait passes.
func (s *Store) lease(ctx context.Context, ref relay.EndpointRef, cd candidate) error {
	st := cd.st
	st.Leased, st.Holder, st.Retry = true, s.id, false // a moved retry's item is stale now
	wctx, cancel := s.writeCtx(ctx)
	defer cancel()
	rev, err := s.putState(wctx, st, cd.rev)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.leases[ref.Org+"/"+st.ID] = &lease{msg: cd.msg, ref: ref, st: st, rev: rev}
	s.mu.Unlock()
	return nil
}

// leaseOf is this store's lease of d, or nil.
func (s *Store) leaseOf(d *relay.Delivery) *lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leases[d.Org+"/"+d.ID]
}

func (s *Store) dropLease(d *relay.Delivery) {
	s.mu.Lock()
	delete(s.leases, d.Org+"/"+d.ID)
	s.mu.Unlock()
}

// Record writes the attempt's outcome, then ends the lease by
// acknowledging and deleting the work item. A delivery that waits again
// (failed, or requeued during the attempt) first gets a retry item named
// by its due time, outside the consumer (see writeRetry): it holds no slot
// of the endpoint's max_in_flight while it waits, and a Take moves it back
// when due. The disabled mark is written first: if the
// relay dies in between, the endpoint is disabled and the delivery is
// retaken later.
func (s *Store) Record(ctx context.Context, d *relay.Delivery, disable string) error {
	if !relay.Final(d.Status) && d.NextAttemptAt == nil {
		return fmt.Errorf("record: delivery %s is %s without next_attempt_at", d.ID, d.Status)
	}
	ctx, cancel := s.writeCtx(ctx)
	defer cancel()
	if disable != "" {
		if err := s.SetDisabled(ctx, d.Org, d.Endpoint, disable); err != nil {
			return fmt.Errorf("record: %w", err)
		}
	}
	l := s.leaseOf(d)
	var ended, theirs bool
	st, err := s.endLease(ctx, d, l, func(cur *state) (*state, *nats.Msg) {
		attempts := withAttempts(cur.Attempts, d.Attempts)
		// Retaken by another relay since this lease lapsed, and attempted
		// there: its Record decides what comes next. Ended here, the
		// delivery would wait on an item a Take could move while that
		// attempt is under way, and lose the lease's requeue mark. An
		// outcome that ends the delivery is written all the same: the
		// other relay's Record then keeps it (below).
		theirs = cur.Leased && !cur.heldBy(s.id) && !relay.Final(d.Status)
		if theirs {
			kept := *cur
			kept.Attempts = attempts
			return &kept, nil
		}
		if relay.Final(cur.Status) && cur.Reason == "" && (d.Status != relay.StatusDelivered || cur.Status == relay.StatusDelivered) {
			// Recorded final by another relay's attempt since this lease
			// lapsed, which also ended the work item: that outcome stands,
			// and this attempt goes on the record. Written over by a
			// failure, the delivery would wait on no item, forever; by a
			// dead end, a delivery the receiver has would show as never
			// delivered. Only delivered overrides it: the receiver has it,
			// whatever the other attempt met.
			kept := *cur
			kept.Attempts = attempts
			return &kept, nil
		}
		next := &state{Delivery: *d}
		next.Endpoint, next.Ordered, next.Gen = cur.Endpoint, cur.Ordered, cur.Gen
		next.Attempts = attempts
		if cur.RequeueAt != nil {
			requeued(&next.Delivery, *cur.RequeueAt)
		}
		ended = relay.Final(cur.Status) && cur.Reason != "" && !relay.Final(next.Status)
		if ended {
			// Ended during the attempt (EndWaiting): it stays dead.
			next.Status, next.NextAttemptAt, next.Reason = relay.StatusDead, nil, cur.Reason
		}
		if !next.Ordered && !relay.Final(next.Status) && s.queued(ctx, l, cur) {
			// Also without this store's lease (it was lost): the new
			// item makes any older one stale.
			return next, s.retryItem(next)
		}
		return next, nil
	})
	if err != nil {
		return fmt.Errorf("record: %w", err)
	}
	// Tell the caller the state written: dead when ended during the
	// attempt, pending when requeued during it.
	d.SetState(&st.Delivery)
	switch {
	case theirs:
		// The work item or head lock is the other relay's now.
		s.log.Debug().Str("delivery", d.ID).Msg("record: the lease lapsed and is another relay's; its attempt is kept")
	case (l == nil || l.ordered) && relay.Final(st.Status):
		// No consumer message to acknowledge: delete the item.
		if err := s.deleteWork(ctx, s.subj.work(d.Org, st.Endpoint, d.ID, st.Ordered)); err != nil {
			s.log.Debug().Err(err).Str("delivery", d.ID).Msg("delete a work item")
		}
	case l == nil || l.ordered:
	case relay.Final(st.Status):
		s.finishEnded(ctx, l.msg)
	default:
		s.finish(ctx, l.msg) // on failure the item is stale: the retry's replaces it
	}
	return nil
}

// withAttempts is the stored attempt list followed by the attempts the
// recording relay made: those of its copy past the history the two share.
// Its copy is the delivery as it took it; when its lease lapsed, another
// relay that retook the delivery may have recorded an attempt since, which
// the copy lacks and must keep (every attempt made is on the record). An
// attempt already stored (a Record tried again after its write landed) is
// not added twice.
//
// An attempt keeps the number it was made with, the sidehook-attempt
// header its request carried (the relay numbers it after its copy's
// attempts), so the record says what the receiver saw. Two relays that
// attempted a delivery at once, one of them past its lapsed lease, took
// the same copy and sent the same number: neither knew of the other's
// attempt when it sent its own, and no Take can tell, since the lapsed
// relay's attempt may be under way, not yet recorded, when the other
// retakes the delivery. Both keep it; renumbered, one would name a
// request that was never sent.
func withAttempts(stored, mine []relay.Attempt) []relay.Attempt {
	same := func(a, b relay.Attempt) bool { return a.At.Equal(b.At) && a.Status == b.Status }
	k := 0
	for k < len(stored) && k < len(mine) && stored[k].N == mine[k].N && same(stored[k], mine[k]) {
		k++
	}
	out := slices.Clone(stored)
	for _, a := range mine[k:] {
		if slices.ContainsFunc(stored[k:], func(b relay.Attempt) bool { return same(a, b) }) {
			continue
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return mine // none either side: as the caller gave it (nil or empty)
	}
	return out
}

// queued reports whether an unordered delivery still has an item to wait
// on: the leased work item, or without a lease here, any work or retry
// item. It has none once its endpoint was deleted (EndWaiting drops
// the items): an attempt in flight then ends without queueing it again.
// When unsure, it is queued.
func (s *Store) queued(ctx context.Context, l *lease, cur *state) bool {
	if cur.Retry {
		return true
	}
	if l != nil && !l.ordered {
		meta, err := l.msg.Metadata()
		if err != nil {
			return true
		}
		found, err := s.stored(ctx, meta.Sequence.Stream)
		return found || err != nil
	}
	m, err := s.get(ctx, s.subj.work(cur.Org, cur.Endpoint, cur.ID, false))
	return err != nil || m != nil
}

// endLease writes the state next makes of the current one, after the
// retry item next may return (see writeRetry), and for an ordered lease
// frees the endpoint's head lock in the same batch; then it forgets the
// lease. When next makes none (nil), nothing is written and endLease
// returns nil: the lease is forgotten all the same.
func (s *Store) endLease(ctx context.Context, d *relay.Delivery, l *lease, next func(*state) (*state, *nats.Msg)) (*state, error) {
	var cur *state
	var rev uint64
	if l != nil {
		// The state as leased: a change since (a Requeue's mark) fails
		// the compare-and-set, and the loop reads it.
		c := *l.st
		cur, rev = &c, l.rev
	}
	for {
		if cur == nil {
			var err error
			if cur, rev, err = s.state(ctx, d.Org, d.ID); err != nil {
				return nil, err
			}
		}
		st, item := next(cur)
		if st == nil {
			s.dropLease(d)
			return nil, nil
		}
		if item != nil {
			if err := s.writeRetry(ctx, item); err != nil {
				return nil, err
			}
		}
		b, err := st.encode()
		if err != nil {
			return nil, err
		}
		msgs := []*nats.Msg{msg(s.subj.delivery(d.Org, d.ID), b, int64(rev))}
		if l != nil && l.ordered {
			lk, lrev, err := s.readLock(ctx, l.ref)
			if err != nil {
				return nil, err
			}
			if lk.ID == d.ID && lk.Owner == s.id { // else the lease lapsed, and the lock is another's
				msgs = append(msgs, msg(s.subj.lock(l.ref.Org, l.ref.Endpoint), nil, int64(lrev)))
			}
		}
		_, err = s.publish(ctx, msgs)
		if casConflict(err) {
			cur = nil // changed since read: read again
			continue
		}
		if err != nil {
			return nil, err
		}
		s.dropLease(d)
		if st.Retry {
			s.noteRetry(relay.EndpointRef{Org: d.Org, Endpoint: st.Endpoint}, st.due())
		}
		return st, nil
	}
}

// finishEnded deletes the work item of a delivery that ended (or is gone)
// and only then acknowledges it. An item whose delete failed (a leader
// election) is left unacknowledged: the consumer offers it again after
// AckWait, and a Take, finding its delivery ended, deletes it then.
// Acknowledged first, as finish does, it would stay in the stream for
// ever, never offered again, and counted as waiting by every relay
// (Waiting); a later item of a delivery that waits replaces it, but an
// ended one has none.
func (s *Store) finishEnded(ctx context.Context, m jetstream.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		return
	}
	if err := s.deleteSeq(ctx, meta.Sequence.Stream); err != nil {
		s.log.Debug().Err(err).Msg("delete an ended delivery's work item: offered again after the ack wait")
		return
	}
	if err := m.DoubleAck(ctx); err != nil {
		s.log.Debug().Err(err).Msg("acknowledge a work item")
	}
}

// lagRecheck is how soon a Take looks again at a work item whose state it
// could not read yet.
const lagRecheck = 100 * time.Millisecond

// young reports whether a work item is recent enough that its missing
// state may only not be readable yet, rather than gone: every item is
// written in one batch with its state, but the consumer that offers it
// may run on a replica that stored the batch before the stream's leader,
// which state reads ask, did (a leader newly elected, as at a stream's
// start, may still be applying what it holds). Dropped as a leftover,
// the item left its delivery pending for good (a possible cause of one
// stranded in a rolling restart on a three-node cluster). A real leftover
// waits half an AckWait longer to be dropped.
func (s *Store) young(m jetstream.Msg) bool {
	meta, err := m.Metadata()
	return err == nil && time.Since(meta.Timestamp) < s.cfg.AckWait/2
}

// finish acknowledges a work item and deletes it from the stream (by
// sequence, so a newer item of a requeued delivery stays).
func (s *Store) finish(ctx context.Context, m jetstream.Msg) {
	if err := m.DoubleAck(ctx); err != nil {
		s.log.Debug().Err(err).Msg("acknowledge a work item")
	}
	meta, err := m.Metadata()
	if err != nil {
		return
	}
	if err := s.deleteSeq(ctx, meta.Sequence.Stream); err != nil {
		s.log.Debug().Err(err).Msg("delete a work item")
	}
}

// Release ends a lease without an attempt: the delivery is due again as it
// was (or as a Requeue during the lease says). Without a lease here it does
// nothing. When the write fails (NATS unreachable), the lease is dropped
// all the same and the error returned: the heartbeat stops, so the lease
// ends as a dead relay's does, the work item offered again after AckWait
// or the head lock left to expire.
//
// A lease that lapsed here may have been retaken by another relay, or
// ended by its Record: then the delivery is not this store's to release,
// and Release only forgets its lease. Settled, the state would lose the
// other's lease and requeue mark; and the work item, the one the other
// now holds, would be offered again while it attempts the delivery.
func (s *Store) Release(ctx context.Context, d *relay.Delivery) error {
	l := s.leaseOf(d)
	if l == nil {
		return nil
	}
	ctx, cancel := s.writeCtx(ctx)
	defer cancel()
	st, err := s.endLease(ctx, d, l, func(cur *state) (*state, *nats.Msg) {
		if !cur.heldBy(s.id) {
			return nil, nil
		}
		cur.settle()
		return cur, nil
	})
	if err != nil {
		s.dropLease(d)
		return fmt.Errorf("release: %w", err)
	}
	if st == nil {
		// Ended meanwhile by another relay's Record (its lease had
		// lapsed, and this store retook it): an ordered endpoint's head
		// lock is still this lease's, and kept it would hold the next
		// delivery back until it expires.
		if l.ordered && s.freeLock(ctx, l.ref, d.ID) {
			s.tellGivenBack(l.ref)
		}
		s.log.Debug().Str("delivery", d.ID).Msg("release: the lease lapsed or the delivery ended; it is no longer this relay's")
		return nil
	}
	if !l.ordered {
		s.giveBack(ctx, l.msg)
	}
	s.tellGivenBack(l.ref)
	return nil
}

// giveBack naks work items so the consumer offers them again at once, to
// any relay; a Take parks one that is not due. The server handles a
// consumer's acks in order and the last nak waits for its answer, so when
// giveBack returns every item is back.
func (s *Store) giveBack(ctx context.Context, msgs ...jetstream.Msg) {
	for i, m := range msgs {
		var err error
		if i < len(msgs)-1 {
			err = s.nc.Publish(m.Reply(), []byte("-NAK"))
		} else {
			rctx, cancel := s.writeCtx(ctx)
			_, err = s.nc.RequestWithContext(rctx, m.Reply(), []byte("-NAK"))
			cancel()
		}
		if err != nil {
			s.log.Debug().Err(err).Msg("give back a work item")
		}
	}
}

// Header of a work item: the generation of its delivery's state that wrote
// it. Parking, a Requeue or an Expedite makes the state a generation newer
// (and a Requeue or Expedite writes a new item, which replaces the old one
// on its subject); an older copy is never leased.
const hdrGen = "Sidehook-Gen"

func workGen(m jetstream.Msg) uint64 {
	g, _ := strconv.ParseUint(m.Headers().Get(hdrGen), 10, 64)
	return g
}
