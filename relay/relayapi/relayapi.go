// Package relayapi is the client of a relay's management API (SPEC §4):
// one typed call per route, the relay's own view types as answers, and
// its {"error","reason"} answers decoded into *Error. The CLI's send,
// render, test and replay commands all talk to the relay through it.
package relayapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/sidehook/sidehook/internal/httpjson"
	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
)

// maxAnswer bounds one answer read into memory: a page of a thousand
// events with their bodies is the most the relay sends.
const maxAnswer = 256 << 20

// Error is an answer that is not a 2xx, with the relay's error code and
// reason when it sent them.
type Error = httpjson.AnswerError

// IsNotFound reports whether err is the relay's 404.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// Client calls one relay with one organisation's API key. It is safe for
// concurrent use.
type Client struct {
	base string
	key  string
	http *http.Client
}

// New makes a client of the relay at base (an http:// or https:// URL).
// A nil hc is a client with a 30 s timeout. New does no I/O.
func New(base, apiKey string, hc *http.Client) (*Client, error) {
	base, err := httpjson.BaseURL(base, "relay")
	if err != nil {
		return nil, err
	}
	if apiKey == "" {
		return nil, errors.New("relay: an API key is required")
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{base: base, key: apiKey, http: hc}, nil
}

// Raw is an answer's bytes, for callers that print it as the relay sent it.
type Raw = json.RawMessage

// ErrNotRelay is a 2xx answer without the field every relay answer of its
// route holds: another server, such as a mock receiver (see
// httpjson.ErrWrongServer).
var ErrNotRelay = httpjson.ErrWrongServer

// do sends a request and decodes a 2xx answer into out (when not nil),
// once it has the field key that every relay answer of the route has
// ("" for a route that answers no body); it returns the answer's bytes too.
func (c *Client) do(ctx context.Context, method, path string, h http.Header, body io.Reader, key string, out any) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/json")
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return b, httpjson.NewAnswerError("relay", method, path, resp.StatusCode, b)
	}
	if err := httpjson.CheckAnswer("relay", method, path, resp.StatusCode, b, key); err != nil {
		return b, err
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return b, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return b, nil
}

func (c *Client) postJSON(ctx context.Context, path string, in any, key string, out any) ([]byte, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", path, err)
	}
	return c.do(ctx, http.MethodPost, path, nil, bytes.NewReader(b), key, out)
}

// Ingest is POST /v1/events: body sent as the event of type typ (empty:
// the relay reads it from the body) with webhookID as its idempotency
// key (empty: the relay makes one).
func (c *Client) Ingest(ctx context.Context, typ, webhookID string, body []byte) (relay.IngestAnswer, Raw, error) {
	h := http.Header{}
	if typ != "" {
		h.Set("sidehook-event", typ)
	}
	if webhookID != "" {
		h.Set("webhook-id", webhookID)
	}
	var ans relay.IngestAnswer
	raw, err := c.do(ctx, http.MethodPost, "/v1/events", h, bytes.NewReader(body), "deliveries", &ans)
	return ans, raw, err
}

// Page bounds a listing: Limit (the relay's default when 0) items after
// Cursor (the previous page's Next).
type Page struct {
	Limit  int
	Cursor string
}

func (p Page) set(q url.Values) {
	if p.Limit > 0 {
		q.Set("limit", fmt.Sprint(p.Limit))
	}
	if p.Cursor != "" {
		q.Set("cursor", p.Cursor)
	}
}

// Filter selects deliveries, in listings and in replays. Since and Until
// are sent as RFC 3339 (the relay also reads unix seconds and "15m").
type Filter struct {
	IDs      []string  `json:"ids,omitempty"`
	Status   string    `json:"status,omitempty"`
	Endpoint string    `json:"endpoint,omitempty"`
	Type     string    `json:"type,omitempty"`
	Since    time.Time `json:"-"`
	Until    time.Time `json:"-"`
}

// Empty reports whether f selects nothing in particular (everything).
func (f Filter) Empty() bool {
	return len(f.IDs) == 0 && f.Status == "" && f.Endpoint == "" && f.Type == "" && f.Since.IsZero() && f.Until.IsZero()
}

