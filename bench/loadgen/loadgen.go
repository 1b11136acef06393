// Package loadgen is sidehook's benchmark harness: a closed-loop runner (N
// workers, one keep-alive connection each, for a fixed time or a fixed
// count), a paced open-loop runner, latency percentiles from every sample,
// Webio-style request builders, the two reference servers the benchmarks
// measure against (a bare handler and a delivery sink), and the process
// plumbing to run servers as children and read their peak RSS.
//
// The benchmarks compare sidehook with a baseline measured in the same run
// on the same machine, so both sides use exactly this client; absolute
// numbers say as much about the client as about the server, ratios do not.
package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the zero values of ClosedLoop and Paced.
const (
	DefaultWorkers     = 32
	DefaultDuration    = 10 * time.Second
	DefaultTimeout     = 10 * time.Second
	DefaultMaxInFlight = 64
)

// errorBackoff keeps a worker whose server is gone from spinning on
// connection-refused errors and starving the process it is measuring.
const errorBackoff = 10 * time.Millisecond

// ErrExhausted is returned by a Source with nothing left to hand out. The
// runners treat it as the end of the run, not as a failure.
var ErrExhausted = errors.New("loadgen: request source exhausted")

// Request is one HTTP request of a run, built before the run so that the
// client's CPU goes to sending. Path is joined to the runner's base URL.
// The runner hands Header to net/http as is and never modifies it, so a
// Request may be sent again in a later run (never concurrently).
type Request struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
	// ID names the request in Paced's records (the webhook-id, say).
	ID string
}

// Source hands out the requests of a run. Next is called concurrently by
// every worker and returns ErrExhausted when there are no more.
type Source interface {
	Next() (Request, error)
}

// SourceFunc builds each request on demand: for runs too long to precompute
// or where the client's cost does not matter.
type SourceFunc func() (Request, error)

// Next calls f.
func (f SourceFunc) Next() (Request, error) { return f() }

// Pool is a Source over precomputed requests. When they run out it calls
// the fallback, if any, and counts how often it had to, so a report can say
// the client did extra work in the timed window.
type Pool struct {
	reqs      []Request
	fallback  SourceFunc
	next      atomic.Int64
	generated atomic.Int64
}

// NewPool returns a Pool over reqs; fallback may be nil.
func NewPool(reqs []Request, fallback SourceFunc) *Pool {
	return &Pool{reqs: reqs, fallback: fallback}
}

// Next returns the next precomputed request, then the fallback's.
func (p *Pool) Next() (Request, error) {
	i := p.next.Add(1) - 1
	if i < int64(len(p.reqs)) {
		return p.reqs[i], nil
	}
	if p.fallback == nil {
		return Request{}, ErrExhausted
	}
	p.generated.Add(1)
	return p.fallback()
}

// Len is the number of precomputed requests.
func (p *Pool) Len() int { return len(p.reqs) }

// Generated is how many requests came from the fallback since the last Rewind.
func (p *Pool) Generated() int64 { return p.generated.Load() }

// Rewind starts the pool over, so a second target gets the same requests.
// It must not be called during a run.
func (p *Pool) Rewind() {
	p.next.Store(0)
	p.generated.Store(0)
}

// Precompute builds n requests with build(i) for i in [0, n), spread over
// workers goroutines (at least one). It stops early with ctx's error when
// ctx ends: a million JWTs take a while.
func Precompute(ctx context.Context, n, workers int, build func(i int) (Request, error)) ([]Request, error) {
	if n < 0 {
		return nil, fmt.Errorf("loadgen: precompute: negative count %d", n)
	}
	if workers < 1 {
		workers = 1
	}
	reqs := make([]Request, n)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				if i%1024 < workers && ctx.Err() != nil {
					errs[w] = ctx.Err()
					return
				}
				r, err := build(i)
				if err != nil {
					errs[w] = fmt.Errorf("loadgen: precompute request %d: %w", i, err)
					return
				}
				reqs[i] = r
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return reqs, nil
}

// Result is what a run saw from the client's side.
type Result struct {
	Requests int64 // responses received, any status
	OK       int64 // 2xx responses
	Non2xx   int64
	Errors   int64 // requests without a response (connection errors, timeouts)
	// FirstError and FirstNon2xx describe the first failure of each kind,
	// so a broken run says why without a log.
	FirstError  string
	FirstNon2xx string
	Exhausted   bool          // the source ran out before the run's end
	Start       time.Time     // when the workers were released
	Elapsed     time.Duration // from Start to the last response
	Latency     Summary       // response times of every response
}

// RPS is responses per second over the run.
func (r Result) RPS() float64 { return perSecond(r.Requests, r.Elapsed) }

// OKPerSecond is 2xx responses per second over the run.
func (r Result) OKPerSecond() float64 { return perSecond(r.OK, r.Elapsed) }

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// ClosedLoop sends requests as fast as the server answers: Workers
// goroutines, each with its own keep-alive connection, each sending its
// next request when the previous answer has been read.
type ClosedLoop struct {
	Workers  int           // default DefaultWorkers
	Duration time.Duration // how long requests are started; default DefaultDuration
	// MaxRequests, when > 0, ends the run once that many have been started;
	// Duration still bounds it.
	MaxRequests int64
	Timeout     time.Duration // per request; default DefaultTimeout
	// SampleHint sizes each worker's latency buffer up front (the expected
	// number of requests of the whole run), so recording never allocates in
	// the timed window.
	SampleHint int
}

