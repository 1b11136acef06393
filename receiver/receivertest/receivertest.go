// Package receivertest runs a sidehook mock receiver inside a Go test, the
// way net/http/httptest runs a server: NewServer starts one on a loopback
// port, with its captures in memory, and t.Cleanup closes it. Point the
// code under test at its URL, then assert on what it sent:
//
//	rcv := receivertest.NewServer(t, receivertest.WithJWTSecret(secret))
//	// the code under test posts a payment to rcv.URL + "/webhooks"
//	c := rcv.Expect(receivertest.Filter{Event: "payment"}, 1, 5*time.Second)[0]
//	// c.Header("webhook-id"), c.Verdict.Claims["sub"], c.Body
//
// Expect fails the test on one line saying what it waited for and what
// came instead; Wait does the same with a context and an error; Requests
// lists what came so far, newest first.
//
// Rules make the receiver fail on purpose: a status; a Sequence of
// statuses, per webhook-id ([503, 503, 200] fails each event twice, then
// takes it); a Delay; a Fault that resets, closes or holds the connection;
// Times to stop after a few. Each attempt the sender makes is a capture:
// its headers, body, verdict and the answer chosen. Custom-value GETs
// (?fields=…) are answered from WithValuesJSON.
//
// Subtests share a server in one of three ways. Sequential subtests start
// with rcv.In(t).Reset(): no captures, the starting rules. Parallel
// subtests never Reset, which would delete the others' captures: each
// adds rules for its own paths with rcv.In(t).AddRules (removed when it
// ends) and filters on its own paths or webhook-ids. Or each parallel
// subtest has a NewServer of its own. Through In(t) a failure fails the
// subtest, not the test that made the server:
//
//	t.Run("payment", func(t *testing.T) { rcv.In(t).Expect(filter, 1, 5*time.Second) })
//
// The signing helpers (WebioToken, JWT, StandardWebhooks) build requests
// the receiver accepts, so a test of a webhook consumer, or of this
// receiver's options, needs nothing from sidehook's internal packages.
package receivertest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	neturl "net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/fixtures"
	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/receiver/memstore"
)

// Filter selects captures, as the admin API's query does: every field set
// must match. Path is a glob whose final '*' crosses '/' ("/tenant-1/*"),
// Method any case, Verdict one of the Verdict constants, Since the
// earliest time received. Event is an event type (inbound_message, not
// the payload's inboundMessage). A filter that could match nothing is an
// error, from Wait, Expect and Requests alike, not a wait that times out.
type Filter = receiver.Filter

// Capture is one request the receiver saw: Header reads one of its
// headers in any case, Body holds the exact bytes, Verdict says whether
// it passed verification and Response what the receiver chose to answer.
type Capture = receiver.Capture

// Verdict is the outcome of a capture's verification; its Claims hold
// integer times (exp, iat, nbf) as int64.
type Verdict = receiver.Verdict

// Verdict statuses.
const (
	VerdictValid      = receiver.VerdictValid
	VerdictInvalid    = receiver.VerdictInvalid
	VerdictUnverified = receiver.VerdictUnverified
)

// Rule scripts the receiver's answer to the requests it matches: the
// first rule that matches answers (see SetRules, AddRules, WithRules).
// Requests that fail verification are answered 401 before any rule.
type Rule = receiver.Rule

// Match selects the requests a Rule answers; every field set must match.
type Match = receiver.Match

// Respond is a Rule's answer: a status, headers, body and delay, a
// Sequence of statuses (each webhook-id its own with Per: PerWebhookID),
// a limit of Times, or a Fault instead of any answer. With only a Delay
// or Headers it keeps the receiver's own answer: custom values answer
// slowly.
type Respond = receiver.Respond

// Faults a Rule can inject instead of an answer, as a dying server would.
const (
	// FaultReset resets the connection: the sender sees "connection reset
	// by peer". Go's transport resends a GET faulted on a kept-alive
	// connection by itself (see Respond.Fault), as it does for FaultClose.
	FaultReset = receiver.FaultReset
	// FaultTimeout answers nothing and holds the connection until the
	// sender gives up.
	FaultTimeout = receiver.FaultTimeout
	// FaultClose closes the connection without an answer: the sender sees
	// an EOF.
	FaultClose = receiver.FaultClose
)

