package receiver_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/receiver/badgerstore"
	"github.com/sidehook/sidehook/receiver/memstore"
)

const (
	testSecret = "0123456789abcdef0123456789abcdef"
	testOrg    = "demo"
)

// openStore opens the durable store in dir, closed at cleanup (after the
// receivers started later, as cleanups run last first).
func openStore(tb testing.TB, dir string) *badgerstore.Store {
	tb.Helper()
	st, err := badgerstore.Open(badgerstore.Options{Dir: dir, Logger: zerolog.Nop()})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() {
		if err := st.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	return st
}

// mount serves a receiver's Handler from another server, never started:
// how an app embeds it. Both close at cleanup.
func mount(tb testing.TB) *httptest.Server {
	tb.Helper()
	srv, err := receiver.New(receiver.Config{Store: memstore.New()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Close(context.Background()) })
	hs := httptest.NewServer(srv.Handler())
	tb.Cleanup(hs.Close)
	return hs
}

// start runs a receiver for the test on a loopback port with a durable
// store in a temp dir (unless cfg has a store). Close runs at cleanup.
func start(tb testing.TB, cfg receiver.Config) *receiver.Server {
	tb.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Store == nil {
		cfg.Store = openStore(tb, tb.TempDir())
	}
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = 5 * time.Second
	}
	srv, err := receiver.New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	if err := srv.Start(context.Background()); err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() {
		if err := srv.Close(context.Background()); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return srv
}

// response is an answer read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		tb.Fatalf("answer %d %q: %v", r.status, r.body, err)
	}
}

// send makes one request; hdr values are set as given.
func send(tb testing.TB, method, url string, body []byte, hdr map[string]string) response {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read: %v", method, url, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// list returns the captures of the admin API for a query string.
func list(tb testing.TB, srv *receiver.Server, query string) (caps []receiver.Capture, next string) {
	tb.Helper()
	r := send(tb, "GET", srv.URL()+"/_sidehook/requests?"+query, nil, nil)
	if r.status != 200 {
		tb.Fatalf("list %q: got %d %s, want 200", query, r.status, r.body)
	}
	var out struct {
		Requests []receiver.Capture `json:"requests"`
		Next     string             `json:"next"`
	}
	r.json(tb, &out)
	return out.Requests, out.Next
}

// only returns the one capture the receiver holds.
func only(tb testing.TB, srv *receiver.Server) receiver.Capture {
	tb.Helper()
	caps, _ := list(tb, srv, "")
	if len(caps) != 1 {
		tb.Fatalf("got %d captures, want 1", len(caps))
	}
	return caps[0]
}

// rawGet sends "GET target HTTP/1.1" written by hand, so the request line
// carries target's bytes exactly (net/http's client would escape them),
// and returns the answer's status.
func rawGet(tb testing.TB, addr, target string) int {
	tb.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	// Only a safety net: the receiver answers at once.
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, "GET "+target+" HTTP/1.1\r\nHost: "+addr+"\r\nConnection: close\r\n\r\n"); err != nil {
		tb.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		tb.Fatalf("GET %q: %v", target, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
