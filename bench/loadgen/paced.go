package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// Paced sends requests on a fixed schedule whatever the server does (an
// open loop): request i is due at start + i/Rate. Latency under a paced
// load is what a producer sending at a steady rate sees, which a closed
// loop hides by slowing down with the server.
type Paced struct {
	Rate     float64       // requests per second; required
	Duration time.Duration // default DefaultDuration
	Timeout  time.Duration // per request; default DefaultTimeout
	// MaxInFlight bounds concurrent requests (default DefaultMaxInFlight).
	// When reached, sends wait and fall behind schedule; Lag says by how much.
	MaxInFlight int
	// KeepBody keeps up to this many bytes of every response body in Sent
	// (to read an id the server assigned, say).
	KeepBody int
}

// Sent is the record of one paced request.
type Sent struct {
	ID        string        // the Request's ID
	Scheduled time.Time     // when it was due
	At        time.Time     // when it was handed to the client
	Status    int           // 0 when there was no response
	Latency   time.Duration // response time from At
	Body      []byte        // the response body, up to KeepBody bytes
	Err       string
}

// PacedResult is a Result plus every request's record, in schedule order.
type PacedResult struct {
	Result
	Sent []Sent
	// Lag is the largest delay between a request's due time and its send:
	// large values mean the client, not the server, set the pace.
	Lag time.Duration
}

// Run sends src's requests to base on schedule for the duration and waits
// for every answer. A cancelled ctx returns the partial result with ctx's
// error.
func (p Paced) Run(ctx context.Context, base string, src Source) (PacedResult, error) {
	base, err := checkBase(base)
	if err != nil {
		return PacedResult{}, err
	}
	if p.Rate <= 0 || math.IsInf(p.Rate, 0) || math.IsNaN(p.Rate) {
		return PacedResult{}, fmt.Errorf("loadgen: paced rate %v: want a positive number", p.Rate)
	}
	dur := p.Duration
	if dur <= 0 {
		dur = DefaultDuration
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	inFlight := p.MaxInFlight
	if inFlight <= 0 {
		inFlight = DefaultMaxInFlight
	}
	n := int(math.Ceil(p.Rate * dur.Seconds()))
	interval := float64(time.Second) / p.Rate

	client := newClient(inFlight, timeout)
	defer client.CloseIdleConnections()
	sent := make([]Sent, 0, n)
	slots := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	var lag time.Duration
	var exhausted bool
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(float64(i) * interval))
		if wait := time.Until(due); wait > 0 {
			sleep(ctx, wait)
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		req, err := src.Next()
		if err != nil {
			<-slots
			if errors.Is(err, ErrExhausted) {
				exhausted = true
				break
			}
			wg.Wait()
			return PacedResult{Sent: sent}, fmt.Errorf("loadgen: build request: %w", err)
		}
		sent = append(sent, Sent{ID: req.ID, Scheduled: due})
		rec := &sent[len(sent)-1] // sent never grows past cap n: stable address
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			rec.At = time.Now()
			status, lat, body, err := send(ctx, client, base, req, p.KeepBody)
			if err != nil {
				rec.Err = err.Error()
				return
			}
			rec.Status, rec.Latency, rec.Body = status, lat, body
		}()
		lag = max(lag, time.Since(due))
	}
	wg.Wait()

	res := PacedResult{Sent: sent, Lag: lag}
	res.Start = start
	res.Exhausted = exhausted
	samples := make([]time.Duration, 0, len(sent))
	last := start
	for _, s := range sent {
		if end := s.At.Add(s.Latency); end.After(last) {
			last = end
		}
		switch {
		case s.Err != "":
			res.Errors++
			if res.FirstError == "" {
				res.FirstError = s.Err
			}
			continue
		case s.Status >= 200 && s.Status < 300:
			res.OK++
		default:
			res.Non2xx++
			if res.FirstNon2xx == "" {
				res.FirstNon2xx = fmt.Sprintf("%d %s", s.Status, clip(s.Body))
			}
		}
		res.Requests++
		samples = append(samples, s.Latency)
	}
	res.Elapsed = last.Sub(start)
	res.Latency = Summarize(samples)
	return res, ctx.Err()
}