// Scopes of a Respond.Sequence.
const (
	// PerGlobal walks one sequence for every request the rule answers.
	PerGlobal = receiver.PerGlobal
	// PerWebhookID walks a sequence, and counts Times, per webhook-id, as
	// a sender's retries of one event see it: [503, 503, 200] fails each
	// event twice, and so does Status 503 with Times 2; a Fault with
	// Times 1 hits each event's first attempt.
	PerWebhookID = receiver.PerWebhookID
)

// Server is a started mock receiver.
type Server struct {
	// URL is the base URL, "http://127.0.0.1:port", with no trailing slash.
	URL string
	// Receiver is the underlying server, for what this package does not
	// wrap (Subscribe, Rules, Count…).
	Receiver *receiver.Server

	tb     testing.TB
	client *http.Client
}

// An Option configures NewServer; the With functions make them. A bad one
// fails NewServer, naming the option; the zero Option changes nothing.
type Option struct {
	apply func(*config) error
}

// option wraps f as an Option.
func option(f func(*config) error) Option { return Option{apply: f} }

type config struct {
	cfg receiver.Config
}

// WithWebioSecret makes the receiver check x-webio-token with the
// organisation's secret (and its org claim when org is not empty), as
// sidehook receive --secret-key --org does.
func WithWebioSecret(secret, org string) Option {
	return option(func(c *config) error {
		if err := checkSecret(secret); err != nil {
			return fmt.Errorf("WithWebioSecret: %w", err)
		}
		c.cfg.Verify.WebioSecret = []byte(secret)
		c.cfg.Verify.Org = org
		return nil
	})
}

// WithJWTSecret makes the receiver check an HS256 Bearer JWT
// (--jwt-secret).
func WithJWTSecret(secret string) Option {
	return option(func(c *config) error {
		if err := checkSecret(secret); err != nil {
			return fmt.Errorf("WithJWTSecret: %w", err)
		}
		c.cfg.Verify.JWTSecret = []byte(secret)
		return nil
	})
}

// WithJWTPublicKey makes the receiver check a Bearer JWT signed by the key
// pair whose public key is in pem: a PKIX "PUBLIC KEY", an "RSA PUBLIC KEY"
// or a certificate (--jwt-public-key). Key.PublicKeyPEM gives one.
func WithJWTPublicKey(pem []byte) Option {
	return option(func(c *config) error {
		key, alg, err := auth.ParsePublicKeyPEM(pem)
		if err != nil {
			return optionError("WithJWTPublicKey", "auth: parse public key", err)
		}
		c.cfg.Verify.JWTPublicKey, c.cfg.Verify.JWTPublicAlg = key, alg
		return nil
	})
}

// WithJWKSURL makes the receiver check a Bearer JWT with the key its kid
// names in the JSON Web Key Set at url (--jwks-url). ServeJWKS serves one.
func WithJWKSURL(url string) Option {
	return option(func(c *config) error {
		if u, err := neturl.Parse(url); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("WithJWKSURL(%q): want an http:// or https:// URL", url)
		}
		// The fetcher's own client: the receiver's Close closes it.
		c.cfg.Verify.JWKS = auth.NewJWKSFetcher(url, nil, auth.JWKSOptions{})
		return nil
	})
}

// optionError is err in the words of the option that was given the bad
// value: named by it, without auth's prefix, which names the value.
func optionError(option, authPrefix string, err error) error {
	why := strings.TrimLeft(strings.TrimPrefix(err.Error(), authPrefix), ": ")
	return &namedError{msg: option + ": " + why, err: err}
}

type namedError struct {
	msg string
	err error
}

func (e *namedError) Error() string { return e.msg }
func (e *namedError) Unwrap() error { return e.err }

// checkSecret refuses an HS256 secret the receiver would refuse, in the
// words of the option that gave it.
func checkSecret(secret string) error {
	if len(secret) < auth.MinSecretLen {
		return fmt.Errorf("%d bytes, need at least %d", len(secret), auth.MinSecretLen)
	}
	return nil
}

// WithIssuer makes the receiver require a JWT's iss (--issuer). Like
// WithAudience and WithRequireSHA256, it needs an option that checks JWTs
// (WithJWTSecret, WithJWTPublicKey, WithJWKSURL); alone it fails NewServer.
func WithIssuer(iss string) Option {
	return option(func(c *config) error {
		c.cfg.Verify.Issuer = iss
		return nil
	})
}

// WithAudience makes the receiver require a JWT's aud (--audience); see
// WithIssuer.
func WithAudience(aud string) Option {
	return option(func(c *config) error {
		c.cfg.Verify.Audience = aud
		return nil
	})
}

