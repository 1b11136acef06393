package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"time"
)

// ReceiverSource selects captures through a mock receiver's admin API. An
// item's default target is the receiver itself, at the captured path and
// query: the request goes back to where it first arrived.
type ReceiverSource struct {
	// URL is the receiver's base URL.
	URL string
	// Token is the admin token, sent as a Bearer credential when set.
	Token string
	// Client calls the API (one with DefaultTimeout when nil).
	Client *http.Client
	// PageSize is how many captures to ask for at a time (default and
	// most: the receiver's maximum, 1000).
	PageSize int
}

// receiverPage is the largest page the receiver serves.
const receiverPage = 1000

// Select implements Source.
func (s *ReceiverSource) Select(ctx context.Context, sel Selection) ([]Item, error) {
	if sel.Status != "" {
		return nil, fmt.Errorf("%w: captures have a verdict, not a delivery status", ErrUnsupportedFilter)
	}
	api, err := newAPIClient("receiver", s.URL, s.Token, s.Client)
	if err != nil {
		return nil, err
	}
	var caps []Capture
	if len(sel.IDs) > 0 {
		caps, err = s.byID(ctx, api, sel)
	} else {
		caps, err = s.list(ctx, api, sel)
	}
	if err != nil {
		return nil, err
	}
	items := make([]Item, len(caps))
	for i := range caps {
		items[i] = caps[i].Item(api.base)
	}
	return items, nil
}

func (s *ReceiverSource) byID(ctx context.Context, api *apiClient, sel Selection) ([]Capture, error) {
	var out []Capture
	var unknown []string
	for _, id := range uniqueIDs(sel.IDs) {
		var raw json.RawMessage
		err := api.get(ctx, "/_sidehook/requests/"+url.PathEscape(id), &raw)
		if unknownID(err) {
			unknown = append(unknown, id)
			continue
		}
		if err != nil {
			return nil, err
		}
		c, err := ParseCapture(raw)
		if err != nil {
			return nil, fmt.Errorf("receiver: capture %s: %w", id, err)
		}
		if sel.matchCapture(&c) {
			if len(out) == sel.max() {
				return nil, &TooManyError{Max: sel.max()}
			}
			out = append(out, c)
		}
	}
	if len(unknown) > 0 {
		return nil, &UnknownIDsError{IDs: unknown}
	}
	return out, nil
}

// list pages through GET /_sidehook/requests, newest first, filtering on
// the server what it can (event, verdict, since) and here the rest.
func (s *ReceiverSource) list(ctx context.Context, api *apiClient, sel Selection) ([]Capture, error) {
	q := url.Values{}
	q.Set("limit", strconv.Itoa(pageSize(s.PageSize, receiverPage)))
	if sel.Event != "" {
		q.Set("event", sel.Event)
	}
	if sel.Verdict != "" {
		q.Set("verdict", sel.Verdict)
	}
	if !sel.Since.IsZero() {
		q.Set("since", sel.Since.UTC().Format(time.RFC3339Nano))
	}
	var out []Capture
	for {
		var page struct {
			Requests []json.RawMessage `json:"requests"`
			Next     string            `json:"next"`
		}
		if err := api.get(ctx, "/_sidehook/requests?"+q.Encode(), &page); err != nil {
			return nil, err
		}
		for _, raw := range page.Requests {
			c, err := ParseCapture(raw)
			if err != nil {
				return nil, fmt.Errorf("receiver: a listed capture: %w", err)
			}
			if !sel.matchCapture(&c) {
				continue
			}
			if len(out) == sel.max() {
				return nil, &TooManyError{Max: sel.max()}
			}
			out = append(out, c)
		}
		if page.Next == "" || len(page.Requests) == 0 {
			break
		}
		if page.Next == q.Get("cursor") {
			return nil, errors.New("receiver: the requests listing returned the same cursor twice")
		}
		q.Set("cursor", page.Next)
	}
	reverse(out)
	return out, nil
}

// FileSource selects captures from a receiver's NDJSON export file. The
// file has no receiver URL, so its items have no default target:
// Options.To must say where they go.
type FileSource struct {
	Path string
}

// Select implements Source. A malformed line fails the whole selection
// with a *LineError.
func (s *FileSource) Select(ctx context.Context, sel Selection) ([]Item, error) {
	if sel.Status != "" {
		return nil, fmt.Errorf("%w: captures have a verdict, not a delivery status", ErrUnsupportedFilter)
	}
	f, err := os.Open(s.Path)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	defer f.Close()
	caps, err := ReadExport(f)
	if err != nil {
		return nil, fmt.Errorf("replay: %s: %w", s.Path, err)
	}
	return SelectCaptures(caps, sel)
}

// SelectCaptures applies a selection to captures already read: in the
// order of sel.IDs when given (an id may match several captures, as in a
// file exported twice), else oldest first.
func SelectCaptures(caps []Capture, sel Selection) ([]Item, error) {
	var picked []*Capture
	if len(sel.IDs) > 0 {
		byID := make(map[string][]*Capture, len(caps))
		for i := range caps {
			byID[caps[i].ID] = append(byID[caps[i].ID], &caps[i])
		}
		var unknown []string
		for _, id := range uniqueIDs(sel.IDs) {
			found, ok := byID[id]
			if !ok {
				unknown = append(unknown, id)
				continue
			}
			picked = append(picked, found...)
		}
		if len(unknown) > 0 {
			return nil, &UnknownIDsError{IDs: unknown}
		}
	} else {
		for i := range caps {
			picked = append(picked, &caps[i])
		}
		sortByTime(picked)
	}
	var items []Item
	for _, c := range picked {
		if !sel.matchCapture(c) {
			continue
		}
		if len(items) == sel.max() {
			return nil, &TooManyError{Max: sel.max()}
		}
		items = append(items, c.Item(""))
	}
	return items, nil
}

// sortByTime orders captures oldest first, keeping the file's order for
// equal times.
func sortByTime(caps []*Capture) {
	slices.SortStableFunc(caps, func(a, b *Capture) int { return a.ReceivedAt.Compare(b.ReceivedAt) })
}
