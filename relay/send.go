package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/internal/store"
	"github.com/sidehook/sidehook/relay/config"
)

// Delivery headers of SPEC §3.
const (
	hdrWebhookID = "webhook-id"
	hdrTimestamp = "webhook-timestamp"
	hdrEvent     = "sidehook-event"
	hdrDelivery  = "sidehook-delivery"
	hdrAttempt   = "sidehook-attempt"
	hdrReplayOf  = "sidehook-replay-of"
	hdrTest      = "sidehook-test"
)

// drainLimit is how much of an answer beyond the kept 4 KiB is read so the
// connection can be reused; a larger answer costs a new connection.
const drainLimit = 64 << 10

func newHTTPClient(rt http.RoundTripper) *http.Client {
	if rt == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = 1024
		t.MaxIdleConnsPerHost = 256
		t.IdleConnTimeout = 90 * time.Second
		// Bytes in, bytes out: never ask for or undo a content encoding.
		t.DisableCompression = true
		t.Proxy = nil
		rt = t
	}
	return &http.Client{
		Transport: rt,
		// A redirect is the endpoint's answer, not something to follow with
		// a signed body.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// outbound is one request to an endpoint.
type outbound struct {
	method      string
	url         string
	query       string // GET: the raw query appended to the URL
	body        []byte
	contentType string
	eventID     string
	eventType   string
	deliveryID  string
	attempt     int
	replayOf    string
	test        bool
}

// result is what came back.
type result struct {
	status  int
	header  http.Header
	body    []byte // at most maxResponse (or the whole answer for custom values)
	latency time.Duration
	err     error
}

// send signs and sends one request with the endpoint's headers and auth.
// keepBody > 0 keeps that much of the answer.
func (r *Relay) send(ctx context.Context, o *orgState, e config.Endpoint, ob outbound, timeout time.Duration, keepBody int64) result {
	if timeout <= 0 {
		timeout = config.DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	target := ob.url
	if ob.query != "" {
		sep := "?"
		if strings.Contains(target, "?") {
			sep = "&"
		}
		target += sep + ob.query
	}
	var body io.Reader
	if ob.method != http.MethodGet {
		body = bytes.NewReader(ob.body)
	}
	req, err := http.NewRequestWithContext(ctx, ob.method, target, body)
	if err != nil {
		return result{err: fmt.Errorf("build request: %w", err)}
	}
	h, err := r.requestHeaders(o, e, ob, r.clock.Now())
	if err != nil {
		return result{err: err}
	}
	req.Header = h
	start := time.Now()
	resp, err := r.client.Do(req)
	if err != nil {
		return result{latency: time.Since(start), err: describeNetError(err, timeout)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, keepBody))
	lat := time.Since(start)
	io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	res := result{status: resp.StatusCode, header: resp.Header, body: b, latency: lat}
	if err != nil && resp.StatusCode/100 != 2 {
		res.err = fmt.Errorf("read answer: %w", err)
	}
	return res
}

// requestHeaders are the headers of one request to an endpoint at ts:
// the endpoint's own, those of SPEC §3, and its authentication.
func (r *Relay) requestHeaders(o *orgState, e config.Endpoint, ob outbound, ts time.Time) (http.Header, error) {
	h := r.plainHeaders(e, ob, ts)
	if err := auth.SignRequest(h, e.Auth, r.outboundKeys(o, e), auth.Outbound{
		Method: ob.method, WebhookID: ob.eventID, Event: ob.eventType, RawQuery: ob.query, Body: ob.body, Timestamp: ts,
	}); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return h, nil
}

// plainHeaders are requestHeaders without the authentication.
func (r *Relay) plainHeaders(e config.Endpoint, ob outbound, ts time.Time) http.Header {
	h := make(http.Header, 12)
	for k, v := range e.Headers {
		h.Set(k, v)
	}
	h.Set("User-Agent", r.userAgent())
	h.Set(hdrWebhookID, ob.eventID)
	h.Set(hdrTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(hdrEvent, ob.eventType)
	h.Set(hdrDelivery, ob.deliveryID)
	h.Set(hdrAttempt, strconv.Itoa(ob.attempt))
	if ob.replayOf != "" {
		h.Set(hdrReplayOf, ob.replayOf)
	}
	if ob.test {
		h.Set(hdrTest, "true")
	}
	if ob.method != http.MethodGet {
		ct := ob.contentType
		if ct == "" {
			ct = "application/json"
		}
		h.Set("Content-Type", ct)
	}
	return h
}

func (r *Relay) userAgent() string { return "sidehook/" + r.opts.Version }

// outboundKeys are the keys an endpoint of o is signed with.
func (r *Relay) outboundKeys(o *orgState, e config.Endpoint) auth.OutboundKeys {
	keys := auth.OutboundKeys{
		WebioToken: *o.token.Load(),
		Issuer:     r.cfg.Issuer,
		Org:        o.id,
		Audience:   e.ID,
		JWT:        r.signingKey(o),
	}
	if o.cfg.StandardSecret != nil {
		keys.Standard = [][]byte{o.cfg.StandardSecret}
	}
	return keys
}

func describeNetError(err error, timeout time.Duration) error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("timeout: no answer within %s", timeout)
	}
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && ue.Unwrap() != nil {
		return ue.Unwrap()
	}
	return err
}

// outcome of an attempt.
type outcome int

const (
	outDelivered outcome = iota
	outRetry
	outDead
	outGone // 410: dead, and the endpoint is disabled
)

func classify(res result) outcome {
	switch {
	case res.err != nil:
		return outRetry
	case res.status >= 200 && res.status < 300:
		return outDelivered
	case res.status == http.StatusGone:
		return outGone
	case res.status == http.StatusRequestTimeout, res.status == http.StatusTooManyRequests, res.status >= 500:
		return outRetry
	case res.status >= 400:
		return outDead
	}
	return outRetry
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

// deliver runs one attempt of a delivery taken from q's window and records
// its outcome and the next due time in one write.
func (d *dispatcher) deliver(q *queue, it item) {
	r := d.r
	o := q.org
	e := o.endpoint(q.ep)
	if e == nil {
		q.done(it, nil)
		return
	}
	d.inflight.Store(it.id, struct{}{})
	defer d.inflight.Delete(it.id)
	retryLater := func(err error, what string) {
		d.log.Error().Err(err).Str(logDelivery, it.id).Msg(what)
		q.done(it, &item{key: it.key, id: it.id, due: r.clock.Now().Add(storeRetry)})
	}
	var rec deliveryRecord
	if it.rec != nil {
		rec = *it.rec
	} else {
		b, err := r.store.Get(deliveryKey(o.id, it.id))
		if errors.Is(err, store.ErrNotFound) {
			// Purged or never completed: the index entry is all that is left.
			r.store.Write(context.Background(), store.Delete(it.key))
			q.depth.Add(-1)
			q.done(it, nil)
			return
		}
		if err != nil {
			retryLater(err, "read delivery")
			return
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			retryLater(err, "decode delivery")
			return
		}
	}
	if !bytes.Equal(rec.QKey, it.key) {
		// The delivery moved (a manual retry) since this entry was read.
		q.done(it, nil)
		return
	}
	ev := it.ev
	var evErr error
	if ev == nil {
		eb, err := r.store.Get(eventKey(o.id, rec.EventID))
		switch {
		case errors.Is(err, store.ErrNotFound):
			evErr = errors.New("the event is missing from the store")
		case err != nil:
			retryLater(err, "read event")
			return
		default:
			if ev, err = decodeEvent(eb); err != nil {
				retryLater(err, "decode event")
				return
			}
		}
	}
	now := r.clock.Now()
	n := len(rec.Attempts) + 1
	var res result
	if evErr != nil {
		res = result{err: evErr}
	} else {
		ob := outbound{method: event.Type(ev.Type).Method(), url: e.cfg.URL, body: ev.Body, contentType: ev.ContentType,
			eventID: ev.ID, eventType: ev.Type, deliveryID: rec.ID, attempt: n}
		if ob.method == http.MethodGet {
			ob.query = ev.Query
		}
		res = r.send(d.attemptCtx, o, e.cfg, ob, e.cfg.Timeout, maxResponse)
		if res.err != nil && d.attemptCtx.Err() != nil {
			// Stopped by shutdown, not by the endpoint: not an attempt.
			q.done(it, nil)
			return
		}
	}
	rec.Attempts = append(rec.Attempts, attempt{N: n, At: now, Status: res.status, LatencyMS: float64(res.latency.Microseconds()) / 1000,
		Error: errText(res), Response: truncateResponse(res.body)})
	oc := classify(res)
	policy := r.cfg.Retry
	if e.cfg.Retry != nil {
		policy = *e.cfg.Retry
	}
	var next *item
	ops := make([]store.Op, 0, 4)
	if oc == outRetry {
		step := n - rec.Base - 1
		if step >= len(policy.Schedule) {
			oc = outDead
		} else {
			delay := jitter(policy.Schedule[step], policy.Jitter)
			if ra, ok := retryAfter(res.header, time.Now()); ok && res.err == nil {
				delay = max(delay, min(ra, r.opts.MaxRetryAfter))
			}
			due := now.Add(delay)
			key := it.key
			if !e.cfg.Ordered {
				key = queueKey(q.prefix, due, rec.ID)
			}
			rec.Status, rec.NextAttemptAt, rec.QKey = StatusFailed, &due, key
			if !bytes.Equal(key, it.key) {
				ops = append(ops, store.Delete(it.key))
			}
			ops = append(ops, store.Set(key, encodeTime(due)))
			next = &item{key: key, id: rec.ID, due: due, rec: &rec}
			if ev != nil && len(ev.Body) <= maxCarriedBody {
				next.ev = ev
			}
		}
	}
	if oc != outRetry {
		rec.Status, rec.NextAttemptAt, rec.QKey = StatusDead, nil, nil
		if oc == outDelivered {
			rec.Status = StatusDelivered
		}
		ops = append(ops, store.Delete(it.key))
	}
	if oc == outGone {
		// Disabled in memory at once, so no new event is routed to it even
		// before the mark is on disk.
		reason := fmt.Sprintf("answered 410 Gone at %s (delivery %s)", now.UTC().Format(time.RFC3339), rec.ID)
		r.disableEndpoint(o, e.cfg.ID, reason)
		ops = append(ops, store.Set(disabledKey(o.id, e.cfg.ID), []byte(reason)))
	}
	db, err := json.Marshal(&rec)
	if err != nil {
		retryLater(err, "encode delivery")
		return
	}
	ops = append(ops, store.Set(deliveryKey(o.id, rec.ID), db))
	if err := r.store.Write(context.Background(), ops...); err != nil {
		// The outcome is lost but the entry is still in the index: the
		// delivery is tried again (a duplicate, never a loss).
		retryLater(err, "record attempt")
		return
	}
	label := rec.Status
	r.metrics.deliveries.WithLabelValues(o.id, e.cfg.ID, label).Inc()
	r.metrics.latency.WithLabelValues(o.id, e.cfg.ID).Observe(res.latency.Seconds())
	if next == nil {
		q.depth.Add(-1)
	}
	r.hub.publish(Change{Kind: ChangeDelivery, Org: o.id, EventID: rec.EventID, DeliveryID: rec.ID, Endpoint: rec.Endpoint,
		Type: rec.Type, Status: rec.Status, Attempt: n, HTTPStatus: res.status, At: now})
	q.done(it, next)
}

func errText(res result) string {
	if res.err != nil {
		return res.err.Error()
	}
	if res.status/100 != 2 {
		return fmt.Sprintf("HTTP %d", res.status)
	}
	return ""
}
