package receiver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/internal/pubsub"
	"github.com/sidehook/sidehook/web"
)

// Get returns one capture.
func (s *Server) Get(ctx context.Context, id string) (Capture, error) {
	if _, err := event.ParseID(event.PrefixCapture, id); err != nil {
		return Capture{}, err
	}
	c, err := s.st.Get(ctx, id)
	if err != nil {
		return Capture{}, fmt.Errorf("receiver: get capture: %w", err)
	}
	return c, nil
}

// List returns up to limit captures matching f, newest first, starting
// after the cursor (a capture id, "" for the newest). next is the cursor
// of the following page, "" when there is none.
func (s *Server) List(ctx context.Context, f Filter, limit int, cursor string) (caps []Capture, next string, err error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	if err := checkCursor(cursor); err != nil {
		return nil, "", err
	}
	caps, next, err = s.st.List(ctx, Query{Filter: f, After: cursor, Limit: limit})
	if err != nil {
		return nil, "", fmt.Errorf("receiver: list captures: %w", err)
	}
	return caps, next, nil
}

// Count returns how many captures match f.
func (s *Server) Count(ctx context.Context, f Filter) (int, error) {
	n, err := s.st.Count(ctx, f)
	if err != nil {
		return 0, fmt.Errorf("receiver: count captures: %w", err)
	}
	return n, nil
}

// errCursor is returned for a cursor that is not a capture id.
var errCursor = errors.New("cursor: not a cursor from this API")

func checkCursor(cursor string) error {
	if cursor == "" {
		return nil
	}
	if _, err := event.ParseID(event.PrefixCapture, cursor); err != nil {
		return errCursor
	}
	return nil
}

// exportPage is how many captures an export reads from the store at a time.
const exportPage = 256

// each calls fn with every capture matching f, oldest first, until fn
// returns false; it reads the store a page at a time, so an export of many
// captures holds few of them at once.
func (s *Server) each(ctx context.Context, f Filter, fn func(*Capture) bool) error {
	after := ""
	for {
		caps, next, err := s.st.List(ctx, Query{Filter: f, After: after, Limit: exportPage, Oldest: true})
		if err != nil {
			return fmt.Errorf("receiver: list captures: %w", err)
		}
		for i := range caps {
			if !fn(&caps[i]) {
				return nil
			}
		}
		if next == "" {
			return nil
		}
		after = next
	}
}

// DeleteCaptures deletes every capture and forgets every webhook-id.
func (s *Server) DeleteCaptures(ctx context.Context) error {
	if err := s.st.DeleteAll(ctx); err != nil {
		return fmt.Errorf("receiver: delete captures: %w", err)
	}
	return nil
}

// ErrWaitTimeout is returned by Wait when ctx ends first; the captures
// found so far are returned with it.
var ErrWaitTimeout = errors.New("receiver: timed out waiting for captures")

// Wait blocks until n captures match f and returns the n newest of them,
// newest first. It looks at the store once, then listens to the capture
// feed (published after commit): no polling. When ctx ends or the server
// stops first it returns what it found and ErrWaitTimeout (or the store's
// error).
func (s *Server) Wait(ctx context.Context, f Filter, n int) ([]Capture, error) {
	if n <= 0 {
		n = 1
	}
	// Subscribe before looking at the store, so nothing committed in
	// between is missed; ids already seen are not counted twice.
	sub := s.bc.Subscribe(ctx, pubsub.Options{Buffer: 1024})
	defer sub.Close()
	found, err := s.newest(ctx, f, n)
	if err != nil {
		return nil, waitErr(ctx, err)
	}
	dropped := sub.Dropped()
	for len(found) < n {
		select {
		case c, ok := <-sub.C():
			if !ok {
				return found, ErrWaitTimeout
			}
			if d := sub.Dropped(); d != dropped {
				// The feed overflowed: the store is the truth.
				dropped = d
				again, err := s.newest(ctx, f, n)
				if err != nil {
					return found, waitErr(ctx, err)
				}
				found = again
				continue
			}
			if f.Match(&c) && !slices.ContainsFunc(found, func(x Capture) bool { return x.ID == c.ID }) {
				found = append(found, c)
			}
		case <-ctx.Done():
			return found, ErrWaitTimeout
		case <-s.stopping:
			return found, ErrWaitTimeout
		}
	}
	slices.SortFunc(found, func(a, b Capture) int { return -strings.Compare(a.ID, b.ID) })
	return found[:n], nil
}

// waitErr is the error of a wait whose read of the store failed: the
// wait's own deadline passing during a long read is its timeout (408 with
// what was found), not a failure of the store (500).
func waitErr(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ErrWaitTimeout
	}
	return err
}

// newest returns up to n captures matching f, newest first.
func (s *Server) newest(ctx context.Context, f Filter, n int) ([]Capture, error) {
	caps, _, err := s.st.List(ctx, Query{Filter: f, Limit: n})
	if err != nil {
		return nil, fmt.Errorf("receiver: list captures: %w", err)
	}
	return caps, nil
}

// redacted is c as the admin API and the dashboard show it: credentials
// without their signatures, in the request and in the answer
// (web.RedactHeaders, the one redaction), so no list, wait, export or
// browser gets a token that still verifies. The store keeps c whole: the
// replay endpoint re-signs from it.
func redacted(c Capture) Capture {
	c.Headers = web.RedactHeaders(c.Headers)
	c.Response.Headers = web.RedactHeaders(c.Response.Headers)
	return c
}

func redactAll(caps []Capture) []Capture {
	for i := range caps {
		caps[i] = redacted(caps[i])
	}
	return caps
}
