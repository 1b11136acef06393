package natstunnel

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/natsstore"
	"github.com/sidehook/sidehook/relay/tunnel"
)

// DefaultPresenceEvery is how often a relay tells the others its tunnels
// when Options.PresenceEvery is zero.
const DefaultPresenceEvery = 5 * time.Second

// defaultTimeout bounds a request whose context has no deadline (the relay
// always sets the endpoint's timeout; a caller that does not still must
// not wait forever for a relay that died).
const defaultTimeout = tunnel.DefaultForwardTimeout

// queueGroup makes one holder answer when several relays hold a name
// and take the event type.
const queueGroup = "holders"

const hdrEvent = relay.HeaderEvent

// Options configures a Server. The zero value is usable.
type Options struct {
	Logger zerolog.Logger
	// PresenceEvery is how often this relay tells the others its tunnels;
	// a relay's tunnels leave the others' lists 3 × PresenceEvery after
	// its last word (at once when it closes). Zero means
	// DefaultPresenceEvery.
	PresenceEvery time.Duration
}

// Server is a relay.TunnelServer for relays sharing a NATS store: a
// client connected to any of them takes the deliveries any of them
// attempts. See the package doc.
type Server struct {
	local *tunnel.Server // the clients connected to this relay
	nc    *nats.Conn
	subj  subjects
	id    string // this relay among those sharing the store
	every time.Duration
	log   zerolog.Logger

	stop     chan struct{}
	loopDone chan struct{}
	// closeDone is closed when the first Close has done its work; later
	// calls wait for it.
	closeDone chan struct{}
	// handlers are the requests of other relays being answered.
	handlers sync.WaitGroup

	mu      sync.Mutex
	started bool
	closed  bool
	held    map[key]*holding
	peers   map[string]peer
	subs    []*nats.Subscription // presence and ask
}

var _ relay.TunnelServer = (*Server)(nil)

type key struct{ org, name string }

// holding counts the local clients of one name by what they take, and
// holds the subscriptions that offer exactly that to the other relays
// while there is a client.
type holding struct {
	n     int
	all   int            // clients without a filter: they take every event type
	types map[string]int // clients whose filter takes each event type
	// subs are by the subject's last token, the event type's or "*";
	// one that failed is missing, and all are gone after Close.
	subs map[string]*nats.Subscription
}

// tokens are the last tokens of the subjects h is offered on: every
// event type when a client takes them all; else the types its clients
// take, and requests without an event type, which any client takes.
func (h *holding) tokens() []string {
	if h.n == 0 {
		return nil
	}
	if h.all > 0 {
		return []string{"*"}
	}
	out := []string{natsstore.Token("")}
	for t := range h.types {
		out = append(out, natsstore.Token(t))
	}
	return out
}

// peer is what another relay last said of its tunnels.
type peer struct {
	tunnels []relay.TunnelInfo
	expires time.Time
}

// New wraps local so that its clients also take the deliveries of the
// other relays on nc under the store prefix. It does no I/O: Start it,
// then Close it (which closes local too). nc stays the caller's.
func New(local *tunnel.Server, nc *nats.Conn, prefix string, opts Options) *Server {
	if opts.PresenceEvery <= 0 {
		opts.PresenceEvery = DefaultPresenceEvery
	}
	id := rand.Text()[:12]
	return &Server{
		local:     local,
		nc:        nc,
		subj:      subjects{root: "_sidehook." + prefix},
		id:        id,
		every:     opts.PresenceEvery,
		log:       opts.Logger.With().Str("component", "natstunnel").Str("relay_id", id).Logger(),
		stop:      make(chan struct{}),
		loopDone:  make(chan struct{}),
		closeDone: make(chan struct{}),
		held:      map[key]*holding{},
		peers:     map[string]peer{},
	}
}

// ID is this relay among those sharing the store: random, new at each
// start. The others name it as the holder of its clients (Tunnels), and
// its log lines carry it as relay_id.
func (s *Server) ID() string { return s.id }

// subjects are core NATS subjects, never stored: the store's stream
// captures only PREFIX.>, and these live under _sidehook.PREFIX.
type subjects struct{ root string }

// request is the subject of a request to org's tunnel name with event
// type evt ("" for none).
func (s subjects) request(org, name, evt string) string {
	return s.tunnel(org, name, natsstore.Token(evt))
}