// workerStats is one worker's tally; only that worker writes it.
type workerStats struct {
	samples                   []time.Duration
	requests, ok, non2xx      int64
	errors                    int64
	firstError, firstNon2xx   string
	firstErrAt, firstNon2xxAt time.Time
	exhausted                 bool
	last                      time.Time
}

// Run sends src's requests to base (an http:// or https:// URL) until the
// duration has passed, MaxRequests have been started, the source is
// exhausted or ctx ends. Requests in flight at the end are waited for and
// counted. A cancelled ctx returns the partial result with ctx's error.
func (c ClosedLoop) Run(ctx context.Context, base string, src Source) (Result, error) {
	base, err := checkBase(base)
	if err != nil {
		return Result{}, err
	}
	workers := c.Workers
	if workers <= 0 {
		workers = DefaultWorkers
	}
	dur := c.Duration
	if dur <= 0 {
		dur = DefaultDuration
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	hint := c.SampleHint/workers + 1

	stats := make([]workerStats, workers)
	var started atomic.Int64
	release := make(chan struct{})
	var wg sync.WaitGroup
	var start time.Time
	for w := range workers {
		stats[w].samples = make([]time.Duration, 0, hint)
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := newClient(1, timeout)
			defer client.CloseIdleConnections()
			<-release
			deadline := start.Add(dur)
			c.work(ctx, client, base, src, deadline, &started, &stats[w])
		}()
	}
	start = time.Now()
	close(release)
	wg.Wait()

	res := Result{Start: start}
	var all []time.Duration
	var firstErrAt, firstNon2xxAt time.Time
	last := start
	for i := range stats {
		s := &stats[i]
		res.Requests += s.requests
		res.OK += s.ok
		res.Non2xx += s.non2xx
		res.Errors += s.errors
		res.Exhausted = res.Exhausted || s.exhausted
		if s.firstError != "" && (firstErrAt.IsZero() || s.firstErrAt.Before(firstErrAt)) {
			res.FirstError, firstErrAt = s.firstError, s.firstErrAt
		}
		if s.firstNon2xx != "" && (firstNon2xxAt.IsZero() || s.firstNon2xxAt.Before(firstNon2xxAt)) {
			res.FirstNon2xx, firstNon2xxAt = s.firstNon2xx, s.firstNon2xxAt
		}
		if s.last.After(last) {
			last = s.last
		}
		all = append(all, s.samples...)
	}
	res.Elapsed = last.Sub(start)
	res.Latency = Summarize(all)
	return res, ctx.Err()
}

func (c ClosedLoop) work(ctx context.Context, client *http.Client, base string, src Source, deadline time.Time, started *atomic.Int64, s *workerStats) {
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if c.MaxRequests > 0 && started.Add(1) > c.MaxRequests {
			return
		}
		req, err := src.Next()
		if errors.Is(err, ErrExhausted) {
			s.exhausted = true
			return
		}
		if err != nil {
			s.fail(fmt.Sprintf("build request: %v", err))
			return
		}
		status, lat, body, err := send(ctx, client, base, req, 0)
		now := time.Now()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.fail(err.Error())
			s.last = now
			sleep(ctx, errorBackoff)
			continue
		}
		s.requests++
		s.samples = append(s.samples, lat)
		s.last = now
		if status >= 200 && status < 300 {
			s.ok++
			continue
		}
		s.non2xx++
		if s.firstNon2xx == "" {
			s.firstNon2xx = fmt.Sprintf("%d %s", status, clip(body))
			s.firstNon2xxAt = now
		}
	}
}

func (s *workerStats) fail(msg string) {
	s.errors++
	if s.firstError == "" {
		s.firstError, s.firstErrAt = msg, time.Now()
	}
}

// maxErrorBody bounds how much of a non-2xx answer a result keeps.
const maxErrorBody = 512

// send performs one request, reads the whole answer (so the connection is
// reused) and returns its status, latency and, when keep > 0 or the status
// is not 2xx, up to keep (or maxErrorBody) bytes of its body.
func send(ctx context.Context, client *http.Client, base string, r Request, keep int) (int, time.Duration, []byte, error) {
	method := r.Method
	if method == "" {
		method = http.MethodPost
	}
	var body io.Reader = http.NoBody
	if len(r.Body) > 0 {
		body = bytes.NewReader(r.Body)
	}
	hr, err := http.NewRequestWithContext(ctx, method, base+r.Path, body)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("new request: %w", err)
	}
	if r.Header != nil {
		hr.Header = r.Header
	}
	t0 := time.Now()
	resp, err := client.Do(hr)
	if err != nil {
		return 0, 0, nil, err
	}
	var kept []byte
	if keep <= 0 && (resp.StatusCode < 200 || resp.StatusCode >= 300) {
		keep = maxErrorBody
	}
	if keep > 0 {
		kept, err = io.ReadAll(io.LimitReader(resp.Body, int64(keep)))
	}
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	lat := time.Since(t0)
	resp.Body.Close()
	if err != nil {
		return 0, 0, nil, fmt.Errorf("read response: %w", err)
	}
	return resp.StatusCode, lat, kept, nil
}

// newClient is a plain HTTP/1.1 keep-alive client holding at most conns
// connections to one host: no proxy, no compression, no HTTP/2.
func newClient(conns int, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// checkBase validates a base URL and returns it without a trailing slash.
func checkBase(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("loadgen: base url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("loadgen: base url %q: want http://host:port", base)
	}
	for len(base) > 0 && base[len(base)-1] == '/' {
		base = base[:len(base)-1]
	}
	return base, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func clip(b []byte) string {
	const max = 200
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
