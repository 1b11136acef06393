package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/badgerstore"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/relay/memstore"
)

const (
	apiKey    = "test-api-key"
	secretKey = "0123456789abcdef0123456789abcdef"
	whsec     = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

// orgConfig is a one-organisation configuration on a free loopback port
// with a fast retry schedule and a temporary data directory.
func orgConfig(tb testing.TB, endpoints ...config.RawEndpoint) *config.Config {
	tb.Helper()
	f := config.File{
		Listen:        "127.0.0.1:0",
		Retry:         &config.RawRetry{Schedule: []string{"10ms", "20ms", "30ms"}},
		Organisations: []config.RawOrg{{ID: "demo", APIKeys: []string{apiKey}, SecretKey: secretKey, StandardSecret: config.Secrets{whsec}, Endpoints: endpoints}},
	}
	cfg, err := f.Validate(nil)
	if err != nil {
		tb.Fatalf("config: %v", err)
	}
	// On disk, as in production (and because the store in memory refuses
	// values above its value threshold).
	cfg.Data = tb.TempDir()
	return cfg
}

// stores holds the store of each test's data directory, so that a relay
// started again on the same configuration finds what the one before it
// stored, as it would on disk.
var stores sync.Map // cfg.Data → relay.Store

// storeFor returns the store of cfg's data directory, opening it on first
// use; it is closed when the test ends, after the relays on it.
func storeFor(tb testing.TB, cfg *config.Config) relay.Store {
	tb.Helper()
	if cfg.Data == "" {
		tb.Fatal("storeFor: the configuration has no data directory to name its store")
	}
	if st, ok := stores.Load(cfg.Data); ok {
		return st.(relay.Store)
	}
	st := memstore.New()
	stores.Store(cfg.Data, st)
	tb.Cleanup(func() {
		stores.Delete(cfg.Data)
		if err := st.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	return st
}

// diskStore opens a Badger store in cfg's data directory (with its
// free-space floor) as the store of that directory, for the tests that
// need a disk; it is closed when the test ends, after the relays on it.
func diskStore(tb testing.TB, cfg *config.Config) relay.Store {
	tb.Helper()
	st, err := badgerstore.Open(context.Background(), badgerstore.Options{Dir: filepath.Join(cfg.Data, "db"), Reserve: cfg.Limits.MinFreeDisk})
	if err != nil {
		tb.Fatalf("open badger store: %v", err)
	}
	if _, loaded := stores.LoadOrStore(cfg.Data, relay.Store(st)); loaded {
		tb.Fatalf("diskStore: %s has a store already", cfg.Data)
	}
	tb.Cleanup(func() {
		stores.Delete(cfg.Data)
		if err := st.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	return st
}

// startRelay starts a relay closed by t.Cleanup, on the store of cfg's
// data directory unless opts names one.
func startRelay(tb testing.TB, cfg *config.Config, opts relay.Options) *relay.Relay {
	tb.Helper()
	if testing.Verbose() {
		opts.Logger = zerolog.New(zerolog.NewTestWriter(tb)).Level(zerolog.InfoLevel)
	}
	return runRelay(tb, cfg, opts)
}

// runRelay is startRelay keeping opts.Logger: for a test that reads the
// log.
func runRelay(tb testing.TB, cfg *config.Config, opts relay.Options) *relay.Relay {
	tb.Helper()
	if opts.Store == nil {
		opts.Store = storeFor(tb, cfg)
	}
	if opts.Grace == 0 {
		opts.Grace = 2 * time.Second
	}
	r, err := relay.New(cfg, opts)
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

type answer struct {
	Status int
	Body   []byte
	Header http.Header
}

func (a answer) decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(a.Body, v); err != nil {
		tb.Fatalf("decode %s: %v", a.Body, err)
	}
}

// call sends a request with the API key (key "" sends none).
func call(tb testing.TB, method, url, key string, body []byte, header map[string]string) answer {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{Status: resp.StatusCode, Body: b, Header: resp.Header}
}

type ingestAnswer struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Deliveries []struct {
		ID       string `json:"id"`
		Endpoint string `json:"endpoint"`
	} `json:"deliveries"`
}

type deliveryView struct {
	ID            string     `json:"id"`
	EventID       string     `json:"event_id"`
	Endpoint      string     `json:"endpoint"`
	Status        string     `json:"status"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	Attempts      []struct {
		N        int    `json:"n"`
		Status   int    `json:"status"`
		Error    string `json:"error"`
		Response string `json:"response"`
	} `json:"attempts"`
}

// waitDelivery waits until a delivery reaches status, or fails after within.
func waitDelivery(tb testing.TB, r *relay.Relay, id, status string, within time.Duration) deliveryView {
	tb.Helper()
	var d deliveryView
	eventually(tb, within, func() error {
		a := call(tb, "GET", r.URL()+"/v1/deliveries/"+id, apiKey, nil, nil)
		if a.Status != 200 {
			tb.Fatalf("get delivery: %d %s, want 200", a.Status, a.Body)
		}
		d = deliveryView{}
		a.decode(tb, &d)
		if d.Status != status {
			return fmt.Errorf("delivery %s: got status %q, want %q (%+v)", id, d.Status, status, d)
		}
		return nil
	})
	return d
}

func ingest(tb testing.TB, r *relay.Relay, body string, header map[string]string) ingestAnswer {
	tb.Helper()
	a := call(tb, "POST", r.URL()+"/v1/events", apiKey, []byte(body), header)
	if a.Status != http.StatusAccepted {
		tb.Fatalf("ingest: got %d %s, want 202", a.Status, a.Body)
	}
	var ans ingestAnswer
	a.decode(tb, &ans)
	return ans
}