// MarshalJSON writes the times as the relay reads them.
func (f Filter) MarshalJSON() ([]byte, error) {
	type plain Filter
	return json.Marshal(struct {
		plain
		Since string `json:"since,omitempty"`
		Until string `json:"until,omitempty"`
	}{plain(f), timeParam(f.Since), timeParam(f.Until)})
}

func timeParam(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// EventPage is one page of GET /v1/events, newest first.
type EventPage struct {
	Events []relay.EventView `json:"events"`
	Next   string            `json:"next"`
}

// Events is GET /v1/events: events of type typ (all when empty) between
// since and until (unbounded when zero).
func (c *Client) Events(ctx context.Context, typ string, since, until time.Time, p Page) (EventPage, error) {
	q := url.Values{}
	if typ != "" {
		q.Set("type", typ)
	}
	if s := timeParam(since); s != "" {
		q.Set("since", s)
	}
	if s := timeParam(until); s != "" {
		q.Set("until", s)
	}
	p.set(q)
	var ans EventPage
	_, err := c.do(ctx, http.MethodGet, "/v1/events"+query(q), nil, nil, "events", &ans)
	return ans, err
}

// Event is GET /v1/events/{id}.
func (c *Client) Event(ctx context.Context, id string) (relay.EventView, error) {
	var ans relay.EventView
	_, err := c.do(ctx, http.MethodGet, "/v1/events/"+url.PathEscape(id), nil, nil, "received_at", &ans)
	return ans, err
}

// DeliveryPage is one page of GET /v1/deliveries, newest first.
type DeliveryPage struct {
	Deliveries []relay.DeliveryView `json:"deliveries"`
	Next       string               `json:"next"`
}

// Deliveries is GET /v1/deliveries under f (its IDs are not a listing
// filter: they are ignored).
func (c *Client) Deliveries(ctx context.Context, f Filter, p Page) (DeliveryPage, error) {
	q := url.Values{}
	for k, v := range map[string]string{"status": f.Status, "endpoint": f.Endpoint, "type": f.Type,
		"since": timeParam(f.Since), "until": timeParam(f.Until)} {
		if v != "" {
			q.Set(k, v)
		}
	}
	p.set(q)
	var ans DeliveryPage
	_, err := c.do(ctx, http.MethodGet, "/v1/deliveries"+query(q), nil, nil, "deliveries", &ans)
	return ans, err
}

// Delivery is GET /v1/deliveries/{id}.
func (c *Client) Delivery(ctx context.Context, id string) (relay.DeliveryView, error) {
	var ans relay.DeliveryView
	_, err := c.do(ctx, http.MethodGet, "/v1/deliveries/"+url.PathEscape(id), nil, nil, "event_id", &ans)
	return ans, err
}

// Retry is POST /v1/deliveries/{id}/retry.
func (c *Client) Retry(ctx context.Context, id string) (relay.DeliveryView, error) {
	var ans relay.DeliveryView
	_, err := c.do(ctx, http.MethodPost, "/v1/deliveries/"+url.PathEscape(id)+"/retry", nil, nil, "event_id", &ans)
	return ans, err
}

// ReplayRequest is the body of POST /v1/replay. All must be set to
// replay with an empty filter: a forgotten filter must not resend
// everything.
type ReplayRequest struct {
	Filter Filter `json:"filter"`
	// To is where each delivery is sent once, signed by the relay as its
	// endpoint signs, with sidehook-replay-of naming it; empty sends each
	// to its original target, its endpoint's URL or, for a tunnel
	// endpoint, through the tunnel. Either way a replay is not an
	// attempt: Retry is.
	To  string `json:"to,omitempty"`
	All bool   `json:"all,omitempty"`
}

// ReplayAnswer is the answer of POST /v1/replay: one result per selected
// delivery, with its target's answer; Replayed counts those that went
// well (OK: the target answered 2xx), as the dashboard's replay does.
type ReplayAnswer struct {
	Replayed int                  `json:"replayed"`
	Results  []relay.ReplayResult `json:"results"`
}

// ErrEmptyFilter is Replay's answer to a request that would resend
// everything without saying so.
var ErrEmptyFilter = errors.New("replay: an empty filter selects every delivery: set All to mean it")

// Replay is POST /v1/replay.
func (c *Client) Replay(ctx context.Context, r ReplayRequest) (ReplayAnswer, error) {
	if r.Filter.Empty() && !r.All {
		return ReplayAnswer{}, ErrEmptyFilter
	}
	var ans ReplayAnswer
	_, err := c.postJSON(ctx, "/v1/replay", r, "replayed", &ans)
	return ans, err
}

// Endpoints is GET /v1/endpoints.
func (c *Client) Endpoints(ctx context.Context) ([]relay.EndpointView, error) {
	var ans struct {
		Endpoints []relay.EndpointView `json:"endpoints"`
	}
	_, err := c.do(ctx, http.MethodGet, "/v1/endpoints", nil, nil, "endpoints", &ans)
	return ans.Endpoints, err
}

// Endpoint is GET /v1/endpoints/{id}.
func (c *Client) Endpoint(ctx context.Context, id string) (relay.EndpointView, error) {
	var ans relay.EndpointView
	_, err := c.do(ctx, http.MethodGet, "/v1/endpoints/"+url.PathEscape(id), nil, nil, "source", &ans)
	return ans, err
}

// CreateEndpoint is POST /v1/endpoints.
func (c *Client) CreateEndpoint(ctx context.Context, e config.RawEndpoint) (relay.EndpointView, error) {
	var ans relay.EndpointView
	_, err := c.postJSON(ctx, "/v1/endpoints", e, "source", &ans)
	return ans, err
}

// PutEndpoint is PUT /v1/endpoints/{id}.
func (c *Client) PutEndpoint(ctx context.Context, id string, e config.RawEndpoint) (relay.EndpointView, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return relay.EndpointView{}, err
	}
	var ans relay.EndpointView
	_, err = c.do(ctx, http.MethodPut, "/v1/endpoints/"+url.PathEscape(id), nil, bytes.NewReader(b), "source", &ans)
	return ans, err
}

