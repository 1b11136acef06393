package natsstore

import (
	"context"
	"testing"
	"time"
)

// TestRecordFileEndpoint: a relay learns what the relay before it recorded
// for an endpoint of its file, whichever store it came through.
func TestRecordFileEndpoint(t *testing.T) {
	srv := startServer(t, nil)
	url := []string{srv.ClientURL()}
	a := openStore(t, Config{Servers: url})
	b := openStore(t, Config{Servers: url})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	steps := []struct {
		name           string
		st             *Store
		org, id, print string
		wantPrev       string // "": none
		wantRelay      *Store
	}{
		{"First", a, "demo", "crm", "p1", "", nil},
		{"SameFile", b, "demo", "crm", "p1", "p1", a},
		{"OtherFile", a, "demo", "crm", "p2", "p1", b},
		{"OtherEndpoint", b, "demo", "erp", "p1", "", nil},
		{"OtherOrg", b, "other", "crm", "p9", "", nil},
	}
	for _, st := range steps {
		prev, err := st.st.RecordFileEndpoint(ctx, st.org, st.id, st.print)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		switch {
		case st.wantPrev == "" && prev != nil:
			t.Errorf("%s: got %+v, want no record before", st.name, prev)
		case st.wantPrev != "" && (prev == nil || prev.Print != st.wantPrev || prev.Relay != st.wantRelay.id || prev.At.IsZero()):
			t.Errorf("%s: got %+v, want %s recorded by relay %s", st.name, prev, st.wantPrev, st.wantRelay.id)
		}
	}
}
