package badgerstore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/internal/store"
	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/receiver/storetest"
)

func open(t *testing.T, dir string) *Store {
	t.Helper()
	st, err := Open(Options{Dir: dir, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return st
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) receiver.Store { return open(t, t.TempDir()) })
}

func capture(id, wid string) *receiver.Capture {
	return &receiver.Capture{
		ID: id, ReceivedAt: time.Now().UTC().Truncate(time.Microsecond), Method: "POST", Path: "/x",
		WebhookID: wid, Body: []byte("body"), Verdict: receiver.Verdict{Status: receiver.VerdictUnverified},
	}
}

// TestReopen: captures and the webhook-id index outlive a restart, and the
// filter loaded at start knows the stored webhook-ids.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir)
	long := strings.Repeat("w", 70<<10)
	a := capture("cap_01JAAAAAAAAAAAAAAAAAAAAAAA", long)
	if err := st.Append(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = open(t, dir)
	<-st.loadDone
	if !st.dedupe.complete {
		t.Fatal("the webhook-id filter did not load")
	}
	got, err := st.Get(t.Context(), a.ID)
	if err != nil || got.WebhookID != long {
		t.Fatalf("Get after reopen: %v", err)
	}
	b := capture("cap_01JAAAAAAAAAAAAAAAAAAAAAAB", long)
	if err := st.Append(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if b.DuplicateOf != a.ID {
		t.Errorf("after reopen: DuplicateOf = %q, want %s", b.DuplicateOf, a.ID)
	}
}

// TestMigrateLegacyIndex: an index written with unhashed webhook-ids (w/)
// is moved to the hashed one at Open, and duplicates of those webhook-ids
// are still found.
func TestMigrateLegacyIndex(t *testing.T) {
	dir := t.TempDir()
	raw, err := store.Open(store.Options{Dir: dir, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Write(t.Context(), store.Set([]byte("w/evt_old"), []byte("cap_old"))); err != nil {
		t.Fatal(err)
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}
	st := open(t, dir)
	c := capture("cap_01JAAAAAAAAAAAAAAAAAAAAAAC", "evt_old")
	if err := st.Append(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if c.DuplicateOf != "cap_old" {
		t.Errorf("DuplicateOf = %q, want cap_old from the legacy index", c.DuplicateOf)
	}
	if _, err := st.st.Get([]byte("w/evt_old")); err != store.ErrNotFound {
		t.Errorf("legacy key kept: %v", err)
	}
}

// TestDedupeKnownFilter: once the filter is loaded, a webhook-id never
// seen costs no store lookup, and one stored before the start still does
// (and is found).
func TestDedupeKnownFilter(t *testing.T) {
	st := open(t, t.TempDir())
	<-st.loadDone
	if err := st.st.Write(t.Context(), store.Set(webhookKey(sumOf("evt_old")), []byte("cap_old"))); err != nil {
		t.Fatal(err)
	}
	var lookups int
	d := newDedupe(2, func(sum widSum) (string, bool) {
		lookups++
		return st.lookupFirst(sum)
	})
	steps := []struct {
		load       bool // load the filter before this step
		clear      bool // forget the cached answers before this step
		wid, id    string
		wantFirst  string
		wantLookup bool
	}{
		{wid: "evt_a", id: "cap_1", wantFirst: "cap_1", wantLookup: true}, // not loaded yet: asks the store
		{load: true, wid: "evt_b", id: "cap_2", wantFirst: "cap_2"},       // loaded: a new id is not looked up
		{wid: "evt_b", id: "cap_3", wantFirst: "cap_2"},                   // cached answer
		{wid: "evt_old", id: "cap_4", wantFirst: "cap_old", wantLookup: true},
		{clear: true, wid: "evt_b", id: "cap_5", wantFirst: "cap_5", wantLookup: true}, // claimed before: may be stored
		{wid: "evt_new", id: "cap_6", wantFirst: "cap_6"},
	}
	for i, s := range steps {
		if s.load {
			st.dedupe = d
			if err := st.loadKnown(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		if s.clear {
			d.clear()
		}
		lookups = 0
		first, mine := d.first(sumOf(s.wid), s.id)
		if first != s.wantFirst || mine != (s.wantFirst == s.id) {
			t.Errorf("step %d: first(%s, %s) = %s, %v; want %s", i, s.wid, s.id, first, mine, s.wantFirst)
		}
		if got := lookups > 0; got != s.wantLookup {
			t.Errorf("step %d: store lookup %v, want %v", i, got, s.wantLookup)
		}
	}
}

// TestDedupeWaitersShareTheLookup holds the first claim's store lookup:
// appends with the same webhook-id wait for it rather than look up
// themselves, and all of them get its answer.
func TestDedupeWaitersShareTheLookup(t *testing.T) {
	release := make(chan struct{})
	var lookups atomic.Int32
	d := newDedupe(4, func(widSum) (string, bool) {
		lookups.Add(1)
		<-release
		return "", false
	})
	type answer struct {
		first string
		mine  bool
	}
	answers := make(chan answer, 5)
	ask := func(id string) {
		first, mine := d.first(sumOf("evt_x"), id)
		answers <- answer{first, mine}
	}
	go ask("cap_0")
	for lookups.Load() == 0 {
		runtime.Gosched()
	}
	for i := 1; i < 5; i++ {
		go ask(fmt.Sprintf("cap_%d", i))
	}
	close(release)
	mine := 0
	for range 5 {
		a := <-answers
		if a.first != "cap_0" {
			t.Errorf("first = %q, want cap_0", a.first)
		}
		if a.mine {
			mine++
		}
	}
	if mine != 1 || lookups.Load() != 1 {
		t.Errorf("%d answers were mine and %d lookups were made, want 1 and 1", mine, lookups.Load())
	}
}

func TestDedupeEvictionAndLongIDs(t *testing.T) {
	stored := map[widSum]string{}
	d := newDedupe(2, func(sum widSum) (string, bool) {
		id, ok := stored[sum]
		return id, ok
	})
	long := "cap_" + strings.Repeat("x", maxInlineID)
	stored[sumOf("evt_long")] = long
	if first, mine := d.first(sumOf("evt_long"), "cap_1"); first != long || mine {
		t.Fatalf("first = %q, %v; want the stored long id", first, mine)
	}
	if _, ok := d.m[keyOf(sumOf("evt_long"))]; ok {
		t.Error("an id over maxInlineID was kept")
	}
	d.first(sumOf("evt_a"), "cap_a")
	d.first(sumOf("evt_b"), "cap_b")
	d.first(sumOf("evt_c"), "cap_c") // evicts evt_a
	if _, ok := d.m[keyOf(sumOf("evt_a"))]; ok || len(d.m) != 2 {
		t.Errorf("after a third webhook-id in a map of 2: %d entries, evt_a kept = %v; want 2 entries without evt_a", len(d.m), ok)
	}
	d.forget(sumOf("evt_c"), "cap_other") // names another capture: kept
	d.forget(sumOf("evt_b"), "cap_b")
	if _, ok := d.m[keyOf(sumOf("evt_c"))]; !ok {
		t.Error("forget dropped an entry naming another capture")
	}
	if _, ok := d.m[keyOf(sumOf("evt_b"))]; ok {
		t.Error("forget kept the entry of a capture that was not stored")
	}
}

// TestCloseTwice: Close is safe to call again and returns the same result.
func TestCloseTwice(t *testing.T) {
	st, err := Open(Options{Dir: t.TempDir(), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := st.Append(context.Background(), capture("cap_01JAAAAAAAAAAAAAAAAAAAAAAD", "")); err == nil {
		t.Error("Append after Close succeeded")
	}
}

// TestMaxBody: a capture of a MaxBody body is kept with a megabyte of
// headers, what Go's server reads at most; one of a whole value log file
// is refused with receiver.ErrTooLarge, not an error to retry.
func TestMaxBody(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a body of 62 MiB")
	}
	st := open(t, t.TempDir())
	tests := []struct {
		name string
		body int64
		want error
	}{
		{"AtTheLimit", BodyLimit().MaxBody, nil},
		{"AValueLogFile", store.DefaultValueLogFileSize, receiver.ErrTooLarge},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := capture(fmt.Sprintf("cap_01JAAAAAAAAAAAAAAAAAAAAAA%d", i), "")
			c.Headers = map[string][]string{"x-big": {strings.Repeat("h", 1<<20)}}
			c.Body = make([]byte, tt.body)
			err := st.Append(t.Context(), c)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Append of a %d-byte body: got %v, want %v", tt.body, err, tt.want)
			}
			got, gerr := st.Get(t.Context(), c.ID)
			if kept := gerr == nil && int64(len(got.Body)) == tt.body; kept != (tt.want == nil) {
				t.Errorf("read back: %v (kept: %v), want kept %v", gerr, kept, tt.want == nil)
			}
		})
	}
}
