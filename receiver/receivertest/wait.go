package receivertest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sidehook/sidehook/receiver"
)

// maxListed bounds how many captures of each kind a failed wait lists:
// enough to see what the sender did, few enough to read on one line.
const maxListed = 5

// maxScanned bounds how many of the newest captures a failed wait reads
// to find others to list; past it, it counts them only.
const maxScanned = 200

// errClosed is the cause of a wait the receiver's Close ended.
var errClosed = errors.New("the receiver closed")

// waitError is a Wait that ended before n captures matched f. It says what
// was waited for and what came instead, matching or not: whether the
// sender never called, called another path, or sent another event shows
// in the failure itself. Is reports both its cause (the context's, such
// as context.DeadlineExceeded) and receiver.ErrWaitTimeout.
type waitError struct {
	f       Filter
	n       int
	matched []Capture // newest first, fewer than n
	cause   error
	// others are the newest captures not matching f, at most maxListed,
	// out of otherCount; listErr is why they could not be read.
	others     []Capture
	otherCount int
	listErr    error
}

func (e *waitError) Error() string {
	return fmt.Sprintf("receivertest: waiting for %s: %v; %s", wanted(e.f, e.n), e.cause, e.came())
}

func (e *waitError) Unwrap() []error { return []error{e.cause, receiver.ErrWaitTimeout} }

// came says what matched and what else arrived.
func (e *waitError) came() string {
	var b strings.Builder
	switch len(e.matched) {
	case 0:
		b.WriteString("none came")
	default:
		fmt.Fprintf(&b, "%d came: %s", len(e.matched), summaries(e.matched))
	}
	b.WriteString("; ")
	switch {
	case e.listErr != nil:
		fmt.Fprintf(&b, "the others could not be listed: %v", e.listErr)
	case e.otherCount == 0:
		b.WriteString("no other request did")
	case e.otherCount == 1 && len(e.others) == 1:
		fmt.Fprintf(&b, "1 other did: %s", summaries(e.others))
	case e.otherCount == len(e.others):
		fmt.Fprintf(&b, "%d others did: %s", e.otherCount, summaries(e.others))
	case len(e.others) == 0:
		fmt.Fprintf(&b, "%d others did", e.otherCount)
	default:
		fmt.Fprintf(&b, "%d others did, the newest %d: %s; and %d more",
			e.otherCount, len(e.others), summaries(e.others), e.otherCount-len(e.others))
	}
	return b.String()
}

// wait is Wait, its failure a *waitError.
func (s *Server) wait(ctx context.Context, f Filter, n int) ([]Capture, error) {
	if n < 1 {
		// The receiver would wait for one: a test asking for none means
		// "none came", which no wait can tell.
		return nil, fmt.Errorf("receivertest: waiting for %d requests: n must be at least 1; Requests(f) checks that none came", n)
	}
	caps, err := s.Receiver.Wait(ctx, f, n)
	if err != nil && !errors.Is(err, receiver.ErrWaitTimeout) {
		return caps, fmt.Errorf("receivertest: waiting for %s: %w", wanted(f, n), err)
	}
	if err == nil {
		return caps, nil
	}
	e := &waitError{f: f, n: n, matched: caps, cause: context.Cause(ctx)}
	if e.cause == nil {
		e.cause = errClosed
	}
	e.others, e.otherCount, e.listErr = s.others(f)
	return caps, e
}

// others returns the newest captures that do not match f, at most
// maxListed, and how many there are in all. It has a context of its own:
// the wait's has ended.
func (s *Server) others(f Filter) ([]Capture, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	all, err := s.Receiver.Count(ctx, Filter{})
	if err != nil {
		return nil, 0, err
	}
	matching, err := s.Receiver.Count(ctx, f)
	if err != nil {
		return nil, 0, err
	}
	newest, _, err := s.Receiver.List(ctx, Filter{}, maxScanned, "")
	if err != nil {
		return nil, 0, err
	}
	var out []Capture
	for i := range newest {
		if len(out) == maxListed {
			break
		}
		if !f.Match(&newest[i]) {
			out = append(out, newest[i])
		}
	}
	return out, max(all-matching, len(out)), nil
}

// wanted says what a wait waits for: "2 requests matching event=payment
// path=/hooks", in the admin API's filter names.
func wanted(f Filter, n int) string {
	noun := "requests"
	if n == 1 {
		noun = "request"
	}
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
	if len(conds) == 0 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %s matching %s", n, noun, strings.Join(conds, " "))
}

// maxQuery bounds the query a summary shows.
const maxQuery = 60

// summaries is the captures' summaries, separated by "; ".
func summaries(caps []Capture) string {
	s := make([]string, len(caps))
	for i := range caps {
		s[i] = summary(&caps[i])
	}
	return strings.Join(s, "; ")
}

// summary is a capture on one line, in the filter's terms, so it shows
// which condition it missed: "POST /hooks event=payment webhook_id=evt_1
// verdict=valid answered 200".
func summary(c *Capture) string {
	var b strings.Builder
	b.WriteString(c.Method + " " + c.Path)
	if c.Query != "" {
		q := c.Query
		if len(q) > maxQuery {
			q = q[:maxQuery] + "…"
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
	if c.Verdict.Status == receiver.VerdictInvalid {
		fmt.Fprintf(&b, " (%s: %s)", c.Verdict.Scheme, c.Verdict.Reason)
	}
	if c.Response.Fault != "" {
		b.WriteString(" fault=" + c.Response.Fault)
	} else {
		fmt.Fprintf(&b, " answered %d", c.Response.Status)
	}
	return b.String()
}
