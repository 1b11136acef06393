package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultMax is how many items a selection may hold unless Selection.Max
// says otherwise: a filter that matches more is more likely a mistake
// than a wish to send them all.
const DefaultMax = 10_000

// Selection says which requests to replay. Every field set must match;
// IDs, when given, are looked up one by one and then filtered like the
// rest.
type Selection struct {
	IDs   []string
	Event string
	// Since and Until bound the original's time, both inclusive.
	Since, Until time.Time
	// Status is a relay delivery status (pending, delivering, delivered,
	// failed, dead); only a relay source has it.
	Status string
	// Verdict is a capture's verdict status (valid, invalid, unverified);
	// only captures have it.
	Verdict string
	// Max bounds the items selected (DefaultMax when 0); more is an
	// error, never a silent cut.
	Max int
}

func (s Selection) max() int {
	if s.Max > 0 {
		return s.Max
	}
	return DefaultMax
}

// inRange reports whether t is within Since and Until.
func (s Selection) inRange(t time.Time) bool {
	if !s.Since.IsZero() && t.Before(s.Since) {
		return false
	}
	return s.Until.IsZero() || !t.After(s.Until)
}

// matchCapture applies the selection's filters (not its ids) to c.
func (s Selection) matchCapture(c *Capture) bool {
	if s.Event != "" && c.Event != s.Event {
		return false
	}
	if s.Verdict != "" && c.Verdict != s.Verdict {
		return false
	}
	return s.inRange(c.ReceivedAt)
}

// Source finds the requests a selection names, oldest first (or in the
// order of Selection.IDs), ready to replay. It sends nothing.
type Source interface {
	Select(ctx context.Context, sel Selection) ([]Item, error)
}

// UnknownIDsError lists the ids a source does not have.
type UnknownIDsError struct{ IDs []string }

// unknownID reports whether err from a GET by id means there is no such id.
func unknownID(err error) bool {
	var bad *errBadID
	return errors.Is(err, errNotFound) || errors.As(err, &bad)
}

func (e *UnknownIDsError) Error() string {
	if len(e.IDs) == 1 {
		return "unknown id: " + e.IDs[0]
	}
	return fmt.Sprintf("%d unknown ids: %s", len(e.IDs), strings.Join(e.IDs, ", "))
}

// TooManyError is a selection over its Max.
type TooManyError struct{ Max int }

func (e *TooManyError) Error() string {
	return fmt.Sprintf("the selection matches more than %d requests: narrow it or raise the maximum", e.Max)
}

// ErrUnsupportedFilter is returned for a filter the source does not have
// (a delivery status on captures, a verdict on relay deliveries).
var ErrUnsupportedFilter = errors.New("replay: filter not supported by this source")

// apiClient is the little both HTTP sources share: a base URL, a Bearer
// credential and a JSON GET that turns an error answer into its reason.
type apiClient struct {
	base   string
	bearer string
	client *http.Client
	// what names the server in errors ("receiver", "relay").
	what string
}

// errNotFound is a 404 from the API.
var errNotFound = errors.New("not found")

// errBadID is a 400 to a GET by id: the server says the id is malformed,
// which for a selection is one more unknown id.
type errBadID struct{ reason string }

func (e *errBadID) Error() string { return e.reason }

// maxAPIAnswer bounds one API answer read into memory: a page of a
// thousand captures of up to 1 MiB each is the worst the receiver sends.
const maxAPIAnswer = 2 << 30

func newAPIClient(what, base, bearer string, client *http.Client) (*apiClient, error) {
	base = strings.TrimRight(base, "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("replay: %s URL %q: want an http:// or https:// URL", what, base)
	}
	if client == nil {
		client = &http.Client{Timeout: DefaultTimeout}
	}
	return &apiClient{base: base, bearer: bearer, client: client, what: what}, nil
}

// get decodes the JSON answer to GET base+path into out.
func (a *apiClient) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+path, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", a.what, err)
	}
	if a.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+a.bearer)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", a.what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return errNotFound
	}
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		reason := strings.TrimSpace(string(b))
		var e struct{ Error, Reason string }
		if json.Unmarshal(b, &e) == nil && e.Reason != "" {
			reason = e.Reason
		}
		err := fmt.Errorf("%s answered %d to GET %s: %s", a.what, resp.StatusCode, path, reason)
		if resp.StatusCode == http.StatusBadRequest && !strings.Contains(path, "?") {
			return &errBadID{reason: err.Error()}
		}
		return err
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAPIAnswer)).Decode(out); err != nil {
		return fmt.Errorf("%s: GET %s: decode answer: %w", a.what, path, err)
	}
	return nil
}

// reverse puts a newest-first listing in replay order.
func reverse[T any](s []T) {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
}

// uniqueIDs drops repeats, keeping the first of each: naming an id twice
// does not send it twice.
func uniqueIDs(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func pageSize(asked, most int) int {
	if asked <= 0 || asked > most {
		return most
	}
	return asked
}