// WithLeeway sets the clock skew allowed on exp and nbf (--leeway).
func WithLeeway(d time.Duration) Option {
	return option(func(c *config) error {
		if d < 0 {
			return fmt.Errorf("WithLeeway: %s is negative", d)
		}
		c.cfg.Verify.Leeway = d
		return nil
	})
}

// WithRequireSHA256 makes the receiver refuse a JWT without a sha256 claim
// (--require-sha256); a claim present is always checked. See WithIssuer.
func WithRequireSHA256() Option {
	return option(func(c *config) error {
		c.cfg.Verify.RequireSHA256 = true
		return nil
	})
}

// WithStandardSecret makes the receiver check Standard Webhooks signatures
// with a "whsec_…" secret (--standard-secret); repeat it for a rotation.
func WithStandardSecret(secret string) Option {
	return option(func(c *config) error {
		key, err := auth.ParseStandardSecret(secret)
		if err != nil {
			return optionError("WithStandardSecret", "auth: standard secret", err)
		}
		c.cfg.Verify.StandardSecrets = append(c.cfg.Verify.StandardSecrets, key)
		return nil
	})
}

// WithValues answers custom-value GETs from v instead of the demo values
// (WithValuesJSON takes the fixture's text).
func WithValues(v *fixtures.Values) Option {
	return option(func(c *config) error {
		c.cfg.Values = v
		return nil
	})
}

// WithValuesJSON answers custom-value GETs from doc, a values fixture as
// sidehook receive --values reads it (JSON, or YAML):
//
//	{"default":{"fullname":"there"},
//	 "channels":{"447700900123":{"currency":"GBP"}},
//	 "customers":{"ACC-10023":{"fullname":"Jane Doe"}}}
//
// A GET with a fields parameter gets each field from its customerUID's
// values, else its channelId's, else default, else null. A doc that does
// not parse fails NewServer, naming the line.
func WithValuesJSON(doc string) Option {
	return option(func(c *config) error {
		v, err := fixtures.ParseValues([]byte(doc))
		if err != nil {
			return fmt.Errorf("WithValuesJSON: %w", err) // "invalid values: line 1: …"
		}
		c.cfg.Values = v
		return nil
	})
}

// WithRules starts the receiver with these rules (and Reset returns to
// them). Rules of several WithRules are numbered in order, from 1, in a
// failure: "WithRules: rule 2: id "slow" already in use".
func WithRules(rules ...Rule) Option {
	return option(func(c *config) error {
		all := append(slices.Clip(c.cfg.Rules), rules...)
		// Checked here, not by receiver.New, so the failure names this
		// option as the others' do.
		if err := receiver.CheckRules(all...); err != nil {
			return fmt.Errorf("WithRules: %w", err)
		}
		c.cfg.Rules = all
		return nil
	})
}

// WithLogger sends the receiver's logs to l (none by default).
func WithLogger(l zerolog.Logger) Option {
	return option(func(c *config) error {
		c.cfg.Logger = l
		return nil
	})
}

// NewServer starts a mock receiver for the test on 127.0.0.1 and a free
// port, its captures in memory, closed by tb.Cleanup. A bad option fails the
// test at once.
func NewServer(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	st := memstore.New()
	c := &config{cfg: receiver.Config{
		Listen:        "127.0.0.1:0",
		Store:         st,
		Logger:        zerolog.Nop(),
		Version:       "receivertest",
		ShutdownGrace: 5 * time.Second,
	}}
	for _, o := range opts {
		if o.apply == nil {
			// The zero Option: made without a With function.
			continue
		}
		if err := o.apply(c); err != nil {
			tb.Fatalf("receivertest: %v", err)
		}
	}
	if v := c.cfg.Verify; (v.Audience != "" || v.Issuer != "" || v.RequireSHA256) && v.JWTSecret == nil && v.JWTPublicKey == nil && v.JWKS == nil {
		// Nothing would check them: the test would pass with any token.
		tb.Fatalf("receivertest: WithAudience, WithIssuer and WithRequireSHA256 check a JWT: add WithJWTSecret, WithJWTPublicKey or WithJWKSURL")
	}
	srv, err := receiver.New(c.cfg)
	if err != nil {
		tb.Fatalf("receivertest: %v", err)
	}
	if err := srv.Start(context.Background()); err != nil {
		tb.Fatalf("receivertest: %v", err)
	}
	s := &Server{
		URL: srv.URL(), Receiver: srv, tb: tb,
		client: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
	}
	tb.Cleanup(func() {
		s.Close()
		s.client.CloseIdleConnections()
		st.Close()
	})
	return s
}

