// Package receiver is sidehook's mock receiver (SPEC §5): it stands in for
// the customer's system in tests. It verifies each request's tokens,
// captures every request durably, answers custom-value GETs from fixtures,
// plays scripted responses and faults, and offers an admin API under
// /_sidehook/ to list, wait for, export and replay captures.
//
// A Server is made with New (no I/O), started with Start (opens the store,
// listens, serves) and stopped with Close (drains in-flight requests, then
// closes the store).
package receiver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/fixtures"
	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/internal/freshconn"
	"github.com/sidehook/sidehook/internal/store"
	"github.com/sidehook/sidehook/web"
)

// Defaults of Config's zero values.
const (
	DefaultListen        = "127.0.0.1:8081"
	DefaultMaxBody       = 1 << 20
	DefaultShutdownGrace = 10 * time.Second
	// DefaultWaitTimeout and MaxWaitTimeout bound GET /_sidehook/requests/wait.
	DefaultWaitTimeout = 5 * time.Second
	MaxWaitTimeout     = 60 * time.Second
	// DefaultDedupeCache is how many webhook-ids the duplicate detection
	// keeps in memory; older ones are looked up in the store.
	DefaultDedupeCache = 100_000
)

// AdminPrefix is the path prefix of the admin API; requests under it are
// never captured.
const AdminPrefix = "/_sidehook/"

// ErrAdminTokenRequired is returned by New when the receiver would listen
// beyond loopback without an admin token.
var ErrAdminTokenRequired = errors.New("receiver: an admin token is required when listening beyond loopback")

// Config configures a Server. Secrets and keys are already parsed: flags
// and files are the CLI's business.
type Config struct {
	// Listen is the address to listen on (DefaultListen when empty);
	// "127.0.0.1:0" picks a free port.
	Listen string
	// DataDir holds the captures; required unless InMemory.
	DataDir  string
	InMemory bool
	// MaxBody is the largest body captured (DefaultMaxBody when 0); a
	// larger one is answered 413 and captured without its body.
	MaxBody int64
	// AdminToken guards /_sidehook/ (except healthz) as a Bearer token.
	// Required when Listen is not a loopback address; checked whenever set.
	AdminToken string
	// Verify says which schemes are checked; none configured means every
	// request is accepted and captured as unverified.
	Verify auth.VerifyConfig
	// Values answers custom-value GETs (the embedded demo values when nil).
	Values *fixtures.Values
	// Rules are the scripted responses a reset returns to.
	Rules []Rule
	// Logger gets the ready line and errors; captures are logged at debug.
	Logger zerolog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Version is sent in the user-agent of replays.
	Version string
	// ShutdownGrace bounds how long Close waits for in-flight requests
	// (DefaultShutdownGrace when 0).
	ShutdownGrace time.Duration
	// DedupeCache is how many webhook-ids are kept in memory for
	// duplicate_of (DefaultDedupeCache when 0).
	DedupeCache int
}

