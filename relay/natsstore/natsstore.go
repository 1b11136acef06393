package natsstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/relay"
)

// Config says where the JetStream is and how to lay out the store in it.
type Config struct {
	// Servers are NATS URLs (nats://host:4222); any one is enough to join.
	Servers []string
	// CredsFile (a .creds file) or Token authenticates; CAFile verifies a
	// TLS server.
	CredsFile, Token, CAFile string
	// Replicas is 1 or 3 (0 means 1).
	Replicas int
	// Prefix names the stream, the bucket (Prefix_ctl) and the subjects
	// ([A-Za-z0-9_-]; "" means "sidehook"). Relays sharing work share it.
	Prefix string
	Logger zerolog.Logger
	// AckWait is how long a lease lasts without a heartbeat: after it a
	// dead relay's deliveries go to another relay. 0 means
	// DefaultAckWait. It is
	// the consumers' ack wait, so every relay sharing the prefix must use
	// the same (store.ack_wait in the configuration): Open refuses another
	// than the running relays' (see agreeAckWait).
	AckWait time.Duration
	// Existing opens only a store relays made, as a program that acts on
	// their store without being one of them does (sidehook relay
	// rotate-key): with no stream or bucket under Prefix, Open fails
	// rather than make them (a key rotated there would be no relay's);
	// existing ones are used as they are, whatever Replicas says; and
	// the relays' shared AckWait is neither checked nor held.
	Existing bool
}

// DefaultPrefix names the stream and bucket when Config.Prefix is empty.
const DefaultPrefix = "sidehook"

// DefaultAckWait is the lease when Config.AckWait is 0.
const DefaultAckWait = 30 * time.Second

// ErrMisconfigured marks an Open refused for the settings it was given
// (store.* of the configuration): the servers, or the relays already
// running, can never work with them, so opening again as it is fails
// again. A command reports it as a mistake in its configuration (exit 2),
// not as an outage to wait out.
var ErrMisconfigured = errors.New("store settings that cannot work")

// misconfiguredError is an error of ErrMisconfigured, its text err's.
type misconfiguredError struct{ err error }

func (e misconfiguredError) Error() string   { return e.err.Error() }
func (e misconfiguredError) Unwrap() []error { return []error{e.err, ErrMisconfigured} }

func misconfigured(err error) error { return misconfiguredError{err} }

// opTimeout bounds one JetStream request: a durable write runs to its end
// whatever the caller's context, but never waits forever on a lost server.
const opTimeout = 10 * time.Second

var prefixRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Store is a relay.Store on NATS JetStream. Open it, Close it.
type Store struct {
	cfg  Config
	log  zerolog.Logger
	subj subjects
	// id tells this store's messages on the change feed from the other
	// relays' (feed.go), and names it as the holder of the leases and
	// head locks it takes.
	id string

	nc     *nats.Conn
	lives  lives
	js     jetstream.JetStream
	stream jetstream.Stream
	// leader reads records at the stream's leader (see get).
	leader nats.JetStreamContext
	ctl    jetstream.KeyValue

	wake    chan relay.EndpointRef
	batches chan struct{} // a slot per open atomic batch
	stop    chan struct{}
	done    sync.WaitGroup

	closeOnce sync.Once
	// failing is when a write first failed for want of JetStream (no
	// stream leader: the cluster lost its quorum, or this relay's server
	// is cut off from it) since the last write that went through, in
	// Unix nanoseconds; 0 while writes go through. See noteWrite.
	failing atomic.Int64
	// ackWaitRev is the revision of the AckWait record this store wrote
	// when no relay held it (agreeAckWait), 0 when it found it held.
	ackWaitRev uint64

	mu        sync.Mutex
	closed    bool
	leases    map[string]*lease                   // by delivery org/id
	consumers map[relay.EndpointRef]consumerState // known consumers
	taking    map[relay.EndpointRef]*sync.Mutex   // one Take per endpoint at a time
	// limits are the endpoints' max_in_flight as the relay told them
	// (SetMaxInFlight); -1 is unlimited.
	limits  map[relay.EndpointRef]int
	retries map[relay.EndpointRef]retryView // what this store knows of each endpoint's retry items
	// unheard is, by endpoint, the stream sequence of the last work item
	// this store wrote that its consumer may not know of yet (see wrote).
	unheard map[relay.EndpointRef]uint64
	// pulled is, by endpoint, when a Take last made a waiting pull (see
	// pullEvery).
	pulled map[relay.EndpointRef]time.Time
}

