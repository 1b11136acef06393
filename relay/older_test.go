package relay_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/web"
)

// TestDashboardOlderDeliveries: the page loads older rows past its
// snapshot, newest first, bounded by the oldest row it holds.
func TestDashboardOlderDeliveries(t *testing.T) {
	rcv := newSink(t, nil, nil)
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL()}), relay.Options{})
	for range 5 {
		ingest(t, r, `{"type":"payment"}`, nil)
	}
	page := func(before time.Time, limit string) (items []web.Item, more bool, status int) {
		q := url.Values{"before": {before.Format(time.RFC3339Nano)}, "limit": {limit}}
		a := call(t, "GET", r.URL()+"/_sidehook/deliveries?"+q.Encode(), "", nil, nil)
		var out struct {
			Items []web.Item `json:"items"`
			More  bool       `json:"more"`
		}
		if a.Status == http.StatusOK {
			a.decode(t, &out)
		}
		return out.Items, out.More, a.Status
	}
	first, more, status := page(time.Now().Add(time.Minute), "3")
	if status != http.StatusOK || len(first) != 3 || !more {
		t.Fatalf("first page: got %d, %d items, more %v; want 200, 3, true", status, len(first), more)
	}
	rest, more, _ := page(first[2].Time, "10")
	if len(rest) != 3 || more || rest[0].ID != first[2].ID {
		t.Fatalf("older page: got %d items (more %v), want the oldest row again and the 2 before it", len(rest), more)
	}
	for i := 1; i < len(rest); i++ {
		if rest[i].Time.After(rest[i-1].Time) {
			t.Fatalf("older page not newest first: %v after %v", rest[i].Time, rest[i-1].Time)
		}
	}
	if a := call(t, "GET", r.URL()+"/_sidehook/deliveries?before=yesterday", "", nil, nil); a.Status != http.StatusBadRequest {
		t.Errorf("bad before: got %d, want 400", a.Status)
	}
	if a := call(t, "GET", r.URL()+"/_sidehook/deliveries?before=2026-01-01T00:00:00Z&cursor=x", "", nil, nil); a.Status != http.StatusBadRequest {
		t.Errorf("unknown parameter: got %d, want 400", a.Status)
	}
}
