package relay

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/sidehook/sidehook/relay/config"
)

// Waits of a queue.
const (
	// idleRecheck bounds how long a queue with nothing due sleeps: every
	// change this relay makes wakes it, and a store shared with other
	// relays may say when they make one (waker), but nothing else does.
	idleRecheck = 30 * time.Second
	// Store errors of Take back off from storeRetryMin to storeRetryMax.
	storeRetryMin = 50 * time.Millisecond
	storeRetryMax = 5 * time.Second
)

// dispatcher runs one queue per endpoint. A queue's loop takes what is due
// from the store (as many as the endpoint has free slots), starts an
// attempt for each, and sleeps until the store's next due time or until it
// is woken: after an ingest, a manual retry, a tunnel connecting, or an
// attempt's end. Nothing of the queue is held in memory but counts: the
// store is the only index of what waits.
type dispatcher struct {
	store Store
	dir   *directory
	att   *attempter
	hub   *hub // told of the deliveries endGone ends
	clock Clock
	log   zerolog.Logger

	mu     sync.Mutex
	queues map[EndpointRef]*queue

	ctx            context.Context // scheduling; canceled by stop
	cancel         context.CancelFunc
	attemptCtx     context.Context // in-flight attempts; canceled when the grace period ends
	cancelAttempts context.CancelFunc
	loops          sync.WaitGroup
	attempts       sync.WaitGroup
	running        atomic.Bool

	inflight sync.Map // delivery id → EndpointRef: shown as "delivering"
	workers  *workers

	cutMu sync.Mutex
	cut   []string // the deliveries whose attempts a stop cut short

	// syncMu serialises syncDepths; syncedAt is when it last asked the
	// store.
	syncMu   sync.Mutex
	syncedAt time.Time
}

// maxCutLogged bounds the delivery ids the warning of a cut-short stop
// names; it counts them all.
const maxCutLogged = 100

func newDispatcher(st Store, dir *directory, att *attempter, h *hub, clock Clock, log zerolog.Logger) *dispatcher {
	d := &dispatcher{store: st, dir: dir, att: att, hub: h, clock: clock, log: log, queues: make(map[EndpointRef]*queue), workers: newWorkers(workerIdle)}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.attemptCtx, d.cancelAttempts = context.WithCancel(context.Background())
	return d
}

// start starts a queue for every endpoint and counts what waits: the
// queue-depth gauges and max_queue start from the store's count and are
// kept in memory after that. A store whose count is a long scan
// (snapshotCounter) is counted in the background, from a snapshot fixed
// before any queue runs, so a restart with a large backlog serves at once.
func (d *dispatcher) start(ctx context.Context) error {
	var (
		count   func(context.Context) (map[EndpointRef]int64, error)
		waiting map[EndpointRef]int64
		err     error
	)
	if sc, ok := d.store.(snapshotCounter); ok {
		count, err = sc.WaitingSnapshot(ctx)
	} else {
		waiting, err = d.store.Waiting(ctx)
	}
	if err != nil {
		return err
	}
	// Running before the first queue loop looks at it (addWaiting starts
	// queues too): a loop that saw false would wait for a wake that may
	// never come.
	d.running.Store(true)
	for _, o := range d.dir.list {
		for _, e := range o.endpoints() {
			d.queue(o, e.cfg.ID)
		}
	}
	d.addWaiting(waiting)
	if count != nil {
		d.loops.Add(1)
		go func() {
			defer d.loops.Done()
			began := time.Now()
			waiting, err := count(d.ctx)
			if err != nil {
				if d.ctx.Err() == nil {
					d.log.Error().Err(err).Msg("count the waiting deliveries: the queue-depth gauges and max_queue count only what arrived since the start")
				}
				return
			}
			d.addWaiting(waiting)
			d.log.Debug().Dur("took", time.Since(began)).Int("endpoints", len(waiting)).Msg("counted the waiting deliveries")
		}()
	}
	if w, ok := d.store.(waker); ok {
		d.loops.Add(1)
		go func() {
			defer d.loops.Done()
			d.hear(w.Wake())
		}()
	}
	return nil
}

