package tunnel

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/internal/httpjson"
	"github.com/sidehook/sidehook/internal/perkey"
	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
)

// Scheme is the endpoint URL scheme delivered through a tunnel.
const Scheme = "tunnel"

// Defaults of ServerOptions and ClientConfig. A peer that stops answering
// pings is cut after DefaultPongWait, within the 30 s SPEC §8 allows.
const (
	DefaultPingInterval = 10 * time.Second
	DefaultPongWait     = 25 * time.Second
	DefaultWriteWait    = 10 * time.Second
	DefaultHelloWait    = 10 * time.Second
	// DefaultMaxClientsPerOrg bounds the tunnel connections one
	// organisation holds on a relay at once. Each costs about 40 KB
	// (buffers, goroutines); without a bound one API key opened 3,000 in
	// seconds, 110 MB of a relay every organisation shares.
	DefaultMaxClientsPerOrg = 100
)

// maxResultFrame bounds a frame from a tunnel client: a result carries at
// most 64 KiB of body (87 KiB as base64) and MaxResultHeaders of headers
// (at most 384 KiB as JSON). A frame over it cuts the connection.
const maxResultFrame = 1 << 20

// deliveryOverhead is the room a delivery frame leaves, beside its body
// as base64, for its headers and other fields: the relay's own headers
// and an endpoint's take a few KiB. A delivery over it fails its attempt
// with the reason, as one over any client's limit does.
const deliveryOverhead = 256 << 10

// maxDeliveryFrame is the largest delivery frame for bodies of up to
// maxBody bytes: what a relay's ready announces. The in-memory store
// takes any body, so a max_body near the int64 range saturates rather
// than overflows.
func maxDeliveryFrame(maxBody int64) int64 {
	if maxBody > (math.MaxInt64-deliveryOverhead)/4*3-3 {
		return math.MaxInt64
	}
	return int64(base64.StdEncoding.EncodedLen(int(maxBody))) + deliveryOverhead
}

// sendQueue is how many frames may wait for a connection's writer.
const sendQueue = 64

// The relay's delivery headers the client reads.
const (
	hdrEvent = relay.HeaderEvent
	hdrTest  = relay.HeaderTest
)

// ServerOptions configures a Server. The zero value is usable.
type ServerOptions struct {
	Logger zerolog.Logger
	// PublicURL is the relay's address as platforms reach it (its /in/{org}
	// URL is told to clients); empty means the scheme and Host of each
	// client's upgrade request.
	PublicURL string
	// PingInterval, PongWait, WriteWait and HelloWait are the connection's
	// timers; zero means the Default of each. Tests shorten them.
	PingInterval time.Duration
	PongWait     time.Duration
	WriteWait    time.Duration
	HelloWait    time.Duration
	// MaxClientsPerOrg bounds one organisation's connections, waiting for
	// hello or ready (DefaultMaxClientsPerOrg when 0); one more is
	// answered 429.
	MaxClientsPerOrg int
	// MaxBody is the relay's limits.max_body, the largest body a delivery
	// carries (config.DefaultMaxBody when 0). A client's ready tells it
	// the frame that holds such a delivery, so a client that states no
	// limit of its own reads every delivery the relay can take.
	MaxBody int64
}

// Server is the relay side of tunnels: the Transport of tunnel:// endpoints
// and the websocket handler behind GET /v1/tunnel.
type Server struct {
	opts     ServerOptions
	log      zerolog.Logger
	upgrader websocket.Upgrader
	nextID   atomic.Uint64

	mu     sync.Mutex
	groups map[groupKey][]*serverConn
	// greeting are connections waiting for their hello: not yet in
	// groups, and closed at once by Close.
	greeting map[*websocket.Conn]struct{}
	turn     uint64
	closed   bool
	// perOrg counts each organisation's Serve calls in progress.
	perOrg *perkey.Limit
	// serving counts Serve calls in progress, so Close can wait for them.
	serving sync.WaitGroup
}

var _ relay.TunnelServer = (*Server)(nil)

type groupKey struct{ org, name string }