// Server is a mock receiver.
type Server struct {
	cfg      Config
	log      zerolog.Logger
	now      func() time.Time
	verifier *auth.Verifier
	rules    *ruleSet
	values   *fixtures.Values
	bc       *Broadcaster
	metrics  *metrics
	// hub feeds the dashboard's websockets; feedDone is closed when the
	// goroutine feeding it from bc has ended.
	hub      *web.Hub
	feedDone chan struct{}
	handler  http.Handler
	dedupe   *dedupe
	fresh    freshconn.Tracker
	// indexStop ends the load of the webhook-id filter (dedupe.load) and
	// indexDone is closed when it has ended, before the store closes.
	indexStop context.CancelFunc
	indexDone chan struct{}

	st atomic.Pointer[store.Store]

	// stopping is closed when Close begins: held connections (the timeout
	// fault) and waiters let go. kill is closed when the grace is over:
	// delays still running give up.
	stopping chan struct{}
	kill     chan struct{}
	// holds tracks handlers that outlive http.Server's bookkeeping
	// (hijacked connections).
	holds  sync.WaitGroup
	holdMu sync.Mutex

	mu        sync.Mutex
	started   bool
	ln        net.Listener
	srv       *http.Server
	serveDone chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// New checks cfg and builds a Server; it does no I/O.
func New(cfg Config) (*Server, error) {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxBody < 0 {
		return nil, fmt.Errorf("receiver: negative max body %d", cfg.MaxBody)
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = DefaultShutdownGrace
	}
	if cfg.DedupeCache <= 0 {
		cfg.DedupeCache = DefaultDedupeCache
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Verify.Now == nil {
		cfg.Verify.Now = cfg.Now
	}
	if !cfg.InMemory && cfg.DataDir == "" {
		return nil, errors.New("receiver: a data directory is required unless in memory")
	}
	if cfg.AdminToken == "" && needsAdminToken(cfg.Listen) {
		return nil, fmt.Errorf("%w (listen %s)", ErrAdminTokenRequired, cfg.Listen)
	}
	v, err := auth.NewVerifier(cfg.Verify)
	if err != nil {
		return nil, fmt.Errorf("receiver: %w", err)
	}
	rules, err := newRuleSet(cfg.Rules, cfg.Now)
	if err != nil {
		return nil, fmt.Errorf("receiver: %w", err)
	}
	values := cfg.Values
	if values == nil {
		values = fixtures.Default().Values()
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger.With().Str("component", "receiver").Logger(),
		now:      cfg.Now,
		verifier: v,
		rules:    rules,
		values:   values,
		bc:       NewBroadcaster(),
		stopping: make(chan struct{}),
		kill:     make(chan struct{}),
	}
	s.dedupe = newDedupe(cfg.DedupeCache, s.getIndex)
	s.metrics = newMetrics(s.bc)
	s.hub = web.NewHub(web.HubOptions{Logger: cfg.Logger, Registerer: s.metrics.reg})
	s.handler = s.routes()
	return s, nil
}

// needsAdminToken reports whether listening on addr exposes the admin API
// beyond this machine: anything but a loopback IP or "localhost", including
// an empty host (every interface) and names that could resolve anywhere.
func needsAdminToken(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return true
	}
	if strings.EqualFold(host, "localhost") {
		return false
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip == nil || !ip.IsLoopback()
}

// Start opens the store and starts serving. Listen errors are returned
// here, not later; the ready line is logged once listening.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("receiver: already started")
	}
	select {
	case <-s.stopping:
		return errors.New("receiver: closed")
	default:
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	st, err := store.Open(store.Options{
		Dir:      s.cfg.DataDir,
		InMemory: s.cfg.InMemory,
		Logger:   s.log.With().Str("component", "store").Logger(),
		// A capture is answered once it is in the WAL, not after Badger
		// has it too. Every webhook writes; reads are rare (the admin API,
		// and the duplicate check of a webhook-id the filter may have
		// seen), and still see every capture answered before them. See
		// docs/BENCHMARKS.md for what it changed.
		AnswerOnSync: true,
	})
	if err != nil {
		return fmt.Errorf("receiver: open store: %w", err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		st.Close()
		return fmt.Errorf("receiver: listen: %w", err)
	}
	s.st.Store(st)
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          newStdLogger(s.log),
		ConnState:         s.fresh.Track,
	}
	s.serveDone = make(chan struct{})
	s.started = true
	// The webhook-id filter loads while the receiver already serves: until
	// it is complete, a new webhook-id costs a store Get, as without it.
	ictx, istop := context.WithCancel(context.Background())
	s.indexStop, s.indexDone = istop, make(chan struct{})
	go func() {
		defer close(s.indexDone)
		if err := s.dedupe.load(ictx, st); err != nil && ictx.Err() == nil {
			s.log.Warn().Err(err).Msg("duplicate detection stays on store lookups")
		}
	}()
	// Subscribed before serving, so the dashboard sees every capture.
	s.feedDone = make(chan struct{})
	go s.feedDashboard(s.bc.subscribeWhen(context.Background(), dashboardFeedBuffer, s.dashboardWatched))
	go func() {
		defer close(s.serveDone)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error().Err(err).Msg("serve")
		}
	}()
	addr := ln.Addr().String()
	s.log.Info().Str("addr", addr).Str("url", baseURL(addr)).Str("dashboard", baseURL(addr)+"/_sidehook/ui/").Msg("ready")
	return nil
}

