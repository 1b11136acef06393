package relay

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/internal/store"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/replay"
)

// Listing bounds.
const (
	defaultLimit = 50
	maxLimit     = 1000
	// maxScan bounds the records one filtered listing reads; past it the
	// answer carries a cursor to continue from.
	maxScan = 100_000
	// maxReplay bounds the deliveries one replay call touches.
	maxReplay = 10_000
)

func parseQuery(raw string) (url.Values, error) { return url.ParseQuery(raw) }

// EventView is an event as the API shows it.
type EventView struct {
	ID           string         `json:"id"`
	Type         string         `json:"type"`
	Organisation string         `json:"organisation"`
	ReceivedAt   time.Time      `json:"received_at"`
	Body         string         `json:"body"`
	BodyEncoding string         `json:"body_encoding,omitempty"`
	Query        string         `json:"query,omitempty"`
	Deliveries   []DeliveryView `json:"deliveries"`
}

// DeliveryView is a delivery as the API shows it.
type DeliveryView struct {
	ID            string        `json:"id"`
	EventID       string        `json:"event_id"`
	Endpoint      string        `json:"endpoint"`
	Type          string        `json:"type"`
	Status        string        `json:"status"`
	NextAttemptAt *time.Time    `json:"next_attempt_at"`
	Attempts      []AttemptView `json:"attempts"`
}

// AttemptView is one attempt as the API shows it.
type AttemptView struct {
	N         int       `json:"n"`
	At        time.Time `json:"at"`
	Status    int       `json:"status"`
	LatencyMS float64   `json:"latency_ms"`
	Error     string    `json:"error"`
	Response  string    `json:"response"`
}

func (r *Relay) viewDelivery(d *deliveryRecord) DeliveryView {
	v := DeliveryView{ID: d.ID, EventID: d.EventID, Endpoint: d.Endpoint, Type: d.Type, Status: d.Status,
		NextAttemptAt: d.NextAttemptAt, Attempts: make([]AttemptView, 0, len(d.Attempts))}
	if _, ok := r.disp.inflight.Load(d.ID); ok && !finalStatus(d.Status) {
		v.Status = StatusDelivering
	}
	for _, a := range d.Attempts {
		v.Attempts = append(v.Attempts, AttemptView(a))
	}
	return v
}

func (r *Relay) viewEvent(ev *eventRecord) (EventView, error) {
	v := EventView{ID: ev.ID, Type: ev.Type, Organisation: ev.Org, ReceivedAt: ev.ReceivedAt, Query: ev.Query, Deliveries: []DeliveryView{}}
	v.Body, v.BodyEncoding = event.EncodeBody(ev.Body)
	if v.BodyEncoding == event.BodyUTF8 {
		v.BodyEncoding = "" // omitted: text is the default
	}
	for _, ref := range ev.Deliveries {
		d, err := r.getDelivery(ev.Org, ref.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return v, err
		}
		v.Deliveries = append(v.Deliveries, r.viewDelivery(d))
	}
	return v, nil
}

func (r *Relay) getDelivery(org, id string) (*deliveryRecord, error) {
	b, err := r.store.Get(deliveryKey(org, id))
	if err != nil {
		return nil, err
	}
	var d deliveryRecord
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

func (r *Relay) getEvent(org, id string) (*eventRecord, error) {
	b, err := r.store.Get(eventKey(org, id))
	if err != nil {
		return nil, err
	}
	return decodeEvent(b)
}

func notFoundOr(err error, what, id string) error {
	if errors.Is(err, store.ErrNotFound) {
		return apiErrorf(http.StatusNotFound, "not_found", "no %s %q", what, id)
	}
	return err
}

// listParams are the common query parameters of the listings.
type listParams struct {
	q      url.Values
	limit  int
	cursor []byte
	since  time.Time
	until  time.Time
}

func parseList(req *http.Request) (*listParams, error) {
	q := req.URL.Query()
	p := &listParams{q: q, limit: defaultLimit}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return nil, apiErrorf(http.StatusBadRequest, "invalid_query", "limit %q is not a positive integer", s)
		}
		p.limit = min(n, maxLimit)
	}
	if s := q.Get("cursor"); s != "" {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			return nil, apiErrorf(http.StatusBadRequest, "invalid_query", "cursor %q is not a cursor from a previous answer", s)
		}
		p.cursor = b
	}
	var err error
	if p.since, err = parseTimeParam(q.Get("since")); err != nil {
		return nil, apiErrorf(http.StatusBadRequest, "invalid_query", "since: %v", err)
	}
	if p.until, err = parseTimeParam(q.Get("until")); err != nil {
		return nil, apiErrorf(http.StatusBadRequest, "invalid_query", "until: %v", err)
	}
	return p, nil
}

