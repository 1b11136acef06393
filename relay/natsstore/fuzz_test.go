package natsstore

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
)

// Event ids come from producers: any string must make one subject token
// and come back unchanged.
func FuzzToken(f *testing.F) {
	for _, s := range []string{"", "evt_1", "a.b", "*", ">", "=x", "with space", "ü", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tk := tok(s)
		if tk == "" || strings.ContainsAny(tk, ". *>\t\r\n") {
			t.Fatalf("tok(%q) = %q: not one subject token", s, tk)
		}
		back, err := untok(tk)
		if err != nil || back != s {
			t.Fatalf("untok(tok(%q)) = %q, %v", s, back, err)
		}
	})
}

// Cursors come back from API clients: anything must parse or be refused,
// never panic, and a cursor made here must parse to its place.
func FuzzCursor(f *testing.F) {
	f.Add(cursorPrefix + stamp(t0) + tok("evt 1"))
	f.Add("n1.")
	f.Add("n1.zzzzzzzzzzzzzzzzzz")
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, c string) {
		at, id, err := parseCursor(c)
		if err != nil || c == "" {
			return
		}
		again := cursorPrefix + stamp(at) + tok(id)
		if again != c {
			t.Fatalf("cursor %q read as %v %q, which makes %q: a cursor is read only in the form made", c, at, id, again)
		}
		if at2, id2, err := parseCursor(again); err != nil || !at2.Equal(at) || id2 != id {
			t.Fatalf("cursor %q read as %v %q, remade as %q: %v %q %v", c, at, id, again, at2, id2, err)
		}
	})
}

// TestCursorCanonical: a cursor is read only in the form this store
// makes; a variant that decodes to the same place is refused.
func TestCursorCanonical(t *testing.T) {
	st := stamp(t0)
	tests := []struct {
		name, cursor string
		ok           bool
	}{
		{"Made", cursorPrefix + st + tok("evt 1"), true},
		{"MadePlain", cursorPrefix + st + tok("evt_1"), true},
		{"Base64TrailingBits", cursorPrefix + st + "=ZXZ0IDF", false}, // tok("evt 1") is =ZXZ0IDE
		{"PlainIDEncoded", cursorPrefix + st + "=ZXZ0XzE", false},     // "evt_1" is its own token
		{"UpperCaseStamp", cursorPrefix + strings.ToUpper(st) + tok("evt_1"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := parseCursor(tt.cursor)
			if tt.ok && err != nil {
				t.Errorf("parseCursor(%q): got %v, want it read", tt.cursor, err)
			}
			if !tt.ok && !errors.Is(err, relay.ErrBadCursor) {
				t.Errorf("parseCursor(%q): got %v, want ErrBadCursor", tt.cursor, err)
			}
		})
	}
}

func TestStampOrder(t *testing.T) {
	times := []time.Time{time.Unix(0, 0), t0, t0.Add(time.Nanosecond), t0.Add(time.Hour)}
	for i := 1; i < len(times); i++ {
		if stamp(times[i-1]) >= stamp(times[i]) {
			t.Fatalf("stamp order broken at %v", times[i])
		}
	}
}

func TestEventSplitAcrossRecords(t *testing.T) {
	for _, size := range []int{0, 100, 20 << 10, 64 << 10} {
		ev, _ := mkEvent("acme", "big", t0, false, "a")
		ev.Body = make([]byte, size)
		for i := range ev.Body {
			ev.Body[i] = byte(i * 7)
		}
		recs, err := encodeEvent(ev, 16<<10) // a small max payload: many parts
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range recs {
			if len(r) > 16<<10-headroom {
				t.Fatalf("size %d: record %d has %d bytes", size, i, len(r))
			}
		}
		got, err := decodeEvent(recs[0], func(i int) ([]byte, error) { return recs[i], nil })
		if err != nil || string(got.Body) != string(ev.Body) {
			t.Fatalf("size %d in %d records: read back %d bytes, %v", size, len(recs), len(got.Body), err)
		}
	}
}

// A retry subject reads back as what made it, whatever the ids; anything
// else under the prefix is refused.
func FuzzRetrySubject(f *testing.F) {
	for _, s := range []string{"acme", "a.b", "=x", "", "ünï", "*>"} {
		f.Add(s, s+"ep", s+"id", int64(t0.UnixNano()))
	}
	sj := subjects{"pfx"}
	f.Fuzz(func(t *testing.T, org, ep, id string, ns int64) {
		if ns < 0 { // stamps start at 1970
			ns = -(ns + 1)
		}
		due := time.Unix(0, ns).UTC()
		subj := sj.retry(org, ep, due, id)
		gotOrg, gotEp, gotDue, gotID, err := sj.parseRetry(subj)
		if err != nil || gotOrg != org || gotEp != ep || !gotDue.Equal(due) || gotID != id {
			t.Fatalf("%q read as %q %q %v %q, %v; want %q %q %v %q", subj, gotOrg, gotEp, gotDue, gotID, err, org, ep, due, id)
		}
		if _, _, _, err := sj.parseWork(subj); err == nil {
			t.Fatalf("retry subject %q read as a work subject", subj)
		}
		for _, bad := range []string{sj.work(org, ep, id, false), sj.delivery(org, id), "pfx.r." + tok(org) + "." + tok(ep)} {
			if _, _, _, _, err := sj.parseRetry(bad); err == nil {
				t.Fatalf("%q read as a retry subject", bad)
			}
		}
	})
}

