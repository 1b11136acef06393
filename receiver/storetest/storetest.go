// Package storetest is the conformance suite of receiver.Store: every
// implementation runs Run from its own tests and must pass all of it.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/sidehook/sidehook/receiver"
)

// Run runs the suite. open returns a new, empty store for one subtest and
// arranges its closing with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) receiver.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, receiver.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"NotFound", testNotFound},
		{"NewestFirst", testNewestFirst},
		{"Cursors", testCursors},
		{"Filters", testFilters},
		{"FiltersReadWhatIsStored", testFiltersReadWhatIsStored},
		{"Duplicates", testDuplicates},
		{"DeleteAll", testDeleteAll},
		{"ConcurrentAppenders", testConcurrentAppenders},
		{"LargeBody", testLargeBody},
		{"BodyLimit", testBodyLimit},
		{"LongWebhookID", testLongWebhookID},
		{"CanceledContext", testCanceledContext},
		{"SetResponse", testSetResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
}

// base is the time of the suite's first capture; captures are a
// millisecond apart unless a test says otherwise.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newID returns a capture id for t, as the receiver makes them.
func newID(t time.Time) string {
	return "cap_" + ulid.MustNew(ulid.Timestamp(t), ulid.DefaultEntropy()).String()
}

// capture returns a plain capture received at base+i ms.
func capture(i int) *receiver.Capture {
	at := base.Add(time.Duration(i) * time.Millisecond)
	return &receiver.Capture{
		ID:         newID(at),
		ReceivedAt: at,
		Method:     "POST",
		Path:       fmt.Sprintf("/hooks/%d", i),
		Headers:    map[string][]string{"content-type": {"application/json"}},
		Body:       []byte(fmt.Sprintf(`{"n":%d}`, i)),
		BodySize:   int64(len(fmt.Sprintf(`{"n":%d}`, i))),
		Verdict:    receiver.Verdict{Status: receiver.VerdictUnverified},
		Response:   receiver.CaptureResponse{Status: 200},
	}
}

func appendAll(t *testing.T, st receiver.Store, caps ...*receiver.Capture) {
	t.Helper()
	for _, c := range caps {
		if err := st.Append(t.Context(), c); err != nil {
			t.Fatalf("Append %s: %v", c.ID, err)
		}
	}
}

func ids(caps []receiver.Capture) []string {
	out := make([]string, len(caps))
	for i, c := range caps {
		out[i] = c.ID
	}
	return out
}

func ptrIDs(caps []*receiver.Capture) []string {
	out := make([]string, len(caps))
	for i, c := range caps {
		out[i] = c.ID
	}
	return out
}