type consumerState struct {
	c jetstream.Consumer // nil: an endpoint seen, its consumer not looked up
	// limit is the max_in_flight applied to c (0: none told); limited,
	// whether c has a MaxAckPending, set by this relay or another.
	limit   int
	limited bool
}

// lease is one delivery this store holds: the unacknowledged work item,
// or for an ordered delivery the endpoint's head lock.
type lease struct {
	msg jetstream.Msg // the consumer's message; nil when ordered
	ref relay.EndpointRef
	// ordered: the lease is the endpoint's head lock, at revision lockRev.
	ordered bool
	lockRev uint64
	// st is the delivery's state as leased, at revision rev: Record and
	// Release write over it without reading it again.
	st  *state
	rev uint64
	// lost: the heartbeat found the lease another relay's (it lapsed
	// here and was retaken) or ended, and no longer renews it. Record
	// and Release still end it as a lapsed lease.
	lost bool
}

var _ relay.Store = (*Store)(nil)

// Open connects, checks that the account has JetStream, and creates or
// updates the stream and the bucket.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if !prefixRE.MatchString(cfg.Prefix) {
		return nil, misconfigured(fmt.Errorf("open nats store: prefix %q: use 1 to 64 of A-Z a-z 0-9 _ -", cfg.Prefix))
	}
	switch cfg.Replicas {
	case 0:
		cfg.Replicas = 1
	case 1, 3:
	default:
		return nil, misconfigured(fmt.Errorf("open nats store: replicas %d: use 1 or 3", cfg.Replicas))
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = DefaultAckWait
	}
	if len(cfg.Servers) == 0 {
		return nil, misconfigured(errors.New("open nats store: no server URL"))
	}
	s := &Store{
		cfg:       cfg,
		log:       cfg.Logger.With().Str("component", "natsstore").Logger(),
		subj:      subjects{cfg.Prefix},
		id:        rand.Text()[:12],
		wake:      make(chan relay.EndpointRef, 1024),
		batches:   make(chan struct{}, openBatches),
		stop:      make(chan struct{}),
		leases:    map[string]*lease{},
		consumers: map[relay.EndpointRef]consumerState{},
		taking:    map[relay.EndpointRef]*sync.Mutex{},
		limits:    map[relay.EndpointRef]int{},
		retries:   map[relay.EndpointRef]retryView{},
		unheard:   map[relay.EndpointRef]uint64{},
		pulled:    map[relay.EndpointRef]time.Time{},
	}
	if err := s.connect(); err != nil {
		return nil, fmt.Errorf("open nats store: %w", err)
	}
	if err := s.setup(ctx); err != nil {
		s.nc.Close()
		return nil, fmt.Errorf("open nats store: %w", err)
	}
	s.done.Add(2)
	go s.heartbeat()
	go s.tick()
	if !cfg.Existing {
		s.done.Add(1)
		go s.holdAckWait()
	}
	s.log.Info().Str("server", s.nc.ConnectedUrlRedacted()).Str("stream", cfg.Prefix).
		Int("replicas", cfg.Replicas).Str("ack_wait", cfg.AckWait.String()).Msg("nats store open")
	if !cfg.Existing {
		s.warnOtherPrefixes(ctx)
	}
	return s, nil
}

