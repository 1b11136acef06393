package loadgen_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidehook/sidehook/bench/loadgen"
)

// newServer starts a loopback test server answering with status(n) for
// the n-th request (from 1) and counting the requests and connections.
func newServer(tb testing.TB, status func(n int64) int) (srv *httptest.Server, requests, conns *atomic.Int64) {
	tb.Helper()
	requests, conns = new(atomic.Int64), new(atomic.Int64)
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(status(requests.Add(1)))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	tb.Cleanup(srv.Close)
	return srv, requests, conns
}

func ok(int64) int { return http.StatusOK }

func webhooks(tb testing.TB, n int) []loadgen.Request {
	tb.Helper()
	reqs, err := loadgen.Precompute(context.Background(), n, 2, func(i int) (loadgen.Request, error) {
		return loadgen.DeliveryRequest("/webhooks", int64(i), 256, nil, time.Now())
	})
	if err != nil {
		tb.Fatal(err)
	}
	return reqs
}

func TestClosedLoopMaxRequests(t *testing.T) {
	srv, requests, conns := newServer(t, ok)
	pool := loadgen.NewPool(webhooks(t, 200), nil)
	res, err := loadgen.ClosedLoop{Workers: 4, Duration: time.Minute, MaxRequests: 150}.Run(context.Background(), srv.URL, pool)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 150 || res.OK != 150 || res.Non2xx != 0 || res.Errors != 0 {
		t.Errorf("got %+v, want 150 requests, all 2xx", res)
	}
	if got := requests.Load(); got != 150 {
		t.Errorf("server saw %d requests, want 150", got)
	}
	if got := conns.Load(); got > 4 {
		t.Errorf("server saw %d connections, want at most 4 (keep-alive)", got)
	}
	if res.Latency.Count != 150 || res.Latency.Max <= 0 || res.Latency.P50 > res.Latency.P99 {
		t.Errorf("latency got %+v, want 150 ordered samples", res.Latency)
	}
	if res.Exhausted {
		t.Error("exhausted got true, want false")
	}
}

func TestClosedLoopCountsStatuses(t *testing.T) {
	srv, _, _ := newServer(t, func(n int64) int {
		if n%4 == 0 {
			return http.StatusServiceUnavailable
		}
		return http.StatusAccepted
	})
	src := loadgen.SourceFunc(func() (loadgen.Request, error) {
		return loadgen.Request{Path: "/"}, nil
	})
	res, err := loadgen.ClosedLoop{Workers: 1, MaxRequests: 40}.Run(context.Background(), srv.URL, src)
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 30 || res.Non2xx != 10 {
		t.Errorf("got %d 2xx and %d non-2xx, want 30 and 10", res.OK, res.Non2xx)
	}
	if res.FirstNon2xx == "" || res.FirstNon2xx[:3] != "503" {
		t.Errorf("first non-2xx got %q, want it to start with 503", res.FirstNon2xx)
	}
}

func TestClosedLoopStopsAtDuration(t *testing.T) {
	srv, requests, _ := newServer(t, ok)
	src := loadgen.SourceFunc(func() (loadgen.Request, error) { return loadgen.Request{Path: "/"}, nil })
	res, err := loadgen.ClosedLoop{Workers: 2, Duration: 50 * time.Millisecond}.Run(context.Background(), srv.URL, src)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Requests != requests.Load() {
		t.Errorf("client counted %d, server %d: want equal and > 0", res.Requests, requests.Load())
	}
	if res.RPS() <= 0 || res.OKPerSecond() != res.RPS() {
		t.Errorf("rps got %v and %v, want equal and > 0", res.RPS(), res.OKPerSecond())
	}
}

func TestClosedLoopExhausted(t *testing.T) {
	srv, requests, _ := newServer(t, ok)
	pool := loadgen.NewPool(webhooks(t, 25), nil)
	res, err := loadgen.ClosedLoop{Workers: 3, Duration: time.Minute}.Run(context.Background(), srv.URL, pool)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Exhausted || res.OK != 25 || requests.Load() != 25 {
		t.Errorf("got exhausted=%v ok=%d server=%d, want true, 25, 25", res.Exhausted, res.OK, requests.Load())
	}
}

