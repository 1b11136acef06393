package relay

import (
	"context"
	"net/http"
	"time"

	"github.com/rs/zerolog"
)

// ops serves what operators and receivers poll: keys, health, readiness.
type ops struct {
	responder
	keys     *keyring
	notReady func() string
}

func (p *ops) handleJWKS() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		writeJSON(w, http.StatusOK, p.keys.jwks())
	})
}

func (p *ops) handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

func (p *ops) handleReadyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if why := p.notReady(); why != "" {
			// An answer, not a failure: a load balancer polls this, and
			// an error line per poll would flood the log of a relay
			// whose disk is full.
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "not_ready", "reason": why})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}

// purger deletes, every interval, the events older than the retention
// whose deliveries are all finished.
type purger struct {
	store     Store
	clock     Clock
	retention time.Duration
	interval  time.Duration
	log       zerolog.Logger
}

// firstPurgeAfter bounds the wait for the first purge after start: a relay
// restarted more often than its interval would otherwise never purge.
const firstPurgeAfter = time.Minute

func (p *purger) run(ctx context.Context) {
	t := p.clock.NewTimer(min(p.interval, firstPurgeAfter))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		n, err := p.purge(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			p.log.Error().Err(err).Msg("purge")
		case n > 0:
			p.log.Info().Int("events", n).Msg("purged finished events past retention")
		}
		t.Reset(p.interval)
	}
}

func (p *purger) purge(ctx context.Context) (int, error) {
	return p.store.Purge(ctx, p.clock.Now().Add(-p.retention))
}
