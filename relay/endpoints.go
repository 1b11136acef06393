package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/web"
)

// EndpointView is an endpoint as the API shows it.
type EndpointView struct {
	config.RawEndpoint
	Source         string `json:"source"`
	DisabledReason string `json:"disabled_reason,omitempty"`
}

func viewEndpoint(e *endpointState) EndpointView {
	raw := e.cfg.Raw()
	en := e.enabled()
	raw.Enabled = &en
	if len(raw.Headers) > 0 {
		// Often the receiver's credential (a URL may not carry one): shown
		// as the attempts show them, and kept when sent back (unredact).
		hs := make(map[string]string, len(raw.Headers))
		for n := range raw.Headers {
			hs[n] = web.RedactedValue
		}
		raw.Headers = hs
	}
	return EndpointView{RawEndpoint: raw, Source: e.source, DisabledReason: e.disabled}
}

func (m *manager) handleListEndpoints() http.Handler {
	return m.handle(func(w http.ResponseWriter, req *http.Request) error {
		o := orgFrom(req.Context())
		out := []EndpointView{}
		for _, e := range o.endpoints() {
			out = append(out, viewEndpoint(e))
		}
		writeJSON(w, http.StatusOK, map[string]any{"endpoints": out})
		return nil
	})
}

func (m *manager) handleGetEndpoint() http.Handler {
	return m.handle(func(w http.ResponseWriter, req *http.Request) error {
		o := orgFrom(req.Context())
		e := o.endpoint(req.PathValue("id"))
		if e == nil {
			return apiErrorf(http.StatusNotFound, "not_found", "no endpoint %q", req.PathValue("id"))
		}
		writeJSON(w, http.StatusOK, viewEndpoint(e))
		return nil
	})
}

// endpointDoc is an endpoint as POST and PUT take it: the document GET
// answers is accepted back as it is, so an endpoint is changed by reading
// it, editing a field and sending it again (as re-enabling one after a 410
// is done). Its read-only fields are the relay's to say: they are ignored.
type endpointDoc struct {
	config.RawEndpoint
	Source         *string `json:"source"`
	DisabledReason *string `json:"disabled_reason"`
}

func (m *manager) handleCreateEndpoint() http.Handler {
	return m.handle(func(w http.ResponseWriter, req *http.Request) error {
		o := orgFrom(req.Context())
		var doc endpointDoc
		if err := decodeJSON(w, req, &doc); err != nil {
			return err
		}
		raw := doc.RawEndpoint
		if raw.ID == "" {
			raw.ID = "ep_" + strings.ToLower(strings.TrimPrefix(event.NewID("x_", m.clock.Now()), "x_"))
		}
		e, err := m.putEndpoint(req.Context(), o, raw, true)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, viewEndpoint(e))
		return nil
	})
}

func (m *manager) handlePutEndpoint() http.Handler {
	return m.handle(func(w http.ResponseWriter, req *http.Request) error {
		o := orgFrom(req.Context())
		var doc endpointDoc
		if err := decodeJSON(w, req, &doc); err != nil {
			return err
		}
		raw := doc.RawEndpoint
		id := req.PathValue("id")
		if raw.ID != "" && raw.ID != id {
			return apiErrorf(http.StatusBadRequest, "invalid_endpoint", "id %q in the body differs from %q in the path", raw.ID, id)
		}
		raw.ID = id
		e, err := m.putEndpoint(req.Context(), o, raw, false)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, viewEndpoint(e))
		return nil
	})
}

