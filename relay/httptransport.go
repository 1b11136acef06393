package relay

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/sidehook/sidehook/internal/target"
	"github.com/sidehook/sidehook/relay/config"
)

// drainLimit is how much of an answer beyond the kept bytes is read so the
// connection can be reused; a larger answer costs a new connection.
const drainLimit = 64 << 10

// httpTransport sends over HTTP(S) with one shared client.
type httpTransport struct {
	client *http.Client
	// policy decides which addresses may be reached (set by Start, once
	// the relay's own address is known; nil allows any).
	policy atomic.Pointer[target.Policy]
}

var _ Transport = (*httpTransport)(nil)

// newHTTPTransport uses rt when set (tests), else a transport that keeps
// as many idle connections per host as the largest max_in_flight, so a busy
// endpoint does not open and close a connection per delivery.
func newHTTPTransport(rt http.RoundTripper) *httpTransport {
	ht := &httpTransport{}
	if rt == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = 0 // no total bound: per host is the bound
		t.MaxIdleConnsPerHost = config.MaxMaxInFlight
		t.IdleConnTimeout = 90 * time.Second
		// Bytes in, bytes out: never ask for or undo a content encoding.
		t.DisableCompression = true
		// No proxy: the policy checks the address actually dialled.
		t.Proxy = nil
		dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
		t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if p := ht.policy.Load(); p != nil {
				return p.DialContext(dialer)(ctx, network, addr)
			}
			return dialer.DialContext(ctx, network, addr)
		}
		rt = t
	}
	ht.client = &http.Client{
		Transport: rt,
		// A redirect is the endpoint's answer, not something to follow with
		// a signed body.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return ht
}

// checkTarget answers 400 target_denied for a URL the policy refuses, so
// an API call says why before anything is sent.
func (t *httpTransport) checkTarget(field, raw string) error {
	p := t.policy.Load()
	if p == nil {
		return nil
	}
	if err := p.CheckURL(raw); err != nil {
		return apiErrorf(http.StatusBadRequest, "target_denied", "%s: %v", field, err)
	}
	return nil
}

// Send makes one HTTP request; any answer is a Response.
func (t *httpTransport) Send(ctx context.Context, r *OutboundRequest, keep int64) (*Response, error) {
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header = r.Header
	start := time.Now()
	resp, err := t.client.Do(req)
	if err != nil {
		return &Response{Latency: time.Since(start)}, err
	}
	defer resp.Body.Close()
	// One byte more than kept says whether there was more.
	b, err := io.ReadAll(io.LimitReader(resp.Body, keep+1))
	lat := time.Since(start)
	if err != nil {
		// An answer cut short is no answer, whatever its status said.
		return &Response{Latency: lat}, &answerCutError{status: resp.StatusCode, err: err}
	}
	truncated := int64(len(b)) > keep
	if truncated {
		b = b[:keep]
		io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b, Truncated: truncated, Latency: lat}, nil
}

// answerCutError is an answer whose status came but whose body did not,
// whole: no answer, but the error says the endpoint did answer, so that
// its own log (which shows a 200) does not contradict the relay's.
type answerCutError struct {
	status int
	err    error
}

func (e *answerCutError) Error() string { return fmt.Sprintf("read answer: %v", e.err) }
func (e *answerCutError) Unwrap() error { return e.err }

// closeIdle closes idle connections (on Close).
func (t *httpTransport) closeIdle() { t.client.CloseIdleConnections() }
