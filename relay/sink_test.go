package relay_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidehook/sidehook/internal/auth"
)

// sink is a small in-test receiver: it verifies (when configured),
// records every request and answers what respond says.
type sink struct {
	srv      *httptest.Server
	verifier *auth.Verifier
	respond  func(r *http.Request, n int) int

	// wrap, when set, handles requests instead of serve (it may call serve).
	wrap atomic.Pointer[http.HandlerFunc]

	mu   sync.Mutex
	seen int
	reqs []captured
	ch   chan struct{}
}

type captured struct {
	Method, Path, Query string
	Header              http.Header
	Body                []byte
	Verdict             auth.Verdict
	Status              int
}

func newSink(tb testing.TB, vc *auth.VerifyConfig, respond func(r *http.Request, n int) int) *sink {
	tb.Helper()
	s := &sink{respond: respond, ch: make(chan struct{}, 1)}
	if vc != nil {
		v, err := auth.NewVerifier(*vc)
		if err != nil {
			tb.Fatal(err)
		}
		s.verifier = v
	}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := s.wrap.Load(); h != nil {
			(*h)(w, r)
			return
		}
		s.serve(w, r)
	}))
	tb.Cleanup(s.srv.Close)
	return s
}

func (s *sink) URL() string { return s.srv.URL }

func (s *sink) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c := captured{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body, Status: 200}
	if s.verifier != nil {
		c.Verdict = s.verifier.Verify(r.Context(), r, body)
		if c.Verdict.Status != auth.StatusValid {
			c.Status = http.StatusUnauthorized
		}
	}
	s.mu.Lock()
	n := s.seen
	s.seen++
	s.mu.Unlock()
	if c.Status == 200 && s.respond != nil {
		c.Status = s.respond(r, n)
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, c)
	s.mu.Unlock()
	select {
	case s.ch <- struct{}{}:
	default:
	}
	if c.Status == 0 {
		// 0 means: break the connection.
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
	}
	if r.Method == http.MethodGet && r.URL.Query().Has("fields") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(c.Status)
		io.WriteString(w, `{"fullname":"Jane Doe","arrangementamount":"50.00","currency":null}`)
		return
	}
	w.WriteHeader(c.Status)
	io.WriteString(w, `{"ok":true}`)
}

func (s *sink) requests() []captured {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]captured(nil), s.reqs...)
}

// wait returns once pred holds for the requests so far, or fails.
func (s *sink) wait(tb testing.TB, within time.Duration, pred func([]captured) bool) []captured {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		reqs := s.requests()
		if pred(reqs) {
			return reqs
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("sink: condition not met within %s (%d requests)", within, len(reqs))
		case <-s.ch:
		case <-t.C:
		}
	}
}

// ids counts 2xx-answered requests per webhook-id.
func delivered(reqs []captured) map[string]int {
	m := map[string]int{}
	for _, c := range reqs {
		if c.Status/100 == 2 {
			m[c.Header.Get("webhook-id")]++
		}
	}
	return m
}

// handle makes h answer from now on; nil restores the default.
func (s *sink) handle(h http.HandlerFunc) {
	if h == nil {
		s.wrap.Store(nil)
		return
	}
	s.wrap.Store(&h)
}
