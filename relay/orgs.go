package relay

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/internal/store"
	"github.com/sidehook/sidehook/relay/config"
)

// Endpoint sources.
const (
	sourceConfig = "config"
	sourceAPI    = "api"
)

// orgState is an organisation at run time. Its endpoint list is copied on
// write so ingest reads it without a lock.
type orgState struct {
	id       string
	cfg      config.Org
	keys     [][32]byte // sha256 of the API keys
	hmac     *auth.SigningKey
	verifier *auth.Verifier
	token    atomic.Pointer[string]

	mu  sync.Mutex // serialises endpoint changes
	eps atomic.Pointer[[]*endpointState]
}

// endpointState is immutable: a change replaces it.
type endpointState struct {
	cfg      config.Endpoint
	source   string
	disabled string // why it was disabled at run time (410), "" if not
}

func (e *endpointState) enabled() bool { return e.cfg.Enabled && e.disabled == "" }

func newOrgState(c config.Org) (*orgState, error) {
	o := &orgState{id: c.ID, cfg: c}
	for _, k := range c.APIKeys {
		o.keys = append(o.keys, sha256.Sum256([]byte(k)))
	}
	if c.SecretKey != nil {
		k, err := auth.HMACKey(c.SecretKey)
		if err != nil {
			return nil, err
		}
		o.hmac = &k
	}
	if c.InboundAuth == config.InboundAuthWebioToken {
		v, err := auth.NewVerifier(auth.VerifyConfig{WebioSecret: c.SecretKey, Org: c.ID})
		if err != nil {
			return nil, fmt.Errorf("inbound auth: %w", err)
		}
		o.verifier = v
	}
	empty := ""
	o.token.Store(&empty)
	eps := []*endpointState{}
	o.eps.Store(&eps)
	return o, nil
}

// checkKey compares hashes in constant time, against every key, so neither
// the match position nor the key length shows in the timing.
func (o *orgState) checkKey(sum [32]byte) bool {
	ok := 0
	for _, k := range o.keys {
		ok |= subtle.ConstantTimeCompare(sum[:], k[:])
	}
	return ok == 1
}

func (o *orgState) endpoints() []*endpointState { return *o.eps.Load() }

func (o *orgState) endpoint(id string) *endpointState {
	for _, e := range o.endpoints() {
		if e.cfg.ID == id {
			return e
		}
	}
	return nil
}

// replace swaps one endpoint (nil deletes), keeping the list sorted. Called
// with o.mu held.
func (o *orgState) replace(id string, e *endpointState) {
	old := o.endpoints()
	next := make([]*endpointState, 0, len(old)+1)
	for _, x := range old {
		if x.cfg.ID != id {
			next = append(next, x)
		}
	}
	if e != nil {
		next = append(next, e)
	}
	sort.Slice(next, func(i, j int) bool { return next[i].cfg.ID < next[j].cfg.ID })
	o.eps.Store(&next)
}

func (o *orgState) customEndpoint() *endpointState {
	for _, e := range o.endpoints() {
		if e.cfg.CustomValues() {
			return e
		}
	}
	return nil
}

// signingKey is the key of the jwt scheme.
func (r *Relay) signingKey(o *orgState) *auth.SigningKey {
	if o.cfg.JWTAlgorithm == auth.HS256 {
		return o.hmac
	}
	return r.keys.current(o.cfg.JWTAlgorithm)
}

func (r *Relay) algorithms() []auth.Algorithm {
	var algs []auth.Algorithm
	seen := map[auth.Algorithm]bool{}
	for _, o := range r.orgList {
		if a := o.cfg.JWTAlgorithm; a.Asymmetric() && !seen[a] {
			seen[a] = true
			algs = append(algs, a)
		}
	}
	return algs
}

// loadToken restores the organisation's Webio token, minting one on the
// first start (or when the secret key changed, so the old one no longer
// verifies).
func (r *Relay) loadToken(ctx context.Context, o *orgState) error {
	if o.cfg.SecretKey == nil {
		return nil
	}
	b, err := r.store.Get(tokenKey(o.id))
	if err == nil && tokenValid(string(b), o) {
		s := string(b)
		o.token.Store(&s)
		return nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("load token: %w", err)
	}
	_, err = r.mintToken(ctx, o)
	return err
}

func tokenValid(tok string, o *orgState) bool {
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"})).ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) {
		return o.cfg.SecretKey, nil
	})
	return err == nil && claims["org"] == o.id
}

// mintToken makes and stores a new Webio token; deliveries use it from the
// next attempt on.
func (r *Relay) mintToken(ctx context.Context, o *orgState) (string, error) {
	tok, err := auth.MintWebioToken(o.cfg.SecretKey, auth.WebioClaims{Issuer: r.cfg.Issuer, Org: o.id, IssuedAt: r.clock.Now()})
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	if err := r.store.Write(ctx, store.Set(tokenKey(o.id), []byte(tok))); err != nil {
		return "", fmt.Errorf("store token: %w", err)
	}
	o.token.Store(&tok)
	return tok, nil
}

