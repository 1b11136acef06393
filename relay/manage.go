package relay

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/internal/httpjson"
	"github.com/sidehook/sidehook/internal/units"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/web"
)

// Listing bounds.
const (
	defaultLimit = 50
	maxLimit     = 1000
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
	// Reason says why a dead delivery ended when no attempt does: its
	// endpoint was deleted or removed from the configuration. A retry's
	// answer says with it why a delivery due now waits: behind the head
	// of its ordered endpoint's queue.
	Reason string `json:"reason,omitempty"`
}

// AttemptView is one attempt as the API shows it.
type AttemptView struct {
	N         int       `json:"n"`
	At        time.Time `json:"at"`
	Status    int       `json:"status"`
	LatencyMS float64   `json:"latency_ms"`
	Error     string    `json:"error"`
	Response  string    `json:"response"`
	// RequestHeaders are the headers the attempt sent, names in lower
	// case, credentials redacted (the store keeps them whole); absent when
	// nothing was sent.
	RequestHeaders map[string][]string `json:"request_headers,omitempty"`
}

// viewDelivery is d as the API shows it; delivering says whether this
// relay is attempting it right now, configured names the headers its
// endpoint sets (redacted whatever their names).
func viewDelivery(d *Delivery, delivering bool, configured []string) DeliveryView {
	v := DeliveryView{ID: d.ID, EventID: d.EventID, Endpoint: d.Endpoint, Type: d.Type, Status: shownStatus(d, delivering),
		NextAttemptAt: d.NextAttemptAt, Attempts: make([]AttemptView, 0, len(d.Attempts)), Reason: d.Reason}
	for _, a := range d.Attempts {
		v.Attempts = append(v.Attempts, AttemptView{N: a.N, At: a.At, Status: a.Status, LatencyMS: a.LatencyMS, Error: a.Error,
			Response: a.Response, RequestHeaders: viewHeaders(a.Request, configured)})
	}
	return v
}

// shownStatus is d's status as the API shows it: delivering while this
// relay is attempting it, or, on a store shared with other relays, any
// relay is (the API is the same from every relay).
func shownStatus(d *Delivery, delivering bool) string {
	if ListedAs(StatusDelivering, d.Status, delivering || d.Attempting) {
		return StatusDelivering
	}
	return d.Status
}

// viewHeaders is h as the API and the dashboard show it: names in lower
// case, credentials and the configured headers redacted
// (web.RedactHeaders, the dashboard's rules).
func viewHeaders(h http.Header, configured []string) map[string][]string {
	if len(h) == 0 {
		return nil
	}
	lower := make(map[string][]string, len(h))
	for k, vs := range h {
		lower[strings.ToLower(k)] = vs
	}
	return web.RedactHeaders(lower, configured...)
}

// configuredHeaders names the headers cfg sets (headers: in the endpoint's
// configuration). They are redacted wherever they are shown, whatever
// their names: the relay cannot tell a tenant label from an API key there.
func configuredHeaders(cfg config.Endpoint) []string {
	return slices.Collect(maps.Keys(cfg.Headers))
}

// manager is the management API of SPEC §4: events, deliveries, retries,
// replays, tokens and endpoints.
type manager struct {
	responder
	store   Store
	dir     *directory
	disp    *dispatcher
	sender  *sender
	http    *httpTransport
	tokens  *tokens
	tunnels TunnelServer
	hub     *hub
	clock   Clock
	sync    *syncWork
	// maxReplay bounds the deliveries one replay call touches (the
	// constant; tests lower it).
	maxReplay int

	requeueMu sync.Mutex // one manual retry at a time keeps the waiting counts right
}

// status is d's status as the API shows it, for a filter: without the
// rest of its view (redacted headers of every attempt).
func (m *manager) status(d *Delivery) string { return shownStatus(d, m.disp.inFlight(d.ID)) }

func (m *manager) view(d *Delivery) DeliveryView {
	var configured []string
	if o := m.dir.org(d.Org); o != nil {
		configured = configuredHeaders(o.endpointConfig(d.Endpoint))
	}
	return viewDelivery(d, m.disp.inFlight(d.ID), configured)
}