// tunnel is the subject of org's tunnel name with last token tok: an
// event type's, or "*" for all of them.
func (s subjects) tunnel(org, name, tok string) string {
	return s.root + ".tun." + natsstore.Token(org) + "." + natsstore.Token(name) + "." + tok
}
func (s subjects) presence() string { return s.root + ".tunnels" }
func (s subjects) ask() string      { return s.root + ".tunnels.ask" }

// Start listens to the other relays' presence, asks them for it at once
// (so a relay just started lists every tunnel without waiting a period)
// and tells them this relay's tunnels every PresenceEvery.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.started {
		return errors.New("start tunnels: already started or closed")
	}
	pres, err := s.nc.Subscribe(s.subj.presence(), s.onPresence)
	if err != nil {
		return fmt.Errorf("start tunnels: subscribe to presence: %w", err)
	}
	ask, err := s.nc.Subscribe(s.subj.ask(), func(*nats.Msg) { s.announce() })
	if err != nil {
		pres.Unsubscribe()
		return fmt.Errorf("start tunnels: subscribe to presence requests: %w", err)
	}
	s.subs = []*nats.Subscription{pres, ask}
	if err := s.nc.Publish(s.subj.ask(), nil); err != nil {
		s.log.Warn().Err(err).Msg("ask the other relays for their tunnels")
	}
	s.started = true
	go s.loop()
	// Its relay_id is how GET /v1/tunnels names this relay as a
	// client's holder.
	s.log.Info().Msg("tunnels shared with the relays on the store")
	return nil
}

func (s *Server) loop() {
	defer close(s.loopDone)
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.announce()
			s.prune()
		}
	}
}

