package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/relay/natsstore/natstest"
)

// TestRemovedFromOneFile: a relay started on a shared JetStream with a
// file that lacks an endpoint another relay's file has (an older or a newer
// file, mid-deploy) leaves that endpoint's waiting deliveries alone. A relay
// on a store of its own ends them at start, as removed from its file; here
// it would end deliveries another relay still owes.
func TestRemovedFromOneFile(t *testing.T) {
	srv := natstest.Run(t, natstest.Options(-1, t.TempDir()))
	servers := []string{srv.ClientURL()}
	down := unavailable(t)
	crm := config.RawEndpoint{ID: "crm", URL: down.URL + "/crm", Events: []string{"payment"},
		Retry: &config.RawRetry{Schedule: []string{"1h"}}}
	a := startRelay(t, orgConfig(t, crm), openStore(t, servers, 1))
	if code := post(a, "evt_removed_1", "payment"); code != http.StatusAccepted {
		t.Fatalf("post: got %d, want 202", code)
	}
	delivery := func() (status string, next *time.Time) {
		req, _ := http.NewRequest(http.MethodGet, a+"/v1/deliveries?endpoint=crm", nil)
		req.Header.Set("Authorization", "Bearer "+apiKey)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var page struct {
			Deliveries []struct {
				Status        string     `json:"status"`
				NextAttemptAt *time.Time `json:"next_attempt_at"`
			} `json:"deliveries"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || len(page.Deliveries) != 1 {
			t.Fatalf("list deliveries: %v, %d deliveries, want 1", err, len(page.Deliveries))
		}
		return page.Deliveries[0].Status, page.Deliveries[0].NextAttemptAt
	}
	waitFor(t, 10*time.Second, "the first attempt to fail", func() bool { s, _ := delivery(); return s == relay.StatusFailed })

	// B's file has no crm. Closed, it has finished whatever its start
	// began in the background.
	b, err := relay.New(orgConfig(t), relay.Options{Store: openStore(t, servers, 1), Logger: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if s, next := delivery(); s != relay.StatusFailed || next == nil {
		t.Errorf("after a relay without crm started: got %s (next attempt %v), want still failed with a next attempt", s, next)
	}
}