func TestPoolFallbackAndRewind(t *testing.T) {
	var built atomic.Int64
	pool := loadgen.NewPool(webhooks(t, 2), func() (loadgen.Request, error) {
		built.Add(1)
		return loadgen.Request{ID: "generated"}, nil
	})
	var ids []string
	for range 4 {
		r, err := pool.Next()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	if ids[0] == "generated" || ids[1] == "generated" || ids[2] != "generated" || ids[3] != "generated" {
		t.Errorf("ids got %v, want two precomputed then two generated", ids)
	}
	if pool.Generated() != 2 || built.Load() != 2 || pool.Len() != 2 {
		t.Errorf("generated got %d (built %d, len %d), want 2, 2, 2", pool.Generated(), built.Load(), pool.Len())
	}
	pool.Rewind()
	r, _ := pool.Next()
	if r.ID != ids[0] || pool.Generated() != 0 {
		t.Errorf("after rewind got %q and %d generated, want %q and 0", r.ID, pool.Generated(), ids[0])
	}
}

func TestClosedLoopConnectionErrors(t *testing.T) {
	srv, _, _ := newServer(t, ok)
	url := srv.URL
	srv.Close()
	src := loadgen.SourceFunc(func() (loadgen.Request, error) { return loadgen.Request{Path: "/"}, nil })
	res, err := loadgen.ClosedLoop{Workers: 2, Duration: 30 * time.Millisecond}.Run(context.Background(), url, src)
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors == 0 || res.FirstError == "" || res.Requests != 0 {
		t.Errorf("got %+v, want errors and no responses", res)
	}
}

func TestClosedLoopSourceError(t *testing.T) {
	srv, _, _ := newServer(t, ok)
	src := loadgen.SourceFunc(func() (loadgen.Request, error) { return loadgen.Request{}, errors.New("boom") })
	res, err := loadgen.ClosedLoop{Workers: 1, Duration: time.Minute}.Run(context.Background(), srv.URL, src)
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 1 || res.FirstError != "build request: boom" {
		t.Errorf("got errors=%d first=%q, want 1 and the source's error", res.Errors, res.FirstError)
	}
}

func TestClosedLoopCancel(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { once.Do(func() { close(release) }); srv.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	src := loadgen.SourceFunc(func() (loadgen.Request, error) { return loadgen.Request{Path: "/"}, nil })
	_, err := loadgen.ClosedLoop{Workers: 2, Duration: time.Minute}.Run(ctx, srv.URL, src)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

func TestBadBaseURL(t *testing.T) {
	src := loadgen.SourceFunc(func() (loadgen.Request, error) { return loadgen.Request{}, nil })
	for _, base := range []string{"", "127.0.0.1:80", "ftp://x", "http://", "http://[::1"} {
		if _, err := (loadgen.ClosedLoop{}).Run(context.Background(), base, src); err == nil {
			t.Errorf("closed loop, base %q: got nil error, want one", base)
		}
		if _, err := (loadgen.Paced{Rate: 1}).Run(context.Background(), base, src); err == nil {
			t.Errorf("paced, base %q: got nil error, want one", base)
		}
	}
}

func TestPrecompute(t *testing.T) {
	reqs, err := loadgen.Precompute(context.Background(), 10, 3, func(i int) (loadgen.Request, error) {
		return loadgen.Request{ID: fmt.Sprint(i)}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range reqs {
		if r.ID != fmt.Sprint(i) {
			t.Errorf("request %d got id %q, want %d", i, r.ID, i)
		}
	}
	_, err = loadgen.Precompute(context.Background(), 10, 3, func(i int) (loadgen.Request, error) {
		if i == 7 {
			return loadgen.Request{}, errors.New("no")
		}
		return loadgen.Request{}, nil
	})
	if err == nil {
		t.Error("got nil error from a failing builder, want one")
	}
	if _, err := loadgen.Precompute(context.Background(), -1, 1, nil); err == nil {
		t.Error("got nil error for a negative count, want one")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = loadgen.Precompute(ctx, 5000, 2, func(i int) (loadgen.Request, error) { return loadgen.Request{}, nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v, want context.Canceled", err)
	}
}
