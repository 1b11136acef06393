package receiverapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/replay"
)

// pageLimit is the largest page the receiver serves.
const pageLimit = receiver.MaxLimit

// Source selects captures through a receiver's admin API for replay. An
// item's default target is the receiver itself, at the captured path and
// query: the request goes back to where it first arrived.
type Source struct {
	Client *Client
	// PageSize is how many captures to ask for at a time (default and
	// most: the receiver's maximum).
	PageSize int
}

// Select implements replay.Source.
func (s *Source) Select(ctx context.Context, sel replay.Selection) ([]replay.Item, error) {
	if sel.Status != "" {
		return nil, fmt.Errorf("%w: captures have a verdict, not a delivery status", replay.ErrUnsupportedFilter)
	}
	var (
		caps []replay.Capture
		err  error
	)
	if len(sel.IDs) > 0 {
		caps, err = s.byID(ctx, sel)
	} else {
		caps, err = s.list(ctx, sel)
	}
	if err != nil {
		return nil, err
	}
	items := make([]replay.Item, len(caps))
	for i := range caps {
		items[i] = caps[i].Item(s.Client.URL())
	}
	return items, nil
}

// replayable checks a capture the way an export line is checked, with the
// one parser replay has for capture JSON: an item that passes is never
// half-sent for a reason visible in the capture itself.
func replayable(c receiver.Capture) (replay.Capture, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return replay.Capture{}, err
	}
	return replay.ParseCapture(b)
}

func (s *Source) byID(ctx context.Context, sel replay.Selection) ([]replay.Capture, error) {
	var out []replay.Capture
	var unknown []string
	for _, id := range replay.UniqueIDs(sel.IDs) {
		c, err := s.Client.Get(ctx, id)
		var e *Error
		// A malformed id is one more unknown id to a selection.
		if errors.As(err, &e) && (e.Status == 404 || e.Status == 400) {
			unknown = append(unknown, id)
			continue
		}
		if err != nil {
			return nil, err
		}
		rc, err := replayable(c)
		if err != nil {
			return nil, fmt.Errorf("receiver: capture %s: %w", id, err)
		}
		if sel.MatchCapture(&rc) {
			if len(out) == sel.Limit() {
				return nil, &replay.TooManyError{Max: sel.Limit()}
			}
			out = append(out, rc)
		}
	}
	if len(unknown) > 0 {
		return nil, &replay.UnknownIDsError{IDs: unknown}
	}
	return out, nil
}

// list pages through the listing, newest first, filtering on the receiver
// what it can (event, verdict, since) and here the rest.
func (s *Source) list(ctx context.Context, sel replay.Selection) ([]replay.Capture, error) {
	f := receiver.Filter{Event: sel.Event, Verdict: sel.Verdict, Since: sel.Since}
	limit := s.PageSize
	if limit <= 0 || limit > pageLimit {
		limit = pageLimit
	}
	var out []replay.Capture
	cursor := ""
	for {
		page, err := s.Client.List(ctx, f, limit, cursor)
		if err != nil {
			return nil, err
		}
		for _, c := range page.Requests {
			rc, err := replayable(c)
			if err != nil {
				return nil, fmt.Errorf("receiver: a listed capture: %w", err)
			}
			if !sel.MatchCapture(&rc) {
				continue
			}
			if len(out) == sel.Limit() {
				return nil, &replay.TooManyError{Max: sel.Limit()}
			}
			out = append(out, rc)
		}
		if page.Next == "" || len(page.Requests) == 0 {
			break
		}
		if page.Next == cursor {
			return nil, errors.New("receiver: the requests listing returned the same cursor twice")
		}
		cursor = page.Next
	}
	// Newest first from the receiver; replays go oldest first.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}
