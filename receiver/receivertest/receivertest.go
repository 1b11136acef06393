// Package receivertest runs a sidehook mock receiver inside a Go test, the
// way net/http/httptest runs a server: NewServer starts one on a loopback
// port, with its captures in a temp dir, and t.Cleanup closes it.
//
//	rcv := receivertest.NewServer(t, receivertest.WithWebioSecret(secret, "demo"))
//	// point the code under test at rcv.URL, then:
//	caps, err := rcv.Wait(ctx, receivertest.Filter{Event: "payment"}, 1)
package receivertest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/fixtures"
	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/receiver/memstore"
)

// Filter selects captures: the fields of the admin API's filter.
type Filter = receiver.Filter

// Server is a started mock receiver.
type Server struct {
	// URL is the base URL, "http://127.0.0.1:port", with no trailing slash.
	URL string
	// Receiver is the underlying server, for what this package does not
	// wrap (Subscribe, Rules, Count…).
	Receiver *receiver.Server

	tb testing.TB
}

// Option configures NewServer.
type Option func(*config) error

type config struct {
	cfg receiver.Config
}

// WithWebioSecret makes the receiver check x-webio-token with the
// organisation's secret (and its org claim when org is not empty).
func WithWebioSecret(secret, org string) Option {
	return func(c *config) error {
		c.cfg.Verify.WebioSecret = []byte(secret)
		c.cfg.Verify.Org = org
		return nil
	}
}

// WithJWTSecret makes the receiver check an HS256 Bearer JWT.
func WithJWTSecret(secret string) Option {
	return func(c *config) error {
		c.cfg.Verify.JWTSecret = []byte(secret)
		return nil
	}
}

// WithStandardSecret makes the receiver check Standard Webhooks signatures
// with a "whsec_…" secret; repeat it for a rotation.
func WithStandardSecret(secret string) Option {
	return func(c *config) error {
		key, err := auth.ParseStandardSecret(secret)
		if err != nil {
			return err
		}
		c.cfg.Verify.StandardSecrets = append(c.cfg.Verify.StandardSecrets, key)
		return nil
	}
}

// WithVerify sets the whole verification config (issuer, audience,
// leeway, public keys…), for what the other options do not cover.
func WithVerify(v auth.VerifyConfig) Option {
	return func(c *config) error {
		c.cfg.Verify = v
		return nil
	}
}

// WithValues answers custom-value GETs from v instead of the demo values.
func WithValues(v *fixtures.Values) Option {
	return func(c *config) error {
		c.cfg.Values = v
		return nil
	}
}

// WithRules starts the receiver with these rules (and Reset returns to
// them).
func WithRules(rules ...receiver.Rule) Option {
	return func(c *config) error {
		c.cfg.Rules = append(c.cfg.Rules, rules...)
		return nil
	}
}

// WithLogger sends the receiver's logs to l (none by default).
func WithLogger(l zerolog.Logger) Option {
	return func(c *config) error {
		c.cfg.Logger = l
		return nil
	}
}

// NewServer starts a mock receiver for the test on 127.0.0.1 and a free
// port, its captures in memory, closed by tb.Cleanup. A bad option fails the
// test at once.
func NewServer(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	c := &config{cfg: receiver.Config{
		Listen:        "127.0.0.1:0",
		Store:         memstore.New(),
		Logger:        zerolog.Nop(),
		Version:       "receivertest",
		ShutdownGrace: 5 * time.Second,
	}}
	for _, o := range opts {
		if err := o(c); err != nil {
			tb.Fatalf("receivertest: %v", err)
		}
	}
	srv, err := receiver.New(c.cfg)
	if err != nil {
		tb.Fatalf("receivertest: %v", err)
	}
	if err := srv.Start(context.Background()); err != nil {
		tb.Fatalf("receivertest: %v", err)
	}
	tb.Cleanup(func() {
		if err := srv.Close(context.Background()); err != nil {
			tb.Errorf("receivertest: close: %v", err)
		}
	})
	return &Server{URL: srv.URL(), Receiver: srv, tb: tb}
}

// Requests returns every capture matching f, newest first. An error fails
// the test.
func (s *Server) Requests(f Filter) []receiver.Capture {
	s.tb.Helper()
	var all []receiver.Capture
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
// first. When ctx ends first it returns those found so far and an error
// saying how many.
func (s *Server) Wait(ctx context.Context, f Filter, n int) ([]receiver.Capture, error) {
	caps, err := s.Receiver.Wait(ctx, f, n)
	if errors.Is(err, receiver.ErrWaitTimeout) {
		cause := context.Cause(ctx)
		if cause == nil {
			cause = err // the receiver stopped
		}
		return caps, fmt.Errorf("receivertest: %d of %d matching requests before %w", len(caps), n, cause)
	}
	return caps, err
}

// SetRules replaces the receiver's rules.
func (s *Server) SetRules(rules ...receiver.Rule) error {
	_, err := s.Receiver.SetRules(rules...)
	return err
}

// Reset deletes the captures and restores the starting rules. An error
// fails the test.
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
