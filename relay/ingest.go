package relay

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/internal/httpjson"
	"github.com/sidehook/sidehook/relay/config"
)

// Ingest request headers.
const (
	headerEvent       = "sidehook-event"
	headerWebhookID   = "webhook-id"
	headerIdempotency = "Idempotency-Key"
	maxEventIDLen     = 128
)

// IngestAnswer is the 202 (or, for a repeat, 200) answer of an ingest.
type IngestAnswer struct {
	ID         string        `json:"id"`
	Type       string        `json:"type"`
	Deliveries []DeliveryRef `json:"deliveries"`
}

// ingestRequest is what ParseIngest makes of a request, before any store
// access: everything a bad request can get wrong is found here.
type ingestRequest struct {
	Type        event.Type
	ID          string // "" = a new evt_ id
	Body        []byte
	ContentType string
}

// ParseIngest resolves an ingest's event type and id and checks its body,
// from the sidehook-event header, the type query parameter, the webhook-id
// and Idempotency-Key headers and the body bytes. It is the parser of
// untrusted input behind POST /v1/events and POST /in/{org}; errors are
// client errors (400) with the reason.
func ParseIngest(header http.Header, query string, body []byte) (typ event.Type, id string, err error) {
	r, err := parseIngest(header, query, body)
	if err != nil {
		return "", "", err
	}
	return r.Type, r.ID, nil
}

func parseIngest(header http.Header, rawQuery string, body []byte) (*ingestRequest, error) {
	in := &ingestRequest{Body: body, ContentType: header.Get("Content-Type")}
	// The body is stored and forwarded as its bytes, with its Content-Type
	// but no Content-Encoding: a compressed body would reach every endpoint
	// as bytes it cannot read, so it is refused here instead (RFC 9110
	// §15.5.16).
	if ce := strings.TrimSpace(header.Get("Content-Encoding")); ce != "" && !strings.EqualFold(ce, "identity") {
		return nil, apiErrorf(http.StatusUnsupportedMediaType, "unsupported_content_encoding",
			"content-encoding %q: send the payload uncompressed", ce)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, apiErrorf(http.StatusBadRequest, "empty_body", "the body is the event payload and must not be empty")
	}
	isJSON := true
	if in.ContentType != "" {
		mt, _, err := mime.ParseMediaType(in.ContentType)
		if err != nil {
			return nil, apiErrorf(http.StatusBadRequest, "invalid_content_type", "content-type %q: %v", in.ContentType, err)
		}
		isJSON = mt == "application/json" || strings.HasSuffix(mt, "+json")
	}
	invalidJSON := apiErrorf(http.StatusBadRequest, "invalid_json", "the body is not valid JSON")
	var name string
	switch {
	case header.Get(headerEvent) != "":
		name = strings.TrimSpace(header.Get(headerEvent))
	default:
		q, err := parseQuery(rawQuery)
		if err != nil {
			return nil, apiErrorf(http.StatusBadRequest, "invalid_query", "%v", err)
		}
		name = q.Get("type")
	}
	// The body is scanned once: FromPayload's decode validates all of it,
	// so json.Valid runs only where it did not, or to say why it failed.
	if name != "" {
		if !event.ValidName(name) {
			return nil, apiErrorf(http.StatusBadRequest, "invalid_event_type", "%q is not an event type name ([a-z][a-z0-9_.]{0,63})", name)
		}
		if isJSON && !json.Valid(body) {
			return nil, invalidJSON
		}
		in.Type = event.Type(name)
	} else if t, ok := event.FromPayload(body); ok {
		in.Type = t
	} else if isJSON && !json.Valid(body) {
		return nil, invalidJSON
	} else {
		return nil, apiErrorf(http.StatusBadRequest, "no_event_type",
			"no event type: send the sidehook-event header, ?type=, or a payload with a known \"type\" field")
	}
	if in.Type == event.CustomValueRequest {
		return nil, apiErrorf(http.StatusBadRequest, "invalid_event_type",
			"custom_value_request is a synchronous GET: send it to GET /in/{org}, or use POST /v1/custom-values")
	}
	id := strings.TrimSpace(header.Get(headerWebhookID))
	if id == "" {
		id = strings.TrimSpace(header.Get(headerIdempotency))
	}
	if id != "" {
		if err := validEventID(id); err != nil {
			return nil, apiErrorf(http.StatusBadRequest, "invalid_id", "%v", err)
		}
		in.ID = id
	}
	return in, nil
}