// connect takes no context: nats.Connect has none, and its dial is bounded
// by nats.Timeout for each server.
func (s *Store) connect() error {
	opts := []nats.Option{
		nats.Name("sidehook-relay"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.Timeout(5 * time.Second),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			s.lives.lost(nc)
			if nc.IsClosed() {
				return // our own Close, or a failed Open: not news
			}
			s.log.Warn().Err(err).Msg("lost the NATS connection")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			s.log.Info().Str("server", nc.ConnectedUrlRedacted()).Msg("NATS connection back")
		}),
	}
	if s.cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(s.cfg.CredsFile))
	}
	if s.cfg.Token != "" {
		opts = append(opts, nats.Token(s.cfg.Token))
	}
	if s.cfg.CAFile != "" {
		opts = append(opts, nats.RootCAs(s.cfg.CAFile))
	}
	nc, err := nats.Connect(strings.Join(s.cfg.Servers, ","), opts...)
	if errors.Is(err, nats.ErrAuthorization) {
		return fmt.Errorf("connect to %s: the server refused this relay's credentials (check store.credentials or store.token): %w", redact(s.cfg.Servers), err)
	}
	if err != nil {
		return fmt.Errorf("connect to %s: %w", redact(s.cfg.Servers), err)
	}
	s.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return fmt.Errorf("jetstream: %w", err)
	}
	s.js = js
	if s.leader, err = nc.JetStream(); err != nil {
		nc.Close()
		return fmt.Errorf("jetstream: %w", err)
	}
	return nil
}

// redact drops credentials written into server URLs before they are shown.
func redact(servers []string) string {
	out := make([]string, len(servers))
	for i, u := range servers {
		if at := strings.LastIndexByte(u, '@'); at >= 0 {
			scheme, _, _ := strings.Cut(u, "://")
			u = scheme + "://***" + u[at:]
		}
		out[i] = u
	}
	return strings.Join(out, ",")
}

func (s *Store) setup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := s.js.AccountInfo(ctx); err != nil {
		switch {
		case errors.Is(err, jetstream.ErrJetStreamNotEnabled):
			return errors.New("the NATS server does not have JetStream enabled (start nats-server with -js)")
		case errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
			return errors.New("JetStream is not enabled for this account (give the account JetStream limits)")
		case errors.Is(err, context.Canceled):
			return fmt.Errorf("read JetStream account info: %w", err) // stopped while starting
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout),
			errors.Is(unavailable(err), relay.ErrUnavailable):
			// A cluster without a meta leader answers nothing, or 503.
			return fmt.Errorf("JetStream did not answer: its cluster has no meta leader (are most of its nodes down, or is it still forming?): %w", err)
		default:
			return fmt.Errorf("read JetStream account info (does the account have JetStream rights?): %w", err)
		}
	}
	if s.cfg.Existing {
		return s.setupExisting(ctx)
	}
	var st jetstream.Stream
	err := s.retryCreate(ctx, createTry, func(ctx context.Context) (err error) {
		have, err := s.checkReplicas(ctx, s.cfg.Prefix)
		if err != nil {
			return err
		}
		if have != nil && have.Config.Replicas == s.cfg.Replicas && have.Config.AllowAtomicPublish &&
			have.Config.MaxMsgsPerSubject == 1 && len(have.Config.Subjects) == 1 && have.Config.Subjects[0] == s.subj.all() {
			// Already as wanted: an update would only race the consumers
			// other relays are making on it.
			st, err = s.js.Stream(ctx, s.cfg.Prefix)
			return err
		}
		st, err = s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:               s.cfg.Prefix,
			Description:        "sidehook relay: events, deliveries and their work items",
			Subjects:           []string{s.subj.all()},
			Retention:          jetstream.LimitsPolicy,
			MaxMsgsPerSubject:  1,
			Discard:            jetstream.DiscardOld,
			Storage:            jetstream.FileStorage,
			Replicas:           s.cfg.Replicas,
			Duplicates:         2 * time.Minute,
			AllowAtomicPublish: true,
		})
		return err
	})
	if errors.Is(err, errNeverLower) {
		return err
	}
	if err != nil {
		return s.createError("stream "+s.cfg.Prefix, err)
	}
	s.stream = st
	var kv jetstream.KeyValue
	err = s.retryCreate(ctx, createTry, func(ctx context.Context) (err error) {
		have, err := s.checkReplicas(ctx, "KV_"+s.ctlBucket())
		if err != nil {
			return err
		}
		if have != nil && have.Config.Replicas == s.cfg.Replicas {
			kv, err = s.js.KeyValue(ctx, s.ctlBucket())
			return err
		}
		kv, err = s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      s.ctlBucket(),
			Description: "sidehook relay: endpoints, disabled marks, tokens, signing keys",
			Storage:     jetstream.FileStorage,
			Replicas:    s.cfg.Replicas,
		})
		return err
	})
	if errors.Is(err, errNeverLower) {
		return err
	}
	if err != nil {
		return s.createError("bucket "+s.ctlBucket(), err)
	}
	s.ctl = kv
	if err := s.waitReadable(ctx); err != nil {
		return err
	}
	if err := s.agreeAckWait(ctx); err != nil {
		return err
	}
	return s.subscribe()
}