// Close stops answering other relays, waits (up to ctx) for the answers
// in progress, tells the others this relay's tunnels are gone, and closes
// the local server. Safe to call twice, and from several goroutines: a
// later call returns once the first has done that work (or ctx is done).
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		select {
		case <-s.closeDone:
		case <-ctx.Done():
			return fmt.Errorf("close tunnels: %w", ctx.Err())
		}
		return s.local.Close(ctx)
	}
	defer close(s.closeDone)
	s.closed = true
	started := s.started
	for _, h := range s.held {
		for tok, sub := range h.subs {
			sub.Unsubscribe()
			delete(h.subs, tok)
		}
	}
	for _, sub := range s.subs {
		sub.Unsubscribe()
	}
	s.mu.Unlock()
	if started {
		close(s.stop)
		<-s.loopDone
		s.publish(&presence{Relay: s.id}) // TTL 0: forget this relay now
	}
	done := make(chan struct{})
	go func() { s.handlers.Wait(); close(done) }()
	var errs []error
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("close tunnels: answers to other relays: %w", ctx.Err()))
	}
	// After the answers, so a delivery another relay is making through a
	// client here ends as it would on that relay.
	if err := s.local.Close(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Serve serves a client on the local server and, while this relay holds
// at least one client of (org, name), answers the other relays'
// deliveries to it of the event types its clients take.
func (s *Server) Serve(w http.ResponseWriter, r *http.Request, org, name string, onConnect func(events []string)) {
	k := key{org, name}
	// onConnect runs in its own goroutine and may come after the local
	// Serve has returned; mu orders the two so a hold is always released.
	var mu sync.Mutex
	var held, gone bool
	var filter []string
	s.local.Serve(w, r, org, name, func(events []string) {
		mu.Lock()
		if gone {
			mu.Unlock()
			return
		}
		held, filter = true, events
		s.hold(k, filter)
		mu.Unlock()
		// The subscriptions are at the server before the relay makes the
		// tunnel's waiting deliveries due: another relay may take them.
		if err := s.nc.FlushTimeout(time.Second); err != nil {
			s.log.Debug().Err(err).Msg("flush the tunnel subscription")
		}
		s.announce()
		if onConnect != nil {
			onConnect(events)
		}
	})
	mu.Lock()
	gone = true
	if held {
		s.release(k, filter)
	}
	mu.Unlock()
	if held {
		s.announce()
	}
}

// hold counts a client of k with --events filter and offers what it
// takes.
func (s *Server) hold(k key, filter []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.held[k]
	if h == nil {
		h = &holding{types: map[string]int{}, subs: map[string]*nats.Subscription{}}
		s.held[k] = h
	}
	h.n++
	if takesAll(filter) {
		h.all++
	} else {
		for _, t := range filter {
			h.types[t]++
		}
	}
	s.offer(k, h)
}

// release undoes hold.
func (s *Server) release(k key, filter []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.held[k]
	if h == nil {
		return
	}
	h.n--
	if takesAll(filter) {
		h.all--
	} else {
		for _, t := range filter {
			if h.types[t]--; h.types[t] <= 0 {
				delete(h.types, t)
			}
		}
	}
	s.offer(k, h)
	if h.n <= 0 {
		delete(s.held, k)
	}
}

// offer brings k's subscriptions in step with what its clients take,
// subscribing before unsubscribing so no request finds none between.
// Called with mu held.
func (s *Server) offer(k key, h *holding) {
	want := h.tokens()
	if s.closed {
		want = nil
	}
	for _, tok := range want {
		if h.subs[tok] != nil {
			continue
		}
		sub, err := s.nc.QueueSubscribe(s.subj.tunnel(k.org, k.name, tok), queueGroup, s.onRequest)
		if err != nil {
			// The clients still take this relay's own deliveries.
			s.log.Error().Err(err).Str("org", k.org).Str("tunnel", k.name).Str("event", tok).Msg("tunnel not offered to the other relays")
			continue
		}
		h.subs[tok] = sub
	}
	for tok, sub := range h.subs {
		if slices.Contains(want, tok) {
			continue
		}
		if err := sub.Unsubscribe(); err != nil {
			s.log.Debug().Err(err).Str("org", k.org).Str("tunnel", k.name).Str("event", tok).Msg("unsubscribe tunnel")
		}
		delete(h.subs, tok)
	}
}

// takesAll reports whether a client with --events filter takes every
// event type, as relay/tunnel matches a filter.
func takesAll(filter []string) bool {
	return len(filter) == 0 || slices.Contains(filter, event.Wildcard)
}

// offered reports whether this relay answers other relays for (org, name)
// and event type evt ("" for none).
func (s *Server) offered(org, name, evt string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.held[key{org, name}]
	return h != nil && (h.subs["*"] != nil || h.subs[natsstore.Token(evt)] != nil)
}

// ErrTooLarge is wrapped by Send's error when a request to a tunnel held
// by another relay does not fit in one NATS message.
var ErrTooLarge = errors.New("request too large for the NATS max payload")

// noClientError matches tunnel.ErrNoClient, as the local server's does,
// so the relay treats "no client here" and "no client anywhere" alike.
type noClientError struct{ msg string }

func (e *noClientError) Error() string        { return e.msg }
func (e *noClientError) Is(target error) bool { return target == tunnel.ErrNoClient }

// remoteError is the holder's error text. It has no Unwrap, so the relay,
// which reports an error's innermost cause, shows all of it; it matches
// context.DeadlineExceeded when the timeout ran out at the holder, so the
// relay calls it a timeout as it does for a local client.
type remoteError struct {
	msg     string
	timeout bool
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Is(target error) bool {
	return e.timeout && target == context.DeadlineExceeded
}

// Send delivers through a local client when there is one that takes the
// request, and otherwise through whichever relay holds the tunnel.
func (s *Server) Send(ctx context.Context, req *relay.OutboundRequest, keep int64) (*relay.Response, error) {
	resp, err := s.local.Send(ctx, req, keep)
	if err == nil || !errors.Is(err, tunnel.ErrNoClient) {
		return resp, err
	}
	return s.sendRemote(ctx, req, keep)
}

func (s *Server) sendRemote(ctx context.Context, req *relay.OutboundRequest, keep int64) (*relay.Response, error) {
	name, _, _, err := tunnel.ParseURL(req.URL)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
		defer cancel()
	}
	dl, _ := ctx.Deadline()
	data, err := encodeRequest(&request{Method: req.Method, URL: req.URL, Header: req.Header, Org: req.Org,
		DeliveryID: req.DeliveryID, Attempt: req.Attempt, TimeoutMS: max(time.Until(dl).Milliseconds(), 1), Keep: keep, Body: req.Body})
	if err != nil {
		return nil, fmt.Errorf("tunnel %s: encode request: %w", name, err)
	}
	if limit := s.nc.MaxPayload(); int64(len(data)) > limit {
		return nil, fmt.Errorf("tunnel %s is not connected to this relay, and a request of %d bytes (body %d) is over the NATS max payload of %d bytes that carries it to another relay (raise max_payload on the NATS servers): %w",
			name, len(data), len(req.Body), limit, ErrTooLarge)
	}
	start := time.Now()
	msg, err := s.nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: s.subj.request(req.Org, name, req.Header.Get(hdrEvent)), Data: data})
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, &noClientError{fmt.Sprintf("%v for %s (on any relay)", tunnel.ErrNoClient, name)}
	case errors.Is(err, nats.ErrMaxPayload):
		return nil, fmt.Errorf("tunnel %s: %w: %w", name, ErrTooLarge, err)
	case err != nil:
		// A failed attempt has its latency too (a timeout took the
		// endpoint's timeout), as from the local tunnel and HTTP.
		return &relay.Response{Latency: time.Since(start)}, fmt.Errorf("tunnel %s on another relay: %w", name, err)
	}
	rep, err := decodeReply(msg.Data)
	if err != nil {
		return nil, fmt.Errorf("tunnel %s: the relay holding it answered: %w", name, err)
	}
	switch {
	case rep.NoClient:
		return nil, &noClientError{rep.Error}
	case rep.Error != "":
		lat := time.Duration(rep.LatencyUS) * time.Microsecond
		if lat <= 0 {
			lat = time.Since(start)
		}
		return &relay.Response{Latency: lat}, &remoteError{msg: rep.Error, timeout: rep.Timeout}
	}
	body := rep.Body
	if keep >= 0 && int64(len(body)) > keep {
		body = body[:keep]
	}
	h := rep.Header
	if h == nil {
		h = http.Header{}
	}
	return &relay.Response{Status: rep.Status, Header: h, Body: body, Latency: time.Duration(rep.LatencyUS) * time.Microsecond}, nil
}

