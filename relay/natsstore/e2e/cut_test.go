package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/relay/natsstore/natstest"
)

// TestCutShortAttemptsGoToOtherRelays: a relay stopped with an attempt
// still running past its grace releases it, and another relay on the
// store makes it at once. The warning says so: it said "attempted again
// at the next start", which on a shared store sends an operator waiting
// for a restart that nothing needs.
func TestCutShortAttemptsGoToOtherRelays(t *testing.T) {
	srv := natstest.Run(t, natstest.Options(-1, t.TempDir()))
	var slow atomic.Bool
	slow.Store(true)
	arrived := make(chan struct{}, 1)
	var delivered atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if slow.Load() {
			select {
			case arrived <- struct{}{}:
			default:
			}
			<-r.Context().Done() // answers once the relay gave up
			return
		}
		delivered.Add(1)
	}))
	t.Cleanup(hook.Close)
	endpoint := config.RawEndpoint{ID: "crm", URL: hook.URL + "/hook"}

	var logs bytes.Buffer
	a, err := relay.New(orgConfig(t, endpoint), relay.Options{Store: openStore(t, []string{srv.ClientURL()}, 1),
		Grace: 200 * time.Millisecond, Logger: zerolog.New(zerolog.SyncWriter(&logs)).Level(zerolog.InfoLevel)})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(context.Background()) })
	if code := post(a.URL(), "evt_cut", "payment"); code != http.StatusAccepted {
		t.Fatalf("ingest: %d, want 202", code)
	}
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("relay A's attempt did not arrive within 10s")
	}
	startRelay(t, orgConfig(t, endpoint), openStore(t, []string{srv.ClientURL()}, 1))
	slow.Store(false)
	a.Close(context.Background())

	var cut map[string]any
	for _, line := range bytes.Split(logs.Bytes(), []byte("\n")) {
		var l map[string]any
		if json.Unmarshal(line, &l) == nil && strings.Contains(l["message"].(string), "cut short") {
			cut = l
		}
	}
	if cut == nil || cut["level"] != "warn" || !strings.Contains(cut["message"].(string), "the other relays") {
		t.Errorf("got %v, want a warning saying the other relays attempt them again", cut)
	}
	// The store's AckWait is 30s: at once means the release, not a lapse.
	waitFor(t, 10*time.Second, "relay B to deliver what A cut short", func() bool { return delivered.Load() == 1 })
}
