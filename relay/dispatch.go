package relay

import (
	"bytes"
	"context"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/sidehook/sidehook/internal/store"
	"github.com/sidehook/sidehook/relay/config"
)

// windowSize bounds the deliveries an endpoint holds in memory; the rest
// wait in the due index on disk and are read in as the window drains.
const windowSize = 512

// storeRetry is how long a queue waits after a store error before trying
// again.
const storeRetry = time.Second

// item is one delivery in an endpoint's window.
type item struct {
	key []byte    // its due-index key
	id  string    // delivery id
	due time.Time // not before
	// rec and ev, when set, are the delivery and its event as just
	// written, so the attempt needs no read; entries read back from the
	// index carry neither.
	rec *deliveryRecord
	ev  *eventRecord
}

// maxCarriedBody bounds the bodies kept with window entries: a window of
// 512 entries then holds at most 8 MiB of bodies.
const maxCarriedBody = 16 << 10

// dispatcher owns one queue per endpoint. Each queue has one scheduling
// goroutine that starts attempts (each in its own goroutine, at most
// max_in_flight at once) when their due time comes, within the rate limit.
type dispatcher struct {
	r   *Relay
	log zerolog.Logger

	mu     sync.Mutex
	queues map[string]*queue // "org/endpoint"

	ctx            context.Context // scheduling; canceled by stop
	cancel         context.CancelFunc
	attemptCtx     context.Context // in-flight attempts; canceled when the grace period ends
	cancelAttempts context.CancelFunc
	loops          sync.WaitGroup
	attempts       sync.WaitGroup
	running        atomic.Bool

	inflight sync.Map // delivery id → struct{}: shown as "delivering"
}

func newDispatcher(r *Relay) *dispatcher {
	d := &dispatcher{r: r, log: r.opts.Logger.With().Str("component", "dispatcher").Logger(), queues: make(map[string]*queue)}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.attemptCtx, d.cancelAttempts = context.WithCancel(context.Background())
	return d
}

// start makes a queue for every endpoint and counts the waiting
// deliveries in the background: ready does not wait for a backlog.
func (d *dispatcher) start() {
	// Running before the first queue loop looks at it: a loop that saw
	// false would wait for a wake that may never come.
	d.running.Store(true)
	for _, o := range d.r.orgList {
		for _, e := range o.endpoints() {
			d.queue(o, e.cfg.ID)
		}
	}
	d.loops.Add(1)
	go func() {
		defer d.loops.Done()
		d.countDepths(d.ctx)
	}()
}

// stop ends scheduling, then waits for in-flight attempts until ctx is
// done; attempts still running then are canceled (and retried next start).
func (d *dispatcher) stop(ctx context.Context, grace time.Duration) {
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
}

func queueName(org, ep string) string { return org + "/" + ep }

// queue returns (creating and starting) the queue of an endpoint.
func (d *dispatcher) queue(o *orgState, ep string) *queue {
	d.mu.Lock()
	defer d.mu.Unlock()
	name := queueName(o.id, ep)
	if q := d.queues[name]; q != nil {
		return q
	}
	q := &queue{d: d, org: o, ep: ep, prefix: queuePrefix(o.id, ep), ids: make(map[string]struct{}), wake: make(chan struct{}, 1)}
	d.queues[name] = q
	if d.ctx.Err() == nil {
		d.loops.Add(1)
		go func() {
			defer d.loops.Done()
			q.run(d.ctx)
		}()
	}
	return q
}

func (d *dispatcher) lookup(org, ep string) *queue {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.queues[queueName(org, ep)]
}

// enqueued is called after a delivery's due-index entry is durable.
func (d *dispatcher) enqueued(o *orgState, ep string, it item) {
	q := d.queue(o, ep)
	q.depth.Add(1)
	q.offer(it)
}

// rescheduled is called after an existing delivery got a new due-index
// entry (manual retry, replay).
func (d *dispatcher) rescheduled(o *orgState, ep string, it item, wasFinal bool) {
	q := d.queue(o, ep)
	if wasFinal {
		q.depth.Add(1)
	}
	q.mu.Lock()
	// The entry the delivery had may still be in the window, with the
	// record as it was: it must not be attempted.
	for i, w := range q.window {
		if w.id == it.id {
			q.window = append(q.window[:i:i], q.window[i+1:]...)
			delete(q.ids, it.id)
			break
		}
	}
	q.offerLocked(it)
	q.mu.Unlock()
	q.poke()
}