// parseTimeParam reads RFC 3339, unix seconds, or a duration ago ("15m").
func parseTimeParam(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return time.Now().Add(-d), nil
	}
	return time.Time{}, errors.New("want RFC 3339, unix seconds or a duration ago like 15m")
}

func cursorOf(k []byte) string { return base64.RawURLEncoding.EncodeToString(k) }

// handleListEvents is GET /v1/events, newest first.
func (r *Relay) handleListEvents() http.Handler {
	return r.handle(func(w http.ResponseWriter, req *http.Request) error {
		o := orgFrom(req.Context())
		p, err := parseList(req)
		if err != nil {
			return err
		}
		typ := p.q.Get("type")
		prefix := []byte(pfxEventTime + o.id + "/")
		out := []EventView{}
		next := ""
		scanned := 0
		err = r.store.Scan(req.Context(), store.ScanOptions{Prefix: prefix, Reverse: true, After: p.cursor, KeysOnly: true}, func(k, _ []byte) error {
			scanned++
			rest := k[len(prefix):]
			if len(rest) < 8 {
				return nil
			}
			at, _ := decodeTime(rest[:8])
			if !p.until.IsZero() && at.After(p.until) {
				return nil
			}
			if !p.since.IsZero() && at.Before(p.since) {
				return store.ErrStop
			}
			if len(out) == p.limit || scanned > maxScan {
				next = cursorOf(k[:len(k):len(k)])
				return store.ErrStop
			}
			ev, err := r.getEvent(o.id, string(rest[8:]))
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			if typ != "" && ev.Type != typ {
				return nil
			}
			v, err := r.viewEvent(ev)
			if err != nil {
				return err
			}
			out = append(out, v)
			return nil
		})
		if err != nil {
			return err
		}
		if next != "" && len(out) == p.limit {
			// The cursor is exclusive: continue after the last one returned.
			last := out[len(out)-1]
			next = cursorOf(eventTimeKey(o.id, last.ReceivedAt, last.ID))
		}
		writeJSON(w, http.StatusOK, map[string]any{"events": out, "next": nullable(next)})
		return nil
	})
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// handleGetEvent is GET /v1/events/{id}.
func (r *Relay) handleGetEvent() http.Handler {
	return r.handle(func(w http.ResponseWriter, req *http.Request) error {
		o := orgFrom(req.Context())
		id := req.PathValue("id")
		ev, err := r.getEvent(o.id, id)
		if err != nil {
			return notFoundOr(err, "event", id)
		}
		v, err := r.viewEvent(ev)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, v)
		return nil
	})
}

// deliveryFilter selects deliveries for the listing and for replay.
type deliveryFilter struct {
	Status   string   `json:"status"`
	Endpoint string   `json:"endpoint"`
	Type     string   `json:"type"`
	Since    string   `json:"since"`
	Until    string   `json:"until"`
	IDs      []string `json:"ids"`

	since, until time.Time
}

func (f *deliveryFilter) parse() error {
	var err error
	if f.since, err = parseTimeParam(f.Since); err != nil {
		return apiErrorf(http.StatusBadRequest, "invalid_filter", "since: %v", err)
	}
	if f.until, err = parseTimeParam(f.Until); err != nil {
		return apiErrorf(http.StatusBadRequest, "invalid_filter", "until: %v", err)
	}
	switch f.Status {
	case "", StatusPending, StatusDelivering, StatusDelivered, StatusFailed, StatusDead:
	default:
		return apiErrorf(http.StatusBadRequest, "invalid_filter", "status %q: want pending, delivering, delivered, failed or dead", f.Status)
	}
	return nil
}

