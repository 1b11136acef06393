package relay

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash/fnv"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/internal/store"
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
	Deliveries []deliveryRef `json:"deliveries"`
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
		return nil, apiErrorf(http.StatusRequestEntityTooLarge, "too_large", "body of %d bytes is above the limit of %d", req.ContentLength, limit)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, req.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, apiErrorf(http.StatusRequestEntityTooLarge, "too_large", "body above the limit of %d bytes", limit)
		}
		return nil, apiErrorf(http.StatusBadRequest, "invalid_body", "read body: %v", err)
	}
	return b, nil
}

// handleIngest is POST /v1/events.
func (r *Relay) handleIngest() http.Handler {
	return r.handle(func(w http.ResponseWriter, req *http.Request) error {
		return r.ingest(w, req, orgFrom(req.Context()))
	})
}

// handleInbound is POST /in/{org}: the platform's public URL.
func (r *Relay) handleInbound() http.Handler {
	return r.handle(func(w http.ResponseWriter, req *http.Request) error {
		o := r.orgs[req.PathValue("org")]
		if o == nil {
			return apiErrorf(http.StatusNotFound, "unknown_organisation", "no organisation %q", req.PathValue("org"))
		}
		if o.verifier != nil {
			body, err := readBody(w, req, r.cfg.Limits.MaxBody)
			if err != nil {
				return err
			}
			if v := o.verifier.Verify(req.Context(), req, body); v.Status != "valid" {
				return apiErrorf(http.StatusUnauthorized, "invalid_token", "%s: %s", v.Scheme, v.Reason)
			}
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		return r.ingest(w, req, o)
	})
}

func (r *Relay) ingest(w http.ResponseWriter, req *http.Request, o *orgState) error {
	body, err := readBody(w, req, r.cfg.Limits.MaxBody)
	if err != nil {
		return err
	}
	in, err := parseIngest(req.Header, req.URL.RawQuery, body)
	if err != nil {
		return err
	}
	status, ans, err := r.accept(req, o, in)
	if err != nil {
		return err
	}
	writeJSON(w, status, ans)
	return nil
}

// accept stores the event with its deliveries in one durable write and
// hands the deliveries to the dispatcher.
func (r *Relay) accept(req *http.Request, o *orgState, in *ingestRequest) (int, *IngestAnswer, error) {
	ctx := req.Context()
	hash := bodyHash(in.Body)
	if in.ID != "" {
		// Two requests with one id must not both pass the existence check:
		// the stripe lock makes check-and-write atomic per id.
		h := fnv.New32a()
		h.Write([]byte(o.id + "/" + in.ID))
		mu := &r.idem[h.Sum32()%uint32(len(r.idem))]
		mu.Lock()
		defer mu.Unlock()
		b, err := r.store.Get(eventKey(o.id, in.ID))
		switch {
		case err == nil:
			prev, err := decodeEvent(b)
			if err != nil {
				return 0, nil, err
			}
			if prev.Hash != hash || prev.Type != string(in.Type) {
				return 0, nil, apiErrorf(http.StatusConflict, "idempotency_conflict",
					"event %q was already accepted with a different body or type", in.ID)
			}
			return http.StatusOK, &IngestAnswer{ID: prev.ID, Type: prev.Type, Deliveries: prev.Deliveries}, nil
		case !errors.Is(err, store.ErrNotFound):
			return 0, nil, storeError(err)
		}
	}
	now := r.clock.Now()
	id := in.ID
	if id == "" {
		id = event.NewID(event.PrefixEvent, now)
	}
	var targets []*endpointState
	for _, e := range o.endpoints() {
		if e.enabled() && event.Matches(e.cfg.Events, in.Type) {
			targets = append(targets, e)
		}
	}
	if len(targets) > 0 {
		if q := r.disp.orgDepth(o.id); q+int64(len(targets)) > int64(r.cfg.Limits.MaxQueue) {
			return 0, nil, apiErrorf(http.StatusTooManyRequests, "queue_full",
				"organisation %s has %d deliveries waiting (max_queue %d); retry later", o.id, q, r.cfg.Limits.MaxQueue)
		}
	}
	rec := &eventRecord{ID: id, Type: string(in.Type), Org: o.id, ReceivedAt: now, ContentType: in.ContentType, Hash: hash, Body: in.Body, Deliveries: []deliveryRef{}}
	ops := make([]store.Op, 0, 2+2*len(targets))
	type queued struct {
		ep string
		it item
	}
	qs := make([]queued, 0, len(targets))
	for _, e := range targets {
		did := event.NewID(event.PrefixDelivery, now)
		rec.Deliveries = append(rec.Deliveries, deliveryRef{ID: did, Endpoint: e.cfg.ID})
		key := queueKey(queuePrefix(o.id, e.cfg.ID), now, did)
		due := now
		d := &deliveryRecord{ID: did, EventID: id, Org: o.id, Endpoint: e.cfg.ID, Type: string(in.Type),
			Status: StatusPending, CreatedAt: now, NextAttemptAt: &due, Attempts: []attempt{}, QKey: key}
		db, err := json.Marshal(d)
		if err != nil {
			return 0, nil, err
		}
		ops = append(ops, store.Set(deliveryKey(o.id, did), db), store.Set(key, encodeTime(due)))
		qs = append(qs, queued{ep: e.cfg.ID, it: item{key: key, id: did, due: due, rec: d}})
	}
	eb, err := encodeEvent(rec)
	if err != nil {
		return 0, nil, err
	}
	ops = append(ops, store.Set(eventKey(o.id, id), eb), store.Set(eventTimeKey(o.id, now, id), []byte{}))
	if err := r.store.Write(ctx, ops...); err != nil {
		return 0, nil, storeError(err)
	}
	// Durable from here on: tell the dispatcher and the subscribers.
	if len(in.Body) <= maxCarriedBody {
		for i := range qs {
			qs[i].it.ev = rec
		}
	}
	changes := make([]Change, 0, 1+len(qs))
	changes = append(changes, Change{Kind: ChangeEvent, Org: o.id, EventID: id, Type: rec.Type, At: now})
	for _, q := range qs {
		r.disp.enqueued(o, q.ep, q.it)
		changes = append(changes, Change{Kind: ChangeDelivery, Org: o.id, EventID: id, DeliveryID: q.it.id,
			Endpoint: q.ep, Type: rec.Type, Status: StatusPending, At: now})
	}
	r.metrics.ingested.WithLabelValues(o.id, rec.Type).Inc()
	r.hub.publish(changes...)
	return http.StatusAccepted, &IngestAnswer{ID: id, Type: rec.Type, Deliveries: rec.Deliveries}, nil
}
