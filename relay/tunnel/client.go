package tunnel

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/internal/httpjson"
	"github.com/sidehook/sidehook/internal/units"
	"github.com/sidehook/sidehook/replay"
)

// Client defaults.
const (
	DefaultBackoffMin = 500 * time.Millisecond
	DefaultBackoffMax = 30 * time.Second
	// DefaultMaxMessage bounds a frame from a relay whose ready announces
	// no max_message (one from before it did), which assumes it of a
	// client: a delivery carries the event's whole body as base64.
	DefaultMaxMessage = 64 << 20
	// DefaultForwardTimeout bounds a forward when the relay sent no
	// timeout.
	DefaultForwardTimeout = 30 * time.Second
)

// TunnelPath is the relay's route that upgrades to a tunnel.
const TunnelPath = "/v1/tunnel"

// ClientConfig configures a Client.
type ClientConfig struct {
	// RelayURL is the relay's base URL, http:// or https://.
	RelayURL string
	// APIKey is the organisation's API key.
	APIKey string
	// Name is the tunnel's name: endpoints with url tunnel://NAME[/PATH]
	// are delivered to this client.
	Name string
	// Forward is the local app's URL; a delivery's PATH is appended. Run
	// needs it; PrintSecret does not.
	Forward string
	// Events, when set, are the only event types this client takes.
	Events []string
	// JSON prints one JSON object per line instead of text.
	JSON bool
	// Inspect is the local inspector's listen address; "" turns it off.
	Inspect string
	// CA is a PEM file of the certificate authority the relay's
	// certificate is checked against; "" means the system's.
	CA string
	// ForwardCA is a PEM file of the certificate authority (mkcert's
	// rootCA.pem) or the self-signed certificate an https:// Forward is
	// checked against, instead of the system's. It is never used for the
	// relay, nor CA for the local app.
	ForwardCA string
	// SkipVerify skips the check of an https:// Forward's certificate
	// (an app on localhost with a certificate of its own); the relay's is
	// always checked.
	SkipVerify bool
	// Stdout receives the ready line and one line per delivery.
	Stdout io.Writer
	Logger zerolog.Logger

	// BackoffMin and BackoffMax bound the wait between reconnects (it
	// doubles from min up to max, with ±20% jitter); zero means the
	// Default of each.
	BackoffMin time.Duration
	BackoffMax time.Duration
	// PingInterval, PongWait and WriteWait are the connection's timers;
	// zero means the server's defaults.
	PingInterval time.Duration
	PongWait     time.Duration
	WriteWait    time.Duration
	// MaxMessage bounds a frame from the relay; zero means what the
	// relay's ready announces, a delivery of its limits.max_body, so that
	// every event the relay takes can come through.
	MaxMessage int64
	// LocalTransport, when set, carries the requests to the local app
	// (tests, benchmarks); ForwardCA and SkipVerify do not apply to it.
	LocalTransport http.RoundTripper
}

// ErrUnauthorized is wrapped by Run's error when the relay refuses the API
// key: retrying cannot help.
var ErrUnauthorized = errors.New("the relay refused the API key")

// relayRefusedKey is the error code of the relay's 401 to a missing or
// wrong API key.
const relayRefusedKey = "unauthorized"

// Client is the laptop side of a tunnel: it holds a websocket to the relay
// and forwards each delivery to the local app.
type Client struct {
	cfg     ClientConfig
	log     zerolog.Logger
	relay   *url.URL
	forward *url.URL
	wsURL   string
	local   *http.Client
	out     *printer

	// Set by Run before the first dial.
	api    *http.Client
	dialer *websocket.Dialer
	insp   *inspector

	handlers sync.WaitGroup
	running  atomic.Bool
}