// setupExisting is setup for Config.Existing: the stream and bucket the
// relays made, as they are.
func (s *Store) setupExisting(ctx context.Context) error {
	notFound := func(what string) error {
		return fmt.Errorf("no relay store %q on %s: %s not found (name the relays' store: their store.servers and store.prefix)",
			s.cfg.Prefix, redact(s.cfg.Servers), what)
	}
	st, err := s.js.Stream(ctx, s.cfg.Prefix)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return notFound("stream " + s.cfg.Prefix)
	}
	if err != nil {
		return fmt.Errorf("read stream %s: %w", s.cfg.Prefix, err)
	}
	s.stream = st
	kv, err := s.js.KeyValue(ctx, s.ctlBucket())
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return notFound("bucket " + s.ctlBucket())
	}
	if err != nil {
		return fmt.Errorf("read bucket %s: %w", s.ctlBucket(), err)
	}
	s.ctl = kv
	if err := s.waitReadable(ctx); err != nil {
		return err
	}
	return s.subscribe()
}

// subscribe hears the work and retry items any relay writes.
func (s *Store) subscribe() error {
	for _, ordered := range []bool{false, true} {
		if _, err := s.nc.Subscribe(s.subj.workAll(ordered), s.onWork); err != nil {
			return fmt.Errorf("subscribe to work items: %w", err)
		}
	}
	if _, err := s.nc.Subscribe(s.subj.retryAll(), s.onRetry); err != nil {
		return fmt.Errorf("subscribe to retry items: %w", err)
	}
	if _, err := s.nc.Subscribe(s.subj.backAll(), s.onBack); err != nil {
		return fmt.Errorf("subscribe to work given back: %w", err)
	}
	return nil
}

// waitReadable waits until the stream and the bucket answer reads: just
// after a replicated stream is made, it may have no leader yet and its
// bucket's direct gets no responder ("no responders available"), and a
// relay must not fail its start on that.
func (s *Store) waitReadable(ctx context.Context) error {
	probe := s.subj.p + ".ready" // no record lives there
	reads := []struct {
		what string
		read func(context.Context) error
	}{
		{"stream " + s.cfg.Prefix, func(ctx context.Context) error {
			_, err := s.get(ctx, probe)
			return err
		}},
		{"bucket " + s.ctlBucket(), func(ctx context.Context) error {
			_, err := s.ctl.Get(ctx, "ready")
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				return nil
			}
			return err
		}},
	}
	for _, r := range reads {
		for wait := 10 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
			rctx, cancel := context.WithTimeout(ctx, readyProbe)
			err := r.read(rctx)
			cancel()
			if err == nil {
				break
			}
			// A stream whose replicas have not chosen a leader yet may
			// leave a read unanswered rather than refuse it: relays
			// started together on a fresh cluster failed to start so.
			unanswered := ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout))
			if !unanswered && !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, jetstream.ErrNoStreamResponse) {
				return fmt.Errorf("read %s: %w", r.what, err)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("read %s: no replica answers yet: %w", r.what, err)
			case <-time.After(wait):
			}
		}
	}
	return nil
}

// readyProbe bounds one read of waitReadable, which asks again until
// setup's time is up.
const readyProbe = 2 * time.Second

// errNeverLower ends checkReplicas' error.
var errNeverLower = errors.New("a relay never lowers them")