func (m *manager) viewEvent(ctx context.Context, ev *Event) (EventView, error) {
	v := EventView{ID: ev.ID, Type: ev.Type, Organisation: ev.Org, ReceivedAt: ev.ReceivedAt, Query: ev.Query, Deliveries: []DeliveryView{}}
	v.Body, v.BodyEncoding = event.EncodeBody(ev.Body)
	if v.BodyEncoding == event.BodyUTF8 {
		v.BodyEncoding = "" // omitted: text is the default
	}
	ds, err := m.eventDeliveries(ctx, ev)
	if err != nil {
		return v, err
	}
	for _, d := range ds {
		v.Deliveries = append(v.Deliveries, m.view(d))
	}
	return v, nil
}

// eventDeliveries reads an event's deliveries in the event's order
// (purged ones are left out).
func (m *manager) eventDeliveries(ctx context.Context, ev *Event) ([]*Delivery, error) {
	if len(ev.Deliveries) == 0 {
		return nil, nil
	}
	ids := make([]string, len(ev.Deliveries))
	for i, ref := range ev.Deliveries {
		ids[i] = ref.ID
	}
	page, err := m.store.Deliveries(ctx, ev.Org, DeliveryFilter{IDs: ids, Limit: len(ids)})
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*Delivery, len(page.Items))
	for _, d := range page.Items {
		byID[d.ID] = d
	}
	out := make([]*Delivery, 0, len(ids))
	for _, id := range ids {
		if d := byID[id]; d != nil {
			out = append(out, d)
		}
	}
	return out, nil
}

func notFoundOr(err error, what, id string) error {
	if errors.Is(err, ErrNotFound) {
		return apiErrorf(http.StatusNotFound, "not_found", "no %s %q", what, id)
	}
	return err
}

// listError turns a listing's store error into an answer.
func listError(err error) error {
	if errors.Is(err, ErrBadCursor) {
		return apiErrorf(http.StatusBadRequest, "invalid_query", "cursor: %v", ErrBadCursor)
	}
	return err
}

// listParams are the common query parameters of the listings.
type listParams struct {
	q      url.Values
	limit  int
	cursor string
	since  time.Time
	until  time.Time
	// untilSet: until was given. Given, the zero time
	// (0001-01-01T00:00:00Z) bounds too: to nothing (noneUntil).
	untilSet bool
}

// noneUntil reports whether until, given (set) as the zero time, bounds a
// listing to nothing: nothing is stored that early. A store reads a zero
// Until as no bound, so the caller answers itself. A zero since needs no
// such care: everything is at or after it.
func noneUntil(until time.Time, set bool) bool { return set && until.IsZero() }

// listQuery are the query parameters every listing takes.
var listQuery = []string{"limit", "cursor", "since", "until"}

// parseList reads a listing's query; a parameter that is neither common
// nor one of extra is an error naming it, not a filter silently ignored.
func parseList(req *http.Request, extra ...string) (*listParams, error) {
	q := req.URL.Query()
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if !slices.Contains(listQuery, k) && !slices.Contains(extra, k) {
			return nil, apiErrorf(http.StatusBadRequest, "invalid_query", "unknown query parameter %q: want one of %s",
				k, strings.Join(append(slices.Clone(listQuery), extra...), ", "))
		}
	}
	p := &listParams{q: q, cursor: q.Get("cursor")}
	var err error
	if p.limit, err = httpjson.ParseLimit(q.Get("limit"), defaultLimit, maxLimit); err != nil {
		return nil, apiErrorf(http.StatusBadRequest, "invalid_query", "%v", err)
	}
	if p.since, p.until, p.untilSet, err = parseRange(q.Get("since"), q.Get("until")); err != nil {
		return nil, apiErrorf(http.StatusBadRequest, "invalid_query", "%v", err)
	}
	return p, nil
}

// parseRange reads a since and an until (units.ParseSince: a time, or a
// duration ago); untilSet says until was given. A since after the until
// is an error: it would list nothing, and the caller meant something.
func parseRange(sinceText, untilText string) (since, until time.Time, untilSet bool, err error) {
	now := time.Now()
	if since, err = units.ParseSince(sinceText, now); err != nil {
		return since, until, false, fmt.Errorf("since: %w", err)
	}
	if until, err = units.ParseSince(untilText, now); err != nil {
		return since, until, false, fmt.Errorf("until: %w", err)
	}
	untilSet = strings.TrimSpace(untilText) != ""
	if untilSet && !since.IsZero() && since.After(until) {
		return since, until, untilSet, fmt.Errorf("since %q (%s) is after until %q (%s): nothing is in that range",
			sinceText, since.UTC().Format(time.RFC3339), untilText, until.UTC().Format(time.RFC3339))
	}
	return since, until, untilSet, nil
}

