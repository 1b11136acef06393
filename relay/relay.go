// Package relay is sidehook's durable webhook relay: it accepts events over
// HTTP, keeps them in the store with their deliveries, and delivers each one,
// signed, to every subscribed endpoint until it is delivered or dead. It also
// proxies custom-value requests, renders <<field>> templates, runs connection
// tests and serves the management API of SPEC §4.
//
// An event's way: ingest → one store write {event, deliveries, due-index
// entries} through the group-commit writer → 202 → the dispatcher is told in
// memory → a worker of the endpoint sends it → the outcome (and the next due
// time) is written through the same writer → subscribers are told.
package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/fixtures"
	"github.com/sidehook/sidehook/internal/freshconn"
	"github.com/sidehook/sidehook/internal/store"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/web"
)

// Defaults of Options.
const (
	DefaultGrace         = 10 * time.Second
	DefaultPurgeInterval = 10 * time.Minute
	DefaultMaxRetryAfter = time.Hour
)

// Options are the relay's dependencies and tuning that do not belong in the
// configuration file.
type Options struct {
	Logger zerolog.Logger
	// Clock schedules deliveries (default RealClock).
	Clock Clock
	// Version goes into the user-agent header (sidehook/<version>).
	Version string
	// Grace bounds how long Close waits for in-flight attempts (default
	// DefaultGrace); the rest are retried on the next start.
	Grace time.Duration
	// PurgeInterval is how often finished events older than the retention
	// are deleted (default DefaultPurgeInterval; negative disables).
	PurgeInterval time.Duration
	// MaxRetryAfter bounds an endpoint's Retry-After (default 1h).
	MaxRetryAfter time.Duration
	// Fixtures are the payloads of connection tests (default the embedded).
	Fixtures *fixtures.Set
	// Transport, when set, sends every outbound request (tests).
	Transport http.RoundTripper
}

// Relay is one relay: its store, keys, dispatcher and HTTP server.
type Relay struct {
	fresh   freshconn.Tracker
	cfg     *config.Config
	opts    Options
	log     zerolog.Logger
	clock   Clock
	orgs    map[string]*orgState
	orgList []*orgState

	store   *store.Store
	keys    *keyring
	disp    *dispatcher
	hub     *hub
	metrics *metrics
	// dash feeds the dashboard's websockets, from hub through the
	// goroutine whose end closes feedDone; dashOpen: no key needed.
	dash     *web.Hub
	dashOpen bool
	feedDone chan struct{}
	client   *http.Client
	handler  http.Handler

	idem [64]sync.Mutex

	srv *http.Server
	ln  net.Listener

	started   atomic.Bool
	closing   atomic.Bool
	closeOnce sync.Once
	closeErr  error
	bgCancel  context.CancelFunc
	bg        sync.WaitGroup
}

// New checks the configuration and builds a relay. It does no I/O: Start
// opens the store, loads the keys and listens.
func New(cfg *config.Config, opts Options) (*Relay, error) {
	if cfg == nil || len(cfg.Organisations) == 0 {
		return nil, errors.New("relay: configuration has no organisations")
	}
	if opts.Clock == nil {
		opts.Clock = RealClock{}
	}
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	if opts.PurgeInterval == 0 {
		opts.PurgeInterval = DefaultPurgeInterval
	}
	if opts.MaxRetryAfter <= 0 {
		opts.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if opts.Fixtures == nil {
		opts.Fixtures = fixtures.Default()
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	r := &Relay{
		cfg:   cfg,
		opts:  opts,
		log:   opts.Logger.With().Str("component", "relay").Logger(),
		clock: opts.Clock,
		orgs:  make(map[string]*orgState),
		hub:   newHub(),
	}
	for _, oc := range cfg.Organisations {
		o, err := newOrgState(oc)
		if err != nil {
			return nil, fmt.Errorf("relay: organisation %s: %w", oc.ID, err)
		}
		r.orgs[oc.ID] = o
		r.orgList = append(r.orgList, o)
	}
	keyDir := ""
	if !cfg.InMemory {
		keyDir = filepath.Join(cfg.Data, "keys")
	}
	r.keys = newKeyring(keyDir, r.clock.Now)
	r.client = newHTTPClient(opts.Transport)
	r.disp = newDispatcher(r)
	r.metrics = newMetrics(r.disp.depths)
	r.dash = web.NewHub(web.HubOptions{Logger: opts.Logger, Registerer: r.metrics.reg})
	r.dashOpen = loopbackOnly(cfg.Listen)
	r.handler = r.routes()
	return r, nil
}

// Start opens the store, loads keys, tokens and endpoints, starts the
// dispatcher and listens on the configured address. Listen errors are
// returned here; the server runs until Close.
func (r *Relay) Start(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("relay: already started")
	}
	if err := r.open(ctx); err != nil {
		r.closeStore()
		return err
	}
	ln, err := net.Listen("tcp", r.cfg.Listen)
	if err != nil {
		r.disp.stop(ctx, 0)
		r.bgCancel()
		r.bg.Wait()
		r.closeStore()
		return fmt.Errorf("relay: listen: %w", err)
	}
	r.ln = ln
	// Subscribed before serving, so the dashboard sees every change.
	r.feedDone = make(chan struct{})
	go r.feedDashboard(r.hub.subscribe(context.Background()))
	r.srv = &http.Server{
		Handler:           r.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ConnState:         r.fresh.Track,
	}
	go func() {
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.log.Error().Err(err).Msg("serve")
		}
	}()
	r.log.Info().Str("addr", r.Addr().String()).Str("url", r.URL()).Str("dashboard", r.URL()+"/_sidehook/ui/").Str("data", r.dataDir()).Int("organisations", len(r.orgList)).Msg("ready")
	return nil
}

