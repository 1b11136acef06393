package relay

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/relay/config"
)

// Endpoint sources.
const (
	sourceConfig = "config"
	sourceAPI    = "api"
)

// directory is the relay's organisations at run time: every part looks
// organisations and endpoints up here. The set of organisations is fixed
// by the configuration; their endpoints and tokens change.
type directory struct {
	byID map[string]*orgState
	list []*orgState
}

func newDirectory(cfg *config.Config) (*directory, error) {
	d := &directory{byID: make(map[string]*orgState)}
	for _, oc := range cfg.Organisations {
		o, err := newOrgState(oc)
		if err != nil {
			return nil, fmt.Errorf("organisation %s: %w", oc.ID, err)
		}
		d.byID[oc.ID] = o
		d.list = append(d.list, o)
	}
	return d, nil
}

func (d *directory) org(id string) *orgState { return d.byID[id] }

// algorithms are the asymmetric JWT algorithms in use: the keyring holds
// one key pair of each.
func (d *directory) algorithms() []auth.Algorithm {
	var algs []auth.Algorithm
	seen := map[auth.Algorithm]bool{}
	for _, o := range d.list {
		if a := o.cfg.JWTAlgorithm; a.Asymmetric() && !seen[a] {
			seen[a] = true
			algs = append(algs, a)
		}
	}
	return algs
}

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

// disabledWhy says why a disabled endpoint is, in the words an error
// gives a caller.
func (e *endpointState) disabledWhy() string {
	if !e.cfg.Enabled {
		return "enabled: false in the configuration file"
	}
	return e.disabled
}

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
	if vc, ok := c.InboundVerify(); ok {
		// The platform's secret, never the one the relay signs its own
		// deliveries with: an endpoint must not be able to post events.
		v, err := auth.NewVerifier(vc)
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

// markDisabled records a 410 in memory, once the store has it (see
// attempter.disable): no new event is routed to the endpoint. It reports
// whether the mark is new.
func (o *orgState) markDisabled(id, reason string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	e := o.endpoint(id)
	if e == nil || e.disabled != "" {
		return false
	}
	cp := *e
	cp.disabled = reason
	o.replace(id, &cp)
	return true
}

// endpointConfig is an endpoint as configured now, or the defaults when it
// no longer exists (how a delivery of a removed endpoint is signed when
// replayed elsewhere: the organisation's default auth).
func (o *orgState) endpointConfig(id string) config.Endpoint {
	if e := o.endpoint(id); e != nil {
		return e.cfg
	}
	e := config.Endpoint{ID: id, Timeout: config.DefaultTimeout, Enabled: true}
	if o.cfg.SecretKey != nil {
		e.Auth = []string{auth.SchemeWebioToken}
	}
	return e
}

// tokens keeps the organisations' Webio tokens in the store.
type tokens struct {
	store  Store
	issuer string
	clock  Clock
}

// load restores the organisation's Webio token, minting one on the first
// start (or when the secret key changed, so the old one no longer
// verifies).
func (t *tokens) load(ctx context.Context, o *orgState) error {
	if o.cfg.SecretKey == nil {
		return nil
	}
	tok, err := t.store.Token(ctx, o.id)
	if err != nil {
		return fmt.Errorf("load token: %w", err)
	}
	if tok != "" && tokenValid(tok, o) {
		o.token.Store(&tok)
		return nil
	}
	_, err = t.mint(ctx, o)
	return err
}

// refresh takes the organisation's Webio token from the store when another
// relay sharing it minted a new one. It never mints: a missing or invalid
// token in the store keeps the one in use.
func (t *tokens) refresh(ctx context.Context, o *orgState) error {
	if o.cfg.SecretKey == nil {
		return nil
	}
	tok, err := t.store.Token(ctx, o.id)
	if err != nil {
		return fmt.Errorf("load token: %w", err)
	}
	if tok != "" && tok != *o.token.Load() && tokenValid(tok, o) {
		o.token.Store(&tok)
	}
	return nil
}

func tokenValid(tok string, o *orgState) bool {
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"})).ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) {
		return o.cfg.SecretKey, nil
	})
	return err == nil && claims["org"] == o.id
}

// mint makes and stores a new Webio token; deliveries use it from the next
// attempt on.
func (t *tokens) mint(ctx context.Context, o *orgState) (string, error) {
	tok, err := auth.MintWebioToken(o.cfg.SecretKey, auth.WebioClaims{Issuer: t.issuer, Org: o.id, IssuedAt: t.clock.Now()})
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	if err := t.store.PutToken(context.WithoutCancel(ctx), o.id, tok); err != nil {
		return "", fmt.Errorf("store token: %w", err)
	}
	o.token.Store(&tok)
	return tok, nil
}

// loadEndpoints installs the file's endpoints, then those created through
// the API, then the run-time disabled marks, as one change: at start, and
// again whenever a relay sharing the store changed them (reload).
func loadEndpoints(ctx context.Context, st Store, o *orgState, log zerolog.Logger) error {
	// Read under the lock an API change holds across its store write, so
	// a reload never installs what it read before that change.
	o.mu.Lock()
	defer o.mu.Unlock()
	stored, err := st.Endpoints(ctx, o.id)
	if err != nil {
		return fmt.Errorf("load endpoints: %w", err)
	}
	byID := map[string]*endpointState{}
	custom := false
	for _, e := range o.cfg.Endpoints {
		byID[e.ID] = &endpointState{cfg: e, source: sourceConfig}
		custom = custom || e.CustomValues()
	}
	for _, se := range stored {
		if se.Doc == nil {
			continue
		}
		var re config.RawEndpoint
		if err := json.Unmarshal(se.Doc, &re); err != nil {
			log.Error().Err(err).Str(logOrg, o.id).Str(logEndpoint, se.ID).Msg("skip unreadable stored endpoint")
			continue
		}
		if byID[re.ID] != nil {
			log.Warn().Str(logOrg, o.id).Str(logEndpoint, re.ID).Msg("stored endpoint shadowed by the configuration file")
			continue
		}
		if custom && hasCustom(re.Events) {
			log.Warn().Str(logOrg, o.id).Str(logEndpoint, re.ID).Msg("stored endpoint skipped: the organisation already has a custom-value endpoint")
			continue
		}
		if re.Ordered {
			// Relays before the rule that an ordered endpoint has one in
			// flight stored their default limit with it.
			re.MaxInFlight = nil
		}
		e, err := re.Validate("", &o.cfg)
		if err != nil {
			log.Error().Err(err).Str(logOrg, o.id).Str(logEndpoint, re.ID).Msg("stored endpoint no longer valid; skipped")
			continue
		}
		byID[e.ID] = &endpointState{cfg: *e, source: sourceAPI}
		custom = custom || e.CustomValues()
	}
	for _, se := range stored {
		if e := byID[se.ID]; e != nil && se.Disabled != "" {
			cp := *e
			cp.disabled = se.Disabled
			byID[se.ID] = &cp
		}
	}
	list := make([]*endpointState, 0, len(byID))
	for _, e := range byID {
		list = append(list, e)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].cfg.ID < list[j].cfg.ID })
	o.eps.Store(&list)
	return nil
}

func hasCustom(events []string) bool {
	for _, s := range events {
		if s == string(event.CustomValueRequest) {
			return true
		}
	}
	return false
}