// snapshotCounter is a store whose Waiting is a scan of every waiting
// delivery (badgerstore: about a second per million). WaitingSnapshot
// fixes what count counts before it returns: the deliveries that ended
// or arrived after that are the dispatcher's own increments. count must
// be called once.
type snapshotCounter interface {
	WaitingSnapshot(ctx context.Context) (count func(context.Context) (map[EndpointRef]int64, error), err error)
}

// addWaiting adds the store's count of what waits to the queues' depths.
func (d *dispatcher) addWaiting(waiting map[EndpointRef]int64) {
	for ref, n := range waiting {
		o := d.dir.org(ref.Org)
		if o == nil {
			d.log.Warn().Str(logOrg, ref.Org).Str(logEndpoint, ref.Endpoint).Int64("deliveries", n).Msg("deliveries waiting for an organisation that is not configured")
			continue
		}
		if o.endpoint(ref.Endpoint) == nil {
			if _, shared := d.store.(waker); shared {
				// Another relay on the store may have the endpoint in its
				// file: one started with an older or newer file (a rolling
				// deploy) must not end that relay's deliveries.
				d.log.Warn().Str(logOrg, ref.Org).Str(logEndpoint, ref.Endpoint).Int64("deliveries", n).
					Msg("deliveries waiting for an endpoint not in this relay's configuration: left to the relays that have it")
				continue
			}
			d.endGone(o, ref.Endpoint)
			continue
		}
		d.queue(o, ref.Endpoint).depth.Add(n)
	}
}

// waker is a store shared with other relays that says when one of them
// may have made work due here (natsstore's Wake), so this relay need not
// wait for its idle recheck.
type waker interface {
	Wake() <-chan EndpointRef
}

// inFlightLimiter is a store shared with other relays that holds an
// endpoint's max_in_flight across all of them (natsstore: its consumer's
// max ack pending). Each queue tells it the value before its first Take
// and whenever it changes (an API PUT).
type inFlightLimiter interface {
	SetMaxInFlight(ref EndpointRef, n int)
}

// hear wakes the queue of each endpoint the store names, until stop.
func (d *dispatcher) hear(wake <-chan EndpointRef) {
	for {
		select {
		case <-d.ctx.Done():
			return
		case ref, ok := <-wake:
			if !ok {
				return
			}
			o := d.dir.org(ref.Org)
			if o == nil || o.endpoint(ref.Endpoint) == nil {
				continue // not an endpoint of this relay's configuration
			}
			d.queue(o, ref.Endpoint).poke()
		}
	}
}

// stop ends scheduling, then waits for in-flight attempts until ctx is
// done; attempts still running then are canceled and released (tried
// again on the next start).
func (d *dispatcher) stop(ctx context.Context) {
	d.running.Store(false)
	d.cancel()
	d.loops.Wait()
	done := make(chan struct{})
	go func() {
		d.attempts.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		d.cancelAttempts()
		<-done
	}
	d.cancelAttempts()
	d.workers.stop()
	d.cutMu.Lock()
	defer d.cutMu.Unlock()
	if len(d.cut) > 0 {
		// Receivers may see these again: the stop says why (the grace
		// period ended, or a second signal skipped the drain), and who
		// makes them: on a shared store, the relays still running.
		again := "attempted again at the next start"
		if _, shared := d.store.(waker); shared {
			again = "attempted again by the other relays sharing the store, or by this one at its next start"
		}
		d.log.Warn().Int("attempts", len(d.cut)).Strs("deliveries", d.cut[:min(len(d.cut), maxCutLogged)]).
			Msg("attempts in flight cut short by the stop, " + again)
	}
}

// cutShort notes a delivery whose attempt a stop canceled.
func (d *dispatcher) cutShort(id string) {
	d.cutMu.Lock()
	defer d.cutMu.Unlock()
	d.cut = append(d.cut, id)
}

