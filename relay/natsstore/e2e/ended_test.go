package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/natsstore/natstest"
	"github.com/sidehook/sidehook/web"
	"github.com/sidehook/sidehook/web/webtest"
)

// TestDeletedEndpointOnDashboards: an endpoint deleted through one relay
// of a shared JetStream ends its waiting deliveries dead, and that relay's
// live dashboard shows them so, with the reason, as it shows its own
// attempts; another relay's dashboard shows them so from its snapshot
// (and live: TestFeedAcrossRelays). Its dashboard kept showing them
// failed, with a retry to come.
func TestDeletedEndpointOnDashboards(t *testing.T) {
	srv := natstest.Run(t, natstest.Options(-1, t.TempDir()))
	servers := []string{srv.ClientURL()}
	down := unavailable(t)
	a := startRelay(t, orgConfig(t), openStore(t, servers, 1))
	b := startRelay(t, orgConfig(t), openStore(t, servers, 1))
	doc := `{"id":"flaky","url":"` + down.URL + `","events":["*"],"retry":{"schedule":["1h"]}}`
	if code := apiCall(t, a, http.MethodPost, "/v1/endpoints", doc, nil); code != http.StatusCreated {
		t.Fatalf("create endpoint: got %d, want 201", code)
	}
	// B hears of the endpoint through the shared control bucket.
	waitFor(t, 10*time.Second, "relay B to load the endpoint", func() bool {
		return apiCall(t, b, http.MethodGet, "/v1/endpoints/flaky", "", nil) == http.StatusOK
	})
	for _, id := range []string{"evt_ended_1", "evt_ended_2"} {
		if code := post(a, id, "payment"); code != http.StatusAccepted {
			t.Fatalf("post %s: got %d, want 202", id, code)
		}
	}
	var failed []string
	waitFor(t, 10*time.Second, "both deliveries to fail, waiting an hour", func() bool {
		var page struct{ Deliveries []struct{ ID string } }
		apiCall(t, a, http.MethodGet, "/v1/deliveries?endpoint=flaky&status=failed", "", &page)
		failed = failed[:0]
		for _, d := range page.Deliveries {
			failed = append(failed, d.ID)
		}
		return len(failed) == 2
	})
	live := webtest.DialWS(t, a, nil)
	if m := webtest.ReadWS(t, live); m.Type != web.MsgSnapshot {
		t.Fatalf("relay A's dashboard: got %+v, want a snapshot", m)
	}

	if code := apiCall(t, a, http.MethodDelete, "/v1/endpoints/flaky", "", nil); code != http.StatusNoContent {
		t.Fatalf("delete endpoint: got %d, want 204", code)
	}
	shown := map[string]bool{}
	for len(shown) < len(failed) {
		m := webtest.ReadWS(t, live)
		if m.Type == web.MsgItem && endedItem(t, *m.Item) {
			shown[m.Item.ID] = true
		}
	}
	snap := webtest.ReadWS(t, webtest.DialWS(t, b, nil))
	if len(snap.Items) != len(failed) {
		t.Fatalf("relay B's snapshot: got %d items, want %d", len(snap.Items), len(failed))
	}
	for _, it := range snap.Items {
		if !endedItem(t, it) {
			t.Errorf("relay B's snapshot: got %s %s, want dead with the reason", it.ID, it.Status)
		}
	}
}

// endedItem reports whether a dashboard row shows a delivery ended dead
// because its endpoint flaky was deleted.
func endedItem(t testing.TB, it web.Item) bool {
	t.Helper()
	var d struct{ Status, Reason string }
	if err := json.Unmarshal(it.Data, &d); err != nil {
		t.Fatalf("item %s: %v", it.ID, err)
	}
	return it.Status == relay.StatusDead && d.Status == relay.StatusDead && strings.Contains(d.Reason, "flaky was deleted")
}

// apiCall calls a relay's management API with the key, decodes a JSON
// answer into out when given, and returns the status.
func apiCall(t testing.TB, base, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %d: %v", method, path, resp.StatusCode, err)
		}
	}
	return resp.StatusCode
}
