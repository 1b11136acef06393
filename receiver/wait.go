package receiver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sidehook/sidehook/internal/pubsub"
)

// ErrWaitTimeout is what Wait's error is (errors.Is) when ctx ends first;
// the captures found so far are returned with it.
var ErrWaitTimeout = errors.New("receiver: timed out waiting for captures")

// errStopped is the cause of a wait the server's Close ended.
var errStopped = errors.New("the receiver closed")

// Wait blocks until n captures match f and returns the n newest of them,
// newest first. It looks at the store once, then listens to the capture
// feed (published after commit): no polling. When ctx ends or the server
// stops first it returns what it found and a *WaitTimeoutError (or the
// store's error). A filter that can match nothing is an error at once
// (see Filter.Validate).
func (s *Server) Wait(ctx context.Context, f Filter, n int) ([]Capture, error) {
	if n <= 0 {
		n = 1
	}
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("receiver: filter: %w", err)
	}
	// Subscribe before looking at the store, so nothing committed in
	// between is missed; ids already seen are not counted twice.
	sub := s.bc.Subscribe(ctx, pubsub.Options{Buffer: 1024})
	defer sub.Close()
	clears := s.clears.Load()
	found, err := s.newest(ctx, f, n)
	if err != nil {
		return s.waitErr(ctx, f, n, err)
	}
	dropped := sub.Dropped()
	for len(found) < n {
		select {
		case c, ok := <-sub.C():
			if !ok {
				return found, s.timedOut(ctx, f, n, found)
			}
			if d, cl := sub.Dropped(), s.clears.Load(); d != dropped || cl != clears {
				// The feed overflowed, or a reset deleted what was found:
				// the store is the truth.
				dropped, clears = d, cl
				again, err := s.newest(ctx, f, n)
				if err != nil {
					return s.waitErr(ctx, f, n, err)
				}
				found = again
				continue
			}
			if f.Match(&c) && !slices.ContainsFunc(found, func(x Capture) bool { return x.ID == c.ID }) {
				found = append(found, c)
			}
		case <-ctx.Done():
			return found, s.timedOut(ctx, f, n, found)
		case <-s.stopping:
			return found, s.timedOut(ctx, f, n, found)
		}
	}
	slices.SortFunc(found, func(a, b Capture) int { return -strings.Compare(a.ID, b.ID) })
	return found[:n], nil
}

// waitErr is the result of a wait whose read of the store failed. The
// wait's own deadline passing before or during that read (a deadline
// already past, a slow store, a loaded machine) is no failure of the
// store (500): the store is read again, with a context of its own, and
// what it holds decides. n captures there are the wait's answer; fewer
// are its timeout (408), saying what came.
func (s *Server) waitErr(ctx context.Context, f Filter, n int, err error) ([]Capture, error) {
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), othersTimeout)
	defer cancel()
	found, err := s.newest(rctx, f, n)
	if err != nil {
		return nil, &WaitTimeoutError{Filter: f, N: n, Cause: context.Cause(ctx), listErr: err}
	}
	if len(found) == n {
		return found, nil
	}
	return found, s.timedOut(ctx, f, n, found)
}

// timedOut is the error of a wait that ended with found, fewer than n: it
// lists the others that came. Its reads have a context of their own, the
// wait's without its end, which has come, bounded by othersTimeout.
func (s *Server) timedOut(ctx context.Context, f Filter, n int, found []Capture) *WaitTimeoutError {
	e := &WaitTimeoutError{Filter: f, N: n, Matched: found, Cause: context.Cause(ctx)}
	if e.Cause == nil {
		e.Cause = errStopped
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), othersTimeout)
	defer cancel()
	e.Others, e.OtherCount, e.listErr = s.others(rctx, f)
	return e
}

// newest returns up to n captures matching f, newest first.
func (s *Server) newest(ctx context.Context, f Filter, n int) ([]Capture, error) {
	caps, _, err := s.st.List(ctx, Query{Filter: f, Limit: n})
	if err != nil {
		return nil, fmt.Errorf("receiver: list captures: %w", err)
	}
	return caps, nil
}

// Bounds of what a WaitTimeoutError lists of the captures that did not
// match: enough to see what the sender did, few enough to read on one
// line, found among the newest maxScanned within othersTimeout.
const (
	maxOthersListed = 5
	maxScanned      = 200
	othersTimeout   = time.Second
)

// others returns the newest captures that do not match f, at most
// maxOthersListed, and how many there are in all.
func (s *Server) others(ctx context.Context, f Filter) ([]Capture, int, error) {
	all, err := s.Count(ctx, Filter{})
	if err != nil {
		return nil, 0, err
	}
	matching, err := s.Count(ctx, f)
	if err != nil {
		return nil, 0, err
	}
	newest, _, err := s.List(ctx, Filter{}, maxScanned, "")
	if err != nil {
		return nil, 0, err
	}
	var out []Capture
	for i := range newest {
		if len(out) == maxOthersListed {
			break
		}
		if !f.Match(&newest[i]) {
			out = append(out, newest[i])
		}
	}
	return out, max(all-matching, len(out)), nil
}