// queue returns (creating and starting) the queue of an endpoint.
func (d *dispatcher) queue(o *orgState, ep string) *queue {
	ref := EndpointRef{Org: o.id, Endpoint: ep}
	d.mu.Lock()
	defer d.mu.Unlock()
	if q := d.queues[ref]; q != nil {
		return q
	}
	q := &queue{d: d, ref: ref, org: o, wake: make(chan struct{}, 1)}
	q.ctx, q.cancel = context.WithCancel(d.ctx)
	d.queues[ref] = q
	if d.ctx.Err() == nil {
		d.loops.Add(1)
		go func() {
			defer d.loops.Done()
			q.run()
		}()
	}
	return q
}

// liveQueue is queue for an endpoint o still has, nil for one it has not.
// Only a missing queue costs the look-up of the endpoint: a queue goes
// with its endpoint (endpointRemoved), so one that exists is live.
func (d *dispatcher) liveQueue(o *orgState, ep string) *queue {
	d.mu.Lock()
	q := d.queues[EndpointRef{Org: o.id, Endpoint: ep}]
	d.mu.Unlock()
	if q != nil {
		return q
	}
	if o.endpoint(ep) == nil {
		return nil
	}
	return d.queue(o, ep)
}

// accepted is told of durable new deliveries (or, when the store could not
// say, deliveries that may be durable: wake is always safe).
func (d *dispatcher) accepted(o *orgState, ds []*Delivery, counted bool) {
	for _, dl := range ds {
		q := d.liveQueue(o, dl.Endpoint)
		if q == nil {
			// Routed just before its endpoint was deleted, and stored
			// after the deletion ended what waited: end it too.
			d.endGone(o, dl.Endpoint)
			continue
		}
		if counted {
			q.depth.Add(1)
		}
		q.poke()
	}
}

// requeued is told of a delivery made due again by hand.
func (d *dispatcher) requeued(o *orgState, dl *Delivery, wasFinal bool) {
	q := d.queue(o, dl.Endpoint)
	if wasFinal {
		q.depth.Add(1)
	}
	q.poke()
}

// expedited wakes an endpoint whose retries were made due now (a tunnel
// client connected), also from a pause: one for its tunnel's client
// (tunnelGrace) is over, and one after a store error only ends early.
func (d *dispatcher) expedited(o *orgState, ep string) {
	q := d.queue(o, ep)
	q.notBefore.Store(0)
	q.poke()
}

func (d *dispatcher) endpointChanged(o *orgState, ep string) { d.queue(o, ep).poke() }

// endpointRemoved stops the endpoint's queue and drops its series from
// /metrics; attempts in flight finish.
func (d *dispatcher) endpointRemoved(o *orgState, ep string) {
	ref := EndpointRef{Org: o.id, Endpoint: ep}
	d.mu.Lock()
	q := d.queues[ref]
	delete(d.queues, ref)
	d.mu.Unlock()
	if q != nil {
		q.cancel()
	}
	d.att.metrics.forgetEndpoint(o.id, ep)
}

// endGone ends, in the background, the waiting deliveries of an endpoint
// of o that no longer exists: removed from the configuration file, or
// deleted by a relay stopped before it had ended them all, or routed to as
// it was being deleted. Each becomes dead with the reason (Store.EndWaiting),
// as a DELETE ends them, and is published as a change; an endpoint made
// again meanwhile keeps its own.
// The write runs to its end: a stop waits for it.
func (d *dispatcher) endGone(o *orgState, ep string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx.Err() != nil {
		return // stopping: the next start ends them
	}
	d.loops.Add(1)
	go func() {
		defer d.loops.Done()
		// Held across the write: the endpoint cannot be made again (an
		// API POST) until it is done.
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.endpoint(ep) != nil {
			return
		}
		reason := fmt.Sprintf("endpoint %s no longer exists (deleted, or removed from the configuration); ended at %s",
			ep, d.clock.Now().UTC().Format(time.RFC3339))
		n, err := d.store.EndWaiting(context.WithoutCancel(d.ctx), EndpointRef{Org: o.id, Endpoint: ep}, reason, d.hub.ended(d.clock))
		if err != nil {
			d.log.Error().Err(err).Str(logOrg, o.id).Str(logEndpoint, ep).Int("ended", n).
				Msg("end the deliveries waiting for an endpoint that no longer exists; the next start tries again")
			return
		}
		if n > 0 {
			d.log.Warn().Str(logOrg, o.id).Str(logEndpoint, ep).Int("deliveries", n).Msg("deliveries of an endpoint that no longer exists ended: dead")
		}
	}()
}

