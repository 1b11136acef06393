package replay

import (
	"context"
	"fmt"
	"os"
	"slices"
)

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
		for _, id := range UniqueIDs(sel.IDs) {
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
		if !sel.MatchCapture(c) {
			continue
		}
		if len(items) == sel.Limit() {
			return nil, &TooManyError{Max: sel.Limit()}
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