func (r *Relay) dataDir() string {
	if r.cfg.InMemory {
		return "(in memory)"
	}
	return r.cfg.Data
}

// open does Start's work up to listening; StartNoListen-style embedding uses
// Handler after Start.
func (r *Relay) open(ctx context.Context) error {
	// An event is acknowledged once its WAL record is synced, before Badger
	// has it; reads wait for Badger (store.Options.AnswerOnSync). Fresh
	// deliveries carry their event, so dispatch reads nothing back. Ingest
	// took 20 % more events/s this way (docs/BENCHMARKS.md, "21:50–22:10").
	so := store.Options{
		InMemory: r.cfg.InMemory, AnswerOnSync: true,
		Logger: r.opts.Logger.With().Str("component", "store").Logger(),
	}
	if !r.cfg.InMemory {
		so.Dir = filepath.Join(r.cfg.Data, "db")
	}
	if r.cfg.Limits.MinFreeDisk > 0 {
		so.MinFreeBytes = r.cfg.Limits.MinFreeDisk
	}
	st, err := store.Open(so)
	if err != nil {
		return fmt.Errorf("relay: open store: %w", err)
	}
	r.store = st
	if err := r.keys.load(r.algorithms()); err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	for _, o := range r.orgList {
		if err := r.loadToken(ctx, o); err != nil {
			return fmt.Errorf("relay: organisation %s: %w", o.id, err)
		}
		if err := r.loadEndpoints(ctx, o); err != nil {
			return fmt.Errorf("relay: organisation %s: %w", o.id, err)
		}
	}
	r.disp.start()
	bg, cancel := context.WithCancel(context.Background())
	r.bgCancel = cancel
	if r.opts.PurgeInterval > 0 {
		r.bg.Add(1)
		go func() {
			defer r.bg.Done()
			r.purgeLoop(bg)
		}()
	}
	return nil
}

// Handler is the relay's whole HTTP surface, for embedding under another
// server; it works once Start has returned.
func (r *Relay) Handler() http.Handler { return r.handler }

// Addr is the listening address once started.
func (r *Relay) Addr() net.Addr {
	if r.ln == nil {
		return nil
	}
	return r.ln.Addr()
}

// URL is the base URL of the relay once started ("http://127.0.0.1:8080").
func (r *Relay) URL() string {
	if r.ln == nil {
		return ""
	}
	return "http://" + r.ln.Addr().String()
}

// Subscribe returns a subscription to changes (accepted events, delivery
// state changes), published after they are durable. It ends when ctx is
// done, the subscription is closed or the relay is closed.
func (r *Relay) Subscribe(ctx context.Context) *Subscription { return r.hub.subscribe(ctx) }

// Ready reports whether the relay serves: store open and not failed (see
// store.Store.Failed), dispatcher running.
func (r *Relay) Ready() bool { return r.notReady() == "" }

// notReady says why the relay does not serve, or "" when it does.
func (r *Relay) notReady() string {
	switch {
	case !r.started.Load() || r.closing.Load() || r.store == nil || !r.disp.running.Load():
		return "the store is not open or the dispatcher is not running"
	case r.store.Failed() != nil:
		return "the store has failed; restart the relay to replay its log"
	}
	return ""
}

// Close stops the relay in order: dashboard websockets close (cut after a
// second if a browser stopped reading), ingest stops (in-flight requests finish
// within the grace period), the dispatcher stops taking work and waits for
// in-flight attempts until ctx is done or the grace period passes (the rest
// are retried on the next start), and the store is closed last. Safe to
// call more than once.
func (r *Relay) Close(ctx context.Context) error {
	r.closeOnce.Do(func() {
		r.closing.Store(true)
		grace, cancel := context.WithTimeout(ctx, r.opts.Grace)
		defer cancel()
		var errs []error
		// Dashboards first: http.Server.Shutdown does not wait for
		// hijacked websockets, and they must not read the store after
		// it is closed below.
		dctx, dcancel := context.WithTimeout(ctx, dashboardShutdownWait)
		if err := r.dash.Shutdown(dctx); err != nil {
			r.log.Debug().Err(err).Msg("dashboard shutdown")
		}
		dcancel()
		if r.srv != nil {
			r.fresh.CloseAll()
			if err := r.srv.Shutdown(grace); err != nil {
				errs = append(errs, fmt.Errorf("relay: stop http: %w", err))
				r.srv.Close()
			}
		}
		r.disp.stop(grace, r.opts.Grace)
		if r.bgCancel != nil {
			r.bgCancel()
		}
		r.bg.Wait()
		r.hub.close()
		if r.feedDone != nil {
			<-r.feedDone
		}
		if err := r.closeStore(); err != nil {
			errs = append(errs, err)
		}
		r.client.CloseIdleConnections()
		r.closeErr = errors.Join(errs...)
		r.log.Info().Msg("stopped")
	})
	return r.closeErr
}

func (r *Relay) closeStore() error {
	if r.store == nil {
		return nil
	}
	if err := r.store.Close(); err != nil {
		return fmt.Errorf("relay: close store: %w", err)
	}
	return nil
}

// StoreStats exposes the store's counters (benchmarks, debugging).
func (r *Relay) StoreStats() store.Stats {
	if r.store == nil {
		return store.Stats{}
	}
	return r.store.Stats()
}

// Log field keys shared by every component of the relay.
const (
	logOrg      = "org"
	logEndpoint = "endpoint"
	logDelivery = "delivery"
)