// NewServer returns a Server with no client connected. It starts nothing;
// Close it to end every connection.
func NewServer(opts ServerOptions) *Server {
	if opts.PingInterval <= 0 {
		opts.PingInterval = DefaultPingInterval
	}
	if opts.PongWait <= 0 {
		opts.PongWait = DefaultPongWait
	}
	if opts.WriteWait <= 0 {
		opts.WriteWait = DefaultWriteWait
	}
	if opts.HelloWait <= 0 {
		opts.HelloWait = DefaultHelloWait
	}
	if opts.MaxClientsPerOrg <= 0 {
		opts.MaxClientsPerOrg = DefaultMaxClientsPerOrg
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = config.DefaultMaxBody
	}
	s := &Server{
		opts: opts,
		log:  opts.Logger.With().Str("component", "tunnel").Logger(),
		upgrader: websocket.Upgrader{
			ReadBufferSize:  16 << 10,
			WriteBufferSize: 64 << 10,
			// The client is a program holding an API key, not a browser:
			// no cookie rides along, so the Origin check protects nothing.
			CheckOrigin: func(*http.Request) bool { return true },
		},
		groups:   make(map[groupKey][]*serverConn),
		greeting: make(map[*websocket.Conn]struct{}),
		perOrg:   perkey.New(opts.MaxClientsPerOrg),
	}
	s.upgrader.Error = s.upgradeError
	return s
}

// upgradeError answers a failed websocket handshake in the relay's
// {"error","reason"} shape rather than gorilla's plain text.
func (s *Server) upgradeError(w http.ResponseWriter, r *http.Request, status int, reason error) {
	// RFC 6455 §4.4: say which version the server speaks.
	w.Header().Set("Sec-WebSocket-Version", "13")
	e := &httpjson.Error{Status: status, Code: "not_websocket",
		Reason: "GET " + TunnelPath + " upgrades to a websocket (sidehook tunnel connects to it): " + strings.TrimPrefix(reason.Error(), "websocket: ")}
	if status >= 500 {
		// No hijack: a server problem, not the client's.
		e = &httpjson.Error{Status: status, Code: "internal", Reason: "internal error", Err: reason}
	}
	httpjson.WriteError(w, r, s.log, e)
}

// ErrNoClient is wrapped by Send's error when no client of the tunnel is
// connected (or none takes the event): the relay retries as for a refused
// connection.
var ErrNoClient = errors.New("no tunnel client connected")

// noClientError says which tunnel had no client. It matches ErrNoClient
// through Is rather than wrapping it, so a caller that reports only the
// innermost cause (the relay does) still names the tunnel.
type noClientError struct{ msg string }

func (e *noClientError) Error() string        { return e.msg }
func (e *noClientError) Is(target error) bool { return target == ErrNoClient }

// ErrClosed is returned by Send once the server is closed.
var ErrClosed = errors.New("tunnel server closed")

// Send delivers req to one ready client of the tunnel its URL names and
// waits for the client's result or ctx. It returns at once with an error
// wrapping ErrNoClient when no client can take it.
func (s *Server) Send(ctx context.Context, req *relay.OutboundRequest, keep int64) (*relay.Response, error) {
	name, path, query, err := ParseURL(req.URL)
	if err != nil {
		return nil, err
	}
	evt := req.Header.Get(hdrEvent)
	c, err := s.pick(req.Org, name, evt)
	if err != nil {
		return nil, err
	}
	defer c.inFlight.Add(-1)

	m := &Message{
		Type:       TypeDelivery,
		ID:         s.nextID.Add(1),
		DeliveryID: req.DeliveryID,
		Attempt:    req.Attempt,
		Method:     req.Method,
		Path:       path,
		Query:      query,
		Headers:    req.Header,
		Body:       req.Body,
	}
	if dl, ok := ctx.Deadline(); ok {
		m.TimeoutMS = max(time.Until(dl).Milliseconds(), 1)
	}
	// The writer streams req.Body into the socket, maybe after Send has
	// returned (a timeout while queued): the relay never changes a body it
	// sent, which net/http's transport may also read after returning.
	frame, err := bodyFrame(m)
	if err != nil {
		return nil, err
	}
	// A frame over what the client reads would make it close the
	// connection (1009), failing every other delivery in flight on it,
	// and again at each retry of this one: fail only this attempt, saying
	// why, to the relay's record and to the developer at the client.
	if int64(frame.size()) > c.maxFrame {
		why := c.tooBig(len(req.Body), frame.size())
		c.notSent(m, why)
		return nil, fmt.Errorf("tunnel %s: %s", name, why)
	}
	start := time.Now()
	res, err := c.roundTrip(ctx, m.ID, m.DeliveryID, frame)
	lat := time.Since(start)
	// A failed attempt has its latency too (a timeout took the endpoint's
	// timeout), as from the HTTP transport.
	if err != nil {
		return &relay.Response{Latency: lat}, fmt.Errorf("tunnel %s: %w", name, err)
	}
	if res.Status == 0 {
		// The client reached no answer from the local app: for the retry
		// rules that is a refused connection, not a response.
		return &relay.Response{Latency: lat}, fmt.Errorf("tunnel %s: local app: %s", name, res.Error)
	}
	body, truncated := res.Body, res.Truncated
	if keep >= 0 && int64(len(body)) > keep {
		body, truncated = body[:keep], true
	}
	h := res.Headers
	if h == nil {
		h = http.Header{}
	}
	return &relay.Response{Status: res.Status, Header: h, Body: body, Truncated: truncated, Latency: lat}, nil
}