func (d *dispatcher) endpointChanged(o *orgState, ep string) {
	d.queue(o, ep).poke()
}

func (d *dispatcher) endpointRemoved(o *orgState, ep string) {
	d.mu.Lock()
	q := d.queues[queueName(o.id, ep)]
	d.mu.Unlock()
	if q != nil {
		q.mu.Lock()
		for _, it := range q.window {
			delete(q.ids, it.id)
		}
		q.window = nil
		q.complete = true
		q.mu.Unlock()
		q.depth.Store(0)
	}
}

// orgDepth is the number of deliveries waiting for the organisation.
func (d *dispatcher) orgDepth(org string) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var n int64
	for _, q := range d.queues {
		if q.org.id == org {
			n += q.depth.Load()
		}
	}
	return n
}

func (d *dispatcher) depths() map[[2]string]int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := make(map[[2]string]int64, len(d.queues))
	for _, q := range d.queues {
		if q.org.endpoint(q.ep) != nil {
			m[[2]string{q.org.id, q.ep}] = q.depth.Load()
		}
	}
	return m
}

// countDepths counts the due index once, key by key, without values: the
// queue-depth gauges and max_queue start from it. It runs after ready.
func (d *dispatcher) countDepths(ctx context.Context) {
	counts := map[string]int64{}
	err := d.r.store.Scan(ctx, store.ScanOptions{Prefix: []byte(pfxQueue), KeysOnly: true}, func(k, _ []byte) error {
		rest := k[len(pfxQueue):]
		i := bytes.IndexByte(rest, '/')
		if i < 0 {
			return nil
		}
		j := bytes.IndexByte(rest[i+1:], '/')
		if j < 0 {
			return nil
		}
		counts[string(rest[:i+1+j])]++
		return nil
	})
	if err != nil {
		if ctx.Err() == nil {
			d.log.Error().Err(err).Msg("count waiting deliveries")
		}
		return
	}
	for name, n := range counts {
		org, ep, _ := strings.Cut(name, "/")
		o := d.r.orgs[org]
		if o == nil || o.endpoint(ep) == nil {
			d.log.Warn().Str(logOrg, org).Str(logEndpoint, ep).Int64("deliveries", n).Msg("deliveries waiting for an endpoint that no longer exists")
			continue
		}
		d.queue(o, ep).depth.Add(n)
	}
}

// queue is one endpoint's share of the dispatcher. The window holds the
// earliest entries of the endpoint's due index, sorted by key. Invariant:
// while !complete, every index entry with key <= boundary is in the window,
// in flight, or already gone; entries above boundary are read by refill.
type queue struct {
	d      *dispatcher
	org    *orgState
	ep     string
	prefix []byte
	depth  atomic.Int64
	wake   chan struct{}

	mu       sync.Mutex
	window   []item
	ids      map[string]struct{} // in the window or in flight
	inflight int
	complete bool   // the window holds every index entry
	boundary []byte // largest key read from the index (nil: none yet)
	dropped  uint64 // offers left on disk; a refill racing them must not claim complete

	limiter  *rate.Limiter
	rateText string
}