// WaitTimeoutError is Wait's error when its context ends, or the server
// stops, before N captures match Filter. It says what was waited for and
// what came instead, matching or not, so a failed wait shows whether the
// sender never called, called another path or sent another event.
// errors.Is(err, ErrWaitTimeout) holds; Unwrap gives Cause.
type WaitTimeoutError struct {
	Filter Filter
	N      int
	// Matched are the captures that matched, newest first: fewer than N.
	Matched []Capture
	// Others are the newest captures that did not match, five at most,
	// of OtherCount in all.
	Others     []Capture
	OtherCount int
	// Cause is the context's cause (context.DeadlineExceeded…), or an
	// error saying the receiver closed.
	Cause error
	// listErr is why the others are not listed.
	listErr error
}

func (e *WaitTimeoutError) Error() string {
	return fmt.Sprintf("receiver: waiting for %s: %v; %s", e.Wanted(), e.Cause, e.Came())
}

// Is reports ErrWaitTimeout.
func (e *WaitTimeoutError) Is(target error) bool { return target == ErrWaitTimeout }

func (e *WaitTimeoutError) Unwrap() error { return e.Cause }

// Wanted says what the wait waited for, in the admin API's filter names:
// "2 requests matching event=payment path=/hooks".
func (e *WaitTimeoutError) Wanted() string {
	noun := "requests"
	if e.N == 1 {
		noun = "request"
	}
	if f := e.Filter.describe(); f != "" {
		return fmt.Sprintf("%d %s matching %s", e.N, noun, f)
	}
	return fmt.Sprintf("%d %s", e.N, noun)
}

// Came says what matched and what else arrived, each capture on a few
// words: "1 came: POST /hooks event=payment verdict=valid answered 200;
// 2 others did: …".
func (e *WaitTimeoutError) Came() string {
	var b strings.Builder
	if len(e.Matched) == 0 {
		b.WriteString("none came")
	} else {
		fmt.Fprintf(&b, "%d came: %s", len(e.Matched), summaries(e.Matched))
	}
	b.WriteString("; ")
	switch {
	case e.listErr != nil:
		fmt.Fprintf(&b, "the others could not be listed: %v", e.listErr)
	case e.OtherCount == 0:
		b.WriteString("no other request did")
	case e.OtherCount == 1 && len(e.Others) == 1:
		fmt.Fprintf(&b, "1 other did: %s", summaries(e.Others))
	case e.OtherCount == len(e.Others):
		fmt.Fprintf(&b, "%d others did: %s", e.OtherCount, summaries(e.Others))
	case len(e.Others) == 0:
		fmt.Fprintf(&b, "%d others did", e.OtherCount)
	default:
		fmt.Fprintf(&b, "%d others did, the newest %d: %s; and %d more",
			e.OtherCount, len(e.Others), summaries(e.Others), e.OtherCount-len(e.Others))
	}
	return b.String()
}

// describe is the filter in the admin API's query names, space-separated:
// "event=payment path=/hooks"; "" for the empty filter.
func (f Filter) describe() string {
	var conds []string
	for _, c := range []struct{ name, v string }{
		{"event", f.Event}, {"path", f.Path}, {"method", f.Method},
		{"verdict", f.Verdict}, {"webhook_id", f.WebhookID},
	} {
		if c.v != "" {
			conds = append(conds, c.name+"="+c.v)
		}
	}
	if !f.Since.IsZero() {
		conds = append(conds, "since="+f.Since.UTC().Format(time.RFC3339Nano))
	}
	return strings.Join(conds, " ")
}

// maxSummaryQuery bounds the query a summary shows.
const maxSummaryQuery = 60

// summaries is the captures' summaries, separated by "; ".
func summaries(caps []Capture) string {
	s := make([]string, len(caps))
	for i := range caps {
		s[i] = caps[i].summary()
	}
	return strings.Join(s, "; ")
}

// summary is the capture on one line, in the filter's terms, so it shows
// which condition it missed: "POST /hooks event=payment webhook_id=evt_1
// verdict=valid answered 200".
func (c *Capture) summary() string {
	var b strings.Builder
	b.WriteString(c.Method + " " + c.Path)
	if c.Query != "" {
		q := c.Query
		if len(q) > maxSummaryQuery {
			q = q[:maxSummaryQuery] + "…"
		}
		b.WriteString("?" + q)
	}
	if c.Event != "" {
		b.WriteString(" event=" + c.Event)
	}
	if c.WebhookID != "" {
		b.WriteString(" webhook_id=" + c.WebhookID)
	}
	b.WriteString(" verdict=" + c.Verdict.Status)
	if c.Verdict.Status == VerdictInvalid {
		fmt.Fprintf(&b, " (%s: %s)", c.Verdict.Scheme, c.Verdict.Reason)
	}
	if c.Response.Fault != "" {
		b.WriteString(" fault=" + c.Response.Fault)
	} else {
		fmt.Fprintf(&b, " answered %d", c.Response.Status)
	}
	return b.String()
}