// pick chooses the ready client of org's tunnel name that takes event
// type evt and has the fewest deliveries in flight, and counts one more on
// it.
func (s *Server) pick(org, name, evt string) (*serverConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	conns := s.groups[groupKey{org, name}]
	if len(conns) == 0 {
		return nil, &noClientError{fmt.Sprintf("%v for %s", ErrNoClient, name)}
	}
	var best *serverConn
	var bestN int64
	// Ties go round the clients, so an idle pair shares a trickle of
	// sequential deliveries rather than one client taking them all.
	start := int(s.turn % uint64(len(conns)))
	s.turn++
	for i := range conns {
		c := conns[(start+i)%len(conns)]
		if !c.takes(evt) {
			continue
		}
		if n := c.inFlight.Load(); best == nil || n < bestN {
			best, bestN = c, n
		}
	}
	if best == nil {
		return nil, &noClientError{fmt.Sprintf("%v for %s that takes event %q (%d connected, each with an --events filter that leaves it out)",
			ErrNoClient, name, evt, len(conns))}
	}
	best.inFlight.Add(1)
	return best, nil
}

// Serve upgrades GET /v1/tunnel for org's tunnel name and serves the client
// until it goes or the server closes. onConnect runs once the client has
// said hello and been told it is ready, with the event types it takes.
func (s *Server) Serve(w http.ResponseWriter, r *http.Request, org, name string, onConnect func(events []string)) {
	if err := ValidName(name); err != nil {
		httpjson.WriteError(w, r, s.log, &httpjson.Error{Status: http.StatusBadRequest, Code: "invalid_query", Reason: err.Error()})
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		httpjson.WriteError(w, r, s.log, &httpjson.Error{Status: http.StatusServiceUnavailable, Code: "shutting_down",
			Reason: "the relay is shutting down; retry later", Err: ErrClosed, RetryAfter: 1})
		return
	}
	release, ok := s.perOrg.Acquire(org)
	if !ok {
		s.mu.Unlock()
		httpjson.WriteError(w, r, s.log, &httpjson.Error{Status: http.StatusTooManyRequests, Code: "too_many_tunnels",
			Reason: fmt.Sprintf("this organisation has %d tunnel connections open, the most a relay takes; close one first", s.perOrg.Max()), RetryAfter: 10})
		return
	}
	s.serving.Add(1)
	s.mu.Unlock()
	defer s.serving.Done()
	defer release()

	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// The upgrader has answered the client already.
		s.log.Debug().Err(err).Str("remote", r.RemoteAddr).Msg("tunnel upgrade failed")
		return
	}
	c := &serverConn{
		peer:    newPeer(ws, s.opts.PingInterval, s.opts.PongWait, s.opts.WriteWait),
		srv:     s,
		org:     org,
		name:    name,
		remote:  r.RemoteAddr,
		pending: make(map[uint64]pendingResult),
		log:     s.log.With().Str("org", org).Str("tunnel", name).Str("remote", r.RemoteAddr).Logger(),
	}
	c.onKill = func() { s.remove(c) }
	c.serve(s.publicURL(r), onConnect)
}

