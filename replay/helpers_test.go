package replay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/receiver/receivertest"
	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/relay/memstore"
)

const (
	apiKey = "replay-test-key"
	whsec  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

// startRelay starts a one-organisation relay on a loopback port with its
// data in a temp dir, delivering everything to endpoints, closed by
// tb.Cleanup.
func startRelay(tb testing.TB, endpoints ...string) *relay.Relay {
	tb.Helper()
	cfg, err := config.FromOneOrg(config.OneOrg{
		Listen:         "127.0.0.1:0",
		Data:           tb.TempDir(),
		APIKeys:        []string{apiKey},
		SecretKey:      secret,
		StandardSecret: whsec,
		Endpoints:      endpoints,
		Schedule:       []string{"10ms", "20ms"},
	})
	if err != nil {
		tb.Fatalf("relay config: %v", err)
	}
	st := memstore.New()
	tb.Cleanup(func() { st.Close() })
	r, err := relay.New(cfg, relay.Options{Store: st, Grace: 2 * time.Second, Version: "test"})
	if err != nil {
		tb.Fatalf("new relay: %v", err)
	}
	if err := r.Start(context.Background()); err != nil {
		tb.Fatalf("start relay: %v", err)
	}
	tb.Cleanup(func() {
		if err := r.Close(context.Background()); err != nil {
			tb.Errorf("close relay: %v", err)
		}
	})
	return r
}

type ingested struct {
	ID         string `json:"id"`
	Deliveries []struct {
		ID       string `json:"id"`
		Endpoint string `json:"endpoint"`
	} `json:"deliveries"`
}

// ingest posts an event to the relay.
func ingest(tb testing.TB, r *relay.Relay, typ, body string) ingested {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, r.URL()+"/v1/events", bytes.NewReader([]byte(body)))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("sidehook-event", typ)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		tb.Fatalf("ingest: got %d %s, want 202", resp.StatusCode, b)
	}
	var ans ingested
	if err := json.Unmarshal(b, &ans); err != nil {
		tb.Fatal(err)
	}
	return ans
}

// waitCaptures waits for n captures matching f on rcv.
func waitCaptures(tb testing.TB, rcv *receivertest.Server, f receivertest.Filter, n int) []receiver.Capture {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	caps, err := rcv.Wait(ctx, f, n)
	if err != nil {
		tb.Fatal(err)
	}
	return caps
}

// post sends body to url with headers, as a producer would.
func post(tb testing.TB, url, body string, header map[string]string) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader([]byte(body)))
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// waitDelivered polls the relay until delivery id is delivered: the
// receiver has the request a moment before the relay records the answer.
func waitDelivered(tb testing.TB, r *relay.Relay, id string) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, r.URL()+"/v1/deliveries/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+apiKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			tb.Fatal(err)
		}
		var d struct{ Status string }
		err = json.NewDecoder(resp.Body).Decode(&d)
		resp.Body.Close()
		if err != nil {
			tb.Fatal(err)
		}
		if d.Status == "delivered" {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("delivery %s: status %q, want delivered", id, d.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