// checkReplicas refuses to lower the replicas of an existing stream: a
// relay started with store.replicas 1 (or --store alone) beside relays on
// 3 would otherwise quietly drop the copies every relay counts on. Raising
// them is an update like any other. It returns the stream's info, nil when
// there is no such stream yet.
func (s *Store) checkReplicas(ctx context.Context, name string) (*jetstream.StreamInfo, error) {
	st, err := s.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", name, err)
	}
	info := st.CachedInfo()
	if have := info.Config.Replicas; have > s.cfg.Replicas {
		return nil, misconfigured(fmt.Errorf("stream %s has %d replicas and this relay asks for %d: set store.replicas to %d in the configuration: %w",
			name, have, s.cfg.Replicas, have, errNeverLower))
	}
	return info, nil
}

// Errors of JetStream that a create of a stream or bucket meets when the
// servers cannot hold the replicas asked for.
const (
	errCodeNotClustered jetstream.ErrorCode = 10074 // replicas > 1 not supported in non-clustered mode
	errCodeNoResources  jetstream.ErrorCode = 10023 // insufficient resources
)

// createError is the error of a failed create or update of what (a
// stream or bucket), saying what to do about it: misconfigured when the
// servers can never hold the replicas asked for.
func (s *Store) createError(what string, err error) error {
	err = fmt.Errorf("create or update %s (%s): %w", what, s.createHint(err), err)
	var ae *jetstream.APIError
	if errors.As(err, &ae) && ae.ErrorCode == errCodeNotClustered {
		return misconfigured(err)
	}
	return err
}

// createHint says what to do about err, a failed create or update of a
// stream or bucket: most often a store.replicas the servers cannot hold,
// else the account's rights or the server's version.
func (s *Store) createHint(err error) string {
	var ae *jetstream.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode {
		case errCodeNotClustered:
			return fmt.Sprintf("store.replicas is %d and the NATS server is not in a cluster: set store.replicas to 1, or run a JetStream cluster of three nodes", s.cfg.Replicas)
		case errCodeNoPeers:
			return fmt.Sprintf("store.replicas is %d and the cluster has not that many JetStream nodes up: start them, or set store.replicas to 1", s.cfg.Replicas)
		case errCodeNoResources:
			return "JetStream has no room for it: raise the server's max_file_store or the account's storage limit"
		}
	}
	return "does the account have rights to manage streams, and is the server 2.12 or later?"
}

// createTry bounds one create-or-update of a stream or bucket.
const createTry = 3 * time.Second

// consumerTry bounds one look-up, create or read of a consumer: a
// cluster may lose the answer to one (its leader not yet elected, or
// moving), and asking again finds it.
const consumerTry = 2 * time.Second

// errCodeNoPeers is JetStream's "no suitable peers for placement": a
// cluster still forming (or a node restarting) cannot place the replicas
// yet. Asked again a moment later, it can.
const errCodeNoPeers jetstream.ErrorCode = 10005

