// Package relay is sidehook's durable webhook relay: it accepts events over
// HTTP, keeps them in a Store with their deliveries, and delivers each one,
// signed, to every subscribed endpoint until it is delivered or dead. It also
// proxies custom-value requests, renders <<field>> templates, runs connection
// tests and serves the management API of SPEC §4.
//
// The relay is in parts along an event's way, each with its dependencies
// passed in: the ingester (HTTP → one durable Store.Accept → the dispatcher
// is told → 202), the dispatcher (a loop per endpoint takes what is due from
// the store → the attempter sends it through a Transport → records the
// outcome → the change hub tells subscribers), and the management API (the
// manager, the caller of synchronous requests, the dashboard). Relay only
// builds the parts, starts them and stops them in order.
package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/fixtures"
	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/internal/freshconn"
	"github.com/sidehook/sidehook/internal/httpguard"
	"github.com/sidehook/sidehook/internal/httpjson"
	"github.com/sidehook/sidehook/internal/target"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/web"
)

// Defaults of Options.
const (
	DefaultGrace         = 10 * time.Second
	DefaultPurgeInterval = 10 * time.Minute
	DefaultMaxRetryAfter = time.Hour
	DefaultWriteTimeout  = time.Minute
)

// Options are the relay's dependencies and tuning that do not belong in the
// configuration file.
type Options struct {
	// Store keeps events, deliveries, endpoints, tokens and keys
	// (required). The caller opens it before Start and closes it after
	// Close: the relay never closes it.
	Store Store
	// Tunnels serves tunnel:// endpoints and GET /v1/tunnel (optional:
	// without it tunnel endpoints are refused and the route answers 404).
	Tunnels TunnelServer
	Logger  zerolog.Logger
	// Clock schedules deliveries (default RealClock).
	Clock Clock
	// Version goes into the user-agent header (sidehook/<version>).
	Version string
	// Grace bounds how long Close waits for in-flight attempts (default
	// DefaultGrace); the rest are released and retried on the next start.
	Grace time.Duration
	// PurgeInterval is how often finished events older than the retention
	// are deleted (default DefaultPurgeInterval, or half the retention when
	// that is shorter, at least a second; negative disables).
	PurgeInterval time.Duration
	// MaxRetryAfter bounds an endpoint's Retry-After (default 1h).
	MaxRetryAfter time.Duration
	// Fixtures are the payloads of connection tests (default the embedded).
	Fixtures *fixtures.Set
	// Transport, when set, sends every outbound HTTP request (tests);
	// the target policy then checks URLs but not the addresses dialled.
	Transport http.RoundTripper
	// WriteTimeout bounds writing an answer (default DefaultWriteTimeout),
	// so a client that stops reading does not hold a connection. The calls
	// that wait on endpoints (connection tests, replays to a URL,
	// custom-value requests) get what they may wait on top of it.
	WriteTimeout time.Duration
	// AllowHosts are more Host names a loopback relay serves its
	// dashboard, /metrics and actions on (--allow-host), besides
	// localhost, 127.0.0.1 and [::1].
	AllowHosts []string
}

// Relay is one relay: its parts and their HTTP server.
type Relay struct {
	cfg   *config.Config
	opts  Options
	log   zerolog.Logger
	store Store
	dir   *directory

	keys    *keyring
	tokens  *tokens
	http    *httpTransport
	disp    *dispatcher
	grace   *tunnelGrace
	caller  *caller
	dash    *dashboard
	purger  *purger
	hub     *hub
	webHub  *web.Hub
	handler http.Handler

	fresh freshconn.Tracker
	srv   *http.Server
	ln    net.Listener
	// scheme is "https" when the relay serves TLS (tls_cert, tls_key).
	scheme   string
	feedDone chan struct{}

	// lifeMu orders Start and Close: a Close during Start waits for it,
	// then stops what it started; a Start after Close fails.
	lifeMu    sync.Mutex
	started   atomic.Bool
	closing   atomic.Bool
	closeOnce sync.Once
	closeErr  error
	bgCancel  context.CancelFunc
	bg        sync.WaitGroup
}