// onRequest is another relay's delivery to a tunnel held here. NATS calls
// a subscription's handler one message at a time, so each is answered in
// its own goroutine: a slow local app must not hold up the next delivery.
func (s *Server) onRequest(m *nats.Msg) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.respond(m, &reply{Error: "relay holding the tunnel is shutting down"})
		return
	}
	s.handlers.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.handlers.Done()
		s.respond(m, s.answer(m))
	}()
}

func (s *Server) answer(m *nats.Msg) *reply {
	req, err := decodeRequest(m.Data)
	if err != nil {
		return &reply{Error: err.Error()}
	}
	name, _, _, _ := tunnel.ParseURL(req.URL) // checked by decodeRequest
	if evt := req.Header.Get(hdrEvent); m.Subject != s.subj.request(req.Org, name, evt) {
		return &reply{Error: fmt.Sprintf("tunnel request for %s of %s (event %q) came on subject %s", name, req.Org, evt, m.Subject)}
	}
	timeout := defaultTimeout
	if req.TimeoutMS > 0 {
		timeout = time.Duration(req.TimeoutMS) * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, err := s.local.Send(ctx, &relay.OutboundRequest{Method: req.Method, URL: req.URL, Header: req.Header, Body: req.Body,
		Org: req.Org, DeliveryID: req.DeliveryID, Attempt: req.Attempt}, req.Keep)
	if err != nil {
		rep := &reply{Error: err.Error(), NoClient: errors.Is(err, tunnel.ErrNoClient), Timeout: errors.Is(err, context.DeadlineExceeded)}
		if resp != nil {
			rep.LatencyUS = resp.Latency.Microseconds()
		}
		return rep
	}
	return &reply{Status: resp.Status, Header: resp.Header, Body: resp.Body, LatencyUS: resp.Latency.Microseconds()}
}

// respond sends rep, cutting its body to fit the max payload: the sender
// keeps only part of an answer's body anyway.
func (s *Server) respond(m *nats.Msg, rep *reply) {
	data, err := encodeReply(rep)
	if err == nil {
		if over := int64(len(data)) - s.nc.MaxPayload(); over > 0 {
			if over >= int64(len(rep.Body)) {
				data, err = encodeReply(&reply{Error: fmt.Sprintf("the local app's answer headers are over the NATS max payload of %d bytes", s.nc.MaxPayload())})
			} else {
				rep.Body = rep.Body[:int64(len(rep.Body))-over]
				data, err = encodeReply(rep)
			}
		}
	}
	if err != nil {
		s.log.Error().Err(err).Msg("encode tunnel reply")
		return
	}
	if err := m.Respond(data); err != nil {
		s.log.Debug().Err(err).Msg("answer a tunnel request")
	}
}