// retryCreate runs create, each try bounded by per, until it
// succeeds, fails with an answer, or ctx ends. On a fresh cluster, relays
// that start together each ask to create the same replicated stream or
// consumer, and the server may answer none of them; asked again, it finds
// it.
//
// A wait for the replicas' nodes is logged once, so that a relay asking
// for more replicas than the cluster has nodes does not start in silence
// until setup's time is up.
func (s *Store) retryCreate(ctx context.Context, per time.Duration, create func(context.Context) error) error {
	var lacking error // the last answer that the cluster lacks the nodes
	for {
		try, cancel := context.WithTimeout(ctx, per)
		err := create(try)
		cancel()
		timedOut := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
		var apiErr *jetstream.APIError
		forming := errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeNoPeers
		if timedOut && ctx.Err() != nil && lacking != nil {
			// The time ran out during a try: why it never worked is
			// the servers' last answer, not the deadline.
			return lacking
		}
		if err == nil || !(timedOut || forming) || ctx.Err() != nil {
			return err
		}
		if forming {
			if lacking == nil {
				deadline, _ := ctx.Deadline()
				s.log.Warn().Err(err).Int("replicas", s.cfg.Replicas).Time("until", deadline).
					Msg("JetStream has not the nodes to place store.replicas yet: waiting for them (is the cluster smaller than that?)")
			}
			lacking = err
			select {
			case <-ctx.Done():
				return err
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// Health is nil while connected to NATS and JetStream takes this store's
// writes. A store whose last write failed for want of JetStream (its
// cluster lost its quorum, or its server is cut off from the others) is
// unhealthy until a write goes through: its relay's ingests would all be
// 503s, and /readyz says so, for a load balancer to send producers to
// another relay. An idle store learns it from its shared ack wait's
// rewrite, every AckWait/3 (holdAckWait).
func (s *Store) Health() error {
	if err := s.ready(); err != nil {
		return err
	}
	if since := s.failing.Load(); since != 0 {
		return fmt.Errorf("%w: JetStream has taken no write since %s (has its cluster lost its quorum?)",
			relay.ErrUnavailable, time.Unix(0, since).UTC().Format(time.RFC3339))
	}
	return nil
}

// noteWrite records the outcome of a write for Health: one that went
// through ends a failure, one that failed for want of JetStream starts
// one. Other errors (a compare-and-set lost, a record too large) say
// nothing of JetStream's health.
func (s *Store) noteWrite(err error) {
	switch {
	case err == nil:
		s.failing.Store(0)
	case errors.Is(unavailable(err), relay.ErrUnavailable):
		s.failing.CompareAndSwap(0, time.Now().UnixNano())
	}
}

// ready is nil while the store is open and connected to NATS: writes are
// tried, whatever the last one met (see Health).
func (s *Store) ready() error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("%w: store closed", relay.ErrUnavailable)
	}
	if st := s.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("%w: NATS connection %s", relay.ErrUnavailable, strings.ToLower(st.String()))
	}
	return nil
}

// Close stops the heartbeats and the control watch (WatchControl), waits
// for them, gives up the shared AckWait if no relay took it up since this
// store claimed it (unclaimAckWait), and closes the connection. Leases still held
// are not given back: they time out after AckWait and go to another relay,
// as when a relay dies. Close is safe to call twice, and from several
// goroutines: every call returns once the connection is closed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.stop)
		s.done.Wait()
		s.unclaimAckWait()
		s.nc.Close()
	})
	return nil
}

// Wake names endpoints that may have new due work, written by any relay.
// Reading it is optional; nothing blocks when nobody does.
func (s *Store) Wake() <-chan relay.EndpointRef { return s.wake }

func (s *Store) notify(ref relay.EndpointRef) {
	select {
	case s.wake <- ref:
	default: // the reader is behind; the periodic tick names it again
	}
}

func (s *Store) onWork(m *nats.Msg) {
	org, ep, _, err := s.subj.parseWork(m.Subject)
	if err != nil {
		return
	}
	ref := relay.EndpointRef{Org: org, Endpoint: ep}
	s.mu.Lock()
	if _, ok := s.consumers[ref]; !ok {
		s.consumers[ref] = consumerState{}
	}
	s.mu.Unlock()
	s.notify(ref)
}

// onRetry hears a retry item written by any relay: a Take here lists the
// endpoint's retries again by its due time. Nothing is woken: the relay
// that wrote it takes it when due, and if that relay dies, the tick
// names the endpoint to the others.
func (s *Store) onRetry(m *nats.Msg) {
	org, ep, due, _, err := s.subj.parseRetry(m.Subject)
	if err != nil {
		return
	}
	s.noteRetry(relay.EndpointRef{Org: org, Endpoint: ep}, due)
}

// tick names every known endpoint four times each AckWait, so work given
// back by a relay that died (or a retry whose time came) is looked at
// again within a quarter of AckWait of its lease's end, not up to a whole
// AckWait later. An idle endpoint costs one Take each tick.
func (s *Store) tick() {
	defer s.done.Done()
	t := time.NewTicker(s.cfg.AckWait / 4)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.Lock()
			refs := make([]relay.EndpointRef, 0, len(s.consumers))
			for ref := range s.consumers {
				refs = append(refs, ref)
			}
			s.mu.Unlock()
			for _, ref := range refs {
				s.notify(ref)
			}
		}
	}
}

