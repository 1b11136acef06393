package receiver

import (
	"context"
	"errors"
	"fmt"

	"github.com/sidehook/sidehook/internal/event"
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
	if err := f.Validate(); err != nil {
		return nil, "", fmt.Errorf("receiver: filter: %w", err)
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
	if err := f.Validate(); err != nil {
		return 0, fmt.Errorf("receiver: filter: %w", err)
	}
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

// DeleteCaptures deletes every capture and forgets every webhook-id; every
// open dashboard empties its list.
func (s *Server) DeleteCaptures(ctx context.Context) error {
	return s.deleteCaptures(ctx, web.ClearedByDelete)
}

// deleteCaptures is DeleteCaptures, the dashboards told it was for the
// reason by (web.ClearedByDelete, web.ClearedByReset) once the delete is
// durable.
func (s *Server) deleteCaptures(ctx context.Context, by string) error {
	next := s.clearSubscription()
	if err := s.st.DeleteAll(ctx); err != nil {
		if next != nil {
			// Nothing was cleared: the feed goes on as it was.
			next.Close()
		}
		return fmt.Errorf("receiver: delete captures: %w", err)
	}
	s.clears.Add(1)
	if next != nil {
		s.handOver(&feedHandover{sub: next, at: s.now(), by: by})
	}
	return nil
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
