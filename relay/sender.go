package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/sidehook/sidehook/relay/config"
)

// errNoTunnelServer is an attempt's error for a tunnel:// endpoint on a
// relay that serves no tunnels.
var errNoTunnelServer = errors.New("no tunnel server: this relay does not serve tunnel:// endpoints")

// sender signs a request and sends it through the transport its
// endpoint's URL names: tunnel:// through the tunnel server, anything else
// over HTTP. Deliveries, custom-value requests and connection tests all go
// through it, so they reach an endpoint the same way.
type sender struct {
	signer  *signer
	http    Transport
	tunnels TunnelServer // nil: tunnel:// endpoints fail
	clock   Clock
}

// result is what came back from one request.
type result struct {
	status int
	header http.Header
	body   []byte
	// truncated: the answer was longer than body.
	truncated bool
	latency   time.Duration
	err       error
	// request is the headers as sent (nil when nothing was sent).
	request http.Header
}

// transport chooses by the URL's scheme.
func (s *sender) transport(rawURL string) (Transport, error) {
	if _, _, ok := parseTunnelURL(rawURL); ok {
		if s.tunnels == nil {
			return nil, errNoTunnelServer
		}
		return s.tunnels, nil
	}
	return s.http, nil
}

// send signs ob for endpoint e of o and sends it, within timeout (the
// endpoint's default when 0), keeping at most keep bytes of the answer.
func (s *sender) send(ctx context.Context, o *orgState, e config.Endpoint, ob outbound, timeout time.Duration, keep int64) result {
	if timeout <= 0 {
		timeout = config.DefaultTimeout
	}
	tr, err := s.transport(ob.url)
	if err != nil {
		return result{err: err}
	}
	h, err := s.signer.headers(o, e, ob, s.clock.Now())
	if err != nil {
		return result{err: err}
	}
	req := &OutboundRequest{Method: ob.method, URL: ob.target(), Header: h, Org: o.id, DeliveryID: ob.deliveryID, Attempt: ob.attempt}
	if ob.method != http.MethodGet {
		req.Body = ob.body
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := tr.Send(ctx, req, keep)
	if err != nil {
		res := result{err: describeSendError(ctx, err, timeout), request: h}
		if resp != nil {
			res.latency = resp.Latency
		}
		return res
	}
	return result{status: resp.Status, header: resp.Header, body: resp.Body, truncated: resp.Truncated, latency: resp.Latency, request: h}
}

// whole makes an answer longer than what was kept an error: a custom-value
// answer is used whole or not at all (a cut JSON object is no answer).
func (res result) whole() result {
	if res.err == nil && res.truncated {
		res.err = fmt.Errorf("the answer exceeded %d bytes", len(res.body))
	}
	return res
}

// describeSendError names a timeout as one, and otherwise keeps the
// innermost cause (the URL is in the delivery already).
func describeSendError(ctx context.Context, err error, timeout time.Duration) error {
	var ne net.Error
	timedOut := errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
	var cut *answerCutError
	switch {
	case errors.As(err, &cut) && timedOut:
		return fmt.Errorf("timeout: the HTTP %d answer's body did not end within %s", cut.status, timeout)
	case errors.As(err, &cut):
		return fmt.Errorf("the HTTP %d answer was cut short: %w", cut.status, cut.err)
	case timedOut:
		return fmt.Errorf("timeout: no answer within %s", timeout)
	}
	if errors.Is(err, io.EOF) {
		// net/http's word for it, alone, tells an operator nothing.
		return errors.New("the connection closed before an answer (EOF)")
	}
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && ue.Unwrap() != nil {
		return ue.Unwrap()
	}
	return err
}

// outcome of an attempt.
type outcome int

const (
	outDelivered outcome = iota
	outRetry
	outDead
	outGone // 410: dead, and the endpoint is disabled
)

func classify(res result) outcome {
	switch {
	case res.err != nil:
		return outRetry
	case res.status >= 200 && res.status < 300:
		return outDelivered
	case res.status == http.StatusGone:
		return outGone
	case res.status == http.StatusRequestTimeout, res.status == http.StatusTooManyRequests, res.status >= 500:
		return outRetry
	case res.status >= 400:
		return outDead
	}
	return outRetry
}

func errText(res result) string {
	if res.err != nil {
		return res.err.Error()
	}
	if res.status/100 != 2 {
		return fmt.Sprintf("HTTP %d", res.status)
	}
	return ""
}

// tunnelScheme is the scheme of endpoints reached through a tunnel client.
const tunnelScheme = "tunnel://"

// parseTunnelURL splits tunnel://NAME[/PATH][?QUERY] into the tunnel's
// name and the path (with its query) the client is asked for, at send time
// (relay/config validated the endpoint's URL when it was loaded).
func parseTunnelURL(s string) (name, path string, ok bool) {
	if len(s) < len(tunnelScheme) || !strings.EqualFold(s[:len(tunnelScheme)], tunnelScheme) {
		return "", "", false
	}
	rest := s[len(tunnelScheme):]
	name, path = rest, "/"
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		name, path = rest[:i], rest[i:]
		if path[0] == '?' {
			path = "/" + path
		}
	}
	if name == "" {
		return "", "", false
	}
	return name, path, true
}