// NewClient checks cfg, reads the CA files and returns a Client; Run
// listens and dials.
func NewClient(cfg ClientConfig) (*Client, error) {
	relayURL, err := ParseBaseURL("relay", cfg.RelayURL)
	if err != nil {
		return nil, err
	}
	var forward *url.URL
	if cfg.Forward != "" {
		if forward, err = ParseBaseURL("forward", cfg.Forward); err != nil {
			return nil, err
		}
	}
	if err := checkForwardTLS(cfg); err != nil {
		return nil, err
	}
	if cfg.APIKey == "" {
		return nil, errors.New("an API key is required")
	}
	if err := ValidName(cfg.Name); err != nil {
		return nil, err
	}
	if err := validEvents(cfg.Events); err != nil {
		return nil, err
	}
	if cfg.Inspect != "" {
		if err := checkInspectAddr(cfg.Inspect); err != nil {
			return nil, err
		}
	}
	if cfg.Stdout == nil {
		cfg.Stdout = io.Discard
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = DefaultBackoffMin
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = DefaultBackoffMax
	}
	cfg.BackoffMax = max(cfg.BackoffMax, cfg.BackoffMin)
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.PongWait <= 0 {
		cfg.PongWait = DefaultPongWait
	}
	if cfg.WriteWait <= 0 {
		cfg.WriteWait = DefaultWriteWait
	}
	cfg.MaxMessage = max(cfg.MaxMessage, 0)
	ws := *relayURL
	ws.Scheme = map[string]string{"http": "ws", "https": "wss"}[relayURL.Scheme]
	ws.Path = strings.TrimSuffix(ws.Path, "/") + TunnelPath
	ws.RawQuery = url.Values{"name": {cfg.Name}}.Encode()

	lt := cfg.LocalTransport
	if lt == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// Bytes in, bytes out: the local app sees the encoding the relay
		// sent and answers in its own.
		t.DisableCompression = true
		t.Proxy = nil
		t.MaxIdleConnsPerHost = 64
		// Here, not in Run, as --ca: an unreadable --forward-ca is a
		// mistake in the command, which retrying cannot fix.
		if t.TLSClientConfig, err = forwardTLS(cfg); err != nil {
			return nil, err
		}
		lt = t
	}
	c := &Client{
		cfg:     cfg,
		log:     cfg.Logger.With().Str("component", "tunnel").Str("tunnel", cfg.Name).Logger(),
		relay:   relayURL,
		forward: forward,
		wsURL:   ws.String(),
		local: &http.Client{Transport: lt,
			// A redirect is the app's answer, shown as it is.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		out: &printer{w: cfg.Stdout, json: cfg.JSON},
	}
	// Here, not in Run: an unreadable --ca is a mistake in the command,
	// which retrying cannot fix.
	if err := c.setupRelay(); err != nil {
		return nil, err
	}
	return c, nil
}

// ParseBaseURL checks the URL of a relay, or of an app to forward to
// (what names which in the error), as NewClient does: http(s), a host, a
// port that can be dialled, no credentials, query or fragment.
func ParseBaseURL(what, s string) (*url.URL, error) {
	const want = "want http(s)://HOST[:PORT][/PATH]"
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s URL %q: %s", what, s, want)
	}
	// A URL otherwise fine says what it has too many of, its password
	// not printed back.
	var why string
	switch {
	case u.User != nil:
		why = "no user:password"
		if what == "relay" {
			why += " (the API key authenticates)"
		}
	case u.RawQuery != "" || u.ForceQuery:
		why = "a query is not kept (the app gets each delivery's own)"
	case u.Fragment != "":
		why = "a #fragment is never sent"
	}
	if why != "" {
		return nil, fmt.Errorf("%s URL %q: %s: %s", what, u.Redacted(), why, want)
	}
	// A bad port would fail every dial after, a retry loop or a failed
	// delivery each time.
	if p := u.Port(); p != "" {
		if n, ok := units.ParsePort(p); !ok || n == 0 {
			return nil, fmt.Errorf("%s URL %q: the port must be a number from 1 to 65535", what, s)
		}
	}
	return u, nil
}

// setup starts the inspector.
func (c *Client) setup() error {
	if c.cfg.Inspect != "" {
		insp := newInspector(c, c.log)
		if err := insp.start(c.cfg.Inspect); err != nil {
			return err
		}
		c.insp = insp
	}
	return nil
}

// setupRelay makes the relay's HTTP client and websocket dialer, trusting
// --ca when given.
func (c *Client) setupRelay() error {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.cfg.CA != "" {
		pool, err := certPool("--ca", c.cfg.CA)
		if err != nil {
			return err
		}
		tlsConf.RootCAs = pool
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	// A copy each: the transport's first request adds "h2" to its
	// config's ALPN, and a dialer sharing it would offer h2 on every
	// reconnect, which a proxy in front of the relay speaking HTTP/2
	// takes, failing the websocket's HTTP/1.1 upgrade for good.
	t.TLSClientConfig = tlsConf.Clone()
	c.api = &http.Client{Transport: t, Timeout: 10 * time.Second}
	wsTLS := tlsConf.Clone()
	wsTLS.NextProtos = []string{"http/1.1"}
	c.dialer = &websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: 15 * time.Second,
		TLSClientConfig:  wsTLS,
		ReadBufferSize:   64 << 10,
		WriteBufferSize:  16 << 10,
	}
	return nil
}

