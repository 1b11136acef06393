package relay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/internal/units"
	"github.com/sidehook/sidehook/relay/config"
)

// maxResponse is how much of an endpoint's answer an attempt keeps.
const maxResponse = 4 << 10

// maxRecordWait bounds the wait between tries to record an outcome, so a
// long retry schedule does not keep a recovered store waiting for hours.
const maxRecordWait = 30 * time.Second

// attempter makes one attempt of a delivery taken from a queue and records
// its outcome and next state.
type attempter struct {
	store         Store
	sender        *sender
	cache         *eventCache
	hub           *hub
	metrics       *metrics
	clock         Clock
	grace         *tunnelGrace
	retry         config.Retry
	maxRetryAfter time.Duration
	log           zerolog.Logger
}

// attempt sends d once and records the outcome. A delivery that is not
// attempted (its endpoint went away, the relay is stopping) is released.
// ctx ends when the grace period of a stop does. sent is called once the
// endpoint has answered (or the request failed), before the outcome is
// recorded.
func (a *attempter) attempt(ctx context.Context, q *queue, e config.Endpoint, d *Delivery, sent func()) {
	o := q.org
	if Final(d.Status) {
		// Not for the queue: a custom-value exchange recorded by an older
		// relay, which queued it with a due time. Recorded as it is, it
		// leaves the queue.
		cp := *d
		cp.NextAttemptAt = nil
		if err := a.store.Record(context.WithoutCancel(ctx), &cp, ""); err != nil {
			a.release(ctx, d, "record final delivery", err)
		}
		return
	}
	if cur := o.endpoint(e.ID); cur == nil || !cur.enabled() {
		a.release(ctx, d, "", nil)
		return
	}
	if wait := a.grace.hold(a.clock.Now(), o.id, e.URL, d); wait > 0 {
		// Not an attempt: its tunnel's client is still on its way back
		// (tunnelGrace). Its connecting wakes the queue.
		a.release(ctx, d, "", nil)
		q.pause(wait)
		return
	}
	ev, err := a.event(ctx, o.id, d.EventID)
	var res result
	start := a.clock.Now() // the attempt's at: when it went, as the endpoint saw it
	switch {
	case errors.Is(err, ErrNotFound):
		res = result{err: errors.New("the event is missing from the store")}
	case err != nil:
		a.release(ctx, d, "read event", err)
		q.pause(storeRetryMax)
		return
	default:
		ob := outbound{method: event.Type(ev.Type).Method(), url: e.URL, body: ev.Body, contentType: ev.ContentType,
			eventID: ev.ID, eventType: ev.Type, deliveryID: d.ID, attempt: len(d.Attempts) + 1}
		if ob.method == http.MethodGet {
			ob.query = ev.Query
		}
		res = a.sender.send(ctx, o, e, ob, e.Timeout, maxResponse)
		sent()
		if res.err != nil && ctx.Err() != nil {
			// Stopped by shutdown, not by the endpoint: not an attempt.
			a.release(ctx, d, "", nil)
			q.d.cutShort(d.ID)
			return
		}
	}
	now := a.clock.Now()
	next, disable := a.nextState(e, d, res, start, now)
	if disable != "" && a.disable(ctx, o, e.ID, disable) {
		disable = "" // durable already: Record need not write it again
	}
	// Recorded, next is as stored (Store.Record), and so published and
	// counted: dead with the reason if its endpoint went during the
	// attempt, pending if retried by hand during it. The attempt's own
	// outcome is what the metric and the log count, unless it ended dead.
	outcome := next.Status
	if !a.record(ctx, e, next, disable) {
		return
	}
	if next.Status != StatusPending {
		outcome = next.Status
	}
	if len(d.Attempts) == 0 {
		a.cache.attempted(o.id, d.EventID)
	}
	if Final(next.Status) {
		q.depth.Add(-1)
	}
	if o.endpoint(e.ID) != nil { // a removed one's series are gone: not made again
		a.metrics.deliveries.WithLabelValues(o.id, e.ID, outcome).Inc()
		a.metrics.latency.WithLabelValues(o.id, e.ID).Observe(res.latency.Seconds())
	}
	a.logAttempt(o.id, next, res, outcome)
	c := deliveryChange(next, now)
	c.Attempt, c.HTTPStatus, c.event = len(next.Attempts), res.status, ev
	a.hub.publish(c)
}

// disable marks an endpoint disabled after a 410: durably first, then in
// memory, where ingest and the dispatcher read it. Marked in memory first,
// a reload in between (a relay sharing the store changed something) would
// read the marks from the store without it and enable the endpoint again
// until the mark's own change came. It reports whether the mark is
// durable; when the store refuses it, it is marked in memory all the same
// and Record writes it with the outcome.
func (a *attempter) disable(ctx context.Context, o *orgState, id, reason string) bool {
	if cur := o.endpoint(id); cur == nil || cur.disabled != "" {
		return false // gone, or marked by another attempt already
	}
	err := a.store.SetDisabled(context.WithoutCancel(ctx), o.id, id, reason)
	if err != nil {
		a.log.Error().Err(err).Str(logOrg, o.id).Str(logEndpoint, id).Msg("store the disabled mark; it goes with the attempt's outcome")
	}
	if o.markDisabled(id, reason) {
		a.log.Warn().Str(logOrg, o.id).Str(logEndpoint, id).Str("reason", reason).Msg("endpoint disabled")
	}
	return err == nil
}