// New checks the configuration and builds a relay. It does no I/O: Start
// loads keys, tokens and endpoints from the store and listens.
func New(cfg *config.Config, opts Options) (*Relay, error) {
	if cfg == nil || len(cfg.Organisations) == 0 {
		return nil, errors.New("relay: configuration has no organisations")
	}
	if opts.Store == nil {
		return nil, errors.New("relay: Options.Store is required")
	}
	if opts.Clock == nil {
		opts.Clock = RealClock{}
	}
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	if opts.PurgeInterval == 0 {
		opts.PurgeInterval = DefaultPurgeInterval
		if cfg.Retention > 0 {
			// A short retention is kept to about itself, not to the
			// interval: half of it, at most a purge a second.
			opts.PurgeInterval = min(DefaultPurgeInterval, max(cfg.Retention/2, time.Second))
		}
	}
	if opts.MaxRetryAfter <= 0 {
		opts.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.Fixtures == nil {
		opts.Fixtures = fixtures.Default()
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	// Here, with the store open: a NATS store's limit comes from its
	// servers.
	if err := cfg.CheckMaxBody(opts.Store.BodyLimit()); err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	dir, err := newDirectory(cfg)
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	guard, err := httpguard.New(httpguard.Options{Loopback: httpguard.LoopbackAddr(cfg.Listen), AllowedHosts: opts.AllowHosts})
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	// The rules are checked here; Start builds the policy once it knows
	// the relay's own address.
	if _, err := target.New(target.Options{Allow: cfg.AllowTargets, Deny: cfg.DenyTargets}); err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	logger := func(component string) zerolog.Logger {
		return opts.Logger.With().Str("component", component).Logger()
	}
	st, clock := opts.Store, opts.Clock
	r := &Relay{cfg: cfg, opts: opts, log: logger("relay"), store: st, dir: dir, hub: newHub(isSharer(st))}
	r.keys = newKeyring(st, clock.Now)
	r.tokens = &tokens{store: st, issuer: cfg.Issuer, clock: clock}
	r.http = newHTTPTransport(opts.Transport)
	snd := &sender{signer: &signer{keys: r.keys, issuer: cfg.Issuer, userAgent: "sidehook/" + opts.Version},
		http: r.http, tunnels: opts.Tunnels, clock: clock}
	m := newMetrics(r.hub, dir, st.Health)
	cache := newEventCache()

	r.grace = &tunnelGrace{tunnels: opts.Tunnels}
	att := &attempter{store: st, sender: snd, cache: cache, hub: r.hub, metrics: m, clock: clock, grace: r.grace,
		retry: cfg.Retry, maxRetryAfter: opts.MaxRetryAfter, log: logger("dispatcher")}
	r.disp = newDispatcher(st, dir, att, r.hub, clock, logger("dispatcher"))
	m.setDepth(r.disp.depths)

	// A full disk or a lost store refuses every ingest: about one line a
	// second says so.
	ing := &ingester{responder: responder{limitErrors(logger("ingest"), time.Second, time.Now)}, store: st, dir: dir, limits: cfg.Limits, clock: clock,
		disp: r.disp, cache: cache, hub: r.hub, metrics: m}
	sw := &syncWork{write: opts.WriteTimeout, max: maxSyncWork}
	mgr := &manager{responder: responder{logger("api")}, store: st, dir: dir, disp: r.disp, sender: snd, http: r.http,
		tokens: r.tokens, tunnels: opts.Tunnels, hub: r.hub, clock: clock, sync: sw, maxReplay: maxReplay}
	r.caller = &caller{responder: responder{logger("api")}, store: st, dir: dir, sender: snd, hub: r.hub, metrics: m,
		clock: clock, fixtures: opts.Fixtures, sync: sw}
	r.webHub = web.NewHub(web.HubOptions{Logger: opts.Logger, Registerer: m.reg})
	acc := newAccess(dir, cfg.Listen, cfg.AdminToken)
	r.dash = &dashboard{responder: responder{logger("dashboard")}, store: st, dir: dir, mgr: mgr, cache: cache, web: r.webHub,
		access: acc, serving: r.serving}
	r.purger = &purger{store: st, clock: clock, retention: cfg.Retention, interval: opts.PurgeInterval, log: logger("purge")}
	r.handler = routes(parts{
		dir: dir, ing: ing, mgr: mgr, call: r.caller, dash: r.dash, m: m, guard: guard, access: acc,
		tunnel: &tunnelRoute{responder: responder{logger("tunnel")}, tunnels: opts.Tunnels, store: st, disp: r.disp, clock: clock},
		ops:    &ops{responder: responder{logger("relay")}, keys: r.keys, notReady: r.notReady},
		rs:     responder{logger("relay")},
	})
	return r, nil
}

// Start loads keys, tokens and endpoints from the store, starts the
// dispatcher and listens on the configured address. Listen errors are
// returned here; the server runs until Close.
func (r *Relay) Start(ctx context.Context) error {
	r.lifeMu.Lock()
	defer r.lifeMu.Unlock()
	if r.closing.Load() {
		return errors.New("relay: closed")
	}
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("relay: already started")
	}
	if err := r.open(ctx); err != nil {
		r.stopBackground(ctx)
		return err
	}
	var tlsCfg *tls.Config
	if r.cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(r.cfg.TLSCert, r.cfg.TLSKey)
		if err != nil {
			r.stopBackground(ctx)
			return fmt.Errorf("relay: tls_cert, tls_key: %w", err)
		}
		// HTTP/1.1 only: websocket upgrades (dashboard, tunnels) need it.
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	}
	ln, err := net.Listen("tcp", r.cfg.Listen)
	if err != nil {
		r.stopBackground(ctx)
		return fmt.Errorf("relay: listen: %w", err)
	}
	if err := r.setTargets(ln.Addr()); err != nil {
		ln.Close()
		r.stopBackground(ctx)
		return err
	}
	r.ln = ln
	r.scheme = "http"
	if tlsCfg != nil {
		r.ln = tls.NewListener(ln, tlsCfg)
		r.scheme = "https"
	}
	// Subscribed before serving, so the dashboard sees every change.
	r.feedDone = make(chan struct{})
	go r.dash.feed(r.hub.subscribe(context.Background()), r.feedDone)
	r.srv = &http.Server{
		Handler:           r.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      r.opts.WriteTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ConnState:         r.fresh.Track,
		// net/http's own reports (a TLS handshake a scanner broke off, a
		// plain request on a TLS port) go to the relay's log, not to the
		// standard logger, whose plain lines broke a JSON log stream.
		ErrorLog: httpjson.StdLogger(r.log),
	}
	go func() {
		if err := r.srv.Serve(r.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.log.Error().Err(err).Msg("serve")
		}
	}()
	// Written whatever the log level hides (SPEC: a ready line once
	// listening), as info.
	r.log.Log().Str(zerolog.LevelFieldName, zerolog.InfoLevel.String()).Str("addr", r.Addr().String()).Str("url", r.URL()).Str("dashboard", r.URL()+"/_sidehook/ui/").Int("organisations", len(r.dir.list)).Msg("ready")
	return nil
}

