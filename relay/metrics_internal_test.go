package relay

import (
	"fmt"
	"testing"
)

// Any type name is accepted at ingest, so the ingest counter's series must
// not grow with whatever producers send: each organisation names at most
// maxTypeLabels custom types, the rest count as otherTypes, and the
// built-in types always count as themselves.
func TestIngestTypeLabelsBounded(t *testing.T) {
	m := newMetrics(newHub(false), nil, func() error { return nil })
	for i := range maxTypeLabels + 50 {
		m.countIngested("acme", fmt.Sprintf("custom_%d", i))
	}
	for _, tc := range []struct {
		org, typ, want string
	}{
		{"acme", "custom_0", "custom_0"},   // named before the bound: keeps its series
		{"acme", "custom_99", "custom_99"}, // the last within it
		{"acme", "custom_100", otherTypes},
		{"acme", "brand_new", otherTypes},
		{"acme", "payment", "payment"}, // built-in: never bounded
		{"acme", "custom_value_request", "custom_value_request"},
		{"other_org", "brand_new", "brand_new"}, // each organisation its own bound
	} {
		if got := m.typeLabel(tc.org, tc.typ); got != tc.want {
			t.Errorf("typeLabel(%q, %q) = %q, want %q", tc.org, tc.typ, got, tc.want)
		}
	}
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series, other := 0, 0.0
	for _, mf := range mfs {
		if mf.GetName() != "sidehook_relay_events_ingested_total" {
			continue
		}
		for _, mt := range mf.Metric {
			series++
			for _, l := range mt.GetLabel() {
				if l.GetName() == "type" && l.GetValue() == otherTypes {
					other = mt.GetCounter().GetValue()
				}
			}
		}
	}
	// The 100 custom types named and one _other, which counted the rest.
	if want := maxTypeLabels + 1; series != want {
		t.Errorf("ingest counter has %d series, want %d", series, want)
	}
	if other != 50 {
		t.Errorf("acme's %s counter = %v, want 50", otherTypes, other)
	}
}