// logAttempt writes the one console line of an attempt, as `stripe
// listen` prints one per delivery: what was sent where, the answer, and
// when the next try is due.
func (a *attempter) logAttempt(org string, d *Delivery, res result, outcome string) {
	last := d.Attempts[len(d.Attempts)-1]
	ev := a.log.Info()
	if outcome == StatusDead {
		ev = a.log.Warn()
	}
	ev = ev.Time("at", last.At).Str(logOrg, org).Str("event", d.Type).Str("event_id", d.EventID).
		Str(logDelivery, d.ID).Str(logEndpoint, d.Endpoint).Int("status", res.status).
		Float64("latency_ms", last.LatencyMS).Int("attempt", last.N).Str("outcome", outcome)
	if last.Error != "" {
		ev = ev.Str("error", last.Error)
	}
	if d.NextAttemptAt != nil {
		ev = ev.Time("next_retry", *d.NextAttemptAt)
	}
	ev.Msg("attempt")
}

// event is the delivery's event, from the cache of just-accepted events
// or the store.
func (a *attempter) event(ctx context.Context, org, id string) (*Event, error) {
	if ev := a.cache.get(org, id); ev != nil {
		return ev, nil
	}
	return a.store.Event(ctx, org, id)
}

// nextState is d after res: the attempt appended, and delivered, dead, or
// failed until the next step of the retry schedule. disable is the reason
// to disable the endpoint (410). The attempt is at sent, when its request
// went; the next one is due a step after now, when its answer came.
func (a *attempter) nextState(e config.Endpoint, d *Delivery, res result, sent, now time.Time) (next *Delivery, disable string) {
	cp := *d
	next = &cp
	n := len(d.Attempts) + 1
	next.Attempts = append(append(make([]Attempt, 0, n), d.Attempts...), Attempt{N: n, At: sent, Status: res.status,
		LatencyMS: units.Millis(res.latency), Error: errText(res), Response: truncateResponse(res.body),
		Request: res.request})
	oc := classify(res)
	if oc == outRetry {
		policy := a.policy(e)
		step := n - d.Base - 1
		if step >= len(policy.Schedule) {
			oc = outDead
		} else {
			delay := jitter(policy.Schedule[step], policy.Jitter)
			// time.Now, not now: a Retry-After date is on the endpoint's
			// wall clock, which a test's fast Clock is not.
			if ra, ok := retryAfter(res.header, time.Now()); ok && res.err == nil {
				delay = max(delay, min(ra, a.maxRetryAfter))
			}
			due := now.Add(delay)
			next.Status, next.NextAttemptAt = StatusFailed, &due
			return next, ""
		}
	}
	next.NextAttemptAt = nil
	switch oc {
	case outDelivered:
		next.Status = StatusDelivered
	case outGone:
		next.Status = StatusDead
		disable = fmt.Sprintf("answered 410 Gone at %s (delivery %s)", now.UTC().Format(time.RFC3339), d.ID)
	default:
		next.Status = StatusDead
	}
	return next, disable
}

func (a *attempter) policy(e config.Endpoint) config.Retry {
	if e.Retry != nil {
		return *e.Retry
	}
	return a.retry
}

// record stores the outcome. While the store refuses it, the outcome is
// kept here and tried again, waiting as the retry schedule says (at most
// maxRecordWait): the delivery is not sent again meanwhile, and its lease
// keeps it from being taken. It reports whether the outcome was recorded.
func (a *attempter) record(ctx context.Context, e config.Endpoint, d *Delivery, disable string) bool {
	policy := a.policy(e)
	for try := 0; ; try++ {
		err := a.store.Record(context.WithoutCancel(ctx), d, disable)
		if err == nil {
			if try > 0 {
				a.log.Info().Str(logDelivery, d.ID).Int("tries", try+1).Msg("attempt recorded")
			}
			return true
		}
		if errors.Is(err, ErrNotFound) {
			// Purged or its endpoint deleted meanwhile: nothing to record.
			a.log.Debug().Err(err).Str(logDelivery, d.ID).Msg("attempt not recorded")
			return false
		}
		lv := a.log.Debug()
		if try == 0 {
			lv = a.log.Error()
		}
		lv.Err(err).Str(logDelivery, d.ID).Int("tries", try+1).Msg("record attempt; keeping the outcome to record again")
		// Without a schedule (no retries at all), back off exponentially.
		wait := storeRetryMin << min(try, 10)
		if len(policy.Schedule) > 0 {
			wait = jitter(policy.Schedule[min(try, len(policy.Schedule)-1)], policy.Jitter)
		}
		wait = min(wait, maxRecordWait)
		t := a.clock.NewTimer(max(wait, time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			// Stopping: the outcome is lost, the lease with the process;
			// the delivery is tried again after the next start (a
			// duplicate, never a loss).
			return false
		case <-t.C():
		}
	}
}

// release gives a taken delivery back without an attempt.
func (a *attempter) release(ctx context.Context, d *Delivery, what string, cause error) {
	if cause != nil {
		a.log.Error().Err(cause).Str(logDelivery, d.ID).Msg(what)
	}
	if err := a.store.Release(context.WithoutCancel(ctx), d); err != nil {
		a.log.Error().Err(err).Str(logDelivery, d.ID).Msg("release delivery")
	}
}

// truncateResponse keeps the first 4 KiB, cut at a rune boundary so the
// text stays valid UTF-8 when it was.
func truncateResponse(b []byte) string {
	return string(event.CutText(b, maxResponse))
}

// retryAfter reads a Retry-After header (seconds or an HTTP date).
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, 1<<31)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

func jitter(d time.Duration, j float64) time.Duration {
	if j <= 0 {
		return d
	}
	return time.Duration(float64(d) * (1 + j*(2*rand.Float64()-1)))
}