func (r *Relay) matches(f *deliveryFilter, d *deliveryRecord, v DeliveryView) bool {
	if f.Status != "" && v.Status != f.Status {
		return false
	}
	if f.Endpoint != "" && d.Endpoint != f.Endpoint {
		return false
	}
	if f.Type != "" && d.Type != f.Type {
		return false
	}
	if !f.until.IsZero() && d.CreatedAt.After(f.until) {
		return false
	}
	return true
}

// scanDeliveries visits an organisation's deliveries newest first; fn
// returns false to stop. It returns the key to continue after when it
// stopped at the scan bound.
func (r *Relay) scanDeliveries(ctx context.Context, org string, after []byte, f *deliveryFilter, fn func(k []byte, d *deliveryRecord, v DeliveryView) bool) (string, error) {
	prefix := []byte(pfxDelivery + org + "/")
	scanned := 0
	next := ""
	err := r.store.Scan(ctx, store.ScanOptions{Prefix: prefix, Reverse: true, After: after}, func(k, val []byte) error {
		scanned++
		if scanned > maxScan {
			next = cursorOf(append([]byte(nil), k...))
			return store.ErrStop
		}
		id := string(k[len(prefix):])
		if !f.since.IsZero() {
			if t, err := event.IDTime(event.PrefixDelivery, id); err == nil && t.Before(f.since.Truncate(time.Millisecond)) {
				return store.ErrStop
			}
		}
		var d deliveryRecord
		if err := json.Unmarshal(val, &d); err != nil {
			return nil
		}
		if !f.since.IsZero() && d.CreatedAt.Before(f.since) {
			return nil
		}
		v := r.viewDelivery(&d)
		if !r.matches(f, &d, v) {
			return nil
		}
		if !fn(k, &d, v) {
			return store.ErrStop
		}
		return nil
	})
	return next, err
}

// handleListDeliveries is GET /v1/deliveries.
func (r *Relay) handleListDeliveries() http.Handler {
	return r.handle(func(w http.ResponseWriter, req *http.Request) error {
		o := orgFrom(req.Context())
		p, err := parseList(req)
		if err != nil {
			return err
		}
		f := &deliveryFilter{Status: p.q.Get("status"), Endpoint: p.q.Get("endpoint"), Type: p.q.Get("type"),
			Since: p.q.Get("since"), Until: p.q.Get("until")}
		if err := f.parse(); err != nil {
			return err
		}
		out := []DeliveryView{}
		next := ""
		var lastKey []byte
		bound, err := r.scanDeliveries(req.Context(), o.id, p.cursor, f, func(k []byte, _ *deliveryRecord, v DeliveryView) bool {
			if len(out) == p.limit {
				next = cursorOf(lastKey)
				return false
			}
			out = append(out, v)
			lastKey = append(lastKey[:0], k...)
			return true
		})
		if err != nil {
			return err
		}
		if next == "" {
			next = bound
		}
		writeJSON(w, http.StatusOK, map[string]any{"deliveries": out, "next": nullable(next)})
		return nil
	})
}

// handleGetDelivery is GET /v1/deliveries/{id}.
func (r *Relay) handleGetDelivery() http.Handler {
	return r.handle(func(w http.ResponseWriter, req *http.Request) error {
		o := orgFrom(req.Context())
		id := req.PathValue("id")
		d, err := r.getDelivery(o.id, id)
		if err != nil {
			return notFoundOr(err, "delivery", id)
		}
		writeJSON(w, http.StatusOK, r.viewDelivery(d))
		return nil
	})
}

