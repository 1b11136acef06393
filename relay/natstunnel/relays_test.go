package natstunnel_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/internal/openapi/openapitest"
	"github.com/sidehook/sidehook/receiver/receivertest"
	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/relay/natsstore"
	"github.com/sidehook/sidehook/relay/natstunnel"
	"github.com/sidehook/sidehook/relay/tunnel"
)

const (
	e2eOrg    = "demo"
	e2eKey    = "e2e-api-key"
	e2eSecret = "0123456789abcdef0123456789abcdef"
)

// countingTunnels counts the POSTs a relay's tunnel server delivered
// with an answer: on a relay no client is connected to, each crossed NATS.
type countingTunnels struct {
	*natstunnel.Server
	delivered atomic.Int64
}

func (c *countingTunnels) Send(ctx context.Context, req *relay.OutboundRequest, keep int64) (*relay.Response, error) {
	resp, err := c.Server.Send(ctx, req, keep)
	if err == nil && req.Method == http.MethodPost {
		c.delivered.Add(1)
	}
	return resp, err
}

// sharedRelay is an in-process relay on the NATS store, serving tunnels
// as `sidehook relay --store nats://…` does.
type sharedRelay struct {
	*relay.Relay
	tunnels *countingTunnels
}

// startSharedRelay runs a relay with the organisation demo and two
// endpoints behind tunnel laptop: crm (every event, at /webhooks) and
// values (custom-value GETs, at /custom-values).
func startSharedRelay(tb testing.TB, ns *server.Server) *sharedRelay {
	tb.Helper()
	log := zerolog.New(zerolog.NewTestWriter(tb)).Level(zerolog.WarnLevel)
	f := config.File{
		Listen: "127.0.0.1:0",
		Retry:  &config.RawRetry{Schedule: []string{"100ms", "200ms", "300ms"}},
		Organisations: []config.RawOrg{{ID: e2eOrg, APIKeys: []string{e2eKey}, SecretKey: e2eSecret, Endpoints: []config.RawEndpoint{
			{ID: "crm", URL: "tunnel://" + testName + "/webhooks", Events: []string{"*"}, Timeout: "5s"},
			{ID: "values", URL: "tunnel://" + testName + "/custom-values", Events: []string{"custom_value_request"}},
		}}},
	}
	cfg, err := f.Validate(nil)
	if err != nil {
		tb.Fatalf("config: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := natsstore.Open(ctx, natsstore.Config{Servers: []string{ns.ClientURL()}, AckWait: 5 * time.Second, Logger: log})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { st.Close() }) // last, as the CLI does
	shared := natstunnel.New(tunnel.NewServer(tunnel.ServerOptions{Logger: log}), st.Conn(), st.Prefix(),
		natstunnel.Options{Logger: log, PresenceEvery: 200 * time.Millisecond})
	if err := shared.Start(ctx); err != nil {
		tb.Fatalf("start tunnels: %v", err)
	}
	ct := &countingTunnels{Server: shared}
	r, err := relay.New(cfg, relay.Options{Store: st, Tunnels: ct, Logger: log})
	if err != nil {
		tb.Fatalf("relay: %v", err)
	}
	if err := r.Start(ctx); err != nil {
		tb.Fatalf("start relay: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Close(ctx); err != nil {
			tb.Errorf("close relay: %v", err)
		}
		if err := shared.Close(ctx); err != nil {
			tb.Errorf("close tunnels: %v", err)
		}
	})
	return &sharedRelay{Relay: r, tunnels: ct}
}

// post sends one event with webhook-id id to the relay's POST /v1/events.
func (sr *sharedRelay) post(tb testing.TB, id string) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, sr.URL()+"/v1/events?type=payment", bytes.NewReader([]byte(`{"type":"payment","n":"`+id+`"}`)))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e2eKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("POST /v1/events: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		tb.Fatalf("POST /v1/events: got %d, want 202", resp.StatusCode)
	}
}

