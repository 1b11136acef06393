// Package replay resends a captured or stored request: the same method,
// path, headers and body bytes (or an edited body), with a fresh
// webhook-timestamp, the original webhook-id, a sidehook-replay-of header
// naming the original, and new authentication headers when keys are given.
// The receiver's replay endpoint, the relay and `sidehook replay` all send
// through Send.
package replay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/internal/units"
)

// Header names set on a replay.
const (
	HeaderReplayOf  = "sidehook-replay-of"
	HeaderTimestamp = "webhook-timestamp"
	HeaderWebhookID = "webhook-id"
)

// MaxResultBody is how much of the answer a Result keeps.
const MaxResultBody = 4 << 10

// DefaultTimeout bounds one replay when Options.Client is nil.
const DefaultTimeout = 30 * time.Second

// Item is one request to replay.
type Item struct {
	// ID is the capture or delivery id, sent as sidehook-replay-of.
	ID     string
	Method string
	// Target is the original URL when known; Options.To overrides it.
	Target string
	// Path and RawQuery are the original request's, as sent (escaped),
	// used when Target is empty or To has no path of its own.
	Path, RawQuery string
	Header         http.Header
	Body           []byte
	WebhookID      string
	Event          string
	// BodyMissing says the original body was not kept (a capture over the
	// receiver's size limit): Build refuses it unless Options.Body
	// replaces it, rather than send an empty body as if it were the
	// original.
	BodyMissing bool
}

// Options say where and how to replay.
type Options struct {
	// To is where to send: empty for the item's Target. A To without a
	// path (or with just "/") takes the item's path; one without a query
	// takes the item's query.
	To string
	// Schemes to sign with (auth.SchemeWebioToken, SchemeJWT,
	// SchemeStandard) using Keys; none keeps no authentication at all (the
	// original's auth headers are always dropped: they are stale).
	Schemes []string
	Keys    auth.OutboundKeys
	// Body replaces the item's body when non-nil.
	Body []byte
	// Client sends the request (a client with DefaultTimeout when nil).
	Client    *http.Client
	Now       func() time.Time
	UserAgent string
	// DryRun builds and signs the request but does not send it.
	DryRun bool
}

// Result is the outcome of one replay.
type Result struct {
	ID        string  `json:"id"`
	Target    string  `json:"target"`
	Method    string  `json:"method"`
	Status    int     `json:"status"`
	LatencyMS float64 `json:"latency_ms"`
	Error     string  `json:"error,omitempty"`
	// Body is the first MaxResultBody bytes of the answer.
	Body string `json:"body,omitempty"`
}

// OK reports whether the replay was answered with a 2xx.
func (r Result) OK() bool { return r.Error == "" && r.Status >= 200 && r.Status < 300 }

// dropped are the headers never copied from the original: hop-by-hop
// headers (RFC 9110 §7.6.1), those net/http computes, and the old
// authentication, which would be stale or, for a jwt, a replayed jti.
var dropped = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-connection": true,
	"proxy-authenticate": true, "proxy-authorization": true, "te": true,
	"trailer": true, "transfer-encoding": true, "upgrade": true,
	"host": true, "content-length": true,
	// net/http asks for gzip itself and then decompresses; a copied
	// accept-encoding would hand back compressed bytes as the answer.
	"accept-encoding":     true,
	"authorization":       true,
	auth.HeaderWebioToken: true,
	auth.HeaderSignature:  true,
	HeaderTimestamp:       true,
	HeaderReplayOf:        true,
}