// InspectorURL is the inspector's dashboard once Run has started it, else
// "".
func (c *Client) InspectorURL() string {
	if c.insp == nil {
		return ""
	}
	return c.insp.url()
}

// Run connects to the relay and forwards deliveries until ctx ends
// (then it returns nil) or the relay refuses the client for good (wrong
// API key: an error wrapping ErrUnauthorized; an unknown route or a bad
// name: an error saying so). A lost connection is dialled again with capped
// exponential backoff and jitter.
//
// A Client runs once: a second Run returns an error.
func (c *Client) Run(ctx context.Context) error {
	if c.forward == nil {
		return errors.New("tunnel client: no forward URL")
	}
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("tunnel client: Run called twice")
	}
	if err := c.setup(); err != nil {
		return err
	}
	defer func() {
		c.handlers.Wait()
		if c.insp != nil {
			c.insp.close()
		}
		// The local app and the relay outlive the client: their idle
		// keep-alive connections would hold goroutines here (and a
		// connection there) until the transports' idle timeout.
		c.local.CloseIdleConnections()
		c.api.CloseIdleConnections()
	}()
	failures := 0
	for {
		start := time.Now()
		ready, err := c.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var perm *permanentError
		if errors.As(err, &perm) {
			return perm.err
		}
		if ready && c.held(time.Since(start), failures) {
			failures = 0
		}
		wait := c.backoff(failures)
		failures++
		c.out.retrying(err, wait, ready)
		msg := "tunnel disconnected"
		if !ready {
			msg = "tunnel connect failed"
		}
		c.log.Debug().Err(err).Dur("retry_in", wait).Msg(msg)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// backoff is the wait after n failures in a row: min·2ⁿ ±20%, capped.
func (c *Client) backoff(n int) time.Duration {
	jitter := 0.8 + 0.4*rand.Float64()
	return min(time.Duration(float64(c.baseBackoff(n))*jitter), c.cfg.BackoffMax)
}

// baseBackoff is backoff without its jitter.
func (c *Client) baseBackoff(n int) time.Duration {
	d := c.cfg.BackoffMin
	for i := 0; i < n && d < c.cfg.BackoffMax; i++ {
		d *= 2
	}
	return min(d, c.cfg.BackoffMax)
}

// held reports whether a connection that was ready and lasted that long,
// after n failures in a row, starts the backoff over: only when it lasted
// at least the wait that would follow it. A relay or a proxy that drops
// every connection as soon as it is ready would else be dialled at the
// shortest wait for ever.
func (c *Client) held(lasted time.Duration, n int) bool {
	return lasted >= c.baseBackoff(n)
}

// permanentError is an end of Run that retrying would not change.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }

// dial opens the websocket and exchanges hello and ready.
func (c *Client) dial(ctx context.Context, probe bool) (*websocket.Conn, *Message, error) {
	h := http.Header{"Authorization": {"Bearer " + c.cfg.APIKey}}
	// gorilla's DialContext heeds ctx only while connecting: once the TCP
	// connection is up it waits for the upgrade's answer until its
	// HandshakeTimeout, so a relay that accepted and hangs held a Ctrl-C
	// for 15 s. ctx ending closes the connection instead.
	var (
		mu   sync.Mutex
		conn net.Conn
	)
	dialer := *c.dialer
	dialer.NetDialContext = func(dctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(dctx, network, addr)
		if err == nil {
			mu.Lock()
			conn = nc
			mu.Unlock()
		}
		return nc, err
	}
	cut := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if conn != nil {
			conn.Close()
		}
	})
	ws, resp, err := dialer.DialContext(ctx, c.wsURL, h)
	cut()
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("dial %s: %w", c.relay.Host, ctx.Err())
		}
		return nil, nil, c.dialError(resp, err)
	}
	// ready is small; deliveries get the limit ready announces.
	ws.SetReadLimit(cmp.Or(c.cfg.MaxMessage, DefaultMaxMessage))
	// Until ready comes, ctx ending closes the socket: a relay slow to
	// answer must not hold a stopping client for PongWait.
	stop := context.AfterFunc(ctx, func() { ws.Close() })
	m, err := c.handshake(ws, probe)
	if !stop() {
		ws.Close()
		return nil, nil, fmt.Errorf("tunnel handshake: %w", ctx.Err())
	}
	if err != nil {
		return nil, nil, err
	}
	if c.cfg.MaxMessage == 0 {
		// The hello stated no limit, so the relay sends up to what it
		// announced (DefaultMaxMessage when it announced none).
		ws.SetReadLimit(cmp.Or(m.MaxMessage, DefaultMaxMessage))
	}
	return ws, m, nil
}