// TestTunnelOnRelayATakesRelayBsWork: two relays on one JetStream, the
// tunnel client on relay A, and relay B delivers to it, answers
// custom-value GETs through it, and lists it.
func TestTunnelOnRelayATakesRelayBsWork(t *testing.T) {
	ns := startNATS(t)
	a, b := startSharedRelay(t, ns), startSharedRelay(t, ns)
	app := receivertest.NewServer(t, receivertest.WithWebioSecret(e2eSecret, e2eOrg))
	c, err := tunnel.NewClient(tunnel.ClientConfig{RelayURL: a.URL(), APIKey: e2eKey, Name: testName, Forward: app.URL,
		Logger: zerolog.Nop(), BackoffMin: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "the client on relay A", func() bool { return len(a.tunnels.Tunnels(e2eOrg)) == 1 })

	t.Run("OneViewFromAnywhere", func(t *testing.T) {
		doc, err := os.ReadFile("../openapi.yaml")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []*sharedRelay{a, b} {
			x := openapitest.NewExchanges(t, doc, r.URL())
			for _, path := range []string{"/v1/tunnels", "/_sidehook/tunnels"} {
				var got struct {
					Tunnels []relay.TunnelInfo `json:"tunnels"`
				}
				waitFor(t, "the relay to list the client on "+path, func() bool {
					code, _, body := x.Do(t, http.MethodGet, path, http.Header{"Authorization": {"Bearer " + e2eKey}}, nil)
					return code == http.StatusOK && json.Unmarshal(body, &got) == nil && len(got.Tunnels) == 1
				})
				// Every relay names relay A as the one holding it.
				if ti := got.Tunnels[0]; ti.Name != testName || ti.Org != e2eOrg || ti.RemoteAddr == "" || ti.Since.IsZero() || ti.Relay != a.tunnels.ID() {
					t.Errorf("%s: got %+v, want relay A's client of %s, held by relay %q", path, ti, testName, a.tunnels.ID())
				}
			}
		}
	})

	t.Run("CustomValuesThroughRelayB", func(t *testing.T) {
		resp, err := http.Get(b.URL() + "/in/" + e2eOrg + "?customerUID=ACC-10023&channelId=447700900123&conversationId=1&fields=fullname")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var values map[string]any
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &values) != nil || values["fullname"] != "Jane Doe" {
			t.Fatalf("custom-value GET on relay B: got %d %s, want the app's values", resp.StatusCode, body)
		}
		caps := app.Requests(receivertest.Filter{Path: "/custom-values"})
		if len(caps) != 1 || caps[0].Method != http.MethodGet || caps[0].Verdict.Status != receivertest.VerdictValid {
			t.Fatalf("the app's custom-value requests: got %+v, want one valid GET", caps)
		}
	})

	t.Run("DeliveriesAttemptedByRelayB", func(t *testing.T) {
		// Events posted to relay B wake its dispatcher first; both relays
		// share the work, so post until relay B has delivered one.
		var ids []string
		for b.tunnels.delivered.Load() == 0 {
			if len(ids) == 50 {
				t.Fatalf("50 events posted to relay B and it delivered none of them (relay A delivered %d)", a.tunnels.delivered.Load())
			}
			id := fmt.Sprintf("evt-%02d", len(ids))
			b.post(t, id)
			ids = append(ids, id)
			waitFor(t, "event "+id+" to arrive", func() bool {
				return len(app.Requests(receivertest.Filter{WebhookID: id, Path: "/webhooks"})) > 0
			})
		}
		for _, id := range ids {
			caps := app.Requests(receivertest.Filter{WebhookID: id, Path: "/webhooks"})
			if len(caps) != 1 || caps[0].Verdict.Status != receivertest.VerdictValid {
				t.Errorf("event %s: the app got %d requests (verdict %+v), want one, valid", id, len(caps), caps)
			}
		}
		t.Logf("%d events: relay B delivered %d through relay A's client, relay A %d", len(ids), b.tunnels.delivered.Load(), a.tunnels.delivered.Load())
	})
}