func reversed(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

// all lists every capture matching f in one page.
func all(t *testing.T, st receiver.Store, f receiver.Filter, oldest bool) []receiver.Capture {
	t.Helper()
	caps, next, err := st.List(t.Context(), receiver.Query{Filter: f, Oldest: oldest})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if next != "" {
		t.Errorf("List without a limit: next = %q, want none", next)
	}
	return caps
}

// testRoundTrip: what is read back is what was appended, field for field,
// the body byte for byte whatever it holds.
func testRoundTrip(t *testing.T, st receiver.Store) {
	bodies := map[string][]byte{
		"json":      []byte(`{"type":"payment","amount":"50.00","note":"é ✓ <&>"}`),
		"non-utf8":  {0xff, 0xfe, 0x00, 0x80, 'a', 0xc3, 0x28, 0x0a, 0x00},
		"all-bytes": allBytes(),
		"empty":     nil,
	}
	i := 0
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			at := base.Add(time.Duration(i) * time.Second).Add(123456 * time.Microsecond)
			i++
			c := receiver.Capture{
				ID:         newID(at),
				ReceivedAt: at,
				Method:     "PUT",
				Path:       "/a/b%20c",
				Query:      "x=1&y=%FF&z=\xfe",
				RemoteAddr: "127.0.0.1:5555",
				Headers: map[string][]string{
					"content-type": {"application/json"},
					"x-multi":      {"one", "two"},
					"x-bytes":      {"\xff\x00"},
				},
				Body:      body,
				BodySize:  int64(len(body)),
				Event:     "payment",
				WebhookID: "evt_" + name,
				Verdict: receiver.Verdict{
					Status: receiver.VerdictValid, Scheme: "jwt",
					Claims: map[string]any{"iss": "sidehook", "exp": int64(1767225600), "aud": []any{"a", "b"}, "ratio": 0.5, "ok": true},
				},
				Response: receiver.CaptureResponse{Status: 503, Rule: "r1", Fault: "reset"},
			}
			want := c
			want.Headers = map[string][]string{
				"content-type": {"application/json"},
				"x-multi":      {"one", "two"},
				"x-bytes":      {"\xff\x00"},
			}
			want.Body = bytes.Clone(body)
			appendAll(t, st, &c)
			// The store keeps its own copy: changing the caller's capture
			// after Append changes nothing stored.
			if len(c.Body) > 0 {
				c.Body[0] ^= 0xff
			}
			c.Headers["content-type"][0] = "changed"

			got, err := st.Get(t.Context(), want.ID)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			// The "x-bytes" header is not valid UTF-8: JSON keeps it as
			// U+FFFD, and only the body is promised byte for byte.
			want.Headers["x-bytes"] = got.Headers["x-bytes"]
			if !got.ReceivedAt.Equal(want.ReceivedAt) {
				t.Errorf("ReceivedAt: got %v, want %v", got.ReceivedAt, want.ReceivedAt)
			}
			got.ReceivedAt = want.ReceivedAt
			if !bytes.Equal(got.Body, want.Body) {
				t.Errorf("Body: got %x, want %x", got.Body, want.Body)
			}
			if len(got.Body) == 0 && len(want.Body) == 0 {
				got.Body, want.Body = nil, nil
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Get:\ngot  %+v\nwant %+v", got, want)
			}
			if _, ok := got.Verdict.Claims["exp"].(int64); !ok {
				t.Errorf("claim exp: got %T, want int64", got.Verdict.Claims["exp"])
			}
			listed := all(t, st, receiver.Filter{WebhookID: want.WebhookID}, false)
			if len(listed) != 1 || !bytes.Equal(listed[0].Body, want.Body) {
				t.Errorf("List: got %d captures, want the one with its exact body", len(listed))
			}
		})
	}
}