// heartbeat keeps this store's leases alive while it runs.
func (s *Store) heartbeat() {
	defer s.done.Done()
	t := time.NewTicker(s.cfg.AckWait / 3)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.Lock()
			leases := make(map[string]*lease, len(s.leases))
			for k, l := range s.leases {
				leases[k] = l
			}
			s.mu.Unlock()
			for k, l := range leases {
				s.mu.Lock()
				lost := l.lost
				s.mu.Unlock()
				if lost {
					continue
				}
				if l.ordered {
					_, id, _ := strings.Cut(k, "/")
					s.renewLock(context.Background(), id, l)
					continue
				}
				s.extend(context.Background(), l)
			}
		}
	}
}

// extend renews an unordered lease: the work item's AckWait starts
// again. Only a lease this store holds: one that lapsed here may have
// been retaken by another relay, which now holds the same work item (the
// consumer's progress mark does not tell deliveries of it apart), or
// ended by another's Record. Extended from here, a retaken item would
// stay with the other relay while this one's attempt lasts, even if the
// other died. A lease found lost is renewed no more (see lose). When the
// state cannot be read, the lease is renewed: it was this store's at the
// last look, and a heartbeat missed could lose it.
func (s *Store) extend(ctx context.Context, l *lease) {
	ctx, cancel := s.bound(ctx, opTimeout)
	defer cancel()
	st, _, err := s.state(ctx, l.ref.Org, l.st.ID)
	switch {
	case err == nil && st.Leased && !st.heldBy(s.id):
		s.lose(l)
		s.log.Warn().Str("delivery", l.st.ID).Str("endpoint", l.ref.String()).
			Msg("lease heartbeat: the lease lapsed and another relay retook the delivery; the attempt here goes on")
		return
	case errors.Is(err, relay.ErrNotFound) || err == nil && !st.Leased:
		// Ended meanwhile (its endpoint deleted, a lapsed relay's
		// Record, a purge): nothing to keep.
		s.lose(l)
		s.log.Debug().Str("delivery", l.st.ID).Msg("lease heartbeat: the delivery ended during its attempt")
		return
	}
	if err := l.msg.InProgress(); err != nil {
		s.log.Debug().Err(err).Msg("lease heartbeat")
	}
}

// lose marks a lease lost: the heartbeat leaves it, so its caller says
// so once.
func (s *Store) lose(l *lease) {
	s.mu.Lock()
	l.lost = true
	s.mu.Unlock()
}

// consumerName is a durable name for an endpoint's consumer: names allow
// fewer characters than ids, so it is a hash.
func (s *Store) consumerName(ref relay.EndpointRef) string {
	h := sha256.Sum256([]byte(ref.Org + "/" + ref.Endpoint))
	return s.cfg.Prefix + "_q_" + hex.EncodeToString(h[:12])
}

// SetMaxInFlight tells the store an endpoint's max_in_flight (n <= 0:
// unlimited). It becomes the MaxAckPending of the endpoint's consumer, so
// it bounds the attempts of all relays together; the consumer is updated
// by the next Take or Accept. The relay's dispatcher calls it (an optional
// interface) before its first Take of an endpoint and whenever the value
// changes (an API PUT). Relays that disagree, as during a rolling change,
// leave the value of the last one told.
func (s *Store) SetMaxInFlight(ref relay.EndpointRef, n int) {
	if n <= 0 {
		n = -1
	}
	s.mu.Lock()
	s.limits[ref] = n
	s.mu.Unlock()
}

func (s *Store) consumerConfig(ref relay.EndpointRef, maxAckPending int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       s.consumerName(ref),
		Description:   "sidehook deliveries to " + ref.String(),
		FilterSubject: s.subj.workOf(ref.Org, ref.Endpoint, false),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: maxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		Replicas:      s.cfg.Replicas,
	}
}