// requeue makes a delivery due now as a new series of attempts (the
// schedule starts again). An attempt in flight is not interrupted.
func (r *Relay) requeue(ctx context.Context, o *orgState, id string) (*deliveryRecord, error) {
	mu := &r.idem[len(r.idem)-1]
	mu.Lock()
	defer mu.Unlock()
	d, err := r.getDelivery(o.id, id)
	if err != nil {
		return nil, notFoundOr(err, "delivery", id)
	}
	if _, busy := r.disp.inflight.Load(id); busy {
		return nil, apiErrorf(http.StatusConflict, "delivering", "delivery %s is being attempted right now", id)
	}
	e := o.endpoint(d.Endpoint)
	if e == nil {
		return nil, apiErrorf(http.StatusConflict, "endpoint_gone", "endpoint %q of delivery %s no longer exists", d.Endpoint, id)
	}
	if d.Type == string(event.CustomValueRequest) {
		return nil, apiErrorf(http.StatusConflict, "not_retryable", "custom-value requests are synchronous and are not retried")
	}
	wasFinal := finalStatus(d.Status)
	now := r.clock.Now()
	key := queueKey(queuePrefix(o.id, d.Endpoint), now, d.ID)
	ops := []store.Op{}
	if d.QKey != nil {
		ops = append(ops, store.Delete(d.QKey))
	}
	d.Status, d.NextAttemptAt, d.QKey, d.Base = StatusPending, &now, key, len(d.Attempts)
	b, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	ops = append(ops, store.Set(key, encodeTime(now)), store.Set(deliveryKey(o.id, d.ID), b))
	if err := r.store.Write(ctx, ops...); err != nil {
		return nil, storeError(err)
	}
	r.disp.rescheduled(o, d.Endpoint, item{key: key, id: d.ID, due: now, rec: d}, wasFinal)
	r.hub.publish(Change{Kind: ChangeDelivery, Org: o.id, EventID: d.EventID, DeliveryID: d.ID, Endpoint: d.Endpoint,
		Type: d.Type, Status: StatusPending, At: now})
	return d, nil
}

// handleRetry is POST /v1/deliveries/{id}/retry.
func (r *Relay) handleRetry() http.Handler {
	return r.handle(func(w http.ResponseWriter, req *http.Request) error {
		o := orgFrom(req.Context())
		d, err := r.requeue(req.Context(), o, req.PathValue("id"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusAccepted, r.viewDelivery(d))
		return nil
	})
}

// replayRequest is the body of POST /v1/replay.
type replayRequest struct {
	Filter deliveryFilter `json:"filter"`
	To     string         `json:"to"`
}

// ReplayResult is one replayed delivery.
type ReplayResult struct {
	DeliveryID string  `json:"delivery_id"`
	EventID    string  `json:"event_id"`
	OK         bool    `json:"ok"`
	Status     int     `json:"status,omitempty"`
	LatencyMS  float64 `json:"latency_ms,omitempty"`
	Error      string  `json:"error,omitempty"`
}

// handleReplay is POST /v1/replay: the selected deliveries are enqueued
// again as new attempts, or, with "to", sent once to that URL right now,
// re-signed, with sidehook-replay-of naming the original delivery.
func (r *Relay) handleReplay() http.Handler {
	return r.handle(func(w http.ResponseWriter, req *http.Request) error {
		o := orgFrom(req.Context())
		var rr replayRequest
		if err := decodeJSON(w, req, &rr); err != nil {
			return err
		}
		f := &rr.Filter
		if err := f.parse(); err != nil {
			return err
		}
		if rr.To != "" {
			if err := validTarget(rr.To); err != nil {
				return apiErrorf(http.StatusBadRequest, "invalid_to", "to: %v", err)
			}
		}
		selected, err := r.selectDeliveries(req.Context(), o, f)
		if err != nil {
			return err
		}
		if rr.To == "" {
			ids := []string{}
			results := []ReplayResult{}
			for _, d := range selected {
				res := ReplayResult{DeliveryID: d.ID, EventID: d.EventID, OK: true}
				if _, err := r.requeue(req.Context(), o, d.ID); err != nil {
					res.OK, res.Error = false, err.Error()
					var ae *apiError
					if errors.As(err, &ae) {
						res.Error = ae.Reason
					}
				} else {
					ids = append(ids, d.ID)
				}
				results = append(results, res)
			}
			writeJSON(w, http.StatusAccepted, map[string]any{"enqueued": len(ids), "results": results})
			return nil
		}
		results := []ReplayResult{}
		for _, d := range selected {
			results = append(results, r.replayTo(req.Context(), o, d, rr.To, nil))
		}
		writeJSON(w, http.StatusOK, map[string]any{"replayed": len(results), "results": results})
		return nil
	})
}

func validTarget(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("not an absolute http(s) URL")
	}
	return nil
}