// handshake sends hello and reads ready; on error it closes ws.
func (c *Client) handshake(ws *websocket.Conn, probe bool) (*Message, error) {
	hello, err := Encode(&Message{Type: TypeHello, Version: ProtocolVersion, Events: c.cfg.Events, Probe: probe, MaxMessage: c.cfg.MaxMessage})
	if err == nil {
		ws.SetWriteDeadline(time.Now().Add(c.cfg.WriteWait))
		err = ws.WriteMessage(websocket.TextMessage, hello)
	}
	if err != nil {
		ws.Close()
		return nil, fmt.Errorf("send hello: %w", err)
	}
	ws.SetReadDeadline(time.Now().Add(c.cfg.PongWait))
	_, data, err := ws.ReadMessage()
	if err != nil {
		ws.Close()
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code == websocket.ClosePolicyViolation {
			return nil, &permanentError{fmt.Errorf("the relay refused the tunnel: %s", ce.Text)}
		}
		return nil, fmt.Errorf("read ready: %w", err)
	}
	m, err := Decode(data)
	if err == nil && m.Type == TypeError {
		err = fmt.Errorf("the relay says: %s", m.Error)
	} else if err == nil && m.Type != TypeReady {
		err = fmt.Errorf("the relay sent %s before ready", m.Type)
	}
	if err != nil {
		ws.Close()
		return nil, err
	}
	return m, nil
}