// sameConsumer reports whether a consumer already has the settings this
// store wants of it.
func sameConsumer(have, want jetstream.ConsumerConfig) bool {
	return have.FilterSubject == want.FilterSubject && have.AckPolicy == want.AckPolicy &&
		have.AckWait == want.AckWait && have.MaxDeliver == want.MaxDeliver &&
		have.MaxAckPending == want.MaxAckPending && have.DeliverPolicy == want.DeliverPolicy &&
		have.Replicas == want.Replicas
}

// ensureConsumer returns the consumer of an endpoint's unordered work
// items, made or updated to this store's settings, and whether it limits
// its pending messages. Its MaxAckPending is the endpoint's max_in_flight
// once the relay told it; before that, a consumer that exists keeps its
// own (another relay's) and a new one is unlimited. An existing consumer
// as wanted is not updated: an update races other relays' use of it.
func (s *Store) ensureConsumer(ctx context.Context, ref relay.EndpointRef) (jetstream.Consumer, bool, error) {
	s.mu.Lock()
	cs := s.consumers[ref]
	want := s.limits[ref]
	s.mu.Unlock()
	if cs.c != nil && cs.limit == want {
		return cs.c, cs.limited, nil
	}
	cfg := s.consumerConfig(ref, want)
	if want == 0 {
		cfg.MaxAckPending = -1
	}
	var c jetstream.Consumer
	// Relays that start together make the same consumer at once, and a
	// cluster may then leave a create unanswered though it made the
	// consumer (nats-server#8350): each try is bounded, and the next one
	// finds it.
	err := s.retryCreate(ctx, consumerTry, func(ctx context.Context) (err error) {
		var made bool
		if c, made, err = s.makeConsumer(ctx, cfg, want); err != nil || !made {
			return err
		}
		return awaitConsumerLeader(ctx, c)
	})
	if err != nil {
		return nil, false, fmt.Errorf("consumer for %s: %w", ref, err)
	}
	limited := c.CachedInfo().Config.MaxAckPending > 0
	s.mu.Lock()
	s.consumers[ref] = consumerState{c: c, limit: want, limited: limited}
	s.mu.Unlock()
	return c, limited, nil
}

// makeConsumer looks up the consumer of cfg and makes or updates it to
// cfg (keeping its MaxAckPending when want is 0); made reports that it
// did.
func (s *Store) makeConsumer(ctx context.Context, cfg jetstream.ConsumerConfig, want int) (c jetstream.Consumer, made bool, err error) {
	for try := 0; try < 2; try++ {
		c, err = s.js.Consumer(ctx, s.cfg.Prefix, cfg.Durable)
		switch {
		case err == nil:
			have := c.CachedInfo().Config
			if want == 0 {
				cfg.MaxAckPending = have.MaxAckPending
			}
			if sameConsumer(have, cfg) {
				return c, false, nil
			}
			c, err = s.js.UpdateConsumer(ctx, s.cfg.Prefix, cfg)
		case errors.Is(err, jetstream.ErrConsumerNotFound):
			// Another relay making it at once with other settings fails
			// this: look it up again.
			c, err = s.js.CreateConsumer(ctx, s.cfg.Prefix, cfg)
		}
		if !errors.Is(err, jetstream.ErrConsumerExists) {
			return c, err == nil, err
		}
	}
	return nil, false, err
}

// awaitConsumerLeader waits until a consumer just made or updated answers.
// The cluster acknowledges a create once it has assigned the consumer,
// before the consumer's replicas elect a leader, and until they do its
// info may answer "not found", half a second late. A Take would then
// drop the consumer as deleted and make it again, taking nothing.
func awaitConsumerLeader(ctx context.Context, c jetstream.Consumer) error {
	for {
		_, err := c.Info(ctx)
		if !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// dropConsumer forgets a cached consumer that the server no longer has
// (another relay deleted the endpoint).
func (s *Store) dropConsumer(ref relay.EndpointRef) {
	s.mu.Lock()
	delete(s.consumers, ref)
	delete(s.unheard, ref) // a new consumer counts them when made
	s.mu.Unlock()
}

// ready fails fast while the connection is down, instead of letting a
// write wait in the reconnect buffer.