// inFlight reports whether a delivery is being attempted by this relay.
func (d *dispatcher) inFlight(id string) bool {
	_, ok := d.inflight.Load(id)
	return ok
}

// inFlightOn is a delivery of ref other than except being attempted now
// by this relay, the oldest (ids are ULIDs), or "".
func (d *dispatcher) inFlightOn(ref EndpointRef, except string) string {
	var oldest string
	d.inflight.Range(func(k, v any) bool {
		if id := k.(string); v.(EndpointRef) == ref && id != except && (oldest == "" || id < oldest) {
			oldest = id
		}
		return true
	})
	return oldest
}

// depthSyncEvery is how often, at most, syncDepths asks a shared store
// for its count (a scan of what waits); depthSyncTimeout bounds one ask.
const (
	depthSyncEvery   = 5 * time.Second
	depthSyncTimeout = 5 * time.Second
)

// syncDepths sets each queue's depth to the store's count of what waits,
// on a store shared with other relays (a waker), at most every
// depthSyncEvery, and reports whether it did. There the in-memory counts
// drift: this relay adds what it accepts and takes off what it finishes,
// but another relay finishes much of what this one accepted, and accepts
// what this one finishes. Left alone, a relay that accepts more than it
// delivers counts its way up to max_queue and answers 429 with nothing
// waiting, and its queue-depth gauges only grow. Changes this relay makes
// during the scan are kept on top of the count.
func (d *dispatcher) syncDepths(ctx context.Context) bool {
	if _, shared := d.store.(waker); !shared {
		return false
	}
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	if !d.syncedAt.IsZero() && time.Since(d.syncedAt) < depthSyncEvery {
		return false
	}
	d.syncedAt = time.Now() // a failing store is not asked at every scrape either
	d.mu.Lock()
	before := make(map[*queue]int64, len(d.queues))
	for _, q := range d.queues {
		before[q] = q.depth.Load()
	}
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), depthSyncTimeout)
	defer cancel()
	waiting, err := d.store.Waiting(ctx)
	if err != nil {
		d.log.Warn().Err(err).Msg("count the waiting deliveries: the queue-depth gauges and max_queue keep this relay's own count")
		return false
	}
	for q, was := range before {
		n := waiting[q.ref]
		delete(waiting, q.ref)
		q.depth.Add(n - was)
	}
	// Queues this relay has not made yet: endpoints it has not sent to.
	for ref, n := range waiting {
		if o := d.dir.org(ref.Org); o != nil && o.endpoint(ref.Endpoint) != nil {
			d.queue(o, ref.Endpoint).depth.Add(n)
		}
	}
	return true
}

// orgDepth is the number of deliveries waiting for the organisation.
func (d *dispatcher) orgDepth(org string) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var n int64
	for ref, q := range d.queues {
		if ref.Org == org {
			n += max(q.depth.Load(), 0)
		}
	}
	return n
}