func allBytes() []byte {
	b := make([]byte, 512)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func testNotFound(t *testing.T, st receiver.Store) {
	appendAll(t, st, capture(1))
	_, err := st.Get(t.Context(), capture(2).ID)
	if !errors.Is(err, receiver.ErrNotFound) {
		t.Errorf("Get of an id never stored: got %v, want ErrNotFound", err)
	}
}

// testNewestFirst appends out of order, as concurrent requests do: lists
// are in id order all the same.
func testNewestFirst(t *testing.T, st receiver.Store) {
	caps := make([]*receiver.Capture, 20)
	for i := range caps {
		caps[i] = capture(i)
	}
	order := rand.New(rand.NewPCG(1, 2)).Perm(len(caps))
	for _, i := range order {
		appendAll(t, st, caps[i])
	}
	want := ptrIDs(caps)
	if got := ids(all(t, st, receiver.Filter{}, true)); !reflect.DeepEqual(got, want) {
		t.Errorf("oldest first:\ngot  %v\nwant %v", got, want)
	}
	if got := ids(all(t, st, receiver.Filter{}, false)); !reflect.DeepEqual(got, reversed(want)) {
		t.Errorf("newest first:\ngot  %v\nwant %v", got, reversed(want))
	}
	n, err := st.Count(t.Context(), receiver.Filter{})
	if err != nil || n != len(caps) {
		t.Errorf("Count: got %d, %v; want %d", n, err, len(caps))
	}
}

// testCursors pages through in both orders with several page sizes,
// with and without a filter, and from a cursor whose capture is gone.
func testCursors(t *testing.T, st receiver.Store) {
	caps := make([]*receiver.Capture, 25)
	for i := range caps {
		caps[i] = capture(i)
		if i%3 == 0 {
			caps[i].Event = "third"
		}
	}
	appendAll(t, st, caps...)
	for _, tc := range []struct {
		filter receiver.Filter
		limit  int
		oldest bool
	}{
		{limit: 1}, {limit: 7}, {limit: 25}, {limit: 24}, {limit: 100},
		{limit: 7, oldest: true}, {limit: 5, oldest: true},
		{filter: receiver.Filter{Event: "third"}, limit: 2},
		{filter: receiver.Filter{Event: "third"}, limit: 3, oldest: true},
	} {
		t.Run(fmt.Sprintf("%+v", tc), func(t *testing.T) {
			var want []string
			for _, c := range caps {
				if tc.filter.Match(c) {
					want = append(want, c.ID)
				}
			}
			if !tc.oldest {
				want = reversed(want)
			}
			var got []string
			after, pages := "", 0
			for {
				page, next, err := st.List(t.Context(), receiver.Query{Filter: tc.filter, After: after, Limit: tc.limit, Oldest: tc.oldest})
				if err != nil {
					t.Fatalf("List: %v", err)
				}
				if len(page) > tc.limit {
					t.Fatalf("page of %d, limit %d", len(page), tc.limit)
				}
				got = append(got, ids(page)...)
				pages++
				if next == "" {
					break
				}
				if next != page[len(page)-1].ID {
					t.Fatalf("next = %q, want the page's last id %q", next, page[len(page)-1].ID)
				}
				if pages > len(caps) {
					t.Fatal("paging does not end")
				}
				after = next
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("pages:\ngot  %v\nwant %v", got, want)
			}
			if wantPages := max(1, (len(want)+tc.limit-1)/tc.limit); pages != wantPages {
				t.Errorf("%d pages, want %d (a full last page must have no next)", pages, wantPages)
			}
		})
	}
	// A cursor names a position, whether or not its capture is stored.
	// The greatest id of caps[10]'s millisecond sorts after it and before
	// caps[11], a millisecond later.
	gone := "cap_" + ulid.MustNew(ulid.Timestamp(caps[10].ReceivedAt), bytes.NewReader(bytes.Repeat([]byte{0xff}, 10))).String()
	page, _, err := st.List(t.Context(), receiver.Query{After: gone, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(page), []string{caps[10].ID, caps[9].ID}; !reflect.DeepEqual(got, want) {
		t.Errorf("after an id not stored: got %v, want %v", got, want)
	}
}

func testFilters(t *testing.T, st receiver.Store) {
	var caps []*receiver.Capture
	add := func(i int, f func(c *receiver.Capture)) {
		c := capture(i)
		f(c)
		caps = append(caps, c)
	}
	add(0, func(c *receiver.Capture) { c.Event, c.Path = "payment", "/pay/1" })
	add(1, func(c *receiver.Capture) { c.Event, c.Method = "refund", "put" })
	add(2, func(c *receiver.Capture) { c.Verdict.Status = receiver.VerdictValid; c.WebhookID = "evt_1" })
	add(3, func(c *receiver.Capture) { c.Verdict.Status = receiver.VerdictInvalid; c.Path = "/pay/2/x" })
	add(1000, func(c *receiver.Capture) { c.Event = "payment"; c.WebhookID = "evt_2" })
	add(2000, func(c *receiver.Capture) { c.Method = "GET"; c.Path = "/other" })
	appendAll(t, st, caps...)
	for _, tc := range []struct {
		name string
		f    receiver.Filter
		want []int // indexes into caps, newest first
	}{
		{"none", receiver.Filter{}, []int{5, 4, 3, 2, 1, 0}},
		{"event", receiver.Filter{Event: "payment"}, []int{4, 0}},
		{"method", receiver.Filter{Method: "PUT"}, []int{1}},
		{"verdict", receiver.Filter{Verdict: receiver.VerdictInvalid}, []int{3}},
		{"webhook-id", receiver.Filter{WebhookID: "evt_1"}, []int{2}},
		{"path glob", receiver.Filter{Path: "/pay/*"}, []int{3, 0}},
		{"since", receiver.Filter{Since: base.Add(time.Second)}, []int{5, 4}},
		{"since and event", receiver.Filter{Since: base.Add(time.Second), Event: "payment"}, []int{4}},
		{"no match", receiver.Filter{Event: "nothing"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want []string
			for _, i := range tc.want {
				want = append(want, caps[i].ID)
			}
			got := ids(all(t, st, tc.f, false))
			if len(got) == 0 {
				got = nil
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("List:\ngot  %v\nwant %v", got, want)
			}
			n, err := st.Count(t.Context(), tc.f)
			if err != nil || n != len(want) {
				t.Errorf("Count: got %d, %v; want %d", n, err, len(want))
			}
		})
	}
}

// testFiltersReadWhatIsStored: a capture whose fields the encoding
// changes (invalid UTF-8, received_at finer than a microsecond) matches a
// filter exactly when the capture Get returns does, so every store answers
// a filter alike.
func testFiltersReadWhatIsStored(t *testing.T, st receiver.Store) {
	c := capture(0)
	c.ReceivedAt = c.ReceivedAt.Add(1500 * time.Nanosecond)
	c.Path, c.WebhookID, c.Event = "/caf\xe9", "evt_caf\xe9", "pay\xe9"
	appendAll(t, st, c)
	stored, err := st.Get(t.Context(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []receiver.Filter{
		{Path: c.Path}, {Path: stored.Path},
		{WebhookID: c.WebhookID}, {WebhookID: stored.WebhookID},
		{Event: c.Event}, {Event: stored.Event},
		{Since: c.ReceivedAt}, {Since: stored.ReceivedAt},
	} {
		want := 0
		if f.Match(&stored) {
			want = 1
		}
		if n, err := st.Count(t.Context(), f); err != nil || n != want {
			t.Errorf("Count(%+v): got %d, %v; want %d, as the stored capture matches", f, n, err, want)
		}
		if got := all(t, st, f, false); len(got) != want {
			t.Errorf("List(%+v): got %d captures, want %d", f, len(got), want)
		}
	}
}

func testDuplicates(t *testing.T, st receiver.Store) {
	first, second, third, other := capture(1), capture(2), capture(3), capture(4)
	first.WebhookID, second.WebhookID, third.WebhookID, other.WebhookID = "evt_d", "evt_d", "evt_d", "evt_e"
	first.DuplicateOf = "cap_set_by_the_caller" // overwritten
	appendAll(t, st, first, second, other, third)
	for _, tc := range []struct {
		c    *receiver.Capture
		want string
	}{{first, ""}, {second, first.ID}, {third, first.ID}, {other, ""}} {
		if tc.c.DuplicateOf != tc.want {
			t.Errorf("%s: DuplicateOf after Append = %q, want %q", tc.c.ID, tc.c.DuplicateOf, tc.want)
		}
		got, err := st.Get(t.Context(), tc.c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.DuplicateOf != tc.want {
			t.Errorf("%s: stored DuplicateOf = %q, want %q", tc.c.ID, got.DuplicateOf, tc.want)
		}
	}
	none := capture(5)
	appendAll(t, st, none)
	if none.DuplicateOf != "" {
		t.Errorf("no webhook-id: DuplicateOf = %q", none.DuplicateOf)
	}
}

func testDeleteAll(t *testing.T, st receiver.Store) {
	a := capture(1)
	a.WebhookID = "evt_r"
	appendAll(t, st, a, capture(2))
	if err := st.DeleteAll(t.Context()); err != nil {
		t.Fatalf("DeleteAll: %v", err)
	}
	if n, err := st.Count(t.Context(), receiver.Filter{}); err != nil || n != 0 {
		t.Errorf("Count after DeleteAll: %d, %v", n, err)
	}
	if caps := all(t, st, receiver.Filter{}, false); len(caps) != 0 {
		t.Errorf("List after DeleteAll: %v", ids(caps))
	}
	if _, err := st.Get(t.Context(), a.ID); !errors.Is(err, receiver.ErrNotFound) {
		t.Errorf("Get after DeleteAll: %v, want ErrNotFound", err)
	}
	b := capture(3)
	b.WebhookID = "evt_r"
	appendAll(t, st, b)
	if b.DuplicateOf != "" {
		t.Errorf("the webhook-id's first capture after DeleteAll: DuplicateOf = %q, want none", b.DuplicateOf)
	}
	if err := st.Err(); err != nil {
		t.Errorf("Err: %v", err)
	}
}

// testConcurrentAppenders: many goroutines append at once, several with
// the same webhook-ids; every capture is stored, and each webhook-id has
// exactly one first capture that the others name.
func testConcurrentAppenders(t *testing.T, st receiver.Store) {
	const workers, each, wids = 8, 40, 10
	var (
		mu   sync.Mutex
		caps []*receiver.Capture
		wg   sync.WaitGroup
	)
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				c := capture(w*each + i)
				c.ID = newID(time.Now())
				c.WebhookID = fmt.Sprintf("evt_%d", (w+i)%wids)
				if err := st.Append(context.Background(), c); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				caps = append(caps, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Append: %v", err)
	}
	if n, err := st.Count(t.Context(), receiver.Filter{}); err != nil || n != workers*each {
		t.Fatalf("Count: %d, %v; want %d", n, err, workers*each)
	}
	firsts := map[string]string{}
	for _, c := range caps {
		if c.DuplicateOf == "" {
			if prev, ok := firsts[c.WebhookID]; ok {
				t.Errorf("%s has two first captures: %s and %s", c.WebhookID, prev, c.ID)
			}
			firsts[c.WebhookID] = c.ID
		}
	}
	for _, c := range caps {
		if c.DuplicateOf != "" && c.DuplicateOf != firsts[c.WebhookID] {
			t.Errorf("%s: duplicate of %s, want %s", c.ID, c.DuplicateOf, firsts[c.WebhookID])
		}
	}
	if len(firsts) != wids {
		t.Errorf("%d webhook-ids with a first capture, want %d", len(firsts), wids)
	}
	stored := all(t, st, receiver.Filter{}, true)
	for i := 1; i < len(stored); i++ {
		if stored[i-1].ID >= stored[i].ID {
			t.Fatalf("oldest first out of order at %d: %s then %s", i, stored[i-1].ID, stored[i].ID)
		}
	}
}

// largeBody is the size of the body testLargeBody stores.
const largeBody = 8 << 20

func testLargeBody(t *testing.T, st receiver.Store) {
	c := capture(1)
	c.Body = make([]byte, largeBody)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range c.Body {
		c.Body[i] = byte(rng.Uint32())
	}
	c.BodySize = int64(len(c.Body))
	want := bytes.Clone(c.Body)
	appendAll(t, st, c, capture(2))
	got, err := st.Get(t.Context(), c.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !bytes.Equal(got.Body, want) {
		t.Errorf("body of %d bytes came back as %d bytes, not equal", len(want), len(got.Body))
	}
	if caps := all(t, st, receiver.Filter{}, false); len(caps) != 2 || !bytes.Equal(caps[1].Body, want) {
		t.Errorf("List: the large body did not come back whole")
	}
}

// testBodyLimit: BodyLimit names the store and holds at least the
// largest body LargeBody writes, and so receiver.DefaultMaxBody: a
// receiver on the store with the default limit starts.
func testBodyLimit(t *testing.T, st receiver.Store) {
	lim := st.BodyLimit()
	if lim.Store == "" || lim.MaxBody < largeBody || lim.MaxBody < receiver.DefaultMaxBody {
		t.Errorf("BodyLimit: got %+v, want the store named and at least %d bytes", lim, largeBody)
	}
}

// testLongWebhookID: a webhook-id of 70 KB, longer than a Badger key may
// be, is captured, found by filter and detected as a duplicate.
func testLongWebhookID(t *testing.T, st receiver.Store) {
	long := "evt_" + strings.Repeat("x", 70<<10)
	longer := long + "y"
	a, b, c := capture(1), capture(2), capture(3)
	a.WebhookID, b.WebhookID, c.WebhookID = long, long, longer
	appendAll(t, st, a, b, c)
	if a.DuplicateOf != "" || b.DuplicateOf != a.ID || c.DuplicateOf != "" {
		t.Errorf("DuplicateOf: %q, %q, %q; want none, %s, none", a.DuplicateOf, b.DuplicateOf, c.DuplicateOf, a.ID)
	}
	got := ids(all(t, st, receiver.Filter{WebhookID: long}, false))
	if want := []string{b.ID, a.ID}; !reflect.DeepEqual(got, want) {
		t.Errorf("filter by the long webhook-id: got %v, want %v", got, want)
	}
	stored, err := st.Get(t.Context(), b.ID)
	if err != nil || stored.WebhookID != long {
		t.Errorf("Get: webhook-id of %d bytes, %v; want %d bytes", len(stored.WebhookID), err, len(long))
	}
}

// testCanceledContext: a write whose context is already canceled still
// stores its capture whole (the receiver's client went away).
func testCanceledContext(t *testing.T, st receiver.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	c := capture(1)
	c.WebhookID = "evt_c"
	if err := st.Append(ctx, c); err != nil {
		t.Fatalf("Append with a canceled context: %v", err)
	}
	got, err := st.Get(t.Context(), c.ID)
	if err != nil || !bytes.Equal(got.Body, c.Body) {
		t.Errorf("Get: %v", err)
	}
	d := capture(2)
	d.WebhookID = "evt_c"
	appendAll(t, st, d)
	if d.DuplicateOf != c.ID {
		t.Errorf("the webhook-id's index entry was not stored: DuplicateOf = %q", d.DuplicateOf)
	}
}

// testSetResponse: SetResponse replaces the response and nothing else,
// even with a canceled context; a capture not held (or deleted) is
// ErrNotFound and stays absent.
func testSetResponse(t *testing.T, st receiver.Store) {
	c := capture(1)
	c.WebhookID = "evt_set"
	appendAll(t, st, c, capture(2))
	want := receiver.CaptureResponse{Status: 0, Rule: "rule_1", Error: "cut", DurationMS: 7}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := st.SetResponse(ctx, c.ID, want); err != nil {
		t.Fatalf("SetResponse: %v", err)
	}
	got, err := st.Get(t.Context(), c.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !reflect.DeepEqual(got.Response, want) {
		t.Errorf("response: got %+v, want %+v", got.Response, want)
	}
	got.Response = c.Response
	if !bytes.Equal(got.Body, c.Body) || got.WebhookID != c.WebhookID || got.Path != c.Path || got.DuplicateOf != "" {
		t.Errorf("capture beside its response: got %+v, want it unchanged, %+v", got, *c)
	}
	if n, err := st.Count(t.Context(), receiver.Filter{}); err != nil || n != 2 {
		t.Errorf("Count: got %d, %v, want 2", n, err)
	}
	if err := st.SetResponse(t.Context(), newID(base), want); !errors.Is(err, receiver.ErrNotFound) {
		t.Errorf("SetResponse of an id not held: got %v, want ErrNotFound", err)
	}
	if err := st.DeleteAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := st.SetResponse(t.Context(), c.ID, want); !errors.Is(err, receiver.ErrNotFound) {
		t.Errorf("SetResponse after DeleteAll: got %v, want ErrNotFound", err)
	}
	if n, err := st.Count(t.Context(), receiver.Filter{}); err != nil || n != 0 {
		t.Errorf("Count after DeleteAll and SetResponse: got %d, %v, want 0", n, err)
	}
}