// Addr is the address listened on ("" before Start).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// URL is the receiver's base URL, "http://host:port" ("" before Start).
// An unspecified listen host (0.0.0.0, ::) is given as 127.0.0.1, so the
// URL is one this machine can call.
func (s *Server) URL() string {
	addr := s.Addr()
	if addr == "" {
		return ""
	}
	return baseURL(addr)
}

func baseURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// Handler is the receiver's whole HTTP surface, for mounting elsewhere; it
// answers 503 until Start has opened the store.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops the receiver: held connections are let go, dashboard
// websockets are closed (cut after a second if a browser stopped reading),
// in-flight requests are drained within ShutdownGrace, subscribers are
// ended and the store is closed last. It is safe to call more than once; later calls
// return the first one's result.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.holdMu.Lock()
		close(s.stopping)
		s.holdMu.Unlock()
		s.mu.Lock()
		srv, done, feedDone := s.srv, s.serveDone, s.feedDone
		indexStop, indexDone := s.indexStop, s.indexDone
		s.mu.Unlock()
		if indexStop != nil {
			indexStop()
			<-indexDone
		}
		var errs []error
		// Dashboards first: http.Server.Shutdown does not wait for
		// hijacked websockets, and they must not read the store after
		// it is closed below.
		dctx, cancel := context.WithTimeout(ctx, dashboardShutdownWait)
		if err := s.hub.Shutdown(dctx); err != nil {
			s.log.Debug().Err(err).Msg("dashboard shutdown")
		}
		cancel()
		if srv != nil {
			grace, cancel := context.WithTimeout(ctx, s.cfg.ShutdownGrace)
			s.fresh.CloseAll()
			err := srv.Shutdown(grace)
			cancel()
			if err != nil {
				// The grace is over: whatever is still running is cut.
				close(s.kill)
				srv.Close()
				s.log.Warn().Err(err).Msg("shutdown grace exceeded; in-flight requests cut")
			}
			<-done
		}
		s.holds.Wait()
		s.bc.Close()
		if feedDone != nil {
			<-feedDone
		}
		if st := s.st.Load(); st != nil {
			if err := st.Close(); err != nil {
				errs = append(errs, fmt.Errorf("receiver: close store: %w", err))
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Subscribe returns a subscription to captures as they are committed; see
// Broadcaster. buffer <= 0 takes DefaultSubscriptionBuffer.
func (s *Server) Subscribe(ctx context.Context, buffer int) *Subscription {
	return s.bc.Subscribe(ctx, buffer)
}

// Broadcaster is the server's capture feed, for a dashboard hub.
func (s *Server) Broadcaster() *Broadcaster { return s.bc }

// store returns the open store or an error before Start.
func (s *Server) store() (*store.Store, error) {
	st := s.st.Load()
	if st == nil {
		return nil, errNotStarted
	}
	return st, nil
}

var errNotStarted = errors.New("receiver: not started")

// Rules returns the live rules in evaluation order.
func (s *Server) Rules() []Rule { return s.rules.list() }

// SetRules replaces every rule (ids are assigned where empty) and returns
// them as stored.
func (s *Server) SetRules(rules ...Rule) ([]Rule, error) { return s.rules.set(rules) }

// AddRules appends rules after the existing ones.
func (s *Server) AddRules(rules ...Rule) ([]Rule, error) { return s.rules.add(rules) }

// DeleteRule removes the rule with that id, or every rule when id is "";
// it reports whether anything matched.
func (s *Server) DeleteRule(id string) bool { return s.rules.remove(id) }

// Reset deletes every capture, restores the configured rules and forgets
// sequence positions.
func (s *Server) Reset(ctx context.Context) error {
	if err := s.DeleteCaptures(ctx); err != nil {
		return err
	}
	s.rules.reset()
	return nil
}