// DeleteEndpoint is DELETE /v1/endpoints/{id}.
func (c *Client) DeleteEndpoint(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/endpoints/"+url.PathEscape(id), nil, nil, "", nil)
	return err
}

// TestAnswer is the answer of POST /v1/endpoints/{id}/test.
type TestAnswer struct {
	Results []relay.TestResult `json:"results"`
}

// Test is POST /v1/endpoints/{id}/test: every fixture, or only event.
func (c *Client) Test(ctx context.Context, endpoint, event string) (TestAnswer, Raw, error) {
	var in struct {
		Event string `json:"event,omitempty"`
	}
	in.Event = event
	var ans TestAnswer
	raw, err := c.postJSON(ctx, "/v1/endpoints/"+url.PathEscape(endpoint)+"/test", in, "results", &ans)
	return ans, raw, err
}

// Customer names whose custom values to ask for.
type Customer struct {
	CustomerUID    string `json:"customer_uid"`
	ChannelID      string `json:"channel_id"`
	ConversationID string `json:"conversation_id"`
}

// Render is POST /v1/render.
func (c *Client) Render(ctx context.Context, template string, who Customer) (relay.RenderAnswer, Raw, error) {
	in := struct {
		Template string `json:"template"`
		Customer
	}{template, who}
	var ans relay.RenderAnswer
	raw, err := c.postJSON(ctx, "/v1/render", in, "text", &ans)
	return ans, raw, err
}

// CustomValues is POST /v1/custom-values: the values of fields (nil for
// one the endpoint has no value for).
func (c *Client) CustomValues(ctx context.Context, who Customer, fields []string) (map[string]*string, error) {
	in := struct {
		Customer
		Fields []string `json:"fields"`
	}{who, fields}
	var ans struct {
		Values map[string]*string `json:"values"`
	}
	_, err := c.postJSON(ctx, "/v1/custom-values", in, "values", &ans)
	return ans.Values, err
}

// Token is POST /v1/tokens: a new Webio token, proven by the
// organisation's secret key.
func (c *Client) Token(ctx context.Context, secretKey string) (string, error) {
	in := struct {
		SecretKey string `json:"secret_key"`
	}{secretKey}
	var ans struct {
		Token string `json:"token"`
	}
	_, err := c.postJSON(ctx, "/v1/tokens", in, "token", &ans)
	return ans.Token, err
}

func query(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}
