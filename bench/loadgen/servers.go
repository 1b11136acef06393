package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// ListeningPrefix starts the line a server child prints on stdout once it
// accepts connections: "listening http://127.0.0.1:PORT".
const ListeningPrefix = "listening "

// Serve listens on addr, prints ListeningPrefix and the base URL to ready,
// and serves h until ctx ends, then shuts down (bounded by a second).
func Serve(ctx context.Context, addr string, h http.Handler, ready io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("loadgen: listen: %w", err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if _, err := fmt.Fprintf(ready, "%shttp://%s\n", ListeningPrefix, ln.Addr()); err != nil {
		srv.Close()
		return fmt.Errorf("loadgen: announce address: %w", err)
	}
	select {
	case err := <-errc:
		return fmt.Errorf("loadgen: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	return nil
}

// BareHandler is the baseline of the receiver benchmark: it reads the body
// and answers 200, the least any webhook receiver must do.
func BareHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	})
}

// Sink paths: everything else is a delivery.
const (
	SinkStatsPath    = "/_sink/stats"
	SinkArrivalsPath = "/_sink/arrivals"
	SinkResetPath    = "/_sink/reset"
)

// Sink is the endpoint of the relay benchmark: it answers every delivery
// 200 at once and records when each webhook-id first arrived, so the
// benchmark can count deliveries and measure ingest-to-arrival latency
// against its own send times (same machine, same clock).
type Sink struct {
	mu         sync.Mutex
	first      map[string]int64 // webhook-id → unix nanoseconds of first arrival
	total      int64
	duplicates int64
	noID       int64
	firstAt    int64
	lastAt     int64
}

// NewSink returns an empty Sink.
func NewSink() *Sink {
	return &Sink{first: make(map[string]int64)}
}

// SinkStats counts a Sink's deliveries. Times are unix nanoseconds, 0 when
// nothing arrived.
type SinkStats struct {
	Total      int64 `json:"total"`      // every delivery
	Unique     int64 `json:"unique"`     // distinct webhook-ids
	Duplicates int64 `json:"duplicates"` // repeats of a webhook-id
	NoID       int64 `json:"no_id"`      // deliveries without a webhook-id
	First      int64 `json:"first"`
	Last       int64 `json:"last"`
}

// Arrival is the first arrival of one webhook-id.
type Arrival struct {
	ID string `json:"id"`
	At int64  `json:"at"` // unix nanoseconds
}

// ServeHTTP records deliveries and serves the sink's own three paths.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case SinkStatsPath:
		if r.Method == http.MethodGet {
			writeJSON(w, s.Stats())
			return
		}
	case SinkArrivalsPath:
		if r.Method == http.MethodGet {
			writeJSON(w, s.Arrivals())
			return
		}
	case SinkResetPath:
		if r.Method == http.MethodPost {
			s.Reset()
			w.WriteHeader(http.StatusNoContent)
			return
		}
	default:
		io.Copy(io.Discard, r.Body)
		s.record(r.Header.Get("webhook-id"), time.Now().UnixNano())
		w.WriteHeader(http.StatusOK)
		return
	}
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
}

func (s *Sink) record(id string, now int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total++
	if s.firstAt == 0 {
		s.firstAt = now
	}
	s.lastAt = now
	if id == "" {
		s.noID++
		return
	}
	if _, seen := s.first[id]; seen {
		s.duplicates++
		return
	}
	s.first[id] = now
}

// Stats returns the counts so far.
func (s *Sink) Stats() SinkStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SinkStats{
		Total: s.total, Unique: int64(len(s.first)), Duplicates: s.duplicates,
		NoID: s.noID, First: s.firstAt, Last: s.lastAt,
	}
}

// Arrivals returns the first arrival of every webhook-id, in no order.
func (s *Sink) Arrivals() []Arrival {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Arrival, 0, len(s.first))
	for id, at := range s.first {
		out = append(out, Arrival{ID: id, At: at})
	}
	return out
}

// Reset forgets every delivery.
func (s *Sink) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.first = make(map[string]int64)
	s.total, s.duplicates, s.noID, s.firstAt, s.lastAt = 0, 0, 0, 0, 0
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("content-type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// SinkClient talks to a Sink running in another process.
type SinkClient struct {
	base   string
	client *http.Client
}

// NewSinkClient returns a client for the sink at base.
func NewSinkClient(base string) (*SinkClient, error) {
	base, err := checkBase(base)
	if err != nil {
		return nil, err
	}
	return &SinkClient{base: base, client: &http.Client{Timeout: time.Minute}}, nil
}

// Stats fetches the sink's counts.
func (c *SinkClient) Stats(ctx context.Context) (SinkStats, error) {
	var st SinkStats
	err := c.do(ctx, http.MethodGet, SinkStatsPath, &st)
	return st, err
}

// Arrivals fetches every first arrival.
func (c *SinkClient) Arrivals(ctx context.Context) ([]Arrival, error) {
	var a []Arrival
	err := c.do(ctx, http.MethodGet, SinkArrivalsPath, &a)
	return a, err
}

// Reset empties the sink.
func (c *SinkClient) Reset(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, SinkResetPath, nil)
}

// WaitUnique polls until the sink holds at least n distinct webhook-ids,
// or ctx ends; it returns the last stats either way.
func (c *SinkClient) WaitUnique(ctx context.Context, n int64) (SinkStats, error) {
	for {
		st, err := c.Stats(ctx)
		if err != nil || st.Unique >= n {
			return st, err
		}
		sleep(ctx, 20*time.Millisecond)
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
	}
}

func (c *SinkClient) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return fmt.Errorf("loadgen: sink %s: %w", path, err)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("loadgen: sink %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return fmt.Errorf("loadgen: sink %s: %d %s", path, resp.StatusCode, clip(b))
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("loadgen: sink %s: decode: %w", path, err)
	}
	return nil
}

// GetJSON fetches url and decodes its JSON answer into out; any status but
// 200 is an error. For the small admin APIs the benchmarks read.
func GetJSON(ctx context.Context, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("loadgen: get %s: %w", url, err)
	}
	client := &http.Client{Timeout: time.Minute}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("loadgen: get %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("loadgen: get %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("loadgen: get %s: %d %s", url, resp.StatusCode, clip(body))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("loadgen: get %s: decode: %w", url, err)
	}
	return nil
}