// loadEndpoints installs the file's endpoints, then those created through
// the API, then the run-time disabled marks.
func (r *Relay) loadEndpoints(ctx context.Context, o *orgState) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, e := range o.cfg.Endpoints {
		o.replace(e.ID, &endpointState{cfg: e, source: sourceConfig})
	}
	err := r.store.Scan(ctx, store.ScanOptions{Prefix: []byte(pfxEndpoint + o.id + "/")}, func(k, v []byte) error {
		var re config.RawEndpoint
		if err := json.Unmarshal(v, &re); err != nil {
			r.log.Error().Err(err).Str("key", string(k)).Msg("skip unreadable stored endpoint")
			return nil
		}
		if o.endpoint(re.ID) != nil {
			r.log.Warn().Str(logOrg, o.id).Str(logEndpoint, re.ID).Msg("stored endpoint shadowed by the configuration file")
			return nil
		}
		if o.customEndpoint() != nil && hasCustom(re.Events) {
			r.log.Warn().Str(logOrg, o.id).Str(logEndpoint, re.ID).Msg("stored endpoint skipped: the organisation already has a custom-value endpoint")
			return nil
		}
		e, err := re.Validate("", &o.cfg)
		if err != nil {
			r.log.Error().Err(err).Str(logOrg, o.id).Str(logEndpoint, re.ID).Msg("stored endpoint no longer valid; skipped")
			return nil
		}
		o.replace(e.ID, &endpointState{cfg: *e, source: sourceAPI})
		return nil
	})
	if err != nil {
		return fmt.Errorf("load endpoints: %w", err)
	}
	return r.store.Scan(ctx, store.ScanOptions{Prefix: []byte(pfxDisabled + o.id + "/")}, func(k, v []byte) error {
		id := strings.TrimPrefix(string(k), pfxDisabled+o.id+"/")
		if e := o.endpoint(id); e != nil {
			cp := *e
			cp.disabled = string(v)
			o.replace(id, &cp)
		}
		return nil
	})
}

func hasCustom(events []string) bool {
	for _, s := range events {
		if s == string(event.CustomValueRequest) {
			return true
		}
	}
	return false
}

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
	return EndpointView{RawEndpoint: raw, Source: e.source, DisabledReason: e.disabled}
}

// putEndpoint creates (create=true) or replaces an endpoint from an API
// document.
func (r *Relay) putEndpoint(ctx context.Context, o *orgState, raw config.RawEndpoint, create bool) (*endpointState, error) {
	e, err := raw.Validate("", &o.cfg)
	if err != nil {
		if errors.Is(err, config.ErrTunnel) {
			return nil, apiErrorf(http.StatusBadRequest, "unsupported_endpoint", "%v", err)
		}
		return nil, apiErrorf(http.StatusBadRequest, "invalid_endpoint", "%v", err)
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
	ops := []store.Op{}
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
		next = &endpointState{cfg: old.cfg, source: sourceConfig, disabled: old.disabled}
		if e.Enabled {
			next.disabled = ""
			ops = append(ops, store.Delete(disabledKey(o.id, e.ID)))
		} else {
			next.disabled = "disabled through the API"
			ops = append(ops, store.Set(disabledKey(o.id, e.ID), []byte(next.disabled)))
		}
	} else {
		doc, err := json.Marshal(e.Raw())
		if err != nil {
			return nil, fmt.Errorf("encode endpoint: %w", err)
		}
		ops = append(ops, store.Set(endpointKey(o.id, e.ID), doc), store.Delete(disabledKey(o.id, e.ID)))
	}
	if err := r.store.Write(ctx, ops...); err != nil {
		return nil, storeError(err)
	}
	o.replace(e.ID, next)
	r.disp.endpointChanged(o, e.ID)
	return next, nil
}

// deleteEndpoint removes an API endpoint and its queue. Its deliveries stay
// readable; the ones still waiting are no longer sent.
func (r *Relay) deleteEndpoint(ctx context.Context, o *orgState, id string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	old := o.endpoint(id)
	if old == nil {
		return apiErrorf(http.StatusNotFound, "not_found", "no endpoint %q", id)
	}
	if old.source == sourceConfig {
		return apiErrorf(http.StatusConflict, "endpoint_in_config", "endpoint %q is defined in the configuration file: remove it there", id)
	}
	if err := r.store.Write(ctx, store.Delete(endpointKey(o.id, id)), store.Delete(disabledKey(o.id, id))); err != nil {
		return storeError(err)
	}
	o.replace(id, nil)
	r.disp.endpointRemoved(o, id)
	if err := r.store.DeletePrefix(ctx, queuePrefix(o.id, id)); err != nil {
		r.log.Error().Err(err).Str(logOrg, o.id).Str(logEndpoint, id).Msg("delete queue of removed endpoint")
	}
	return nil
}

// disableEndpoint records a 410: no more deliveries until re-enabled.
func (r *Relay) disableEndpoint(o *orgState, id, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	e := o.endpoint(id)
	if e == nil || e.disabled != "" {
		return
	}
	cp := *e
	cp.disabled = reason
	o.replace(id, &cp)
	r.log.Warn().Str(logOrg, o.id).Str(logEndpoint, id).Str("reason", reason).Msg("endpoint disabled")
}