// selectDeliveries applies a replay filter: ids (event or delivery ids)
// first, else a scan.
func (r *Relay) selectDeliveries(ctx context.Context, o *orgState, f *deliveryFilter) ([]*deliveryRecord, error) {
	var out []*deliveryRecord
	if len(f.IDs) > 0 {
		if len(f.IDs) > maxReplay {
			return nil, apiErrorf(http.StatusBadRequest, "too_many", "at most %d ids", maxReplay)
		}
		for _, id := range f.IDs {
			switch {
			case strings.HasPrefix(id, event.PrefixDelivery):
				d, err := r.getDelivery(o.id, id)
				if err != nil {
					return nil, notFoundOr(err, "delivery", id)
				}
				if r.matches(f, d, r.viewDelivery(d)) {
					out = append(out, d)
				}
			default:
				ev, err := r.getEvent(o.id, id)
				if err != nil {
					return nil, notFoundOr(err, "event", id)
				}
				for _, ref := range ev.Deliveries {
					d, err := r.getDelivery(o.id, ref.ID)
					if err != nil {
						continue
					}
					if r.matches(f, d, r.viewDelivery(d)) {
						out = append(out, d)
					}
				}
			}
		}
		return out, nil
	}
	_, err := r.scanDeliveries(ctx, o.id, nil, f, func(_ []byte, d *deliveryRecord, _ DeliveryView) bool {
		out = append(out, d)
		return len(out) < maxReplay
	})
	return out, err
}

// replayTo sends a stored delivery once to another URL through package
// replay (as the receiver and `sidehook replay` do): signed as its endpoint
// signs, sidehook-replay-of naming the delivery, bytes unchanged unless body
// is not nil (an edit from the dashboard). It is not recorded as an attempt.
func (r *Relay) replayTo(ctx context.Context, o *orgState, d *deliveryRecord, to string, body []byte) ReplayResult {
	res := ReplayResult{DeliveryID: d.ID, EventID: d.EventID}
	ev, err := r.getEvent(o.id, d.EventID)
	if err != nil {
		res.Error = "event missing: " + err.Error()
		return res
	}
	cfg := defaultEndpoint(o, d.Endpoint)
	if e := o.endpoint(d.Endpoint); e != nil {
		cfg = e.cfg
	}
	ob := outbound{method: event.Type(ev.Type).Method(), body: ev.Body, contentType: ev.ContentType,
		eventID: ev.ID, eventType: ev.Type, deliveryID: d.ID, attempt: len(d.Attempts) + 1}
	target := to
	if ob.method == http.MethodGet && ev.Query != "" {
		sep := "?"
		if strings.Contains(target, "?") {
			sep = "&"
		}
		target += sep + ev.Query
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = config.DefaultTimeout
	}
	out := replay.Send(ctx, replay.Item{
		ID:        d.ID,
		Method:    ob.method,
		Target:    target,
		Header:    r.plainHeaders(cfg, ob, r.clock.Now()),
		Body:      ev.Body,
		WebhookID: ev.ID,
		Event:     ev.Type,
	}, replay.Options{
		Schemes:   cfg.Auth,
		Keys:      r.outboundKeys(o, cfg),
		Body:      body,
		Client:    &http.Client{Transport: r.client.Transport, Timeout: timeout},
		Now:       r.clock.Now,
		UserAgent: r.userAgent(),
	})
	res.Status, res.LatencyMS = out.Status, float64(out.LatencyMS)
	res.OK = out.OK()
	res.Error = out.Error
	return res
}

// handleToken is POST /v1/tokens: a new Webio token for the organisation,
// used by deliveries from the next attempt on.
func (r *Relay) handleToken() http.Handler {
	return r.handle(func(w http.ResponseWriter, req *http.Request) error {
		o := orgFrom(req.Context())
		var body struct {
			SecretKey string `json:"secret_key"`
		}
		if err := decodeJSON(w, req, &body); err != nil {
			return err
		}
		if o.cfg.SecretKey == nil {
			return apiErrorf(http.StatusBadRequest, "no_secret_key", "organisation %s has no secret_key configured", o.id)
		}
		if body.SecretKey == "" {
			return apiErrorf(http.StatusBadRequest, "invalid_body", "secret_key is required")
		}
		if subtle.ConstantTimeCompare([]byte(body.SecretKey), o.cfg.SecretKey) != 1 {
			return apiErrorf(http.StatusForbidden, "invalid_secret_key", "secret_key is not the organisation's secret key")
		}
		tok, err := r.mintToken(req.Context(), o)
		if err != nil {
			return storeError(err)
		}
		writeJSON(w, http.StatusOK, map[string]string{"token": tok})
		return nil
	})
}
