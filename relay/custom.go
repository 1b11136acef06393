package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/sidehook/sidehook/fixtures"
	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/internal/units"
)

// maxCustomAnswer bounds a custom-value endpoint's answer.
const maxCustomAnswer = 1 << 20

// exchange is one custom-value request and its answer.
type exchange struct {
	res        result
	eventID    string
	deliveryID string
}

// caller makes the synchronous requests to endpoints: custom-value
// requests (a bot is waiting) and connection tests. Neither is retried.
type caller struct {
	responder
	store    Store
	dir      *directory
	sender   *sender
	hub      *hub
	metrics  *metrics
	clock    Clock
	fixtures *fixtures.Set
	sync     *syncWork
}

// customRequest sends a custom-value GET with rawQuery to the
// organisation's custom-value endpoint, synchronously, once, and records
// the exchange. w's write deadline is moved past the request's timeout.
func (c *caller) customRequest(ctx context.Context, w http.ResponseWriter, o *orgState, rawQuery string) (*exchange, error) {
	e := o.customEndpoint()
	if e == nil {
		return nil, apiErrorf(http.StatusBadGateway, "no_custom_value_endpoint",
			"organisation %s has no endpoint subscribed to custom_value_request", o.id)
	}
	if !e.enabled() {
		return nil, apiErrorf(http.StatusBadGateway, "endpoint_disabled", "custom-value endpoint %q is disabled", e.cfg.ID)
	}
	now := c.clock.Now()
	x := &exchange{eventID: event.NewID(event.PrefixEvent, now), deliveryID: event.NewID(event.PrefixDelivery, now)}
	timeout := endpointTimeout(e.cfg, event.CustomValueRequest)
	c.sync.begin(w, timeout)
	x.res = c.sender.send(ctx, o, e.cfg, outbound{method: http.MethodGet, url: e.cfg.URL, query: rawQuery,
		eventID: x.eventID, eventType: string(event.CustomValueRequest), deliveryID: x.deliveryID, attempt: 1}, timeout, maxCustomAnswer).whole()
	status := StatusDelivered
	if classify(x.res) != outDelivered {
		status = StatusDead
	}
	ev := &Event{ID: x.eventID, Type: string(event.CustomValueRequest), Org: o.id, ReceivedAt: now, Query: rawQuery,
		Hash: bodyHash([]byte(rawQuery)), Deliveries: []DeliveryRef{{ID: x.deliveryID, Endpoint: e.cfg.ID}}}
	// Final already: the store keeps it, unqueued.
	d := &Delivery{ID: x.deliveryID, EventID: x.eventID, Org: o.id, Endpoint: e.cfg.ID, Type: ev.Type, Status: status, CreatedAt: now,
		Attempts: []Attempt{{N: 1, At: now, Status: x.res.status, LatencyMS: units.Millis(x.res.latency),
			Error: errText(x.res), Response: truncateResponse(x.res.body), Request: x.res.request}}}
	if _, err := c.store.Accept(context.WithoutCancel(ctx), ev, []*Delivery{d}); err != nil {
		// The bot's answer matters more than the record of it.
		c.log.Error().Err(err).Str(logOrg, o.id).Msg("record custom-value exchange")
	} else {
		dc := deliveryChange(d, now)
		dc.Attempt, dc.HTTPStatus, dc.event = 1, x.res.status, ev
		c.hub.publish(Change{Kind: ChangeEvent, Org: o.id, EventID: ev.ID, Type: ev.Type, At: now, event: ev}, dc)
	}
	c.metrics.deliveries.WithLabelValues(o.id, e.cfg.ID, status).Inc()
	c.metrics.latency.WithLabelValues(o.id, e.cfg.ID).Observe(x.res.latency.Seconds())
	return x, nil
}

// ParseValues reads a custom-value answer: a JSON object whose requested
// fields are strings, or absent/null for no value. Numbers and booleans
// are taken as their JSON text; objects and arrays are not values.
func ParseValues(body []byte, fields []string) (map[string]*string, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(bytes.TrimSpace(body), &raw); err != nil {
		return nil, fmt.Errorf("the answer is not a JSON object: %v", err)
	}
	out := make(map[string]*string, len(fields))
	for _, f := range fields {
		v, ok := raw[f]
		out[f] = nil
		if !ok {
			continue
		}
		v = bytes.TrimSpace(v)
		switch {
		case len(v) == 0 || string(v) == "null":
		case v[0] == '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, fmt.Errorf("field %q: %v", f, err)
			}
			out[f] = &s
		case v[0] == '{' || v[0] == '[':
			return nil, fmt.Errorf("field %q: a value must be a string, not %s", f, map[byte]string{'{': "an object", '[': "an array"}[v[0]])
		default:
			s := string(v)
			out[f] = &s
		}
	}
	return out, nil
}

// valuesRequest is the body of POST /v1/custom-values.
type valuesRequest struct {
	CustomerUID    string   `json:"customer_uid"`
	ChannelID      string   `json:"channel_id"`
	ConversationID string   `json:"conversation_id"`
	Fields         []string `json:"fields"`
}

