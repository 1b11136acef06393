package relay_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
)

// An endpoint's headers: often carry the receiver's credential (URLs may
// not, the relay says so), and README promises every header set there is
// redacted from what the API shows. GET /v1/endpoints showed them in the
// clear. They are shown redacted, and a document read back with its
// [redacted] values (as re-enabling after a 410 is done) keeps the secret.
func TestEndpointHeadersAreRedactedAndKept(t *testing.T) {
	rcv := newSink(t, nil, nil)
	r := startRelay(t, orgConfig(t,
		config.RawEndpoint{ID: "file", URL: rcv.URL() + "/file", Events: []string{"never"}, Headers: map[string]string{"x-api-key": "file-secret"}},
	), relay.Options{})
	base := r.URL() + "/v1/endpoints"

	created := call(t, "POST", base, apiKey, []byte(`{"id":"api","url":"`+rcv.URL()+`/api","events":["payment"],"headers":{"x-api-key":"api-secret","x-team":"billing"}}`), nil)
	if created.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", created.Status, created.Body)
	}
	for _, tc := range []struct {
		name string
		a    answer
	}{
		{"POST answer", created},
		{"GET one", call(t, "GET", base+"/api", apiKey, nil, nil)},
		{"GET file one", call(t, "GET", base+"/file", apiKey, nil, nil)},
		{"GET list", call(t, "GET", base, apiKey, nil, nil)},
	} {
		if s := string(tc.a.Body); strings.Contains(s, "secret") || strings.Contains(s, "billing") || !strings.Contains(s, "[redacted]") {
			t.Errorf("%s: %s, want header values [redacted]", tc.name, s)
		}
	}

	// Read, change a field, send back: the secret stays.
	var doc map[string]any
	call(t, "GET", base+"/api", apiKey, nil, nil).decode(t, &doc)
	doc["max_in_flight"] = 2
	body, _ := json.Marshal(doc)
	if a := call(t, "PUT", base+"/api", apiKey, body, nil); a.Status != http.StatusOK {
		t.Fatalf("PUT the GET document back: %d %s", a.Status, a.Body)
	}
	var fileDoc map[string]any
	call(t, "GET", base+"/file", apiKey, nil, nil).decode(t, &fileDoc)
	fileDoc["enabled"] = false
	body, _ = json.Marshal(fileDoc)
	if a := call(t, "PUT", base+"/file", apiKey, body, nil); a.Status != http.StatusOK {
		t.Fatalf("PUT the file endpoint's GET document back, disabled: %d %s", a.Status, a.Body)
	}
	ingest(t, r, `{"type":"payment"}`, nil)
	got := rcv.wait(t, 5*time.Second, func(c []captured) bool { return len(c) == 1 })
	if h := got[0].Header; h.Get("x-api-key") != "api-secret" || h.Get("x-team") != "billing" {
		t.Errorf("delivered with x-api-key %q, x-team %q; want the values set at creation", h.Get("x-api-key"), h.Get("x-team"))
	}

	// A redacted value with nothing to keep is refused, not sent as is.
	for _, tc := range []struct{ method, url, body string }{
		{"POST", base, `{"id":"new","url":"` + rcv.URL() + `","headers":{"x-api-key":"[redacted]"}}`},
		{"PUT", base + "/api", `{"url":"` + rcv.URL() + `","headers":{"x-other":"[redacted]"}}`},
	} {
		if a := call(t, tc.method, tc.url, apiKey, []byte(tc.body), nil); a.Status != http.StatusBadRequest || !strings.Contains(string(a.Body), "[redacted]") {
			t.Errorf("%s %s with a [redacted] value for a new header: %d %s, want 400 saying so", tc.method, tc.url, a.Status, a.Body)
		}
	}
}