// open does Start's work up to listening.
func (r *Relay) open(ctx context.Context) error {
	if err := r.keys.load(ctx, r.dir.algorithms()); err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	for _, o := range r.dir.list {
		if err := r.tokens.load(ctx, o); err != nil {
			return fmt.Errorf("relay: organisation %s: %w", o.id, err)
		}
		if err := loadEndpoints(ctx, r.store, o, r.log); err != nil {
			return fmt.Errorf("relay: organisation %s: %w", o.id, err)
		}
		r.checkFileEndpoints(ctx, o)
		if r.opts.Tunnels == nil {
			for _, e := range o.endpoints() {
				if _, _, ok := parseTunnelURL(e.cfg.URL); ok {
					r.log.Warn().Str(logOrg, o.id).Str(logEndpoint, e.cfg.ID).Msg("tunnel endpoint on a relay that serves no tunnels: its deliveries fail until one does")
				}
			}
		}
	}
	r.grace.start(r.opts.Clock.Now())
	if err := r.disp.start(ctx); err != nil {
		return fmt.Errorf("relay: count waiting deliveries: %w", err)
	}
	bg, cancel := context.WithCancel(context.Background())
	r.bgCancel = cancel
	if r.opts.PurgeInterval > 0 {
		r.bg.Add(1)
		go func() {
			defer r.bg.Done()
			r.purger.run(bg)
		}()
	}
	if sh, ok := r.store.(changeSharer); ok {
		log := r.opts.Logger.With().Str("component", "feed").Logger()
		if err := sh.HearChanges(bg, newHearer(r.hub, r.dir, log).heard); err != nil {
			return fmt.Errorf("relay: hear the other relays' changes: %w", err)
		}
		// Its subscription ends with bg, which stopBackground cancels
		// once the dispatcher has stopped: what the last attempts
		// published is still queued in it, and shared.
		own := r.hub.subscribeOwn(bg)
		r.bg.Add(1)
		go func() {
			defer r.bg.Done()
			share(own, sh, log)
		}()
	}
	if w, ok := r.store.(controlWatcher); ok {
		changed := make(chan string, 64)
		if err := w.WatchControl(bg, changed); err != nil {
			return fmt.Errorf("relay: watch the shared endpoints and tokens: %w", err)
		}
		r.bg.Add(1)
		go func() {
			defer r.bg.Done()
			// What changed between the load above and the watch is read
			// now; after that, each change as it comes.
			for _, o := range r.dir.list {
				r.reload(bg, o)
			}
			r.reloadKeys(bg)
			for {
				select {
				case <-bg.Done():
					// The store's watch ends with bg: Close waits for
					// it, so none of it outlives the relay.
					for range changed {
					}
					return
				case what, ok := <-changed:
					if !ok {
						return // the store stopped watching (closed)
					}
					if what == SigningKeysChanged {
						r.reloadKeys(bg)
					} else if o := r.dir.org(what); o != nil {
						r.reload(bg, o)
					}
				}
			}
		}()
	}
	return nil
}

