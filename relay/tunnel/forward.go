package tunnel

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/sidehook/sidehook/relay/config"
)

// hopHeaders describe one HTTP connection, not the request: they are not
// carried to the local app (Content-Length is set from the exact body).
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length", "Host"}

// drainLimit is how much of an answer beyond MaxResultBody is read so the
// connection to the local app can be reused.
const drainLimit = 256 << 10

// MaxResultHeaders bounds the local app's answer headers a result carries,
// counted as the bytes of each name and value plus headerOverhead for each.
// JSON writes a byte as at most 6 ("<" is \u003c) and the overhead covers
// the quotes, colons and commas, so a result's headers encode into at most
// 6 × this: with the base64 body, well under the relay's frame limit
// (maxResultFrame). Go's transport takes up to 10 MB of answer headers; a
// frame over the limit would cut the connection and every delivery on it.
const MaxResultHeaders = 64 << 10

const headerOverhead = 8

// HeaderDropped is the header a result gets, in place of those dropped,
// when the local app answered more than MaxResultHeaders of headers.
const HeaderDropped = "Sidehook-Headers-Dropped"

// boundHeaders returns h, or when it is over MaxResultHeaders, a copy that
// keeps, in order of name, each value that still fits, and says in
// HeaderDropped how many values were dropped.
func boundHeaders(h http.Header) (http.Header, int) {
	size := 0
	for k, vs := range h {
		size += len(k) + headerOverhead
		for _, v := range vs {
			size += len(v) + headerOverhead
		}
	}
	if size <= MaxResultHeaders {
		return h, 0
	}
	out := http.Header{}
	// Room for HeaderDropped itself.
	left := MaxResultHeaders - 256
	dropped, droppedBytes := 0, 0
	for _, k := range slices.Sorted(maps.Keys(h)) {
		for _, v := range h[k] {
			cost := len(v) + headerOverhead
			if _, ok := out[k]; !ok {
				cost += len(k) + headerOverhead
			}
			if cost > left {
				dropped++
				droppedBytes += len(k) + len(v)
				continue
			}
			out[k] = append(out[k], v)
			left -= cost
		}
	}
	out.Set(HeaderDropped, fmt.Sprintf("%d header values (%d bytes) dropped: a tunnel result carries at most %d KiB of headers",
		dropped, droppedBytes, MaxResultHeaders>>10))
	return out, dropped
}

type forwardReq struct {
	method string
	path   string
	query  string
	header http.Header
	body   []byte
	// to is an inspector replay's target URL: with a path, the request
	// goes there; with none, it replaces the --forward URL.
	to string
	// timeoutMS is the relay's wait for a delivery's result, which the
	// forward's deadline is cut from (forwardBudget); 0 for a replay.
	timeoutMS int64
}

// forwarded is the local app's answer to one forward.
type forwarded struct {
	url       string
	start     time.Time
	status    int
	header    http.Header
	body      []byte // at most MaxResultBody
	truncated bool
	// headersDropped counts the header values cut by boundHeaders.
	headersDropped int
	duration       time.Duration
	err            error
	// resultLost is set when the answer could not be sent back to the
	// relay (the connection was lost first).
	resultLost bool
}

// target is the URL a delivery goes to: the --forward URL with the
// endpoint's PATH appended and the queries of both.
func (c *Client) target(f forwardReq) (string, error) {
	// The relay chooses the path; it must not reach outside --forward
	// (a relay before this check accepted "/%2e%2e/admin").
	if err := config.CheckTunnelPath(f.path); err != nil {
		return "", fmt.Errorf("refused the relay's path: %w", err)
	}
	base := *c.forward
	path := f.path
	if f.to != "" {
		u, err := ParseBaseURL("target", f.to)
		if err != nil {
			return "", err
		}
		base = *u
		// A target with a path is the URL the developer typed (often the
		// one the inspector shows, its port changed): sent there, not with
		// the endpoint's path appended again, as the receiver's replay
		// "to" does.
		if p := u.EscapedPath(); p != "" && p != "/" {
			path = ""
		}
	}
	// path is already escaped (the endpoint URL's escaped path): joined as
	// text, so it reaches the app exactly as configured.
	// An endpoint without a path (tunnel://NAME or tunnel://NAME/) goes to
	// the --forward URL as given.
	s := base.Scheme + "://" + base.Host + base.EscapedPath()
	if path != "" && path != "/" {
		s = base.Scheme + "://" + base.Host + strings.TrimSuffix(base.EscapedPath(), "/") + path
	}
	if f.query != "" {
		s += "?" + f.query
	}
	if _, err := url.Parse(s); err != nil {
		return "", fmt.Errorf("target URL: %w", err)
	}
	return s, nil
}