func (v valuesRequest) query() string {
	// Webio's order: customerUID, channelId, conversationId, fields.
	parts := []string{"customerUID=" + url.QueryEscape(v.CustomerUID), "channelId=" + url.QueryEscape(v.ChannelID)}
	if v.ConversationID != "" {
		parts = append(parts, "conversationId="+url.QueryEscape(v.ConversationID))
	}
	fs := make([]string, len(v.Fields))
	for i, f := range v.Fields {
		fs[i] = url.QueryEscape(f)
	}
	parts = append(parts, "fields="+strings.Join(fs, ","))
	return strings.Join(parts, "&")
}

// fetchValues asks for fields and parses the answer; every failure is a
// 502 with the reason, so a bot can take its failure route.
func (c *caller) fetchValues(ctx context.Context, w http.ResponseWriter, o *orgState, vr valuesRequest) (map[string]*string, error) {
	x, err := c.customRequest(ctx, w, o, vr.query())
	if err != nil {
		return nil, err
	}
	if x.res.err != nil {
		return nil, apiErrorf(http.StatusBadGateway, "custom_values_failed", "custom-value endpoint: %v", x.res.err)
	}
	if x.res.status/100 != 2 {
		return nil, apiErrorf(http.StatusBadGateway, "custom_values_failed", "custom-value endpoint answered HTTP %d", x.res.status)
	}
	vals, err := ParseValues(x.res.body, vr.Fields)
	if err != nil {
		return nil, apiErrorf(http.StatusBadGateway, "custom_values_failed", "custom-value endpoint: %v", err)
	}
	return vals, nil
}

func checkFields(fields []string) error {
	if len(fields) == 0 {
		return apiErrorf(http.StatusBadRequest, "invalid_body", "fields: at least one field is required")
	}
	for _, f := range fields {
		if !validField(f) {
			return apiErrorf(http.StatusBadRequest, "invalid_body", "fields: %q is not a field name (letters, digits, '_', '-', '.')", f)
		}
	}
	return nil
}

// handleCustomValues is POST /v1/custom-values.
func (c *caller) handleCustomValues() http.Handler {
	return c.handle(func(w http.ResponseWriter, req *http.Request) error {
		o := orgFrom(req.Context())
		var vr valuesRequest
		if err := decodeJSON(w, req, &vr); err != nil {
			return err
		}
		if err := checkFields(vr.Fields); err != nil {
			return err
		}
		vals, err := c.fetchValues(req.Context(), w, o, vr)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"values": vals})
		return nil
	})
}

// renderRequest is the body of POST /v1/render.
type renderRequest struct {
	Template       *string `json:"template"` // required ("" renders "")
	CustomerUID    string  `json:"customer_uid"`
	ChannelID      string  `json:"channel_id"`
	ConversationID string  `json:"conversation_id"`
}

// RenderAnswer is the answer of POST /v1/render.
type RenderAnswer struct {
	Text    string             `json:"text"`
	Values  map[string]*string `json:"values"`
	Missing []string           `json:"missing"`
}

// handleRender is POST /v1/render.
func (c *caller) handleRender() http.Handler {
	return c.handle(func(w http.ResponseWriter, req *http.Request) error {
		o := orgFrom(req.Context())
		var rr renderRequest
		if err := decodeJSON(w, req, &rr); err != nil {
			return err
		}
		if rr.Template == nil {
			return apiErrorf(http.StatusBadRequest, "invalid_body", "template is required")
		}
		segs := ParseTemplate(*rr.Template)
		fields := TemplateFields(segs)
		vals := map[string]*string{}
		if len(fields) > 0 {
			var err error
			vals, err = c.fetchValues(req.Context(), w, o, valuesRequest{CustomerUID: rr.CustomerUID, ChannelID: rr.ChannelID,
				ConversationID: rr.ConversationID, Fields: fields})
			if err != nil {
				return err
			}
		}
		text, missing := Render(segs, vals)
		if missing == nil {
			missing = []string{}
		}
		writeJSON(w, http.StatusOK, RenderAnswer{Text: text, Values: vals, Missing: missing})
		return nil
	})
}

// handleInboundGet is GET /in/{org}: the platform's custom-value request,
// proxied with its query as is; the endpoint's answer is returned.
func (c *caller) handleInboundGet() http.Handler {
	return c.handle(func(w http.ResponseWriter, req *http.Request) error {
		o := c.dir.org(req.PathValue("org"))
		if o == nil {
			return apiErrorf(http.StatusNotFound, "unknown_organisation", "no organisation %q", req.PathValue("org"))
		}
		if o.verifier != nil {
			if v := o.verifier.Verify(req.Context(), req, nil); v.Status != "valid" {
				return apiErrorf(http.StatusUnauthorized, "invalid_token", "%s: %s", v.Scheme, v.Reason)
			}
		}
		x, err := c.customRequest(req.Context(), w, o, req.URL.RawQuery)
		if err != nil {
			return err
		}
		// The record's ids, on a failure too: it says what went wrong.
		w.Header().Set(hdrWebhookID, x.eventID)
		w.Header().Set(hdrDelivery, x.deliveryID)
		if x.res.err != nil {
			return apiErrorf(http.StatusBadGateway, "custom_values_failed", "custom-value endpoint: %v", x.res.err)
		}
		ct := x.res.header.Get("Content-Type")
		if ct == "" {
			ct = "application/json"
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(x.res.status)
		w.Write(x.res.body)
		return nil
	})
}
