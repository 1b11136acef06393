package relay

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/relay/config"
)

// TestResult is the outcome of one connection test.
type TestResult struct {
	Event     string             `json:"event"`
	OK        bool               `json:"ok"`
	Status    int                `json:"status"`
	LatencyMS float64            `json:"latency_ms"`
	Body      string             `json:"body"`
	Error     string             `json:"error"`
	Values    map[string]*string `json:"values,omitempty"`
}

// ConnectionTest sends the fixture payload of each event type (all five
// when types is empty) to an endpoint once, synchronously, without retry,
// with sidehook-test: true. Nothing is stored.
func (r *Relay) ConnectionTest(ctx context.Context, org, endpoint string, types []event.Type) ([]TestResult, error) {
	return r.caller.connectionTest(ctx, org, endpoint, types)
}

func (c *caller) connectionTest(ctx context.Context, org, endpoint string, types []event.Type) ([]TestResult, error) {
	o := c.dir.org(org)
	if o == nil {
		return nil, apiErrorf(http.StatusNotFound, "unknown_organisation", "no organisation %q", org)
	}
	e := o.endpoint(endpoint)
	if e == nil {
		return nil, apiErrorf(http.StatusNotFound, "not_found", "no endpoint %q", endpoint)
	}
	if len(types) == 0 {
		types = event.Builtin()
	}
	out := make([]TestResult, 0, len(types))
	for _, t := range types {
		out = append(out, c.testOne(ctx, o, e.cfg, t))
	}
	return out, nil
}

func (c *caller) testOne(ctx context.Context, o *orgState, e config.Endpoint, t event.Type) TestResult {
	tr := TestResult{Event: string(t)}
	now := c.clock.Now()
	ob := outbound{method: t.Method(), url: e.URL, eventID: event.NewID(event.PrefixEvent, now), eventType: string(t),
		deliveryID: event.NewID(event.PrefixDelivery, now), attempt: 1, test: true}
	timeout := e.Timeout
	var fields []string
	if t == event.CustomValueRequest {
		ob.query = c.fixtures.Query()
		if q, err := url.ParseQuery(ob.query); err == nil {
			fields = strings.Split(q.Get("fields"), ",")
		}
		if timeout == 0 {
			timeout = config.DefaultCustomTimeout
		}
	} else {
		p, ok := c.fixtures.Payload(t)
		if !ok {
			tr.Error = "no fixture payload for " + string(t)
			return tr
		}
		ob.body = p
	}
	var res result
	if t == event.CustomValueRequest {
		// Parsed, so read whole, as a custom-value request is.
		res = c.sender.send(ctx, o, e, ob, timeout, maxCustomAnswer).whole()
	} else {
		res = c.sender.send(ctx, o, e, ob, timeout, maxResponse)
	}
	tr.Status, tr.LatencyMS, tr.Body = res.status, float64(res.latency.Microseconds())/1000, truncateResponse(res.body)
	tr.OK = res.err == nil && res.status/100 == 2
	if !tr.OK {
		tr.Error = errText(res)
	}
	if tr.OK && t == event.CustomValueRequest {
		vals, err := ParseValues(res.body, fields)
		if err != nil {
			tr.OK, tr.Error = false, err.Error()
		} else {
			tr.Values = vals
		}
	}
	return tr
}

// handleTest is POST /v1/endpoints/{id}/test.
func (c *caller) handleTest() http.Handler {
	return c.handle(func(w http.ResponseWriter, req *http.Request) error {
		o := orgFrom(req.Context())
		var body struct {
			Event string `json:"event"`
		}
		if err := decodeJSON(w, req, &body); err != nil {
			return err
		}
		var types []event.Type
		if body.Event != "" {
			t := event.Type(body.Event)
			if !t.IsBuiltin() {
				return apiErrorf(http.StatusBadRequest, "invalid_event_type", "event %q: want one of inbound_message, message_send, delivery_report, payment, custom_value_request", body.Event)
			}
			types = []event.Type{t}
		}
		results, err := c.connectionTest(req.Context(), o.id, req.PathValue("id"), types)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"results": results})
		return nil
	})
}