// A work subject reads back as what made it, whatever the ids; a subject
// read as one is the work item of what it reads as, and no other kind.
func FuzzWorkSubject(f *testing.F) {
	sj := subjects{"pfx"}
	f.Add(sj.work("acme", "crm", "dlv_1", false), "acme", "crm", "dlv_1", false)
	f.Add(sj.work("a.b", "=x", "", true), "a.b", "=x", "", true)
	f.Add("pfx.q.acme.crm", "ü", "*>", " ", false)
	f.Add("pfx.o.acme.crm.dlv_1.x", "", "", "", true)
	f.Add("pfx.q.=.=.=", "", "", "", false)
	f.Add("pfx.q.=YWNtZQ.crm.=!", "acme", "crm", "x", false)
	f.Add(sj.retry("acme", "crm", t0, "dlv_1"), "acme", "crm", "dlv_1", false)
	f.Fuzz(func(t *testing.T, subj, org, ep, id string, ordered bool) {
		made := sj.work(org, ep, id, ordered)
		gotOrg, gotEp, gotID, err := sj.parseWork(made)
		if err != nil || gotOrg != org || gotEp != ep || gotID != id {
			t.Fatalf("%q read as %q %q %q, %v; want %q %q %q", made, gotOrg, gotEp, gotID, err, org, ep, id)
		}
		if _, _, _, _, err := sj.parseRetry(made); err == nil {
			t.Fatalf("work subject %q read as a retry subject", made)
		}

		org, ep, id, err = sj.parseWork(subj)
		if err != nil {
			return
		}
		again := sj.work(org, ep, id, strings.HasPrefix(subj, "pfx.o."))
		if o, e, i, err := sj.parseWork(again); err != nil || o != org || e != ep || i != id {
			t.Fatalf("%q read as %q %q %q, remade as %q, read back as %q %q %q, %v", subj, org, ep, id, again, o, e, i, err)
		}
		if _, _, _, _, err := sj.parseRetry(subj); err == nil {
			t.Fatalf("%q read as both a work and a retry subject", subj)
		}
	})
}

// A notice of work given back is heard from the network: its subject
// reads back as what made it, whatever the ids, and anything that is not
// one (under the root, or a stored subject) is refused, never panics;
// one read remakes a subject that reads the same.
func FuzzBackSubject(f *testing.F) {
	sj := subjects{"pfx"}
	f.Add(sj.back("acme", "crm"), "acme", "crm")
	f.Add(sj.back("a.b", "=x"), "", "*>")
	f.Add("_sidehook.pfx.back.acme", "ü", " ")
	f.Add("_sidehook.pfx.back.acme.crm.x", "", "")
	f.Add("_sidehook.pfx.back.=.=", "", "")
	f.Add("_sidehook.pfx.back.=YWNtZQ.crm", "", "") // "acme" encoded though plain
	f.Add("_sidehook.other.back.acme.crm", "acme", "crm")
	f.Add(sj.feed("ABC"), "acme", "crm")
	f.Fuzz(func(t *testing.T, subj, org, ep string) {
		made := sj.back(org, ep)
		if !matches(sj.backAll(), made) {
			t.Fatalf("%q is not under the subscription %q", made, sj.backAll())
		}
		gotOrg, gotEp, err := sj.parseBack(made)
		if err != nil || gotOrg != org || gotEp != ep {
			t.Fatalf("%q read as %q %q, %v; want %q %q", made, gotOrg, gotEp, err, org, ep)
		}
		org, ep, err = sj.parseBack(subj)
		if err != nil {
			return
		}
		again := sj.back(org, ep)
		if o, e, err := sj.parseBack(again); err != nil || o != org || e != ep {
			t.Fatalf("%q read as %q %q, remade as %q, read back as %q %q, %v", subj, org, ep, again, o, e, err)
		}
	})
}

// A change shared by another relay is heard from the network: the sharer
// named in its subject reads back, and no other subject is read as one.
func FuzzFeedSubject(f *testing.F) {
	sj := subjects{"pfx"}
	f.Add(sj.feed("ABCDEFGHIJKL"), "ABCDEFGHIJKL")
	f.Add("_sidehook.pfx.feed.", "")
	f.Add("_sidehook.pfx.feed.a.b", "a.b")
	f.Add(sj.back("acme", "crm"), "x")
	f.Fuzz(func(t *testing.T, subj, from string) {
		if from != "" && plain(from) {
			made := sj.feed(from)
			if !matches(sj.feedAll(), made) {
				t.Fatalf("%q is not under the subscription %q", made, sj.feedAll())
			}
			if got, err := sj.parseFeed(made); err != nil || got != from {
				t.Fatalf("%q read as %q, %v; want %q", made, got, err, from)
			}
		}
		got, err := sj.parseFeed(subj)
		if err != nil {
			return
		}
		if again := sj.feed(got); again != subj {
			t.Fatalf("%q read as %q, which makes %q", subj, got, again)
		}
	})
}

// matches reports whether a subject matches a subscription's pattern
// (tokens, "*" and a final ">"), as the server matches them.
func matches(pattern, subj string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(subj, ".")
	for i, tk := range p {
		if tk == ">" {
			return len(s) > i
		}
		if i >= len(s) || s[i] == "" || tk != "*" && tk != s[i] {
			return false
		}
	}
	return len(p) == len(s)
}