// controlWatcher is a store shared with other relays (natsstore) that
// says when an organisation's API endpoints, disabled marks or Webio
// token changed, or the signing keys, by any relay (this one included) or
// by `sidehook relay rotate-key`: each relay keeps them in memory, and
// SPEC §9 has the API, the JWKS and the token the same from every relay.
type controlWatcher interface {
	// WatchControl sends the organisation's id on changed after each
	// change of its endpoints, marks or token, and SigningKeysChanged
	// after each change of a signing key, until ctx ends (or the store
	// is closed); it returns once it is watching, and once it has
	// returned nil it closes changed when the watch has ended.
	WatchControl(ctx context.Context, changed chan<- string) error
}

// SigningKeysChanged is what a shared store's WatchControl sends after a
// change to the signing keys (no organisation's id is empty).
const SigningKeysChanged = ""

// reloadKeys reads the signing keys again: every relay sharing the store
// then signs with the same current keys and publishes the same JWKS.
func (r *Relay) reloadKeys(ctx context.Context) {
	if err := r.keys.reload(ctx); err != nil && ctx.Err() == nil {
		r.log.Error().Err(err).Msg("reload the shared signing keys")
	}
}

// reload reads o's endpoints, marks and token again, and tells the
// dispatcher of each endpoint that appeared, changed or went.
func (r *Relay) reload(ctx context.Context, o *orgState) {
	before := map[string]*endpointState{}
	for _, e := range o.endpoints() {
		before[e.cfg.ID] = e
	}
	err := loadEndpoints(ctx, r.store, o, r.log)
	if err == nil {
		err = r.tokens.refresh(ctx, o)
	}
	if err != nil {
		if ctx.Err() == nil {
			r.log.Error().Err(err).Str(logOrg, o.id).Msg("reload the shared endpoints and token")
		}
		return
	}
	for _, e := range o.endpoints() {
		if old := before[e.cfg.ID]; old == nil || old.disabled != e.disabled || !reflect.DeepEqual(old.cfg, e.cfg) {
			r.disp.endpointChanged(o, e.cfg.ID)
		}
		delete(before, e.cfg.ID)
	}
	for id := range before {
		r.disp.endpointRemoved(o, id)
	}
}

// setTargets builds the outbound policy now that the relay's own address
// is known, and refuses a configured endpoint it denies: a relay must not
// start with an endpoint it may never reach.
func (r *Relay) setTargets(self net.Addr) error {
	opts := target.Options{Allow: r.cfg.AllowTargets, Deny: r.cfg.DenyTargets}
	if a, ok := self.(*net.TCPAddr); ok {
		opts.Self = []netip.AddrPort{a.AddrPort()}
	}
	p, err := target.New(opts)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	if err := r.cfg.CheckTargets(p); err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	// An endpoint added through the API before the rules changed stays:
	// its deliveries fail at the dial until the rules allow it again.
	for _, o := range r.dir.list {
		for _, e := range o.endpoints() {
			if e.source != sourceAPI {
				continue
			}
			if err := p.CheckURL(e.cfg.URL); err != nil {
				r.log.Warn().Err(err).Str(logOrg, o.id).Str(logEndpoint, e.cfg.ID).Msg("endpoint denied by the target rules: its deliveries fail until they allow it")
			}
		}
	}
	r.http.policy.Store(p)
	return nil
}

