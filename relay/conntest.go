package relay

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/sidehook/sidehook/fixtures"
	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/internal/units"
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
	o, e, err := r.caller.testTarget(org, endpoint)
	if err != nil {
		return nil, err
	}
	return r.caller.connectionTest(ctx, o, e.cfg, types, nil), nil
}

// testTarget finds the endpoint a connection test is for.
func (c *caller) testTarget(org, endpoint string) (*orgState, *endpointState, error) {
	o := c.dir.org(org)
	if o == nil {
		return nil, nil, apiErrorf(http.StatusNotFound, "unknown_organisation", "no organisation %q", org)
	}
	e := o.endpoint(endpoint)
	if e == nil {
		return nil, nil, apiErrorf(http.StatusNotFound, "not_found", "no endpoint %q", endpoint)
	}
	return o, e, nil
}

// connectionTest runs the tests of types (all five when empty) one after
// another. fits, when not nil, says whether a test with that timeout may
// still start; one that may not is reported as not run.
func (c *caller) connectionTest(ctx context.Context, o *orgState, e config.Endpoint, types []event.Type, fits func(time.Duration) bool) []TestResult {
	if len(types) == 0 {
		types = event.Builtin()
	}
	out := make([]TestResult, 0, len(types))
	for _, t := range types {
		if fits != nil && !fits(endpointTimeout(e, t)) {
			out = append(out, TestResult{Event: string(t),
				Error: fmt.Sprintf("not run: the tests of one call wait at most %s on the endpoint; test this event alone", c.sync.max)})
			continue
		}
		out = append(out, c.testOne(ctx, o, e, t))
	}
	return out
}

// endpointTimeout is how long a request of event type t waits for e (a
// delivery, a test, a replay, a custom-value request): the endpoint's
// timeout, else the default of its kind.
func endpointTimeout(e config.Endpoint, t event.Type) time.Duration {
	switch {
	case e.Timeout > 0:
		return e.Timeout
	case t == event.CustomValueRequest:
		return config.DefaultCustomTimeout
	}
	return config.DefaultTimeout
}

func (c *caller) testOne(ctx context.Context, o *orgState, e config.Endpoint, t event.Type) TestResult {
	tr := TestResult{Event: string(t)}
	now := c.clock.Now()
	ob := outbound{method: t.Method(), url: e.URL, eventID: event.NewID(event.PrefixEvent, now), eventType: string(t),
		deliveryID: event.NewID(event.PrefixDelivery, now), attempt: 1, test: true}
	timeout := endpointTimeout(e, t)
	var fields []string
	if t == event.CustomValueRequest {
		ob.query = c.fixtures.Query()
		if q, err := url.ParseQuery(ob.query); err == nil {
			fields = fixtures.RequestedFields(q)
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
	tr.Status, tr.LatencyMS, tr.Body = res.status, units.Millis(res.latency), truncateResponse(res.body)
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
		_, e, err := c.testTarget(o.id, req.PathValue("id"))
		if err != nil {
			return err
		}
		if len(types) == 0 {
			types = event.Builtin()
		}
		var planned time.Duration
		for _, t := range types {
			planned += endpointTimeout(e.cfg, t)
		}
		fits := c.sync.begin(w, planned)
		writeJSON(w, http.StatusOK, map[string]any{"results": c.connectionTest(req.Context(), o, e.cfg, types, fits)})
		return nil
	})
}