func (d *dispatcher) depths() map[[2]string]int64 {
	d.syncDepths(d.ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	m := make(map[[2]string]int64, len(d.queues))
	for ref, q := range d.queues {
		if q.org.endpoint(ref.Endpoint) != nil {
			m[[2]string{ref.Org, ref.Endpoint}] = max(q.depth.Load(), 0)
		}
	}
	return m
}

// queue is one endpoint's share of the dispatcher: its loop, its in-flight
// count, its rate limiter and its waiting count.
type queue struct {
	d      *dispatcher
	ref    EndpointRef
	org    *orgState
	ctx    context.Context
	cancel context.CancelFunc
	wake   chan struct{}
	depth  atomic.Int64 // waiting deliveries (approximate when a manual retry reads a delivery as waiting just before its attempt is recorded)

	inflight atomic.Int32
	// recording counts attempts answered whose outcome is being recorded:
	// at most max_in_flight, so a store that refuses writes but still
	// reads cannot have every due delivery sent and held in memory.
	recording atomic.Int32
	// notBefore (unix ns) holds the loop back after a store error seen by
	// an attempt, so a failing store is not asked again at once.
	notBefore atomic.Int64

	// Used by the loop only.
	limiter  *rate.Limiter
	rateText string
	failures int
	told     int // the max_in_flight last told to an inFlightLimiter store
}

func (q *queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pause holds the loop back for d.
func (q *queue) pause(d time.Duration) {
	q.notBefore.Store(time.Now().Add(d).UnixNano())
	q.poke()
}

func (q *queue) run() {
	timer := q.d.clock.NewTimer(time.Hour)
	defer timer.Stop()
	idle := time.NewTimer(idleRecheck)
	defer idle.Stop()
	for {
		wait := q.step()
		if wait == 0 {
			if q.ctx.Err() != nil {
				return
			}
			continue
		}
		if wait > 0 {
			timer.Reset(wait)
		} else {
			timer.Reset(time.Hour)
		}
		idle.Reset(idleRecheck)
		select {
		case <-q.ctx.Done():
			return
		case <-q.wake:
		case <-timer.C():
		case <-idle.C:
		}
	}
}

// step starts every attempt that may start now and says how long until it
// should look again (0: at once; -1: when woken).
func (q *queue) step() time.Duration {
	if !q.d.running.Load() || q.ctx.Err() != nil {
		return -1
	}
	if nb := q.notBefore.Load(); nb != 0 {
		if wait := time.Until(time.Unix(0, nb)); wait > 0 {
			return wait
		}
		q.notBefore.Store(0)
	}
	e := q.org.endpoint(q.ref.Endpoint)
	if e == nil || !e.enabled() {
		return -1
	}
	if l, ok := q.d.store.(inFlightLimiter); ok && q.told != e.cfg.MaxInFlight {
		l.SetMaxInFlight(q.ref, e.cfg.MaxInFlight)
		q.told = e.cfg.MaxInFlight
	}
	// An ordered endpoint's limit is 1 (config.RawEndpoint.Validate): the
	// next waits until the previous is delivered or dead, or failed and
	// back at the head of the queue.
	inflight := int(q.inflight.Load())
	free := e.cfg.MaxInFlight - inflight
	if int(q.recording.Load()) >= e.cfg.MaxInFlight {
		return -1 // a record's end wakes the loop
	}
	if free <= 0 {
		return -1 // an attempt's end wakes the loop
	}
	now := q.d.clock.Now()
	lim := q.rateLimiter(e.cfg.Rate)
	if inflight > 0 && lim == nil && free < takeBatch(e.cfg.MaxInFlight) {
		// Busy: wait until a few slots are free, so that one Take (a scan
		// of the due index) starts several attempts rather than one.
		return -1
	}
	if lim != nil {
		tokens := lim.TokensAt(now)
		if tokens < 1 {
			return max(time.Duration((1-tokens)/float64(lim.Limit())*float64(time.Second)), time.Millisecond)
		}
		free = min(free, int(tokens))
	}
	ds, next, err := q.d.store.Take(q.ctx, q.ref, now, free)
	if err != nil {
		if q.ctx.Err() != nil {
			return -1
		}
		return q.storeFailed(err)
	}
	if q.failures > 0 {
		q.d.log.Info().Str(logOrg, q.ref.Org).Str(logEndpoint, q.ref.Endpoint).Int("failures", q.failures).Msg("reading due deliveries again")
		q.failures = 0
	}
	for _, dl := range ds {
		if lim != nil {
			lim.AllowN(now, 1)
		}
		q.inflight.Add(1)
		q.d.inflight.Store(dl.ID, q.ref)
		q.d.attempts.Add(1)
		q.d.workers.run(func() {
			defer q.d.attempts.Done()
			defer q.poke()
			defer q.d.inflight.Delete(dl.ID)
			// The slot is the endpoint's: it frees once the answer is
			// in, and the next request goes out while this outcome is
			// being recorded (the lease keeps the delivery from being
			// taken again until then; FIFO waits for the record).
			var once sync.Once
			free := func() {
				once.Do(func() {
					q.recording.Add(1)
					q.inflight.Add(-1)
					q.poke()
				})
			}
			defer func() {
				free()
				q.recording.Add(-1)
			}()
			q.d.att.attempt(q.d.attemptCtx, q, e.cfg, dl, free)
		})
	}
	switch {
	case len(ds) == free:
		return 0 // more may be due: look again once slots free up
	case next.IsZero():
		return -1
	}
	return max(next.Sub(now), time.Millisecond)
}

// takeBatch is how many free slots a busy queue waits for before it takes
// again: a quarter of max_in_flight, so the endpoint stays at least three
// quarters busy.
func takeBatch(maxInFlight int) int { return max(maxInFlight/4, 1) }

// storeFailed logs a failed Take (the first of a run at error level) and
// says how long to back off.
func (q *queue) storeFailed(err error) time.Duration {
	q.failures++
	ev := q.d.log.Debug()
	if q.failures == 1 {
		ev = q.d.log.Error()
	}
	ev.Err(err).Str(logOrg, q.ref.Org).Str(logEndpoint, q.ref.Endpoint).Int("failures", q.failures).Msg("read due deliveries")
	wait := storeRetryMin << min(q.failures-1, 10)
	return min(wait, storeRetryMax)
}

func (q *queue) rateLimiter(r config.Rate) *rate.Limiter {
	if r.PerSecond <= 0 {
		q.limiter, q.rateText = nil, ""
		return nil
	}
	if q.limiter == nil || q.rateText != r.Text {
		q.limiter = rate.NewLimiter(rate.Limit(r.PerSecond), max(r.Burst, 1))
		q.rateText = r.Text
	}
	return q.limiter
}

// workerIdle is how long an idle attempt worker waits for the next attempt
// before it exits.
const workerIdle = 10 * time.Second

// workers runs attempts on goroutines that outlive one attempt: a new
// goroutine's stack grows again through signing, sending and encoding the
// record on every attempt, a few percent of the relay's CPU at full load.
// There are as many as attempts run at once; idle ones exit after a while.
type workers struct {
	jobs chan func() // unbuffered: a send succeeds only to an idle worker
	idle time.Duration
	done chan struct{}
	once sync.Once

	started, exited atomic.Int64 // goroutines
	waiting         atomic.Int64 // idle workers
}

func newWorkers(idle time.Duration) *workers {
	return &workers{jobs: make(chan func()), idle: idle, done: make(chan struct{})}
}

// run starts job on an idle worker, or on a new one.
func (w *workers) run(job func()) {
	select {
	case w.jobs <- job:
	default:
		w.started.Add(1)
		go w.work(job)
	}
}

func (w *workers) work(job func()) {
	defer w.exited.Add(1)
	t := time.NewTimer(w.idle)
	defer t.Stop()
	for {
		job()
		t.Reset(w.idle)
		w.waiting.Add(1)
		select {
		case job = <-w.jobs:
			w.waiting.Add(-1)
		case <-t.C:
			w.waiting.Add(-1)
			return
		case <-w.done:
			w.waiting.Add(-1)
			return
		}
	}
}

// stop lets idle workers exit; jobs already running finish.
func (w *workers) stop() { w.once.Do(func() { close(w.done) }) }