// stopBackground undoes open after a failed Start.
func (r *Relay) stopBackground(ctx context.Context) {
	r.disp.stop(ctx)
	if r.bgCancel != nil {
		r.bgCancel()
	}
	r.bg.Wait()
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
// An unspecified listen host (0.0.0.0, ::) is given as 127.0.0.1, as the
// receiver's is, so the URL is one this machine can call.
func (r *Relay) URL() string {
	if r.ln == nil {
		return ""
	}
	return r.scheme + "://" + httpjson.Callable(r.ln.Addr().String())
}

// Subscribe returns a subscription to changes (accepted events, delivery
// state changes), published after they are durable. On a store shared
// with other relays (natsstore) it tells their changes too, of this
// relay's organisations, each once and in the order each relay made
// them. It ends when ctx is done, the subscription is closed or the relay
// is closed.
func (r *Relay) Subscribe(ctx context.Context) *Subscription { return r.hub.subscribe(ctx) }

// Ready reports whether the relay serves: started and not stopping, the
// dispatcher running, the store taking writes.
func (r *Relay) Ready() bool { return r.notReady() == "" }

func (r *Relay) serving() bool { return r.started.Load() && !r.closing.Load() }

// notReady says why the relay does not serve, or "" when it does. It is
// sent to anyone who asks /readyz, so it names the kind of failure, never
// the store's own error (its data directory, Badger's or NATS's words);
// the store logs that itself.
func (r *Relay) notReady() string {
	if !r.serving() || !r.disp.running.Load() {
		return "the relay is starting or stopping"
	}
	if err := r.store.Health(); err != nil {
		if errors.Is(err, ErrDiskFull) {
			return "disk full: the store cannot take writes"
		}
		return "the store cannot take writes"
	}
	return ""
}

// Purge deletes the events received before now − retention whose
// deliveries are all delivered or dead, with their deliveries. It returns
// how many events it deleted.
func (r *Relay) Purge(ctx context.Context) (int, error) { return r.purger.purge(ctx) }

// RotateKey replaces the relay's key pair for alg (RS256, ES256 or EdDSA).
// Tokens signed with the old key keep verifying: its public key stays in
// the JWKS until they have expired. Relays sharing the store (natsstore)
// follow the rotation; RotateStoredKey does it without a running relay.
func (r *Relay) RotateKey(alg auth.Algorithm) (Rotation, error) {
	return r.keys.rotate(context.Background(), alg)
}

// JWKS returns the document served at /.well-known/jwks.json.
func (r *Relay) JWKS() auth.JWKS { return r.keys.jwks() }

// Close stops the relay in order: dashboard websockets close (cut after a
// second if a browser stopped reading), ingest stops (in-flight requests
// finish within the grace period), the dispatcher stops taking work and
// waits for in-flight attempts until ctx is done or the grace period
// passes (the rest are released and retried on the next start). The store
// is left open for the caller to close. Safe to call more than once; a
// Start after it fails.
func (r *Relay) Close(ctx context.Context) error {
	r.closeOnce.Do(func() {
		r.lifeMu.Lock()
		r.closing.Store(true)
		r.lifeMu.Unlock()
		grace, cancel := context.WithTimeout(ctx, r.opts.Grace)
		defer cancel()
		var errs []error
		// Dashboards first: http.Server.Shutdown does not wait for
		// hijacked websockets, and they must not read the store after
		// the caller closes it.
		dctx, dcancel := context.WithTimeout(ctx, dashboardShutdownWait)
		if err := r.webHub.Shutdown(dctx); err != nil {
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
		r.stopBackground(grace)
		r.hub.close()
		if r.feedDone != nil {
			<-r.feedDone
		}
		r.http.closeIdle()
		r.closeErr = errors.Join(errs...)
		r.log.Info().Msg("stopped")
	})
	return r.closeErr
}

// Log field keys shared by every part of the relay.
const (
	logOrg      = "org"
	logEndpoint = "endpoint"
	logDelivery = "delivery"
)