// dialError words a failed upgrade; a refusal retrying cannot fix is
// permanent.
func (c *Client) dialError(resp *http.Response, err error) error {
	if resp == nil {
		var unknown x509.UnknownAuthorityError
		var invalid x509.CertificateInvalidError
		var host x509.HostnameError
		if errors.As(err, &unknown) || errors.As(err, &invalid) || errors.As(err, &host) {
			hint := "give its CA with --ca FILE"
			// The flags of the local app's certificate are next to --ca:
			// a developer who reached for them for the relay is told why
			// they did not help.
			if c.cfg.SkipVerify {
				hint += "; --skip-verify skips the local app's check only"
			}
			if c.cfg.ForwardCA != "" {
				hint += "; --forward-ca trusts the local app's certificate only"
			}
			return &permanentError{fmt.Errorf("the relay's TLS certificate is not trusted (%s): %w", hint, err)}
		}
		var plain tls.RecordHeaderError
		if errors.As(err, &plain) {
			return &permanentError{fmt.Errorf("%s does not speak TLS: is --relay http://%s? %w", c.relay.Redacted(), c.relay.Host, err)}
		}
		// Something that is no HTTP server (--relay given the NATS
		// port): retrying will not make it a relay, and its greeting is
		// no reason to print on every line.
		if notHTTP(err) {
			return &permanentError{fmt.Errorf("%s does not answer in HTTP: is it a sidehook relay?", c.relay.Redacted())}
		}
		// The usual first failure, said as the forward's is: Go's words
		// name the address twice and not what to check.
		if errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("connection refused (is the relay running on %s?)", hostPort(c.relay.String()))
		}
		return fmt.Errorf("dial %s: %w", c.relay.Host, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	// One line, whatever the server answered (an HTML page has many).
	reason := strings.Join(strings.Fields(string(b)), " ")
	var jb httpjson.Body
	if json.Unmarshal(b, &jb) == nil && jb.Reason != "" {
		reason = jb.Reason
	}
	switch {
	case (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) && jb.Error != relayRefusedKey:
		// Another server's refusal: the mock receiver checking its
		// tokens (--relay given the app's port), a proxy's login. "check
		// --api-key" would send the developer after the wrong thing.
		return &permanentError{fmt.Errorf("%s answered GET %s with HTTP %d, not a relay refusing the API key: is it a sidehook relay? %s",
			c.relay.Redacted(), TunnelPath, resp.StatusCode, reason)}
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return &permanentError{fmt.Errorf("%w (HTTP %d from %s): check --api-key", ErrUnauthorized, resp.StatusCode, c.relay.Redacted())}
	case resp.StatusCode == http.StatusNotFound:
		return &permanentError{fmt.Errorf("%s has no tunnel route (HTTP 404): is it a sidehook relay? %s", c.relay.Redacted(), reason)}
	case resp.StatusCode < 400:
		// A relay upgrades (101) or refuses with an error status; a page
		// or a redirect is another server, which retrying will not change.
		if loc := resp.Header.Get("Location"); loc != "" {
			reason = "redirected to " + loc
		}
		return &permanentError{fmt.Errorf("%s answered GET %s with HTTP %d, not a websocket: is it a sidehook relay? %s",
			c.relay.Redacted(), TunnelPath, resp.StatusCode, reason)}
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusRequestTimeout:
		return &permanentError{fmt.Errorf("the relay refused the tunnel (HTTP %d): %s", resp.StatusCode, reason)}
	default:
		return fmt.Errorf("dial %s: HTTP %d: %s", c.relay.Host, resp.StatusCode, reason)
	}
}

// session runs one connection: dial, ready, deliveries until it is lost.
// ready reports whether the relay said ready (the backoff starts over).
func (c *Client) session(ctx context.Context) (ready bool, err error) {
	ws, rm, err := c.dial(ctx, false)
	if err != nil {
		return false, err
	}
	p := newPeer(ws, c.cfg.PingInterval, c.cfg.PongWait, c.cfg.WriteWait)
	writerDone := make(chan struct{})
	go func() { defer close(writerDone); p.writer() }()
	defer func() { <-writerDone }()
	stop := context.AfterFunc(ctx, func() { p.kill(errors.New("tunnel client stopping"), websocket.CloseGoingAway) })
	defer stop()

	c.out.ready(c.readyInfo(ctx, rm))
	err = c.read(ctx, p)
	p.kill(err, websocket.CloseNormalClosure)
	return true, p.err
}

// read forwards deliveries until the connection fails.
func (c *Client) read(ctx context.Context, p *peer) error {
	p.watch()
	var buf bytes.Buffer
	for {
		kind, err := p.readFrame(&buf)
		data := buf.Bytes()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code == websocket.CloseAbnormalClosure {
				// gorilla's code for a socket gone without a close frame:
				// the relay did not close the tunnel, it is gone.
				return errors.New("the connection to the relay was cut without a close (the relay stopped, or the network)")
			}
			if errors.As(err, &ce) {
				return fmt.Errorf("the relay closed the tunnel: %s", ce.Text)
			}
			// The read deadline, pushed on by every frame and pong: the
			// relay or the network between went away without a word.
			// gorilla hides the deadline error behind one of its own
			// that keeps only Timeout.
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("no word from the relay for %s, not even a pong: the connection is dead", c.cfg.PongWait)
			}
			return err
		}
		p.extend()
		if kind != websocket.TextMessage {
			c.tell(p, "binary frames are not part of the tunnel protocol")
			continue
		}
		m, err := Decode(data)
		if err != nil {
			c.tell(p, err.Error())
			continue
		}
		switch m.Type {
		case TypeDelivery:
			c.handlers.Add(1)
			go func() {
				defer c.handlers.Done()
				c.handle(ctx, p, m)
			}()
		case TypeError:
			if m.DeliveryID != "" {
				// A delivery the relay could not send here: its line
				// says why the app never saw it.
				c.printForward(m, forwarded{start: time.Now(), err: errors.New(m.Error)}, "", "", "")
				continue
			}
			c.log.Warn().Str("error", m.Error).Msg("the relay reports an error")
		default:
			c.tell(p, fmt.Sprintf("unexpected %s message from the relay", m.Type))
		}
	}
}

func (c *Client) tell(p *peer, text string) {
	c.log.Warn().Str("error", text).Msg("bad message from the relay")
	if frame, err := Encode(&Message{Type: TypeError, Error: text}); err == nil {
		p.trySend(frame)
	}
}