// forwardRequest sends one request to the local app with the exact bytes
// and headers it was given, and reads the first MaxResultBody bytes of the
// answer.
func (c *Client) forwardRequest(ctx context.Context, f forwardReq) forwarded {
	fw := forwarded{start: time.Now()}
	target, err := c.target(f)
	if err != nil {
		fw.err = err
		return fw
	}
	fw.url = target
	var body io.Reader
	if len(f.body) > 0 || (f.method != http.MethodGet && f.method != http.MethodHead) {
		body = bytes.NewReader(f.body)
	}
	req, err := http.NewRequestWithContext(ctx, f.method, target, body)
	if err != nil {
		fw.err = fmt.Errorf("build request: %w", err)
		return fw
	}
	req.Header = f.header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	for _, h := range hopHeaders {
		req.Header.Del(h)
	}
	resp, err := c.local.Do(req)
	if err != nil {
		fw.duration = time.Since(fw.start)
		fw.err = c.describeLocalError(ctx, err, target, waited(ctx, f, fw.start))
		return fw
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResultBody+1))
	fw.duration = time.Since(fw.start)
	fw.status = resp.StatusCode
	fw.header, fw.headersDropped = boundHeaders(resp.Header)
	if len(b) > MaxResultBody {
		b, fw.truncated = b[:MaxResultBody], true
	}
	fw.body = b
	if err != nil && resp.StatusCode/100 != 2 {
		fw.err = fmt.Errorf("read answer: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	return fw
}

// waited words how long a forward that timed out waited for the app.
func waited(ctx context.Context, f forwardReq, start time.Time) string {
	if f.timeoutMS > 0 {
		// The app gets less than the endpoint's timeout (forwardBudget):
		// both numbers, or a cut at 14 s of a 15 s timeout looks like a
		// bug.
		t := time.Duration(f.timeoutMS) * time.Millisecond
		return fmt.Sprintf("the endpoint's timeout (%s, of which the app gets %s: the rest is for its answer to reach the relay)",
			roughly(t), roughly(forwardBudget(f.timeoutMS)))
	}
	if dl, ok := ctx.Deadline(); ok {
		return roughly(dl.Sub(start)).String()
	}
	return "the time allowed"
}

// roughly rounds d to about two figures, as a person says a timeout.
func roughly(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(10 * time.Millisecond)
}

func (c *Client) describeLocalError(ctx context.Context, err error, target, waited string) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s did not answer within %s", target, waited)
	}
	if text, ok := c.describeTLSError(err, target); ok {
		return fmt.Errorf("forward to %s: %s", target, text)
	}
	// Go's client says the method and the URL again (Post "URL": …): the
	// line says the URL once.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	malformed := notHTTP(err)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("forward to %s: connection refused: is the app running on %s?", target, hostPort(target))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), malformed:
		// An app serving HTTPS hangs up on a plain request, or answers
		// with a TLS alert: not a crash, a wrong scheme.
		if c.servesTLS(ctx, target) {
			text := "the app speaks TLS"
			if u, perr := url.Parse(target); perr == nil && c.forward != nil && u.Host == c.forward.Host {
				fw := *c.forward
				fw.Scheme = "https"
				text += fmt.Sprintf(": is it --forward %s?", fw.Redacted())
			}
			return fmt.Errorf("forward to %s: %s", target, text)
		}
		if errors.Is(err, syscall.ECONNRESET) {
			return fmt.Errorf("forward to %s: the app reset the connection without answering (did it crash?)", target)
		}
		if malformed {
			return fmt.Errorf("forward to %s: the app does not answer in HTTP: is --forward the app's URL?", target)
		}
		return fmt.Errorf("forward to %s: the app closed the connection without answering (did it crash?)", target)
	}
	return fmt.Errorf("forward to %s: %w", target, err)
}

// notHTTP reports whether err is Go's reading of an answer that is no
// HTTP (a database's greeting, a TLS alert): it has no error value for it.
func notHTTP(err error) bool { return strings.Contains(err.Error(), "malformed HTTP ") }

// servesTLS reports whether the server of an http:// target completes a
// TLS handshake, within what is left of ctx (at most a second, so the
// result still reaches the relay in time). Nothing is sent over it: it
// only asks, so the certificate is not checked.
func (c *Client) servesTLS(ctx context.Context, target string) bool {
	if !strings.HasPrefix(target, "http://") {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}}
	conn, err := d.DialContext(ctx, "tcp", hostPort(target))
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// hostPort is the HOST:PORT target is sent to, its scheme's port when it
// names none.
func hostPort(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return target
	}
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
}
