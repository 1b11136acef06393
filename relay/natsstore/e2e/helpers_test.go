package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/relay/natsstore"
	"github.com/sidehook/sidehook/relay/natsstore/natstest"
)

const (
	apiKey    = "e2e-api-key"
	secretKey = "0123456789abcdef0123456789abcdef"
)

// startCluster runs a three-node JetStream cluster on loopback ports and
// returns its nodes and their client URLs.
func startCluster(t testing.TB) ([]*server.Server, []string) {
	t.Helper()
	nodes := natstest.Cluster(t)
	urls := make([]string, len(nodes))
	for i, s := range nodes {
		urls[i] = s.ClientURL()
	}
	return nodes, urls
}

// waitFor polls cond until it holds or d has passed.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openStore opens a natsstore on servers, closed when the test ends.
func openStore(t testing.TB, servers []string, replicas int) *natsstore.Store {
	t.Helper()
	return openStoreConfig(t, natsstore.Config{Servers: servers, Replicas: replicas})
}

// openStoreConfig is openStore with the whole configuration.
func openStoreConfig(t testing.TB, cfg natsstore.Config) *natsstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	st, err := natsstore.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// orgConfig is one organisation with the given endpoints, on a free port.
func orgConfig(t testing.TB, endpoints ...config.RawEndpoint) *config.Config {
	t.Helper()
	f := config.File{
		Listen:        "127.0.0.1:0",
		Retry:         &config.RawRetry{Schedule: []string{"100ms", "200ms", "300ms"}},
		Organisations: []config.RawOrg{{ID: "demo", APIKeys: []string{apiKey}, SecretKey: secretKey, Endpoints: endpoints}},
	}
	cfg, err := f.Validate(nil)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// startRelay runs an in-process relay on st until the test ends and
// returns its URL.
func startRelay(t testing.TB, cfg *config.Config, st relay.Store) string {
	t.Helper()
	return startRelayOf(t, cfg, st).URL()
}

// startRelayOf is startRelay for a test that needs the relay itself.
func startRelayOf(t testing.TB, cfg *config.Config, st relay.Store) *relay.Relay {
	t.Helper()
	r, err := relay.New(cfg, relay.Options{Store: st, Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)})
	if err != nil {
		t.Fatalf("relay: %v", err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatalf("start relay: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r.Close(ctx)
	})
	return r
}

// sink is the endpoint: it answers 200 and records each request's
// webhook-id, in arrival order, by path.
type sink struct {
	*httptest.Server
	mu      sync.Mutex
	arrived map[string][]string // path → webhook-ids
}

func newSink(t testing.TB) *sink {
	t.Helper()
	s := &sink{arrived: map[string][]string{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		s.mu.Lock()
		s.arrived[r.URL.Path] = append(s.arrived[r.URL.Path], r.Header.Get("webhook-id"))
		s.mu.Unlock()
	}))
	t.Cleanup(s.Close)
	return s
}

// ids are the webhook-ids that arrived at path, in order.
func (s *sink) ids(path string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.arrived[path]...)
}

// distinct counts the distinct ids that arrived at path and the extra
// arrivals (duplicates).
func (s *sink) distinct(path string) (n, dups int) {
	seen := map[string]bool{}
	for _, id := range s.ids(path) {
		if seen[id] {
			dups++
			continue
		}
		seen[id] = true
	}
	return len(seen), dups
}

// unavailable is an endpoint that answers every request 503, so each
// delivery to it waits for its retry.
func unavailable(t testing.TB) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(s.Close)
	return s
}

var client = &http.Client{Timeout: 20 * time.Second}

// post sends an event with webhook-id id and event type typ to a relay's
// POST /v1/events and returns the status (0 when the relay did not answer).
func post(base, id, typ string) int {
	req, err := http.NewRequest(http.MethodPost, base+"/v1/events", bytes.NewReader([]byte(`{"n":"`+id+`"}`)))
	if err != nil {
		return 0
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("sidehook-event", typ)
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// status is the status of a GET of base+path (0 when it did not answer).
func status(base, path string) int {
	resp, err := client.Get(base + path)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