// Build makes the request Send would send, signed. It is exported for
// dry runs and for callers that send through their own transport.
func Build(ctx context.Context, item Item, opts Options) (*http.Request, error) {
	target, err := resolveTarget(item, opts.To)
	if err != nil {
		return nil, err
	}
	method := item.Method
	if method == "" {
		method = http.MethodPost
	}
	body := item.Body
	if opts.Body != nil {
		body = opts.Body
	} else if item.BodyMissing {
		return nil, errBodyMissing
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	ts := now()

	h := make(http.Header, len(item.Header)+4)
	for name, vals := range item.Header {
		if dropped[strings.ToLower(name)] {
			continue
		}
		for _, v := range vals {
			h.Add(name, v)
		}
	}
	wid := item.WebhookID
	if wid == "" {
		wid = h.Get(HeaderWebhookID)
	}
	if wid != "" {
		h.Set(HeaderWebhookID, wid)
	}
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	if item.ID != "" {
		h.Set(HeaderReplayOf, item.ID)
	}
	if opts.UserAgent != "" {
		h.Set("User-Agent", opts.UserAgent)
	}
	if len(opts.Schemes) > 0 {
		if err := auth.SignRequest(h, opts.Schemes, opts.Keys, auth.Outbound{
			Method:    method,
			WebhookID: wid,
			Event:     item.Event,
			RawQuery:  target.RawQuery,
			Body:      body,
			Timestamp: ts,
		}); err != nil {
			return nil, fmt.Errorf("replay: sign: %w", err)
		}
	}

	var rd io.Reader
	if len(body) > 0 {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	req.Header = h
	return req, nil
}

// errBodyMissing is Build's answer to an item whose body was not kept.
var errBodyMissing = errors.New("replay: the original body was not kept (over the receiver's size limit, or refused while it was busy): give a body to send instead")

// resolveTarget applies Options.To to the item.
func resolveTarget(item Item, to string) (*url.URL, error) {
	base := to
	if base == "" {
		base = item.Target
	}
	if base == "" {
		return nil, errors.New("replay: no target: the item has no original URL and no destination was given")
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("replay: target %q: %w", base, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("replay: target %q: want an http:// or https:// URL", base)
	}
	if to != "" || item.Target == "" {
		if (u.Path == "" || u.Path == "/") && item.Path != "" {
			setPath(u, item.Path)
		}
		if u.RawQuery == "" {
			u.RawQuery = item.RawQuery
		}
	}
	return u, nil
}

// NewClient is the client a replay is sent with. It adds no header of its
// own: Go's default transport would add Accept-Encoding: gzip to a request
// that did not carry it, so the target would see a header the original
// never had. A redirect is reported as the answer, not followed: following
// it would turn a POST into a GET without its body.
func NewClient(timeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DisableCompression = true
	return &http.Client{
		Transport:     t,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Send replays one item and reports what happened; a failure is in
// Result.Error, never a panic or a separate error.
func Send(ctx context.Context, item Item, opts Options) Result {
	res := Result{ID: item.ID, Method: item.Method}
	if res.Method == "" {
		res.Method = http.MethodPost
	}
	req, err := Build(ctx, item, opts)
	if err != nil {
		res.Error = err.Error()
		if u, rerr := resolveTarget(item, opts.To); rerr == nil {
			res.Target = u.String()
		}
		return res
	}
	res.Target = req.URL.String()
	if opts.DryRun {
		return res
	}
	client := opts.Client
	if client == nil {
		client = NewClient(DefaultTimeout)
		// No one else has this client: its connection, idle once the
		// body is closed (deferred below, so it runs first), would only
		// wait for the idle timeout.
		defer client.CloseIdleConnections()
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		res.LatencyMS = units.Millis(time.Since(start))
		res.Error = err.Error()
		return res
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResultBody))
	res.LatencyMS = units.Millis(time.Since(start))
	res.Status = resp.StatusCode
	res.Body = string(b)
	if err != nil {
		res.Error = "read answer: " + err.Error()
	}
	// Drain a little more so the connection can be reused.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return res
}

// setPath gives u the path p as sent: "/a%2Fb" stays one segment.
func setPath(u *url.URL, p string) {
	sent := SentPath(p)
	// SentPath's answer is a valid escaped path: it unescapes, and
	// EscapedPath then gives it back as it is.
	u.Path, _ = url.PathUnescape(sent)
	u.RawPath = sent
}

// SentPath is a request path as it goes on the wire. Captures keep the
// path as sent; one stored before they did holds it decoded, where a "?",
// "#" or space would end the path or break the URL: a path that is not a
// valid escaped path is escaped.
func SentPath(p string) string {
	d, err := url.PathUnescape(p)
	if err == nil && (&url.URL{Path: d, RawPath: p}).EscapedPath() == p {
		return p
	}
	return (&url.URL{Path: p}).EscapedPath()
}