// handle forwards one delivery and sends its result back.
func (c *Client) handle(ctx context.Context, p *peer, m *Message) {
	// The forward outlives a lost connection (the app is already working
	// on it; the relay will retry anyway) but not a stopping client.
	fctx, cancel := context.WithTimeout(ctx, forwardBudget(m.TimeoutMS))
	defer cancel()
	fw := c.forwardRequest(fctx, forwardReq{method: m.Method, path: m.Path, query: m.Query, header: m.Headers, body: m.Body, timeoutMS: m.TimeoutMS})
	if fw.err != nil && ctx.Err() != nil && fw.url != "" {
		// Ctrl-C cut the forward: the app did not fail, and Go's
		// "context canceled" would say it did.
		fw.err = fmt.Errorf("forward to %s: the tunnel stopped before the app answered (the relay sends it again)", fw.url)
	}
	res := &Message{Type: TypeResult, ID: m.ID, DeliveryID: m.DeliveryID, Status: fw.status, Headers: fw.header,
		Body: fw.body, Truncated: fw.truncated, DurationMS: units.Millis(fw.duration)}
	if fw.err != nil {
		res.Error = fw.err.Error()
	}
	// Recorded before the result goes back, so whoever saw the relay's
	// attempt answered finds it in the inspector too.
	var id string
	if c.insp != nil {
		id = c.insp.add(m, fw, "").ID
	}
	// A stopping client's connection is closing: no result can go back,
	// and the relay, which sees the connection go, sends the delivery
	// again, as its line says. A log of the result not sent would blame
	// the websocket ("too busy") for a Ctrl-C.
	if ctx.Err() == nil {
		fw.resultLost = !c.sendResult(ctx, p, res)
	}
	c.printForward(m, fw, id, "", "")
}

// sendResult queues res for the relay and reports whether it was queued:
// not when the connection is gone, and the relay will send the delivery
// again.
func (c *Client) sendResult(ctx context.Context, p *peer, res *Message) bool {
	frame, err := Encode(res)
	if err != nil {
		c.log.Error().Err(err).Msg("encode result")
		return false
	}
	if err := p.send(ctx, outFrame{data: frame}); err != nil {
		c.log.Info().Err(err).Str("delivery", res.DeliveryID).Msg("result not sent: the relay will retry")
		return false
	}
	return true
}

// printForward prints the line of one forward to the local app: a
// delivery from the relay, or, with replayOf, a replay from the inspector,
// sent to the URL to when it is not the --forward app. id is the
// inspector's record of it, if any.
func (c *Client) printForward(m *Message, fw forwarded, id, replayOf, to string) {
	var errText string
	if fw.err != nil {
		errText = fw.err.Error()
	}
	replayOf, attempt := whatItIs(m, replayOf)
	var location string
	if fw.status/100 == 3 {
		location = fw.header.Get("Location")
	}
	c.out.delivery(deliveryLine{ID: id, Time: fw.start.UTC(), Event: m.Headers.Get(hdrEvent), DeliveryID: m.DeliveryID, Attempt: attempt,
		ReplayOf: replayOf, Test: isTest(m), Method: m.Method, Path: m.Path, To: to, Status: fw.status,
		DurationMS: units.Millis(fw.duration), Truncated: fw.truncated, HeadersDropped: fw.headersDropped, Location: location, Error: errText,
		ResultLost: fw.resultLost})
}

// whatItIs says what a forward of m repeats (replayOf: the inspector's
// record it replays, or else the delivery a replay from the relay names in
// sidehook-replay-of) and which attempt it is. A replay or an endpoint
// test from the relay carries the number of the delivery's next attempt
// but is none: shown, a replay from the dashboard would read as a retry
// of a failure.
func whatItIs(m *Message, replayOf string) (string, int) {
	if replayOf == "" {
		replayOf = m.Headers.Get(replay.HeaderReplayOf)
	}
	if replayOf != "" || isTest(m) {
		return replayOf, 0
	}
	return "", m.Attempt
}

func isTest(m *Message) bool { return m.Headers.Get(hdrTest) == "true" }

// forwardBudget is how long the local app gets for a delivery the relay
// waits timeoutMS for: less, by a tenth (at most a second), so that the
// result has time to travel back. An answer the app gives just before the
// relay's deadline would otherwise be printed here as delivered while the
// relay records no answer and retries.
func forwardBudget(timeoutMS int64) time.Duration {
	if timeoutMS <= 0 {
		return DefaultForwardTimeout
	}
	t := time.Duration(timeoutMS) * time.Millisecond
	return t - min(t/10, time.Second)
}