func validEventID(id string) error {
	if len(id) > maxEventIDLen {
		return errors.New("webhook-id / Idempotency-Key longer than 128 characters")
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' || c == '/' {
			return errors.New("webhook-id / Idempotency-Key: printable ASCII without spaces or '/' only")
		}
	}
	return nil
}

func bodyHash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// readBody reads at most limit bytes: above it, 413.
func readBody(w http.ResponseWriter, req *http.Request, limit int64) ([]byte, error) {
	if req.ContentLength > limit {
		return nil, apiErrorf(http.StatusRequestEntityTooLarge, httpjson.CodeTooLarge, "body of %d bytes is above the limit of %d", req.ContentLength, limit)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, req.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, apiErrorf(http.StatusRequestEntityTooLarge, httpjson.CodeTooLarge, "body above the limit of %d bytes", limit)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || req.Context().Err() != nil {
			// The producer hung up mid-body: no one reads this answer, and
			// counted as a 400 it would read as a producer sending bad
			// requests.
			return nil, apiErrorf(statusClientClosed, "client_closed", "the client closed the connection before its body arrived: %v", err)
		}
		return nil, apiErrorf(http.StatusBadRequest, "invalid_body", "read body: %v", err)
	}
	return b, nil
}

// statusClientClosed is nginx's 499, "client closed request".
const statusClientClosed = 499

// ingester is the way in: HTTP → one durable Accept → the dispatcher is
// told → 202.
type ingester struct {
	responder
	store   Store
	dir     *directory
	limits  config.Limits
	clock   Clock
	disp    *dispatcher
	cache   *eventCache
	hub     *hub
	metrics *metrics

	// reserved counts, per organisation, the deliveries of ingests
	// between the max_queue check and the dispatcher counting them, so
	// concurrent ingests cannot together pass max_queue.
	reserveMu sync.Mutex
	reserved  map[string]int64
}

// reserve takes n places in org's queue if max_queue allows, and says how
// many deliveries wait.
func (in *ingester) reserve(org string, n int) (waiting int64, ok bool) {
	in.reserveMu.Lock()
	defer in.reserveMu.Unlock()
	waiting = in.disp.orgDepth(org) + in.reserved[org]
	if waiting+int64(n) > int64(in.limits.MaxQueue) {
		return waiting, false
	}
	if in.reserved == nil {
		in.reserved = make(map[string]int64)
	}
	in.reserved[org] += int64(n)
	return waiting, true
}

func (in *ingester) release(org string, n int) {
	in.reserveMu.Lock()
	defer in.reserveMu.Unlock()
	if in.reserved[org] -= int64(n); in.reserved[org] <= 0 {
		delete(in.reserved, org)
	}
}

// handleIngest is POST /v1/events.
func (in *ingester) handleIngest() http.Handler {
	return in.handle(func(w http.ResponseWriter, req *http.Request) error {
		return in.ingest(w, req, orgFrom(req.Context()))
	})
}

