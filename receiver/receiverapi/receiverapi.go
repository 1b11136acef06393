// Package receiverapi is the client of a mock receiver's admin API (SPEC
// §5): one typed call per route, the receiver's own Capture as answers,
// and its {"error","reason"} answers decoded into *Error. Source makes a
// receiver a replay.Source for `sidehook replay --receiver`.
//
// It is for a receiver in another process (`sidehook receive`, in CI or
// beside the service under test); a Go test in the same process uses
// receivertest, which needs no HTTP round trip to look at captures. The
// captures come as the admin API shows them: credential headers redacted
// (a JWT keeps its header and claims, not its signature), so a test
// reads the claims checked in Verdict.Claims.
package receiverapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sidehook/sidehook/internal/httpjson"
	"github.com/sidehook/sidehook/receiver"
)

// maxAnswer bounds one answer read into memory: a page of a thousand
// captures of up to 1 MiB each is the worst the receiver sends.
const maxAnswer = 2 << 30

// Error is an answer that is not a 2xx, with the receiver's error code
// and reason when it sent them.
type Error = httpjson.AnswerError

// Client calls one receiver's admin API. It is safe for concurrent use.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// New makes a client of the receiver at base (an http:// or https://
// URL); token, when set, is the admin token. A nil hc is a client with a
// 30 s timeout. New does no I/O.
func New(base, token string, hc *http.Client) (*Client, error) {
	base, err := httpjson.BaseURL(base, "receiver")
	if err != nil {
		return nil, err
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{base: base, token: token, http: hc}, nil
}

// URL is the receiver's base URL, without a final slash.
func (c *Client) URL() string { return c.base }

// send makes a request and returns the answer when it is a 2xx (the
// caller closes its body), else an *Error.
func (c *Client) send(ctx context.Context, method, path string, body io.Reader, contentType string) (*http.Response, error) {
	resp, err := c.raw(ctx, method, path, body, contentType)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return nil, answerError(method, path, resp.StatusCode, b)
}

func answerError(method, path string, status int, b []byte) *Error {
	return httpjson.NewAnswerError("receiver", method, path, status, b)
}

// raw makes a request and returns whatever the answer is.
func (c *Client) raw(ctx context.Context, method, path string, body io.Reader, contentType string) (*http.Response, error) {
	return c.rawWith(ctx, c.http, method, path, body, contentType)
}

// rawWith is raw with another HTTP client than c's.
func (c *Client) rawWith(ctx context.Context, hc *http.Client, method, path string, body io.Reader, contentType string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return resp, nil
}

// do sends a request and decodes a 2xx JSON answer into out (when not
// nil), once it has the field key that every answer of the route holds
// ("" for none to check): given a webhook URL as its base, the client
// reaches paths the receiver captures, answered 200 {"id":"cap_…"}.
func (c *Client) do(ctx context.Context, method, path string, in any, key string, out any) error {
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	resp, err := c.send(ctx, method, path, body, ct)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if err := httpjson.CheckAnswer("receiver", method, path, resp.StatusCode, b, key); err != nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// query is f as the admin API's query parameters.
func query(f receiver.Filter, extra url.Values) string {
	q := url.Values{}
	for k, v := range map[string]string{"event": f.Event, "path": f.Path, "method": f.Method, "verdict": f.Verdict, "webhook_id": f.WebhookID} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	for k, v := range extra {
		q[k] = v
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// Page is one page of GET /_sidehook/requests, newest first.
type Page struct {
	Requests []receiver.Capture `json:"requests"`
	Next     string             `json:"next"`
}

// List is GET /_sidehook/requests: limit (the receiver's default when 0)
// captures under f after cursor (the previous page's Next).
func (c *Client) List(ctx context.Context, f receiver.Filter, limit int, cursor string) (Page, error) {
	extra := url.Values{}
	if limit > 0 {
		extra.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		extra.Set("cursor", cursor)
	}
	var p Page
	err := c.do(ctx, http.MethodGet, "/_sidehook/requests"+query(f, extra), nil, "requests", &p)
	return p, err
}

// Get is GET /_sidehook/requests/{id}.
func (c *Client) Get(ctx context.Context, id string) (receiver.Capture, error) {
	var cap receiver.Capture
	err := c.do(ctx, http.MethodGet, "/_sidehook/requests/"+url.PathEscape(id), nil, "received_at", &cap)
	return cap, err
}

// Count is GET /_sidehook/requests/count.
func (c *Client) Count(ctx context.Context, f receiver.Filter) (int, error) {
	var ans struct {
		Count int `json:"count"`
	}
	err := c.do(ctx, http.MethodGet, "/_sidehook/requests/count"+query(f, nil), nil, "count", &ans)
	return ans.Count, err
}

// WaitTimeoutError is the receiver's 408 to a wait: fewer than asked
// matched in time. Requests are those that did.
type WaitTimeoutError struct {
	Err      *Error
	Requests []receiver.Capture
}

func (e *WaitTimeoutError) Error() string { return e.Err.Error() }
func (e *WaitTimeoutError) Unwrap() error { return e.Err }

// Wait is GET /_sidehook/requests/wait: once n captures match f, the n
// newest of them, newest first, waiting up to timeout (the receiver's
// default when 0) for them. Too few in time is a *WaitTimeoutError holding
// those that came.
func (c *Client) Wait(ctx context.Context, f receiver.Filter, n int, timeout time.Duration) ([]receiver.Capture, error) {
	extra := url.Values{"count": {strconv.Itoa(n)}}
	if timeout > 0 {
		extra.Set("timeout", timeout.String())
	}
	path := "/_sidehook/requests/wait" + query(f, extra)
	hc := c.http
	if hc.Timeout > 0 {
		// The client's timeout bounds the answer, not the wait the
		// receiver is asked to hold first: without the wait on top, a
		// wait longer than it (the default client's 30 s) ended in the
		// client's timeout instead of the receiver's 408 and its captures.
		wait := timeout
		if wait <= 0 {
			wait = receiver.DefaultWaitTimeout
		}
		longer := *hc
		longer.Timeout += wait
		hc = &longer
	}
	resp, err := c.rawWith(ctx, hc, http.MethodGet, path, nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("GET %s: read answer: %w", path, err)
	}
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusRequestTimeout {
		return nil, answerError(http.MethodGet, path, resp.StatusCode, b)
	}
	if err := httpjson.CheckAnswer("receiver", http.MethodGet, path, resp.StatusCode, b, "requests"); err != nil {
		return nil, err
	}
	var ans struct {
		Requests []receiver.Capture `json:"requests"`
	}
	if err := json.Unmarshal(b, &ans); err != nil {
		return nil, fmt.Errorf("GET %s: decode answer: %w", path, err)
	}
	if resp.StatusCode == http.StatusRequestTimeout {
		return nil, &WaitTimeoutError{Err: answerError(http.MethodGet, path, resp.StatusCode, b), Requests: ans.Requests}
	}
	return ans.Requests, nil
}

// Export is GET /_sidehook/requests/export in format ("ndjson", "har" or
// "curl"; the receiver's default, ndjson, when empty). The caller closes the stream.
func (c *Client) Export(ctx context.Context, f receiver.Filter, format string) (io.ReadCloser, error) {
	extra := url.Values{}
	if format != "" {
		extra.Set("format", format)
	}
	resp, err := c.send(ctx, http.MethodGet, "/_sidehook/requests/export"+query(f, extra), nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ReplayRequest is the body of POST /_sidehook/requests/{id}/replay.
type ReplayRequest = receiver.ReplayRequest

// ReplayAnswer is the answer of a receiver replay: what was sent and the
// target's answer.
type ReplayAnswer = receiver.ReplayAnswer

// Replay is POST /_sidehook/requests/{id}/replay.
func (c *Client) Replay(ctx context.Context, id string, r ReplayRequest) (ReplayAnswer, error) {
	var ans ReplayAnswer
	err := c.do(ctx, http.MethodPost, "/_sidehook/requests/"+url.PathEscape(id)+"/replay", r, "target", &ans)
	return ans, err
}

// Rules is GET /_sidehook/rules: the rules in force, in order.
func (c *Client) Rules(ctx context.Context) ([]receiver.Rule, error) {
	var ans struct {
		Rules []receiver.Rule `json:"rules"`
	}
	err := c.do(ctx, http.MethodGet, "/_sidehook/rules", nil, "rules", &ans)
	return ans.Rules, err
}

// AddRules is POST /_sidehook/rules with rules as JSON (one rule or a
// list), in the shape of a rules file; it returns the ids they got.
// AddRule takes a receiver.Rule.
func (c *Client) AddRules(ctx context.Context, rules []byte) ([]string, error) {
	resp, err := c.send(ctx, http.MethodPost, "/_sidehook/rules", bytes.NewReader(rules), "application/json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var ans struct {
		ID  string   `json:"id"`
		IDs []string `json:"ids"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ans); err != nil {
		return nil, fmt.Errorf("POST /_sidehook/rules: decode answer: %w", err)
	}
	if ans.ID != "" {
		return []string{ans.ID}, nil
	}
	return ans.IDs, nil
}

// AddRule is POST /_sidehook/rules with one rule as Go writes it; it
// returns the id it got (rule.ID when set). Rules are evaluated in order,
// the first match answering: it goes after those in force.
func (c *Client) AddRule(ctx context.Context, rule receiver.Rule) (string, error) {
	var ans struct {
		ID string `json:"id"`
	}
	err := c.do(ctx, http.MethodPost, "/_sidehook/rules", rule, "id", &ans)
	return ans.ID, err
}

// DeleteRule is DELETE /_sidehook/rules?id=: the rule with that id goes
// (an *Error 404 when there is none).
func (c *Client) DeleteRule(ctx context.Context, id string) error {
	if id == "" {
		// Without an id the call deletes every rule: that is DeleteRules.
		return errors.New("receiverapi: delete rule: empty id (DeleteRules deletes every rule)")
	}
	return c.do(ctx, http.MethodDelete, "/_sidehook/rules?id="+url.QueryEscape(id), nil, "", nil)
}

// DeleteRules is DELETE /_sidehook/rules: every rule goes, those of the
// receiver's --rules file too, until a Reset restores them.
func (c *Client) DeleteRules(ctx context.Context) error {
	return c.do(ctx, http.MethodDelete, "/_sidehook/rules", nil, "", nil)
}

// DeleteAll is DELETE /_sidehook/requests: every capture goes.
func (c *Client) DeleteAll(ctx context.Context) error {
	return c.do(ctx, http.MethodDelete, "/_sidehook/requests", nil, "", nil)
}

// Reset is POST /_sidehook/reset: the captures go, and the rules are
// those of the receiver's --rules file again, their sequences from the
// start.
func (c *Client) Reset(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/_sidehook/reset", nil, "", nil)
}