// Client returns an HTTP client for requests to the receiver, as
// httptest.Server.Client does: its idle connections are closed with the
// server.
func (s *Server) Client() *http.Client { return s.client }

// Requests returns every capture matching f, newest first. An error, or a
// filter that could match nothing (see Filter), fails the test.
func (s *Server) Requests(f Filter) []Capture {
	s.tb.Helper()
	if err := f.Validate(); err != nil {
		s.tb.Errorf("receivertest: filter: %v", err)
		return nil
	}
	var all []Capture
	cursor := ""
	for {
		page, next, err := s.Receiver.List(context.Background(), f, receiver.MaxLimit, cursor)
		if err != nil {
			s.tb.Errorf("receivertest: list requests: %v", err)
			return all
		}
		all = append(all, page...)
		if next == "" {
			return all
		}
		cursor = next
	}
}

// Wait blocks until n captures match f and returns the n newest, newest
// first. When ctx ends first (or the server closes) it returns those found
// so far and a one-line error saying what it waited for and what came
// instead: the matching captures, then the newest others. The error wraps
// the context's cause, such as context.DeadlineExceeded. Without a deadline
// on ctx it waits as long as the test runs: Expect takes a duration.
func (s *Server) Wait(ctx context.Context, f Filter, n int) ([]Capture, error) {
	return s.wait(ctx, f, n)
}

// In returns s reporting to tb: the server a test shares with its subtests
// fails the subtest that calls Expect, AddRules, SetRules or Reset on it
// through s.In(t), and rules added through it last as long as that
// subtest. Called on the parent test's s from a subtest, they would call
// FailNow on the parent, which Go's testing refuses with a panic.
func (s *Server) In(tb testing.TB) *Server {
	c := *s
	c.tb = tb
	return &c
}

// Expect waits up to within for n captures matching f and returns the n
// newest, newest first: at least n came, and Requests(f) has them all
// when the count matters. When they do not come it fails the test (see
// In) with one line saying what it waited for and what came instead.
func (s *Server) Expect(f Filter, n int, within time.Duration) []Capture {
	s.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	caps, err := s.wait(ctx, f, n)
	var te *receiver.WaitTimeoutError
	switch {
	case errors.As(err, &te) && errors.Is(err, context.DeadlineExceeded):
		s.tb.Fatalf("receivertest: waited %v for %s: %s", within, te.Wanted(), te.Came())
	case err != nil:
		s.tb.Fatalf("%v", err) // it says what was waited for
	}
	return caps
}

// SetRules replaces the receiver's rules, every subtest's: subtests that
// share the server and run in parallel add theirs with AddRules instead.
// A rule the receiver refuses fails the test at once, as a bad option to
// NewServer does: what the test does next assumes rules that are not in
// force. Like t.FailNow, it must be called from the goroutine running the
// test (in a subtest, see In).
func (s *Server) SetRules(rules ...Rule) {
	s.tb.Helper()
	if _, err := s.Receiver.SetRules(rules...); err != nil {
		s.tb.Fatalf("receivertest: set rules: %v", err)
	}
}

// AddRules appends rules after those in force, so subtests sharing the
// server each script their own paths (or webhook-ids) without replacing
// one another's rules. The rules are removed when the test that added
// them ends: through s.In(t), the subtest. A rule the receiver refuses
// fails the test at once, as SetRules does.
func (s *Server) AddRules(rules ...Rule) {
	s.tb.Helper()
	added, err := s.Receiver.AddRules(rules...)
	if err != nil {
		s.tb.Fatalf("receivertest: add rules: %v", err)
	}
	s.tb.Cleanup(func() {
		for _, r := range added {
			s.Receiver.DeleteRule(r.ID)
		}
	})
}

// Reset deletes the captures and restores the starting rules (those of
// WithRules), for every subtest sharing the server: parallel subtests
// keep apart by path and webhook-id instead. An error fails the test.
func (s *Server) Reset() {
	s.tb.Helper()
	if err := s.Receiver.Reset(context.Background()); err != nil {
		s.tb.Errorf("receivertest: reset: %v", err)
	}
}

// Close stops the receiver before the test ends; t.Cleanup calls it too.
func (s *Server) Close() {
	if err := s.Receiver.Close(context.Background()); err != nil {
		s.tb.Errorf("receivertest: close: %v", err)
	}
}