func (m *manager) handleDeleteEndpoint() http.Handler {
	return m.handle(func(w http.ResponseWriter, req *http.Request) error {
		if err := m.deleteEndpoint(req.Context(), orgFrom(req.Context()), req.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

// putEndpoint creates (create=true) or replaces an endpoint from an API
// document.
func (m *manager) putEndpoint(ctx context.Context, o *orgState, raw config.RawEndpoint, create bool) (*endpointState, error) {
	ctx = context.WithoutCancel(ctx)
	var prev *endpointState
	if !create { // an existing one is refused below, not read
		prev = o.endpoint(raw.ID)
	}
	raw, err := unredact(raw, prev)
	if err != nil {
		return nil, err
	}
	e, err := raw.Validate("", &o.cfg)
	if err != nil {
		return nil, apiErrorf(http.StatusBadRequest, "invalid_endpoint", "%v", err)
	}
	if err := m.http.checkTarget("url", e.URL); err != nil {
		return nil, err
	}
	if _, _, tunnel := parseTunnelURL(e.URL); tunnel && m.tunnels == nil {
		return nil, apiErrorf(http.StatusBadRequest, "unsupported_endpoint", "url: %v", errNoTunnelServer)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	old := o.endpoint(e.ID)
	switch {
	case create && old != nil:
		return nil, apiErrorf(http.StatusConflict, "endpoint_exists", "endpoint %q already exists", e.ID)
	case !create && old == nil:
		return nil, apiErrorf(http.StatusNotFound, "not_found", "no endpoint %q", e.ID)
	}
	if c := o.customEndpoint(); c != nil && c.cfg.ID != e.ID && e.CustomValues() {
		return nil, apiErrorf(http.StatusConflict, "custom_value_endpoint_exists",
			"endpoint %q already answers custom_value_request; an organisation has at most one", c.cfg.ID)
	}
	next := &endpointState{cfg: *e, source: sourceAPI}
	if old != nil && old.source == sourceConfig {
		// A file endpoint is the file's: through the API only its run-time
		// enabled state can change (to re-enable it after a 410).
		a, b := old.cfg.Raw(), e.Raw()
		a.Enabled, b.Enabled = nil, nil
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) {
			return nil, apiErrorf(http.StatusConflict, "endpoint_in_config",
				"endpoint %q is defined in the configuration file: edit the file (only enabled can change here)", e.ID)
		}
		if e.Enabled && !old.cfg.Enabled {
			// The file's enabled: false wins at every start: the API
			// cannot turn it on, and a 200 would change nothing.
			return nil, apiErrorf(http.StatusConflict, "endpoint_in_config",
				"endpoint %q is disabled in the configuration file (enabled: false): edit the file to enable it", e.ID)
		}
		next = &endpointState{cfg: old.cfg, source: sourceConfig}
		if !e.Enabled {
			next.disabled = "disabled through the API"
		}
		if err := m.store.SetDisabled(ctx, o.id, e.ID, next.disabled); err != nil {
			return nil, storeError(err)
		}
	} else {
		doc, err := json.Marshal(e.Raw())
		if err != nil {
			return nil, fmt.Errorf("encode endpoint: %w", err)
		}
		if err := m.store.PutEndpoint(ctx, o.id, e.ID, doc); err != nil {
			return nil, storeError(err)
		}
	}
	o.replace(e.ID, next)
	m.disp.endpointChanged(o, e.ID)
	return next, nil
}

// unredact gives raw's headers sent as [redacted] (as GET shows them) the
// values old has under those names, so a document read, edited and sent
// back keeps its secrets; a [redacted] with no value to keep is refused
// rather than sent to the endpoint as is.
func unredact(raw config.RawEndpoint, old *endpointState) (config.RawEndpoint, error) {
	var hs map[string]string
	for n, v := range raw.Headers {
		if v != web.RedactedValue {
			continue
		}
		kept, ok := "", false
		if old != nil {
			for on, ov := range old.cfg.Headers {
				if strings.EqualFold(on, n) {
					kept, ok = ov, true
				}
			}
		}
		if !ok {
			return raw, apiErrorf(http.StatusBadRequest, "invalid_endpoint",
				"headers.%s: %s is what GET shows in place of a value; send the header's value", n, web.RedactedValue)
		}
		if hs == nil {
			hs = maps.Clone(raw.Headers)
		}
		hs[n] = kept
	}
	if hs != nil {
		raw.Headers = hs
	}
	return raw, nil
}

// deleteEndpoint removes an API endpoint and ends its waiting deliveries:
// dead, with the reason, still readable and replayable with a `to`, and
// shown so on the dashboards (published as they end). A
// deletion cut short (a store error) leaves the endpoint in place: the
// client's retry finishes it (and a restart ends what still waits).
func (m *manager) deleteEndpoint(ctx context.Context, o *orgState, id string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	old := o.endpoint(id)
	if old == nil {
		return apiErrorf(http.StatusNotFound, "not_found", "no endpoint %q", id)
	}
	if old.source == sourceConfig {
		return apiErrorf(http.StatusConflict, "endpoint_in_config", "endpoint %q is defined in the configuration file: remove it there", id)
	}
	reason := fmt.Sprintf("endpoint %s was deleted at %s", id, m.clock.Now().UTC().Format(time.RFC3339))
	if err := m.store.DeleteEndpoint(context.WithoutCancel(ctx), o.id, id, reason, m.hub.ended(m.clock)); err != nil {
		return storeError(err)
	}
	o.replace(id, nil)
	m.disp.endpointRemoved(o, id)
	// Once o.mu is free: what ingest stored for it after the store ended
	// what waited, but before it was gone here, is ended too.
	m.disp.endGone(o, id)
	return nil
}