// handleListEvents is GET /v1/events, newest first.
func (m *manager) handleListEvents() http.Handler {
	return m.handle(func(w http.ResponseWriter, req *http.Request) error {
		o := orgFrom(req.Context())
		p, err := parseList(req, "type")
		if err != nil {
			return err
		}
		var page Page[*Event]
		if !noneUntil(p.until, p.untilSet) {
			page, err = m.store.Events(req.Context(), o.id, EventFilter{Type: p.q.Get("type"), Since: p.since, Until: p.until, Limit: p.limit, Cursor: p.cursor})
			if err != nil {
				return listError(err)
			}
		}
		out := make([]EventView, 0, len(page.Items))
		for _, ev := range page.Items {
			v, err := m.viewEvent(req.Context(), ev)
			if err != nil {
				return err
			}
			out = append(out, v)
		}
		writeJSON(w, http.StatusOK, map[string]any{"events": out, "next": nullable(page.Next)})
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
func (m *manager) handleGetEvent() http.Handler {
	return m.handle(func(w http.ResponseWriter, req *http.Request) error {
		o := orgFrom(req.Context())
		id := req.PathValue("id")
		ev, err := m.store.Event(req.Context(), o.id, id)
		if err != nil {
			return notFoundOr(err, "event", id)
		}
		v, err := m.viewEvent(req.Context(), ev)
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
	untilSet     bool // as listParams.untilSet
}

func (f *deliveryFilter) parse() error {
	var err error
	if f.since, f.until, f.untilSet, err = parseRange(f.Since, f.Until); err != nil {
		return apiErrorf(http.StatusBadRequest, "invalid_filter", "%v", err)
	}
	switch f.Status {
	case "", StatusPending, StatusDelivering, StatusDelivered, StatusFailed, StatusDead:
	default:
		return apiErrorf(http.StatusBadRequest, "invalid_filter", "status %q: want pending, delivering, delivered, failed or dead", f.Status)
	}
	return nil
}

// store is the part of f the store applies: all of it but the page.
func (f *deliveryFilter) store(limit int, cursor string) DeliveryFilter {
	return DeliveryFilter{Status: f.Status, Endpoint: f.Endpoint, Type: f.Type, Since: f.since, Until: f.until, Limit: limit, Cursor: cursor}
}

// matches reports whether d, shown with status (see manager.status),
// passes f.
func (f *deliveryFilter) matches(d *Delivery, status string) bool {
	switch {
	case f.Status != "" && status != f.Status,
		f.Endpoint != "" && d.Endpoint != f.Endpoint,
		f.Type != "" && d.Type != f.Type,
		!f.since.IsZero() && d.CreatedAt.Before(f.since),
		f.untilSet && d.CreatedAt.After(f.until):
		return false
	}
	return true
}

// listDeliveries is one page of an organisation's deliveries under f. The
// store lists those it holds leased as delivering; one whose lease began
// or ended since shows as this relay's attempts say, so a page may be
// shorter than its limit.
func (m *manager) listDeliveries(ctx context.Context, o *orgState, f *deliveryFilter, limit int, cursor string) ([]*Delivery, string, error) {
	if noneUntil(f.until, f.untilSet) {
		return nil, "", nil
	}
	page, err := m.store.Deliveries(ctx, o.id, f.store(limit, cursor))
	if err != nil {
		return nil, "", listError(err)
	}
	out := page.Items[:0:0]
	for _, d := range page.Items {
		if f.matches(d, m.status(d)) {
			out = append(out, d)
		}
	}
	return out, page.Next, nil
}

// handleListDeliveries is GET /v1/deliveries.
func (m *manager) handleListDeliveries() http.Handler {
	return m.handle(func(w http.ResponseWriter, req *http.Request) error {
		o := orgFrom(req.Context())
		p, err := parseList(req, "status", "endpoint", "event", "type")
		if err != nil {
			return err
		}
		// event= is the receiver's name for the filter; type= stays as an
		// alias for the clients that use it.
		typ := p.q.Get("event")
		if t := p.q.Get("type"); t != "" {
			if typ != "" && typ != t {
				return apiErrorf(http.StatusBadRequest, "invalid_query", "event %q and type %q disagree: type is an alias of event, give one", typ, t)
			}
			typ = t
		}
		f := &deliveryFilter{Status: p.q.Get("status"), Endpoint: p.q.Get("endpoint"), Type: typ,
			Since: p.q.Get("since"), Until: p.q.Get("until")}
		if err := f.parse(); err != nil {
			return err
		}
		ds, next, err := m.listDeliveries(req.Context(), o, f, p.limit, p.cursor)
		if err != nil {
			return err
		}
		out := make([]DeliveryView, 0, len(ds))
		for _, d := range ds {
			out = append(out, m.view(d))
		}
		writeJSON(w, http.StatusOK, map[string]any{"deliveries": out, "next": nullable(next)})
		return nil
	})
}

// handleGetDelivery is GET /v1/deliveries/{id}.
func (m *manager) handleGetDelivery() http.Handler {
	return m.handle(func(w http.ResponseWriter, req *http.Request) error {
		o := orgFrom(req.Context())
		id := req.PathValue("id")
		d, err := m.store.Delivery(req.Context(), o.id, id)
		if err != nil {
			return notFoundOr(err, "delivery", id)
		}
		writeJSON(w, http.StatusOK, m.view(d))
		return nil
	})
}

// requeue makes a delivery due now as a new series of attempts (the
// schedule starts again). An attempt in flight is not interrupted.
func (m *manager) requeue(ctx context.Context, o *orgState, id string) (*Delivery, error) {
	ctx = context.WithoutCancel(ctx)
	m.requeueMu.Lock()
	defer m.requeueMu.Unlock()
	d, err := m.store.Delivery(ctx, o.id, id)
	if err != nil {
		return nil, notFoundOr(err, "delivery", id)
	}
	// A delivery being attempted is requeued once that attempt is recorded
	// (Store.Requeue's contract): never attempted twice at once, and no 409
	// for a retry that lands as the attempt ends.
	ep := o.endpoint(d.Endpoint)
	if ep == nil {
		return nil, apiErrorf(http.StatusConflict, "endpoint_gone", "endpoint %q of delivery %s no longer exists", d.Endpoint, id)
	}
	// Requeued, it would wait unsent, pending, until someone enabled the
	// endpoint: the caller is told now, and what to do.
	if !ep.enabled() {
		return nil, apiErrorf(http.StatusConflict, "endpoint_disabled", "endpoint %q of delivery %s is disabled (%s): enable it, then retry", d.Endpoint, id, ep.disabledWhy())
	}
	if isCustomValue(d) {
		return nil, apiErrorf(http.StatusConflict, "not_retryable", "custom-value requests are synchronous and are not retried")
	}
	wasFinal := Final(d.Status)
	now := m.clock.Now()
	// Due from the write on, it may be attempted (by a queue running
	// anyway) before this goroutine publishes: the hub holds the attempt's
	// outcome back until the pending change is out, or a dashboard would
	// end on "pending" for a delivered delivery.
	place := m.hub.hold(o.id, d.EventID)
	nd, err := m.store.Requeue(ctx, o.id, id, now)
	if err != nil {
		m.hub.release(o.id, d.EventID, place)
		if errors.Is(err, ErrNotFound) {
			return nil, notFoundOr(err, "delivery", id)
		}
		return nil, storeError(err)
	}
	c := deliveryChange(nd, now)
	c.Status = StatusPending // a leased one becomes pending when its lease ends
	m.hub.release(o.id, d.EventID, place, c)
	m.disp.requeued(o, nd, wasFinal)
	return nd, nil
}

// retried is the answer to a retry of d, requeued: its view, with a
// reason when it is due now but waits behind the head of its ordered
// endpoint's queue (its next_attempt_at alone said it would go now).
func (m *manager) retried(ctx context.Context, o *orgState, d *Delivery) DeliveryView {
	v := m.view(d)
	ep := o.endpoint(d.Endpoint)
	if ep == nil || !ep.cfg.Ordered {
		return v
	}
	if id := m.disp.inFlightOn(EndpointRef{Org: o.id, Endpoint: d.Endpoint}, d.ID); id != "" {
		v.Reason = fmt.Sprintf("due now, but endpoint %s is ordered: it waits behind %s, whose attempt is in flight", d.Endpoint, id)
		return v
	}
	if !d.Ordered {
		return v
	}
	head, exact, err := m.headBefore(ctx, o, d)
	switch {
	case err != nil && ctx.Err() != nil:
		// The caller has gone: there is no one to explain it to.
	case err != nil:
		// The retry is made; the answer lacks only the explanation.
		m.log.Warn().Err(err).Str(logOrg, o.id).Str(logDelivery, d.ID).Msg("retry: look for the head of its ordered queue")
	case head != "" && exact:
		v.Reason = fmt.Sprintf("due now, but endpoint %s is ordered: it waits behind %s, the head of its queue, until that is delivered or dead", d.Endpoint, head)
	case head != "":
		v.Reason = fmt.Sprintf("due now, but endpoint %s is ordered: it waits behind the older deliveries of its queue (%s among them) until they are delivered or dead", d.Endpoint, head)
	}
	return v
}

// maxHeadScan bounds how many older deliveries headBefore reads: a
// retry's answer is no reason to walk a long history.
const maxHeadScan = 10 * maxLimit

// headBefore is the oldest delivery of d's endpoint that waits (not
// final) and was made before d: the head of the ordered queue d waits
// behind, "" when d is the head. Past maxHeadScan deliveries it gives the
// oldest it found, not exact.
func (m *manager) headBefore(ctx context.Context, o *orgState, d *Delivery) (head string, exact bool, err error) {
	f := DeliveryFilter{Endpoint: d.Endpoint, Until: d.CreatedAt, Limit: maxLimit}
	for scanned := 0; scanned < maxHeadScan; scanned += maxLimit {
		page, err := m.store.Deliveries(ctx, o.id, f)
		if err != nil {
			return "", false, err
		}
		// Newest first: the last one kept is the oldest.
		for _, x := range page.Items {
			before := x.CreatedAt.Before(d.CreatedAt) || (x.CreatedAt.Equal(d.CreatedAt) && x.ID < d.ID)
			if before && !Final(x.Status) {
				head = x.ID
			}
		}
		if page.Next == "" {
			return head, true, nil
		}
		f.Cursor = page.Next
	}
	return head, false, nil
}

// handleRetry is POST /v1/deliveries/{id}/retry.
func (m *manager) handleRetry() http.Handler {
	return m.handle(func(w http.ResponseWriter, req *http.Request) error {
		o := orgFrom(req.Context())
		d, err := m.requeue(req.Context(), o, req.PathValue("id"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusAccepted, m.retried(req.Context(), o, d))
		return nil
	})
}

// replayRequest is the body of POST /v1/replay.
type replayRequest struct {
	Filter deliveryFilter `json:"filter"`
	To     string         `json:"to"`
	// All must be true when the filter is empty: an empty filter resends
	// everything, which should never happen by leaving the filter out.
	All bool `json:"all"`
}

// empty reports whether f, once parsed, selects every delivery. It looks
// at since and until as read, not as written: a blank one (" ") reads as
// no bound, and must not pass for a filter. A given since of the zero
// time keeps every delivery in; a given until of it, none.
func (f *deliveryFilter) empty() bool {
	return f.Status == "" && f.Endpoint == "" && f.Type == "" && f.since.IsZero() && !f.untilSet && len(f.IDs) == 0
}

// isCustomValue reports whether d records a custom-value exchange: a
// synchronous request a bot waited for, never resent.
func isCustomValue(d *Delivery) bool { return d.Type == string(event.CustomValueRequest) }

// errNotReplayable names the custom-value deliveries a replay selected.
func errNotReplayable(ids []string) error {
	return apiErrorf(http.StatusBadRequest, "not_replayable",
		"custom-value requests are synchronous and are not replayed: %s", strings.Join(ids, ", "))
}

// ReplayResult is one replayed delivery.
type ReplayResult struct {
	DeliveryID string `json:"delivery_id"`
	EventID    string `json:"event_id"`
	// Target is the URL the replay went to (or would have, when NotSent):
	// a "to" without a path takes the endpoint's, so the caller's "to" is
	// not always where the replay went.
	Target    string  `json:"target,omitempty"`
	OK        bool    `json:"ok"`
	Status    int     `json:"status,omitempty"`
	LatencyMS float64 `json:"latency_ms,omitempty"`
	Error     string  `json:"error,omitempty"`
	// NotSent: the call's time ran out before this one (Error says so);
	// it can be replayed in another call.
	NotSent bool `json:"not_sent,omitempty"`
}

// handleReplay is POST /v1/replay: each selected delivery is sent once,
// now, to "to" or else its endpoint's URL (its original target), re-signed
// as its endpoint signs, with sidehook-replay-of naming it (SPEC §3, §7),
// its body bytes unchanged. A replay is never a retry: the delivery keeps
// its state and attempts (POST /v1/deliveries/{id}/retry sends it again as
// an attempt).
func (m *manager) handleReplay() http.Handler {
	return m.handle(func(w http.ResponseWriter, req *http.Request) error {
		o := orgFrom(req.Context())
		var rr replayRequest
		if err := decodeJSON(w, req, &rr); err != nil {
			return err
		}
		f := &rr.Filter
		if err := f.parse(); err != nil {
			return err
		}
		if f.empty() && !rr.All {
			return apiErrorf(http.StatusBadRequest, "invalid_filter", `the filter is empty, which replays every delivery: send "all": true to mean it, or narrow the filter`)
		}
		target, err := m.replayTarget(rr.To, apiReplayHints)
		if err != nil {
			return err
		}
		selected, err := m.selectDeliveries(req.Context(), o, f)
		if err != nil {
			return err
		}
		// Named by id, a custom-value delivery is an error the caller
		// should see; swept up by a filter, it is left out.
		var custom []string
		selected = slices.DeleteFunc(selected, func(d *Delivery) bool {
			if isCustomValue(d) {
				custom = append(custom, d.ID)
				return true
			}
			return false
		})
		if len(custom) > 0 && len(f.IDs) > 0 {
			return errNotReplayable(custom)
		}
		sel := make([]replaySel, len(selected))
		for i, d := range selected {
			sel[i] = replaySel{o, d}
		}
		// replayed counts the replays that went well (ok), as the
		// dashboard's does; a result's not_sent says which went unsent.
		results := m.replayEach(req.Context(), w, sel, target, nil)
		writeJSON(w, http.StatusOK, map[string]any{"replayed": countOK(results), "results": results})
		return nil
	})
}

// replayHints say, in a caller's words, what to do about a delivery whose
// endpoint has no URL a replay can go to.
type replayHints struct {
	// to asks for a target URL.
	to string
	// retry names the retry of delivery id, which sends it again as an
	// attempt (over a tunnel too).
	retry func(id string) string
}

// ReplayToHint is how POST /v1/replay's results ask for a target URL;
// a client that takes the URL another way (sidehook replay's --to) says
// its own words in its place.
const ReplayToHint = `give "to" a URL`

var (
	apiReplayHints = replayHints{to: ReplayToHint,
		retry: func(id string) string { return "retry it with POST /v1/deliveries/" + id + "/retry" }}
	dashboardReplayHints = replayHints{to: "give a Target URL",
		retry: func(string) string { return "Retry to deliver it again" }}
)

// replayTarget is where a replay call sends each delivery: to, when given,
// else the delivery's endpoint's URL (endpointTarget). The API's and the
// dashboard's replays both choose here, so a to that is not an absolute
// http(s) URL (400 invalid_to) or that the outbound policy denies (400
// target_denied) is refused before anything is sent.
func (m *manager) replayTarget(to string, hints replayHints) (func(*orgState, *Delivery) (string, error), error) {
	if to == "" {
		return func(o *orgState, d *Delivery) (string, error) { return m.endpointTarget(o, d, hints) }, nil
	}
	if err := validTarget(to); err != nil {
		return nil, apiErrorf(http.StatusBadRequest, "invalid_to", "to: %v", err)
	}
	if err := m.http.checkTarget("to", to); err != nil {
		return nil, err
	}
	return func(o *orgState, d *Delivery) (string, error) {
		endpointURL := ""
		if e := o.endpoint(d.Endpoint); e != nil {
			endpointURL = e.cfg.URL
		}
		return ReplayURL(to, endpointURL), nil
	}, nil
}

// ReplayURL is where a replay "to" goes for a delivery of the endpoint
// whose URL is endpointURL ("" when it no longer exists): to with the
// endpoint's path when to has none of its own ("" or "/"), and its query
// when to has none either, so a replay to another host (a local app)
// reaches the same place there, as a receiver's replay keeps the capture's
// path. The host, which the outbound policy checked, is to's. The CLI's
// dry run shows its targets with it.
func ReplayURL(to, endpointURL string) string {
	u, err := url.Parse(to)
	if err != nil || endpointURL == "" || (u.Path != "" && u.Path != "/") {
		return to
	}
	orig := endpointURL
	if _, path, ok := parseTunnelURL(orig); ok {
		orig = "http://tunnel" + path
	}
	ou, err := url.Parse(orig)
	if err != nil {
		return to
	}
	u.Path, u.RawPath = ou.Path, ou.RawPath
	if u.RawQuery == "" {
		u.RawQuery = ou.RawQuery
	}
	return u.String()
}

// endpointTarget is d's original target, where a replay without a target
// goes: its endpoint's URL, as it is configured now, tunnel:// included
// when this relay serves tunnels. A deleted endpoint has none; the error
// says so in hints' words.
func (m *manager) endpointTarget(o *orgState, d *Delivery, hints replayHints) (string, error) {
	e := o.endpoint(d.Endpoint)
	if e == nil {
		return "", fmt.Errorf("endpoint %s no longer exists: %s", d.Endpoint, hints.to)
	}
	if !e.enabled() {
		// It asked (a 410) or was told to be left alone.
		return "", fmt.Errorf("endpoint %s is disabled (%s): enable it, or %s", d.Endpoint, e.disabledWhy(), hints.to)
	}
	if _, _, ok := parseTunnelURL(e.cfg.URL); ok && m.sender.tunnels != nil {
		return e.cfg.URL, nil
	}
	if err := validTarget(e.cfg.URL); err != nil {
		return "", fmt.Errorf("endpoint %s is %s, not an http(s) URL a replay can be sent to: %s, or %s",
			d.Endpoint, e.cfg.URL, hints.to, hints.retry(d.ID))
	}
	return e.cfg.URL, nil
}

func validTarget(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("not an absolute http(s) URL")
	}
	return nil
}

// selectDeliveries applies a replay filter: ids (event or delivery ids)
// first, in the order given, else the listing, page by page, at most
// maxReplay (400 too_many above), oldest first. Each delivery is selected once, where it first
// comes, however often the ids name it (itself, its event).
func (m *manager) selectDeliveries(ctx context.Context, o *orgState, f *deliveryFilter) ([]*Delivery, error) {
	out, err := m.selectAll(ctx, o, f)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(out))
	return slices.DeleteFunc(out, func(d *Delivery) bool {
		dup := seen[d.ID]
		seen[d.ID] = true
		return dup
	}), nil
}

// selectAll is selectDeliveries before duplicates are taken out.
func (m *manager) selectAll(ctx context.Context, o *orgState, f *deliveryFilter) ([]*Delivery, error) {
	var out []*Delivery
	if len(f.IDs) > 0 {
		if len(f.IDs) > m.maxReplay {
			return nil, apiErrorf(http.StatusBadRequest, "too_many", "at most %d ids", m.maxReplay)
		}
		for _, id := range f.IDs {
			if strings.HasPrefix(id, event.PrefixDelivery) {
				d, err := m.store.Delivery(ctx, o.id, id)
				if err != nil {
					return nil, notFoundOr(err, "delivery", id)
				}
				if f.matches(d, m.status(d)) {
					out = append(out, d)
				}
				continue
			}
			ev, err := m.store.Event(ctx, o.id, id)
			if err != nil {
				return nil, notFoundOr(err, "event", id)
			}
			ds, err := m.eventDeliveries(ctx, ev)
			if err != nil {
				return nil, err
			}
			for _, d := range ds {
				if f.matches(d, m.status(d)) {
					out = append(out, d)
				}
			}
		}
		return out, nil
	}
	// One more than the bound is read: a filter that selects more is
	// refused rather than cut to the newest maxReplay without a word, which
	// would leave the oldest unreplayed while the answer looks complete.
	cursor := ""
	for len(out) <= m.maxReplay {
		ds, next, err := m.listDeliveries(ctx, o, f, min(maxLimit, m.maxReplay+1-len(out)), cursor)
		if err != nil {
			return nil, err
		}
		out = append(out, ds...)
		if next == "" {
			break
		}
		cursor = next
	}
	if len(out) > m.maxReplay {
		return nil, apiErrorf(http.StatusBadRequest, "too_many",
			"the filter selects more than %d deliveries: narrow it (since, until, status, endpoint, type) and replay them in parts", m.maxReplay)
	}
	// The listing is newest first; a replay goes in the order things
	// first happened (an ordered endpoint's receiver relies on it).
	slices.Reverse(out)
	return out, nil
}

// replayTimeout is how long a replay of d waits for an answer: its
// endpoint's timeout.
func replayTimeout(o *orgState, d *Delivery) time.Duration {
	return endpointTimeout(o.endpointConfig(d.Endpoint), event.Type(d.Type))
}

// replaySel is a delivery a replay call sends, with its organisation.
type replaySel struct {
	o *orgState
	d *Delivery
}

// replayEach sends each delivery of sel once (replayTo), one after
// another, to the URL target names for it, within one call's bound: w's
// write deadline moves past the waiting they plan (syncWork), and a replay
// that could end past the bound is not sent, and says so. A delivery
// target names no URL for is not sent either; its result has target's
// error.
func (m *manager) replayEach(ctx context.Context, w http.ResponseWriter, sel []replaySel, target func(*orgState, *Delivery) (string, error), body []byte) []ReplayResult {
	var planned time.Duration
	for _, s := range sel {
		planned += replayTimeout(s.o, s.d)
	}
	fits := m.sync.begin(w, planned)
	out := make([]ReplayResult, 0, len(sel))
	for _, s := range sel {
		res := ReplayResult{DeliveryID: s.d.ID, EventID: s.d.EventID}
		to, err := target(s.o, s.d)
		switch {
		case err != nil:
			res.Error = err.Error()
		case !fits(replayTimeout(s.o, s.d)):
			res.NotSent = true
			res.Error = fmt.Sprintf("not sent: the replays of one call wait at most %s on endpoints; replay the rest in another call", m.sync.max)
		default:
			res = m.replayTo(ctx, s.o, s.d, to, body)
		}
		res.Target = to
		out = append(out, res)
	}
	return out
}

// replayTo sends a stored delivery once to a URL, its endpoint's (a
// tunnel's included) or another, through the sender as its attempts go:
// signed afresh as its endpoint signs, sidehook-replay-of naming the
// delivery, bytes unchanged unless body is not nil (an edit from the
// dashboard). It is not recorded as an attempt.
func (m *manager) replayTo(ctx context.Context, o *orgState, d *Delivery, to string, body []byte) ReplayResult {
	res := ReplayResult{DeliveryID: d.ID, EventID: d.EventID}
	if isCustomValue(d) {
		res.Error = "custom-value requests are synchronous and are not replayed"
		return res
	}
	ev, err := m.store.Event(ctx, o.id, d.EventID)
	if err != nil {
		// The result goes to the client: the store's own error (Badger's
		// or NATS's words) is logged, not sent.
		res.Error = "event missing: no event " + d.EventID
		if !errors.Is(err, ErrNotFound) {
			res.Error = "event not read: the relay's store is unavailable now; retry later"
			m.log.Error().Err(err).Str(logOrg, o.id).Str(logDelivery, d.ID).Msg("replay: read the delivery's event")
		}
		return res
	}
	cfg := o.endpointConfig(d.Endpoint)
	ob := outbound{method: event.Type(ev.Type).Method(), url: to, query: ev.Query, body: ev.Body, contentType: ev.ContentType,
		eventID: ev.ID, eventType: ev.Type, deliveryID: d.ID, attempt: len(d.Attempts) + 1, replayOf: d.ID}
	if body != nil {
		ob.body = body
	}
	sent := m.sender.send(ctx, o, cfg, ob, endpointTimeout(cfg, event.Type(ev.Type)), 0)
	res.Status, res.LatencyMS = sent.status, units.Millis(sent.latency)
	res.OK, res.Error = classify(sent) == outDelivered, errText(sent)
	return res
}

// handleToken is POST /v1/tokens: a new Webio token for the organisation,
// used by deliveries from the next attempt on.
func (m *manager) handleToken() http.Handler {
	return m.handle(func(w http.ResponseWriter, req *http.Request) error {
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
		tok, err := m.tokens.mint(req.Context(), o)
		if err != nil {
			return storeError(err)
		}
		writeJSON(w, http.StatusOK, map[string]string{"token": tok})
		return nil
	})
}

// sortNewestFirst orders deliveries by id, newest first (ids are ULIDs).
func sortNewestFirst(ds []*Delivery) {
	slices.SortFunc(ds, func(a, b *Delivery) int { return strings.Compare(b.ID, a.ID) })
}