func (q *queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// offer adds an entry that is durable in the index, or leaves it to the
// next refill when it lies beyond what the window covers.
func (q *queue) offer(it item) {
	q.mu.Lock()
	q.offerLocked(it)
	q.mu.Unlock()
	q.poke()
}

func (q *queue) offerLocked(it item) {
	if _, dup := q.ids[it.id]; dup {
		return
	}
	if !q.complete && (q.boundary == nil || bytes.Compare(it.key, q.boundary) > 0) {
		q.dropped++
		return
	}
	i := sort.Search(len(q.window), func(i int) bool { return bytes.Compare(q.window[i].key, it.key) >= 0 })
	q.window = append(q.window, item{})
	copy(q.window[i+1:], q.window[i:])
	q.window[i] = it
	q.ids[it.id] = struct{}{}
	if len(q.window) > windowSize {
		last := q.window[len(q.window)-1]
		q.window = q.window[:len(q.window)-1]
		delete(q.ids, last.id)
		q.complete = false
		q.boundary = q.window[len(q.window)-1].key
	}
}

// done ends an attempt; next, when set, is the delivery's new entry.
func (q *queue) done(it item, next *item) {
	q.mu.Lock()
	q.inflight--
	delete(q.ids, it.id)
	if next != nil {
		q.offerLocked(*next)
	}
	q.mu.Unlock()
	q.poke()
}

func (q *queue) run(ctx context.Context) {
	clock := q.d.r.clock
	timer := clock.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := time.Duration(-1)
		if err := q.refill(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			q.d.log.Error().Err(err).Str(logOrg, q.org.id).Str(logEndpoint, q.ep).Msg("read due deliveries")
			wait = storeRetry
		} else {
			wait = q.dispatch()
		}
		if wait >= 0 {
			timer.Reset(max(wait, time.Millisecond))
		} else {
			timer.Reset(time.Hour)
		}
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		case <-timer.C():
		}
	}
}

// refill reads the next entries of the due index when the window runs low.
func (q *queue) refill(ctx context.Context) error {
	q.mu.Lock()
	if q.complete || len(q.window) >= windowSize/2 {
		q.mu.Unlock()
		return nil
	}
	after := q.boundary
	want := windowSize - len(q.window)
	gen := q.dropped
	q.mu.Unlock()

	var got []item
	err := q.d.r.store.Scan(ctx, store.ScanOptions{Prefix: q.prefix, After: after, Limit: want}, func(k, v []byte) error {
		due, ok := decodeTime(v)
		if !ok {
			return nil
		}
		id := string(k[len(q.prefix)+8:])
		got = append(got, item{key: bytes.Clone(k), id: id, due: due})
		return nil
	})
	if err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if !bytes.Equal(after, q.boundary) || q.complete {
		// An eviction or a removal moved the boundary meanwhile: what was
		// read may not join the window; the next round reads again.
		return nil
	}
	for _, it := range got {
		if _, dup := q.ids[it.id]; dup {
			continue
		}
		q.window = append(q.window, it)
		q.ids[it.id] = struct{}{}
	}
	if len(got) > 0 {
		q.boundary = got[len(got)-1].key
	}
	sort.Slice(q.window, func(i, j int) bool { return bytes.Compare(q.window[i].key, q.window[j].key) < 0 })
	if len(got) < want && q.dropped == gen {
		q.complete = true
	}
	return nil
}

// dispatch starts every attempt that may start now and says how long until
// the next one may (-1: nothing to do until woken).
func (q *queue) dispatch() time.Duration {
	e := q.org.endpoint(q.ep)
	if e == nil || !e.enabled() || !q.d.running.Load() {
		return -1
	}
	limit := e.cfg.MaxInFlight
	if e.cfg.Ordered {
		limit = 1
	}
	now := q.d.r.clock.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	lim := q.rateLimiter(e.cfg.Rate)
	for q.inflight < limit && len(q.window) > 0 {
		it := q.window[0]
		if it.due.After(now) {
			return it.due.Sub(now)
		}
		if lim != nil {
			res := lim.ReserveN(now, 1)
			if delay := res.DelayFrom(now); delay > 0 {
				res.CancelAt(now)
				return delay
			}
		}
		q.window = q.window[1:]
		q.inflight++
		q.d.attempts.Add(1)
		go func() {
			defer q.d.attempts.Done()
			q.d.deliver(q, it)
		}()
	}
	return -1
}

func (q *queue) rateLimiter(r config.Rate) *rate.Limiter {
	if r.PerSecond <= 0 {
		q.limiter, q.rateText = nil, ""
		return nil
	}
	if q.limiter == nil || q.rateText != r.Text {
		q.limiter = rate.NewLimiter(rate.Limit(r.PerSecond), r.Burst)
		q.rateText = r.Text
	}
	return q.limiter
}
