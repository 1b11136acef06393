// Package receiver is sidehook's mock receiver (SPEC §5): it stands in for
// the customer's system in tests. It verifies each request's tokens,
// captures every request durably, answers custom-value GETs from fixtures,
// plays scripted responses and faults, and offers an admin API under
// /_sidehook/ to list, wait for, export and replay captures.
//
// A Server is made with New (no I/O) on a Store its caller opened, started
// with Start (listens, serves) and stopped with Close (drains in-flight
// requests); the caller closes the store after that.
package receiver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/fixtures"
	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/internal/freshconn"
	"github.com/sidehook/sidehook/internal/httpguard"
	"github.com/sidehook/sidehook/internal/httpjson"
	"github.com/sidehook/sidehook/internal/pubsub"
	"github.com/sidehook/sidehook/web"
)

// Defaults of Config's zero values.
const (
	DefaultListen        = "127.0.0.1:8081"
	DefaultMaxBody       = 1 << 20
	DefaultShutdownGrace = 10 * time.Second
	// DefaultReadTimeout bounds reading a whole request, body included,
	// as the relay's does: a client that sends slowly is cut off.
	DefaultReadTimeout = time.Minute
	// DefaultMaxBodiesInFlight bounds the bytes of request bodies being
	// read at once.
	DefaultMaxBodiesInFlight = 64 << 20
	// DefaultWaitTimeout and MaxWaitTimeout bound GET /_sidehook/requests/wait.
	DefaultWaitTimeout = 5 * time.Second
	MaxWaitTimeout     = 60 * time.Second
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
	// Store keeps the captures; required. The receiver neither opens nor
	// closes it.
	Store Store
	// MaxBody is the largest body captured (DefaultMaxBody when 0); a
	// larger one is answered 413 and captured without its body. New
	// refuses one above what Store holds (Store.BodyLimit).
	MaxBody int64
	// ReadTimeout bounds reading a request, headers and body
	// (DefaultReadTimeout when 0); a capture whose body is not received
	// within it is answered 408.
	ReadTimeout time.Duration
	// MaxBodiesInFlight bounds the bytes of request bodies being read at
	// once (DefaultMaxBodiesInFlight when 0, and never below MaxBody); a
	// request that would go over it is answered 503 and captured without
	// its body.
	MaxBodiesInFlight int64
	// AllowHosts are Host names besides localhost, 127.0.0.1 and [::1]
	// that a loopback receiver's admin API and dashboard answer (a name
	// from /etc/hosts); any other is refused 421, so a page on another
	// site rebound to 127.0.0.1 cannot read them. Capture paths answer any
	// Host.
	AllowHosts []string
	// AdminToken guards /_sidehook/ (except healthz) as a Bearer token.
	// Required when Listen is not a loopback address; checked whenever set.
	AdminToken string
	// Verify says which schemes are checked; none configured means every
	// request is accepted and captured as unverified.
	Verify auth.VerifyConfig
	// ReplayKey, when set, signs the JWTs of replays whose original was
	// signed with an asymmetric key of its algorithm (--jwt-private-key):
	// the receiver verifies with the public half and cannot sign with it.
	// HS256 replays sign with Verify.JWTSecret.
	ReplayKey *auth.SigningKey
	// Values answers custom-value GETs (the embedded demo values when nil).
	Values *fixtures.Values
	// Rules are the scripted responses a reset returns to.
	Rules []Rule
	// Logger gets the ready line, one info line per capture and errors
	// (none when zero).
	Logger zerolog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Version is sent in the user-agent of replays.
	Version string
	// ShutdownGrace bounds how long Close waits for in-flight requests
	// (DefaultShutdownGrace when 0).
	ShutdownGrace time.Duration
}