func (s *Server) publicURL(r *http.Request) string {
	if s.opts.PublicURL != "" {
		return strings.TrimSuffix(s.opts.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// greet tracks a connection until its hello is read; it fails once the
// server is closed. The returned func stops tracking it.
func (s *Server) greet(ws *websocket.Conn) (done func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false
	}
	s.greeting[ws] = struct{}{}
	return func() {
		s.mu.Lock()
		delete(s.greeting, ws)
		s.mu.Unlock()
	}, true
}

// add registers c as ready; it fails once the server is closed.
func (s *Server) add(c *serverConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	k := groupKey{c.org, c.name}
	s.groups[k] = append(s.groups[k], c)
	return true
}

func (s *Server) remove(c *serverConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := groupKey{c.org, c.name}
	conns := slices.DeleteFunc(s.groups[k], func(x *serverConn) bool { return x == c })
	if len(conns) == 0 {
		delete(s.groups, k)
	} else {
		s.groups[k] = conns
	}
}

// Tunnels lists the connected clients of org ("" for every org), by
// organisation, name and time connected.
func (s *Server) Tunnels(org string) []relay.TunnelInfo {
	s.mu.Lock()
	var out []relay.TunnelInfo
	for k, conns := range s.groups {
		if org != "" && k.org != org {
			continue
		}
		for _, c := range conns {
			out = append(out, relay.TunnelInfo{Name: c.name, Org: c.org, RemoteAddr: c.remote, Since: c.since, InFlight: int(c.inFlight.Load())})
		}
	}
	s.mu.Unlock()
	relay.SortTunnels(out)
	return out
}

// Close ends every connection (their in-flight sends fail) and waits for
// their handlers and onConnect calls to return or ctx. Later Serve calls
// answer 503 and Send fails with ErrClosed. Safe to call twice.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	var all []*serverConn
	for _, conns := range s.groups {
		all = append(all, conns...)
	}
	for ws := range s.greeting {
		ws.Close()
	}
	s.mu.Unlock()
	for _, c := range all {
		c.kill(errors.New("relay is shutting down"), websocket.CloseGoingAway)
	}
	done := make(chan struct{})
	go func() { s.serving.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close tunnel server: %w", ctx.Err())
	}
}

// ValidName checks a tunnel name as relay/config checks the NAME of a
// tunnel://NAME endpoint (1 to 63 of a-z, 0-9, '_', '.' and '-', starting
// with a letter or digit), so a client never waits under a name no
// endpoint can have.
func ValidName(name string) error {
	if name == "" {
		return errors.New("tunnel name is required (?name=NAME)")
	}
	if len(name) > 63 {
		return fmt.Errorf("tunnel name %q is longer than 63 characters", name)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || i > 0 && (r == '-' || r == '_' || r == '.')
		if !ok {
			return fmt.Errorf("tunnel name %q may hold only a-z, 0-9, '_', '.' and '-', starting with a letter or digit", name)
		}
	}
	return nil
}

// ParseURL splits an endpoint URL tunnel://NAME[/PATH][?QUERY] into the
// tunnel's name, the path appended to the client's --forward URL, and the
// raw query.
func ParseURL(raw string) (name, path, query string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", "", fmt.Errorf("tunnel endpoint url: %w", err)
	}
	if u.Scheme != Scheme {
		return "", "", "", fmt.Errorf("tunnel endpoint url %q: scheme is not %s://", raw, Scheme)
	}
	if u.User != nil || u.Port() != "" || u.Fragment != "" {
		return "", "", "", fmt.Errorf("tunnel endpoint url %q: want tunnel://NAME[/PATH]", raw)
	}
	if err := ValidName(u.Host); err != nil {
		return "", "", "", fmt.Errorf("tunnel endpoint url %q: %w", raw, err)
	}
	return u.Host, u.EscapedPath(), u.RawQuery, nil
}

// takesEvent reports whether a client with --events filter takes evt. A
// request without an event type (none of the relay's own) goes to anyone.
func takesEvent(filter []string, evt string) bool {
	return evt == "" || event.Takes(filter, event.Type(evt))
}

func formatID(n uint64) string { return "tun_" + strconv.FormatUint(n, 10) }
