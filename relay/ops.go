package relay

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/sidehook/sidehook/internal/store"
	"github.com/sidehook/sidehook/relay/config"
)

func (r *Relay) handleJWKS() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		writeJSON(w, http.StatusOK, r.keys.jwks())
	})
}

func (r *Relay) handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

func (r *Relay) handleReadyz() http.Handler {
	return r.handle(func(w http.ResponseWriter, req *http.Request) error {
		if why := r.notReady(); why != "" {
			return apiErrorf(http.StatusServiceUnavailable, "not_ready", "%s", why)
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		return nil
	})
}

func (r *Relay) handleListEndpoints() http.Handler {
	return r.handle(func(w http.ResponseWriter, req *http.Request) error {
		o := orgFrom(req.Context())
		out := []EndpointView{}
		for _, e := range o.endpoints() {
			out = append(out, viewEndpoint(e))
		}
		writeJSON(w, http.StatusOK, map[string]any{"endpoints": out})
		return nil
	})
}

func (r *Relay) handleGetEndpoint() http.Handler {
	return r.handle(func(w http.ResponseWriter, req *http.Request) error {
		o := orgFrom(req.Context())
		e := o.endpoint(req.PathValue("id"))
		if e == nil {
			return apiErrorf(http.StatusNotFound, "not_found", "no endpoint %q", req.PathValue("id"))
		}
		writeJSON(w, http.StatusOK, viewEndpoint(e))
		return nil
	})
}

func (r *Relay) handleCreateEndpoint() http.Handler {
	return r.handle(func(w http.ResponseWriter, req *http.Request) error {
		o := orgFrom(req.Context())
		var raw config.RawEndpoint
		if err := decodeJSON(w, req, &raw); err != nil {
			return err
		}
		if raw.ID == "" {
			raw.ID = "ep_" + strings.ToLower(newULID(r.clock.Now()))
		}
		e, err := r.putEndpoint(req.Context(), o, raw, true)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, viewEndpoint(e))
		return nil
	})
}

func (r *Relay) handlePutEndpoint() http.Handler {
	return r.handle(func(w http.ResponseWriter, req *http.Request) error {
		o := orgFrom(req.Context())
		var raw config.RawEndpoint
		if err := decodeJSON(w, req, &raw); err != nil {
			return err
		}
		id := req.PathValue("id")
		if raw.ID != "" && raw.ID != id {
			return apiErrorf(http.StatusBadRequest, "invalid_endpoint", "id %q in the body differs from %q in the path", raw.ID, id)
		}
		raw.ID = id
		e, err := r.putEndpoint(req.Context(), o, raw, false)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, viewEndpoint(e))
		return nil
	})
}

func (r *Relay) handleDeleteEndpoint() http.Handler {
	return r.handle(func(w http.ResponseWriter, req *http.Request) error {
		if err := r.deleteEndpoint(req.Context(), orgFrom(req.Context()), req.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

// purgeLoop deletes, every PurgeInterval, the events older than the
// retention whose deliveries are all finished.
func (r *Relay) purgeLoop(ctx context.Context) {
	t := r.clock.NewTimer(r.opts.PurgeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		n, err := r.Purge(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			r.log.Error().Err(err).Msg("purge")
		case n > 0:
			r.log.Info().Int("events", n).Msg("purged finished events past retention")
		}
		t.Reset(r.opts.PurgeInterval)
	}
}

// purgeBatch bounds one purge write.
const purgeBatch = 256

// Purge deletes the events received before now − retention whose
// deliveries are all delivered or dead (or whose endpoint is gone), with
// their deliveries. It returns how many events it deleted.
func (r *Relay) Purge(ctx context.Context) (int, error) {
	cutoff := r.clock.Now().Add(-r.cfg.Retention)
	total := 0
	for _, o := range r.orgList {
		prefix := []byte(pfxEventTime + o.id + "/")
		var ops []store.Op
		events := 0
		flush := func() error {
			if len(ops) == 0 {
				return nil
			}
			if err := r.store.Write(ctx, ops...); err != nil {
				return err
			}
			total += events
			ops, events = ops[:0], 0
			return nil
		}
		err := r.store.Scan(ctx, store.ScanOptions{Prefix: prefix, KeysOnly: true}, func(k, _ []byte) error {
			rest := k[len(prefix):]
			if len(rest) < 8 {
				return nil
			}
			at, _ := decodeTime(rest[:8])
			if !at.Before(cutoff) {
				return store.ErrStop
			}
			id := string(rest[8:])
			ev, err := r.getEvent(o.id, id)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			del := []store.Op{store.Delete(append([]byte(nil), k...)), store.Delete(eventKey(o.id, id))}
			if ev != nil {
				for _, ref := range ev.Deliveries {
					d, err := r.getDelivery(o.id, ref.ID)
					if errors.Is(err, store.ErrNotFound) {
						continue
					}
					if err != nil {
						return err
					}
					if !finalStatus(d.Status) && o.endpoint(d.Endpoint) != nil {
						return nil // still waiting: keep the whole event
					}
					del = append(del, store.Delete(deliveryKey(o.id, ref.ID)))
					if d.QKey != nil {
						del = append(del, store.Delete(d.QKey))
					}
				}
			}
			ops = append(ops, del...)
			events++
			if len(ops) >= purgeBatch {
				return flush()
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		if err := flush(); err != nil {
			return total, err
		}
	}
	return total, nil
}