// Server is a mock receiver.
type Server struct {
	cfg      Config
	log      zerolog.Logger
	now      func() time.Time
	verifier *auth.Verifier
	rules    *ruleSet
	values   *fixtures.Values
	bc       *pubsub.Hub[Capture]
	// clears counts the deletes of every capture: a Wait that saw one
	// reads the store again rather than count captures it deleted.
	clears  atomic.Uint64
	metrics *metrics
	// hub feeds the dashboard's websockets; feedDone is closed when the
	// goroutine feeding it from bc has ended.
	hub      *web.Hub
	feedDone chan struct{}
	// feedMu guards feedSub, the subscription the dashboard feed reads,
	// and feedNext, the one a clear hands it next (handOver).
	feedMu   sync.Mutex
	feedSub  *Subscription
	feedNext *feedHandover
	handler  http.Handler
	guard    *httpguard.Guard
	fresh    freshconn.Tracker
	st       Store
	bodies   *bodyBudget

	// stopping is closed when Close begins: held connections (the timeout
	// fault) and waiters let go, and scripted delays still running end,
	// their answers sent at once.
	stopping chan struct{}
	// cut is closed when the shutdown grace is over, just before every
	// connection is cut: a capture whose answer was not sent by then says
	// so.
	cut chan struct{}
	// holds tracks handlers that outlive http.Server's bookkeeping
	// (hijacked connections); answering tracks the capture handlers, which
	// may outlive the grace in a store write, so Close returns only once
	// they no longer use the store. holdMu orders their Add before the
	// Wait.
	holds     sync.WaitGroup
	answering sync.WaitGroup
	holdMu    sync.Mutex

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
	if cfg.ReadTimeout < 0 || cfg.MaxBodiesInFlight < 0 {
		return nil, errors.New("receiver: negative read timeout or bodies in flight")
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.MaxBodiesInFlight == 0 {
		cfg.MaxBodiesInFlight = DefaultMaxBodiesInFlight
	}
	cfg.MaxBodiesInFlight = max(cfg.MaxBodiesInFlight, cfg.MaxBody)
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = DefaultShutdownGrace
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Verify.Now == nil {
		cfg.Verify.Now = cfg.Now
	}
	if cfg.Store == nil {
		return nil, errors.New("receiver: a store is required")
	}
	if err := cfg.Store.BodyLimit().Check(cfg.MaxBody, "capture"); err != nil {
		return nil, fmt.Errorf("receiver: max body: %w; lower it", err)
	}
	if cfg.AdminToken == "" && !httpjson.IsLoopback(cfg.Listen) {
		return nil, fmt.Errorf("%w (listen %s)", ErrAdminTokenRequired, cfg.Listen)
	}
	if cfg.AdminToken != "" {
		if err := httpguard.CheckAdminToken(cfg.AdminToken); err != nil {
			return nil, fmt.Errorf("receiver: admin token: %w", err)
		}
	}
	v, err := auth.NewVerifier(cfg.Verify)
	if err != nil {
		return nil, fmt.Errorf("receiver: %w", err)
	}
	guard, err := httpguard.New(httpguard.Options{Loopback: httpguard.LoopbackAddr(cfg.Listen), AllowedHosts: cfg.AllowHosts})
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
		bc:       pubsub.New[Capture](nil),
		st:       cfg.Store,
		bodies:   &bodyBudget{max: cfg.MaxBodiesInFlight},
		guard:    guard,
		stopping: make(chan struct{}),
		cut:      make(chan struct{}),
	}
	s.metrics = newMetrics(s.bc, s.bodies)
	s.hub = web.NewHub(web.HubOptions{Logger: cfg.Logger, Registerer: s.metrics.reg})
	s.handler = s.routes()
	return s, nil
}

// Start starts serving. Listen errors are returned
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
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("receiver: listen: %w", err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		// The held connections of the timeout fault and the dashboard's
		// websockets are hijacked and set their own deadlines.
		ReadTimeout: s.cfg.ReadTimeout,
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    httpjson.StdLogger(s.log),
		ConnState:   s.fresh.Track,
	}
	s.serveDone = make(chan struct{})
	s.started = true
	// Before serving, so the dashboard sees every capture.
	s.startFeedLocked()
	go func() {
		defer close(s.serveDone)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error().Err(err).Msg("serve")
		}
	}()
	addr := ln.Addr().String()
	// Written whatever the log level hides (SPEC: a ready line once
	// listening), as info.
	s.log.Log().Str(zerolog.LevelFieldName, zerolog.InfoLevel.String()).Str("addr", addr).Str("url", baseURL(addr)).Str("dashboard", baseURL(addr)+"/_sidehook/ui/").Msg("ready")
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

func baseURL(addr string) string { return "http://" + httpjson.Callable(addr) }

// Handler is the receiver's whole HTTP surface, for mounting elsewhere
// instead of calling Start; Close still stops it.
func (s *Server) Handler() http.Handler {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Mounted, the receiver is never started: its dashboard is fed from
	// here.
	s.startFeedLocked()
	return s.handler
}