// handleInbound is POST /in/{org}: the platform's public URL.
func (in *ingester) handleInbound() http.Handler {
	return in.handle(func(w http.ResponseWriter, req *http.Request) error {
		o := in.dir.org(req.PathValue("org"))
		if o == nil {
			return apiErrorf(http.StatusNotFound, "unknown_organisation", "no organisation %q", req.PathValue("org"))
		}
		if o.verifier != nil {
			body, err := readBody(w, req, in.limits.MaxBody)
			if err != nil {
				return err
			}
			if v := o.verifier.Verify(req.Context(), req, body); v.Status != "valid" {
				return apiErrorf(http.StatusUnauthorized, "invalid_token", "%s: %s", v.Scheme, v.Reason)
			}
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		return in.ingest(w, req, o)
	})
}

func (in *ingester) ingest(w http.ResponseWriter, req *http.Request, o *orgState) error {
	body, err := readBody(w, req, in.limits.MaxBody)
	if err != nil {
		return err
	}
	r, err := parseIngest(req.Header, req.URL.RawQuery, body)
	if err != nil {
		return err
	}
	// From here the request's context no longer counts: a producer that
	// hangs up once its body is read must not leave an event stored but
	// never dispatched.
	status, ans, err := in.accept(context.WithoutCancel(req.Context()), o, r)
	if err != nil {
		return err
	}
	writeJSON(w, status, ans)
	return nil
}

// accept stores the event with its deliveries in one durable write and
// tells the dispatcher, whatever the write's outcome: an Accept that
// failed may still have stored the event.
func (in *ingester) accept(ctx context.Context, o *orgState, r *ingestRequest) (int, *IngestAnswer, error) {
	hash := bodyHash(r.Body)
	now := in.clock.Now()
	id := r.ID
	if id == "" {
		id = event.NewID(event.PrefixEvent, now)
	}
	var targets []*endpointState
	for _, e := range o.endpoints() {
		if e.enabled() && event.Matches(e.cfg.Events, r.Type) {
			targets = append(targets, e)
		}
	}
	if len(targets) > 0 {
		q, ok := in.reserve(o.id, len(targets))
		if !ok && in.disp.syncDepths(ctx) {
			// On a store shared with other relays, this relay's count
			// is only its own view: asked again, the store may say
			// that the others delivered what this one counts.
			q, ok = in.reserve(o.id, len(targets))
		}
		if !ok {
			// A repeat of an accepted event is answered as one even now.
			if r.ID != "" {
				if prev, err := in.store.Event(ctx, o.id, r.ID); err == nil {
					return repeat(prev, hash, r)
				}
			}
			return 0, nil, apiErrorf(http.StatusTooManyRequests, "queue_full",
				"organisation %s has %d deliveries waiting and this event would add %d, above max_queue %d; retry later",
				o.id, q, len(targets), in.limits.MaxQueue)
		}
		// Released once the dispatcher counts them (or they were not
		// stored): until then they are counted twice, never not at all.
		defer in.release(o.id, len(targets))
	}
	ev := &Event{ID: id, Type: string(r.Type), Org: o.id, ReceivedAt: now, ContentType: r.ContentType, Hash: hash, Body: r.Body,
		Deliveries: make([]DeliveryRef, 0, len(targets)), Fresh: r.ID == ""}
	ds := make([]*Delivery, 0, len(targets))
	for _, e := range targets {
		did := event.NewID(event.PrefixDelivery, now)
		ev.Deliveries = append(ev.Deliveries, DeliveryRef{ID: did, Endpoint: e.cfg.ID})
		due := now
		ds = append(ds, &Delivery{ID: did, EventID: id, Org: o.id, Endpoint: e.cfg.ID, Type: ev.Type,
			Status: StatusPending, CreatedAt: now, Ordered: e.cfg.Ordered, NextAttemptAt: &due, Attempts: []Attempt{}})
	}
	// The dispatcher may take a delivery as soon as the store has it,
	// before this goroutine runs on. An id the relay just made names no
	// other event, so that event is cached before the write and its first
	// attempt finds it even then. An id the producer gave is cached once
	// the write says the event is this one: until then it may name
	// another.
	cached := ev.Fresh
	if cached {
		in.cache.add(ev)
	}
	// For the same reason an attempt's outcome could be published before
	// the event: the hub holds it back until this ingest publishes.
	published := false
	place := in.hub.hold(o.id, id)
	defer func() {
		if !published {
			in.hub.release(o.id, id, place)
		}
	}()
	stored, err := in.store.Accept(ctx, ev, ds)
	switch {
	case errors.Is(err, ErrDuplicate):
		return repeat(stored, hash, r)
	case err != nil:
		// Maybe stored: the dispatcher looks in any case, and if the
		// event is there as written, it was accepted after all.
		got, rerr := in.store.Event(ctx, o.id, id)
		if rerr != nil || got.Hash != hash || !sameDeliveries(got.Deliveries, ev.Deliveries) {
			in.cache.forget(o.id, id)
			in.disp.accepted(o, ds, false)
			if errors.Is(err, ErrTooLarge) {
				// A 4xx is not logged as a failure, but the operator
				// should hear of an event limits.max_body let in and
				// the store could not hold.
				in.log.Warn().Err(err).Str(logOrg, o.id).Int("body_bytes", len(ev.Body)).Int("deliveries", len(ds)).
					Msg("event refused: too large for the store")
			}
			return 0, nil, ingestStoreError(err, ev, in.store.BodyLimit())
		}
		in.log.Warn().Err(err).Str(logOrg, o.id).Str("event", id).Msg("accept reported an error but the event is stored")
		ev = got
	}
	// Durable from here on. A producer's id is cached before the
	// dispatcher is told, so the first attempt finds the event without
	// reading it back. A fresh one is cached already: adding it again
	// could bring back an entry whose attempts have all taken it.
	if !cached {
		in.cache.add(ev)
	}
	changes := make([]Change, 0, 1+len(ds))
	changes = append(changes, Change{Kind: ChangeEvent, Org: o.id, EventID: id, Type: ev.Type, At: now, event: ev})
	for _, d := range ds {
		c := deliveryChange(d, now)
		c.event = ev
		changes = append(changes, c)
	}
	in.metrics.countIngested(o.id, ev.Type)
	in.hub.release(o.id, id, place, changes...)
	published = true
	in.disp.accepted(o, ds, true)
	return http.StatusAccepted, &IngestAnswer{ID: id, Type: ev.Type, Deliveries: ev.Deliveries}, nil
}

// repeat answers an event id seen before: the original answer when the
// body and type are the same, else 409.
func repeat(prev *Event, hash string, r *ingestRequest) (int, *IngestAnswer, error) {
	if prev.Hash != hash || prev.Type != string(r.Type) {
		return 0, nil, apiErrorf(http.StatusConflict, "idempotency_conflict",
			"event %q was already accepted with a different body or type", r.ID)
	}
	return http.StatusOK, &IngestAnswer{ID: prev.ID, Type: prev.Type, Deliveries: prev.Deliveries}, nil
}

func sameDeliveries(a, b []DeliveryRef) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// ingestStoreError is the 503 of an ingest the store refused; a full disk
// says so first, for the producer's logs and alerts. An event the store
// can never hold is a 413 instead: the same bytes again would be refused
// again, and a 503 has producers retry them for ever. limits.max_body is
// at most what the store holds of one body, so a refused event is mostly
// one to many endpoints (each delivery takes room beside the body): the
// reason says both, and the relay's log line, in the store's own words,
// says which.
func ingestStoreError(err error, ev *Event, lim config.StoreLimit) *apiError {
	if errors.Is(err, ErrTooLarge) {
		ae := apiErrorf(http.StatusRequestEntityTooLarge, httpjson.CodeTooLarge,
			"the event (a body of %d bytes, %d deliveries) is more than the relay's store can hold of one event: bodies up to %d bytes, and each delivery takes room beside the body; it will not be accepted as it is (the relay's log says what the store refused)",
			len(ev.Body), len(ev.Deliveries), lim.MaxBody)
		ae.Err = err
		return ae
	}
	ae := storeError(err)
	if errors.Is(err, ErrDiskFull) {
		ae.Reason = "disk full: the relay cannot store the event; retry later"
	}
	return ae
}

// errorLimiter lets about one error line a period through a logger and
// counts the ones it held back in the next that passes: a full disk or a
// lost store refuses every ingest, and one line per refusal would bury
// the log (and fill the disk that is already full). It is a zerolog
// Sampler, which drops lines, and a Hook, which adds the count.
type errorLimiter struct {
	period time.Duration
	now    func() time.Time

	mu         sync.Mutex
	next       time.Time // before it, error lines are held back
	suppressed int       // held back since the last line let through
	report     int       // to add to the line let through
}

// limitErrors returns log with its error lines limited to about one a
// period.
func limitErrors(log zerolog.Logger, period time.Duration, now func() time.Time) zerolog.Logger {
	l := &errorLimiter{period: period, now: now}
	return log.Sample(l).Hook(l)
}

// Sample implements zerolog.Sampler.
func (l *errorLimiter) Sample(lvl zerolog.Level) bool {
	if lvl != zerolog.ErrorLevel {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Before(l.next) {
		l.suppressed++
		return false
	}
	l.next = now.Add(l.period)
	l.report, l.suppressed = l.suppressed, 0
	return true
}

// Run implements zerolog.Hook.
func (l *errorLimiter) Run(e *zerolog.Event, lvl zerolog.Level, _ string) {
	if lvl != zerolog.ErrorLevel {
		return
	}
	l.mu.Lock()
	n := l.report
	l.report = 0
	l.mu.Unlock()
	if n > 0 {
		e.Int("suppressed", n)
	}
}