// startFeedLocked starts feeding the dashboard from committed captures,
// once, unless Close has begun (it would never end the feed); s.mu is
// held.
func (s *Server) startFeedLocked() {
	if s.feedDone != nil {
		return
	}
	select {
	case <-s.stopping:
		return
	default:
	}
	done := make(chan struct{})
	s.feedDone = done
	feed := s.subscribeFeed()
	s.feedMu.Lock()
	s.feedSub = feed
	s.feedMu.Unlock()
	go func() {
		defer close(done)
		s.feedDashboard(feed)
	}()
}

// Close stops the receiver: held connections are let go, scripted delays
// are cut short (each answer, as its capture records it, is sent at once),
// in-flight requests are drained within ShutdownGrace, subscribers are
// ended and dashboard websockets are closed (cut after a second if a
// browser stopped reading); the store is left open, for its owner to close.
// Past the grace the connections still open are cut: a capture whose
// answer was not sent, or not whole, by then says so (its response's
// Error), and Close waits for the store writes still running. It is safe
// to call more than once; later calls return the first one's result.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.holdMu.Lock()
		close(s.stopping)
		s.holdMu.Unlock()
		s.mu.Lock()
		srv, done, feedDone := s.srv, s.serveDone, s.feedDone
		s.mu.Unlock()
		if srv != nil {
			grace, cancel := context.WithTimeout(ctx, s.cfg.ShutdownGrace)
			s.fresh.CloseAll()
			err := srv.Shutdown(grace)
			cancel()
			if err != nil {
				// The grace is over: whatever is still running is cut,
				// and the captures of answers not sent say so.
				s.holdMu.Lock()
				close(s.cut)
				s.holdMu.Unlock()
				srv.Close()
				s.log.Warn().Err(err).Msg("shutdown grace exceeded; in-flight requests cut")
			}
			<-done
			// A capture handler cut short is still in its store write,
			// bounded by the store, or marking its capture cut: the
			// store's owner closes it once Close returns.
			s.answering.Wait()
		}
		s.holds.Wait()
		// Nothing verifies any more: a JWKS fetch that a request gave
		// up waiting for is stopped, not left to its timeout.
		s.verifier.Close()
		// The feed publishes what it still holds, the answers rewritten
		// for cut connections among it, and ends.
		s.bc.Close()
		s.shutdownDashboards(ctx, feedDone)
	})
	return s.closeErr
}

// shutdownDashboards closes the dashboard websockets once the feed (done
// when feedDone is closed; nil when it never ran) has published what it
// held, so the browsers are sent every capture and every answer the
// shutdown rewrote. Both share dashboardShutdownWait: a feed still behind
// then, or a browser that stopped reading, is cut. Close calls it last,
// but before the store is closed, which the websockets must not read
// afterwards: http.Server.Shutdown does not wait for hijacked
// connections. While the requests drain, the dashboards stay open but
// read nothing from the store (recentItems refuses once Close has begun).
func (s *Server) shutdownDashboards(ctx context.Context, feedDone <-chan struct{}) {
	dctx, cancel := context.WithTimeout(ctx, dashboardShutdownWait)
	defer cancel()
	if feedDone != nil {
		select {
		case <-feedDone:
		case <-dctx.Done():
		}
	}
	if err := s.hub.Shutdown(dctx); err != nil {
		s.log.Debug().Err(err).Msg("dashboard shutdown")
	}
	if feedDone != nil {
		// With no viewer left the feed encodes nothing: it ends at once.
		<-feedDone
	}
}

// Subscription receives the captures committed after it was made; a
// subscriber whose buffer is full loses captures, counted on it (Dropped).
// A capture whose answer Close rewrote, its connection cut, comes again
// with the same ID and the response it now records.
type Subscription = pubsub.Subscription[Capture]

// Subscribe returns a subscription to captures as they are committed.
// buffer <= 0 takes pubsub.DefaultBuffer.
func (s *Server) Subscribe(ctx context.Context, buffer int) *Subscription {
	return s.bc.Subscribe(ctx, pubsub.Options{Buffer: buffer})
}

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
// sequence positions and the JWT ids seen.
func (s *Server) Reset(ctx context.Context) error {
	if err := s.deleteCaptures(ctx, web.ClearedByReset); err != nil {
		return err
	}
	s.rules.reset()
	// A suite that reuses a fixed token in each test is not replaying it.
	s.verifier.ForgetJTIs()
	return nil
}
