// Package config is the relay's configuration: the YAML file of SPEC §4, the
// one-organisation setup made from flags, and the endpoint documents the
// management API reads and writes. Everything is validated here, once, with
// one-line errors that name the offending key, so the relay itself can trust
// what it is given.
package config

import (
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/net/http/httpguts"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/internal/httpguard"
	"github.com/sidehook/sidehook/internal/target"
	"github.com/sidehook/sidehook/internal/units"
)

// Defaults of SPEC §4.
const (
	DefaultListen          = "127.0.0.1:8080"
	DefaultData            = "./.sidehook/relay"
	DefaultIssuer          = auth.DefaultIssuer
	DefaultJitter          = 0.2
	DefaultRetention       = 72 * time.Hour
	DefaultMaxBody         = 1 << 20
	DefaultMaxQueue        = 1_000_000
	DefaultTimeout         = 15 * time.Second
	DefaultCustomTimeout   = 5 * time.Second
	DefaultMaxInFlight     = 16
	MaxMaxInFlight         = 1024
	InboundAuthNone        = "none"
	InboundAuthWebioToken  = "webio-token"
	maxIDLen               = 64
	maxRetrySteps          = 64
	maxTimeout             = 10 * time.Minute
	maxConfiguredRetryStep = 7 * 24 * time.Hour
)

// DefaultSchedule is the Standard Webhooks retry schedule: the waits after
// the first, second, … attempt; after the last the delivery is dead.
func DefaultSchedule() []time.Duration {
	return []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}
}

// Config is a validated relay configuration.
type Config struct {
	Listen    string
	Data      string
	InMemory  bool // no files at all: tests and `sidehook dev --in-memory`
	Issuer    string
	Retry     Retry
	Retention time.Duration
	Limits    Limits
	// AdminToken opens the whole-relay view (every organisation) of the
	// dashboard and API; "" when not set.
	AdminToken string
	// AllowTargets and DenyTargets are target.Options rules for outbound
	// URLs (endpoints and replay targets), each checked by
	// target.ParseRule.
	AllowTargets, DenyTargets []string
	// TLSCert and TLSKey are PEM files to serve HTTPS with; both or
	// neither, and they were loaded once as a pair during validation.
	TLSCert, TLSKey string
	// Store, when set, keeps the relay's data in NATS JetStream instead
	// of the embedded store under Data.
	Store         *Store
	Organisations []Org
}

// Retry is a retry policy: Schedule[i] is the wait after attempt i+1.
type Retry struct {
	Schedule []time.Duration
	Jitter   float64
}

// Limits bound what one producer can make the relay hold.
type Limits struct {
	MaxBody  int64
	MaxQueue int
	// MinFreeDisk is the free space under which ingest answers 503 instead
	// of writing (0: the store's default).
	MinFreeDisk int64
}

// StoreLimit is what a store holds of one event (relay.Store's
// BodyLimit), for CheckMaxBody.
type StoreLimit = units.StoreLimit

// CheckMaxBody refuses a limits.max_body above what the store holds of
// one event: every event between the two was accepted by the limit, then
// refused by the store, whatever the producer did.
func (c *Config) CheckMaxBody(l StoreLimit) error {
	if err := l.Check(c.Limits.MaxBody, "event"); err != nil {
		return fmt.Errorf("limits.max_body: %w; lower it", err)
	}
	return nil
}

// Org is one organisation: its keys and endpoints.
type Org struct {
	ID        string
	APIKeys   []string
	SecretKey []byte
	// StandardSecrets sign every standard delivery, each adding a
	// signature, so receivers holding any one of them verify during a
	// rotation (SPEC §3).
	StandardSecrets [][]byte
	JWTAlgorithm    auth.Algorithm
	InboundAuth     string
	// InboundSecret verifies the x-webio-token of POST/GET /in/{org} when
	// InboundAuth is webio-token. It is never SecretKey: the relay sends
	// tokens signed with SecretKey to every endpoint and replay target,
	// and those must not be able to post events back in.
	InboundSecret []byte
	// InboundIssuer, when set, must be the iss claim of inbound tokens.
	InboundIssuer string
	Endpoints     []Endpoint
	// Retry is the relay-wide policy: an endpoint's retry block changes
	// only what it names of it.
	Retry Retry
}

// InboundVerify is the verifier configuration for the organisation's
// inbound tokens, and false when it does not check them.
func (o Org) InboundVerify() (auth.VerifyConfig, bool) {
	if o.InboundAuth != InboundAuthWebioToken {
		return auth.VerifyConfig{}, false
	}
	return auth.VerifyConfig{WebioSecret: o.InboundSecret, Org: o.ID, WebioIssuer: o.InboundIssuer}, true
}

// Endpoint is one validated delivery target.
type Endpoint struct {
	ID          string
	URL         string
	Events      []string
	Auth        []string
	Timeout     time.Duration // 0: the default for its kind (15 s, 5 s for custom values)
	MaxInFlight int
	Rate        Rate
	Ordered     bool
	Retry       *Retry // nil: the relay-wide policy
	Headers     map[string]string
	Enabled     bool
}

// CustomValues reports whether the endpoint answers custom-value requests.
// Only an explicit subscription counts: a "*" endpoint receives posted
// events, not the platform's synchronous GETs.
func (e Endpoint) CustomValues() bool {
	for _, s := range e.Events {
		if s == string(event.CustomValueRequest) {
			return true
		}
	}
	return false
}

// Getenv resolves env:NAME secrets.
type Getenv func(string) string

// Load reads and validates a configuration file. A relative path in it
// (data, tls_cert, tls_key, store.credentials, store.tls_ca) is taken
// from the file's directory, as Prometheus and Caddy take theirs: `sidehook
// relay --config /etc/sidehook/relay.yaml` means the same whatever the
// working directory. Paths from flags and variables, and the default data
// directory, stay relative to the working directory.
func Load(path string, getenv Getenv) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var f File
	if err := decodeFile(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	written := f.Data
	f.resolvePaths(filepath.Dir(path))
	if err := movedData(written, f.Data); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c, err := f.Validate(getenv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// resolvePaths makes each relative file path of f one under dir, the
// directory of the file f was read from. Every path the file holds is
// listed here, and only here.
func (f *File) resolvePaths(dir string) {
	paths := []*string{&f.Data, &f.TLSCert, &f.TLSKey}
	if f.Store != nil {
		paths = append(paths, &f.Store.Credentials, &f.Store.TLSCA)
	}
	for _, p := range paths {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}

// movedData refuses a relative data directory that does not exist under
// the configuration file's directory while, taken from the working
// directory as sidehook took it before, it holds data: started, the relay
// would make a new, empty store there and leave the events it acknowledged
// in the old one undelivered.
func movedData(written, resolved string) error {
	if written == "" || filepath.IsAbs(written) {
		return nil
	}
	old, err := filepath.Abs(written)
	if err != nil {
		return nil
	}
	if now, err := filepath.Abs(resolved); err != nil || now == old {
		return nil
	}
	if _, err := os.Stat(resolved); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if entries, err := os.ReadDir(old); err != nil || len(entries) == 0 {
		return nil
	}
	return fmt.Errorf("data %q is taken from this file's directory, as %s, which does not exist; from the working directory, as before, it is %s, which holds data: set data to %s (or move that directory)",
		written, resolved, old, old)
}

// File is the YAML document of SPEC §4 before validation.
type File struct {
	Listen    string    `yaml:"listen"`
	Data      string    `yaml:"data"`
	Issuer    string    `yaml:"issuer"`
	Retry     *RawRetry `yaml:"retry"`
	Retention string    `yaml:"retention"`
	Limits    struct {
		MaxBody     string `yaml:"max_body"`
		MaxQueue    *int   `yaml:"max_queue"`
		MinFreeDisk string `yaml:"min_free_disk"`
	} `yaml:"limits"`
	AdminToken    string    `yaml:"admin_token"`
	AllowTargets  []string  `yaml:"allow_targets"`
	DenyTargets   []string  `yaml:"deny_targets"`
	TLSCert       string    `yaml:"tls_cert"`
	TLSKey        string    `yaml:"tls_key"`
	Store         *RawStore `yaml:"store"`
	Organisations []RawOrg  `yaml:"organisations"`
}

// RawRetry is a retry policy as written.
type RawRetry struct {
	Schedule []string `yaml:"schedule" json:"schedule,omitzero"`
	Jitter   *float64 `yaml:"jitter" json:"jitter,omitempty"`
}

// RawOrg is an organisation as written.
type RawOrg struct {
	ID        string   `yaml:"id"`
	APIKeys   []string `yaml:"api_keys"`
	SecretKey string   `yaml:"secret_key"`
	// StandardSecret is one whsec_ secret or, during a rotation, a list.
	StandardSecret Secrets `yaml:"standard_secret"`
	JWT            struct {
		Algorithm string `yaml:"algorithm"`
	} `yaml:"jwt"`
	InboundAuth   string        `yaml:"inbound_auth"`
	InboundSecret string        `yaml:"inbound_secret"`
	InboundIssuer string        `yaml:"inbound_issuer"`
	Endpoints     []RawEndpoint `yaml:"endpoints"`
}

// Secrets is a list of secrets that YAML may also write as one string.
type Secrets []string

// UnmarshalYAML reads a string or a list of strings.
func (s *Secrets) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = Secrets{n.Value}
		return nil
	}
	var list []string
	if err := n.Decode(&list); err != nil {
		return err
	}
	*s = list
	return nil
}

// RawEndpoint is an endpoint as written in YAML or sent to the API; the API
// answers with the same document.
type RawEndpoint struct {
	ID          string            `yaml:"id" json:"id"`
	URL         string            `yaml:"url" json:"url"`
	Events      []string          `yaml:"events" json:"events"`
	Auth        []string          `yaml:"auth" json:"auth"`
	Timeout     string            `yaml:"timeout" json:"timeout,omitempty"`
	MaxInFlight *int              `yaml:"max_in_flight" json:"max_in_flight,omitempty"` // nil: DefaultMaxInFlight
	Rate        string            `yaml:"rate" json:"rate,omitempty"`
	Ordered     bool              `yaml:"ordered" json:"ordered"`
	Retry       *RawRetry         `yaml:"retry" json:"retry,omitempty"`
	Headers     map[string]string `yaml:"headers" json:"headers,omitempty"`
	Enabled     *bool             `yaml:"enabled" json:"enabled,omitempty"`
}

// Parse decodes and validates a YAML configuration: one document, every
// key known. Errors are one line and name the key.
func Parse(data []byte, getenv Getenv) (*Config, error) {
	var f File
	if err := decodeFile(data, &f); err != nil {
		return nil, err
	}
	return f.Validate(getenv)
}

// Validate checks f and returns the configuration with defaults applied.
func (f *File) Validate(getenv Getenv) (*Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	c := &Config{
		Listen:    orDefault(f.Listen, DefaultListen),
		Data:      orDefault(f.Data, DefaultData),
		Issuer:    orDefault(f.Issuer, DefaultIssuer),
		Retry:     Retry{Schedule: DefaultSchedule(), Jitter: DefaultJitter},
		Retention: DefaultRetention,
		Limits:    Limits{MaxBody: DefaultMaxBody, MaxQueue: DefaultMaxQueue},
	}
	if f.Retry != nil {
		r, err := f.Retry.parse("retry", c.Retry)
		if err != nil {
			return nil, err
		}
		c.Retry = *r
	}
	if f.Retention != "" {
		d, err := units.ParseDuration(f.Retention)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("retention: %q is not a positive duration", f.Retention)
		}
		c.Retention = d
	}
	if f.Limits.MaxBody != "" {
		n, err := units.ParseSize(f.Limits.MaxBody)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("limits.max_body: %q is not a positive size (e.g. 1MiB)", f.Limits.MaxBody)
		}
		c.Limits.MaxBody = n
	}
	if f.Limits.MaxQueue != nil {
		if *f.Limits.MaxQueue <= 0 {
			return nil, fmt.Errorf("limits.max_queue: %d is not positive", *f.Limits.MaxQueue)
		}
		c.Limits.MaxQueue = *f.Limits.MaxQueue
	}
	if f.Limits.MinFreeDisk != "" {
		// 0 is refused, not taken as the store's default without a word:
		// whoever wrote it meant no reserve, which the store does not
		// allow (a full disk would crash it).
		n, err := units.ParseSize(f.Limits.MinFreeDisk)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("limits.min_free_disk: %q is not a positive size (e.g. 128MiB); leave it out for the default", f.Limits.MinFreeDisk)
		}
		c.Limits.MinFreeDisk = n
	}
	if f.AdminToken != "" {
		v, err := secret("admin_token", f.AdminToken, getenv)
		if err != nil {
			return nil, err
		}
		if err := httpguard.CheckAdminToken(v); err != nil {
			return nil, fmt.Errorf("admin_token: %w", err)
		}
		c.AdminToken = v
	}
	for _, list := range []struct {
		key   string
		rules []string
		dst   *[]string
	}{{"allow_targets", f.AllowTargets, &c.AllowTargets}, {"deny_targets", f.DenyTargets, &c.DenyTargets}} {
		for i, r := range list.rules {
			if _, err := target.ParseRule(r); err != nil {
				return nil, fmt.Errorf("%s[%d]: %w", list.key, i, err)
			}
			*list.dst = append(*list.dst, strings.TrimSpace(r))
		}
	}
	if err := ValidTLS(f.TLSCert, f.TLSKey); err != nil {
		return nil, err
	}
	c.TLSCert, c.TLSKey = f.TLSCert, f.TLSKey
	if f.Store != nil {
		st, err := f.Store.validate("store", getenv)
		if err != nil {
			return nil, err
		}
		c.Store = st
	}
	if len(f.Organisations) == 0 {
		return nil, errors.New("organisations: at least one organisation is required")
	}
	seen := map[string]bool{}
	keyOrg := map[string]string{} // API key → the organisation it names
	for i, ro := range f.Organisations {
		key := fmt.Sprintf("organisations[%d]", i)
		o, err := ro.validate(key, getenv, c.Retry)
		if err != nil {
			return nil, err
		}
		if seen[o.ID] {
			return nil, fmt.Errorf("%s.id: %q is used by another organisation", key, o.ID)
		}
		seen[o.ID] = true
		// An API key says which organisation calls: one key in two would
		// send the second's events to the first's endpoints.
		for j, k := range o.APIKeys {
			if other, ok := keyOrg[k]; ok && other != o.ID {
				return nil, fmt.Errorf("%s.api_keys[%d]: also an API key of organisation %q; each key names one organisation", key, j, other)
			}
			keyOrg[k] = o.ID
		}
		c.Organisations = append(c.Organisations, *o)
	}
	return c, nil
}

// CheckTargets checks every endpoint URL of c against the outbound policy,
// naming the endpoint's key, so a relay refuses to start with an endpoint
// it would never be allowed to reach.
func (c *Config) CheckTargets(p *target.Policy) error {
	for i, o := range c.Organisations {
		for j, e := range o.Endpoints {
			if err := p.CheckURL(e.URL); err != nil {
				return fmt.Errorf("organisations[%d].endpoints[%d].url: %w", i, j, err)
			}
		}
	}
	return nil
}

func (ro RawOrg) validate(key string, getenv Getenv, retry Retry) (*Org, error) {
	o := &Org{ID: ro.ID, Retry: retry}
	if err := ValidID(ro.ID); err != nil {
		return nil, fmt.Errorf("%s.id: %w", key, err)
	}
	for i, k := range ro.APIKeys {
		v, err := secret(fmt.Sprintf("%s.api_keys[%d]", key, i), k, getenv)
		if err != nil {
			return nil, err
		}
		if v == "" {
			return nil, fmt.Errorf("%s.api_keys[%d]: empty", key, i)
		}
		if err := httpguard.CheckBearer(v); err != nil {
			return nil, fmt.Errorf("%s.api_keys[%d]: %w", key, i, err)
		}
		o.APIKeys = append(o.APIKeys, v)
	}
	if ro.SecretKey != "" {
		v, err := secret(key+".secret_key", ro.SecretKey, getenv)
		if err != nil {
			return nil, err
		}
		if err := checkSecretKey(v); err != nil {
			return nil, fmt.Errorf("%s.secret_key: %w", key, err)
		}
		o.SecretKey = []byte(v)
	}
	for i, sec := range ro.StandardSecret {
		k := key + ".standard_secret"
		if len(ro.StandardSecret) > 1 {
			k = fmt.Sprintf("%s[%d]", k, i)
		}
		v, err := secret(k, sec, getenv)
		if err != nil {
			return nil, err
		}
		b, err := auth.ParseStandardSecret(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", k, strings.TrimPrefix(err.Error(), "auth: "))
		}
		o.StandardSecrets = append(o.StandardSecrets, b)
	}
	switch {
	case ro.JWT.Algorithm != "":
		a, err := auth.ParseAlgorithm(ro.JWT.Algorithm)
		if err != nil {
			return nil, fmt.Errorf("%s.jwt.algorithm: %q: want HS256, RS256, ES256 or EdDSA", key, ro.JWT.Algorithm)
		}
		if a == auth.HS256 && o.SecretKey == nil {
			return nil, fmt.Errorf("%s.jwt.algorithm: HS256 signs with secret_key, which is not set", key)
		}
		o.JWTAlgorithm = a
	case o.SecretKey != nil:
		o.JWTAlgorithm = auth.HS256
	default:
		o.JWTAlgorithm = auth.ES256
	}
	if err := ro.validateInbound(key, o, getenv); err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	custom := ""
	for i, re := range ro.Endpoints {
		ek := fmt.Sprintf("%s.endpoints[%d]", key, i)
		if len(re.Headers) > 0 {
			// Where the receiver's credential goes: env:NAME, as every
			// secret of the file (not through the API, whose clients
			// are not to read the relay's environment).
			hs := make(map[string]string, len(re.Headers))
			for n, v := range re.Headers {
				sv, err := secret(ek+".headers."+n, v, getenv)
				if err != nil {
					return nil, err
				}
				hs[n] = sv
			}
			re.Headers = hs
		}
		e, err := re.Validate(ek, o)
		if err != nil {
			return nil, err
		}
		if ids[e.ID] {
			return nil, fmt.Errorf("%s.id: %q is used by another endpoint", ek, e.ID)
		}
		ids[e.ID] = true
		if e.CustomValues() {
			if custom != "" {
				return nil, fmt.Errorf("%s.events: endpoint %q already answers custom_value_request; an organisation has at most one", ek, custom)
			}
			custom = e.ID
		}
		o.Endpoints = append(o.Endpoints, *e)
	}
	return o, nil
}

// validateInbound checks how POST/GET /in/{org} is authenticated. The
// inbound secret must differ from secret_key: with one secret for both,
// the token the relay sends every endpoint and replay target is also a
// credential to post events in as the platform.
func (ro RawOrg) validateInbound(key string, o *Org, getenv Getenv) error {
	switch ro.InboundAuth {
	case "", InboundAuthNone:
		o.InboundAuth = InboundAuthNone
		if ro.InboundSecret != "" || ro.InboundIssuer != "" {
			return fmt.Errorf("%s.inbound_auth: inbound_secret or inbound_issuer is set but inbound_auth is none; set inbound_auth: webio-token to check inbound tokens", key)
		}
		return nil
	case InboundAuthWebioToken:
		o.InboundAuth = InboundAuthWebioToken
	default:
		return fmt.Errorf("%s.inbound_auth: %q: want none or webio-token", key, ro.InboundAuth)
	}
	if ro.InboundSecret == "" {
		return fmt.Errorf("%s.inbound_secret: inbound_auth webio-token needs inbound_secret, the secret the platform signs its tokens with (not secret_key, which signs the tokens the relay sends out)", key)
	}
	v, err := secret(key+".inbound_secret", ro.InboundSecret, getenv)
	if err != nil {
		return err
	}
	if err := checkSecretKey(v); err != nil {
		return fmt.Errorf("%s.inbound_secret: %w", key, err)
	}
	if o.SecretKey != nil && subtle.ConstantTimeCompare([]byte(v), o.SecretKey) == 1 {
		return fmt.Errorf("%s.inbound_secret: must differ from secret_key: every endpoint receives tokens signed with secret_key and could post them back to /in/%s", key, o.ID)
	}
	o.InboundSecret = []byte(v)
	o.InboundIssuer = ro.InboundIssuer
	return nil
}

// ValidTLS checks that the certificate and key are given together and
// load as a pair, so a bad path fails at start, not at the first client.
func ValidTLS(cert, key string) error {
	switch {
	case cert == "" && key == "":
		return nil
	case key == "":
		return errors.New("tls_key: tls_cert is set without it; give both or neither")
	case cert == "":
		return errors.New("tls_cert: tls_key is set without it; give both or neither")
	}
	if err := regularFile(cert); err != nil {
		return fmt.Errorf("tls_cert: %w", err)
	}
	if err := regularFile(key); err != nil {
		return fmt.Errorf("tls_key: %w", err)
	}
	if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
		return fmt.Errorf("tls_cert, tls_key: not a PEM certificate and its private key: %v", strings.TrimPrefix(err.Error(), "tls: "))
	}
	return nil
}

// Validate checks an endpoint of organisation o; key prefixes the errors
// (empty for the API, where the document is the whole input).
func (re RawEndpoint) Validate(key string, o *Org) (*Endpoint, error) {
	k := func(field string) string {
		if key == "" {
			return field
		}
		return key + "." + field
	}
	e := &Endpoint{ID: re.ID, URL: re.URL, Ordered: re.Ordered, Enabled: true, MaxInFlight: DefaultMaxInFlight}
	if err := ValidID(re.ID); err != nil {
		return nil, fmt.Errorf("%s: %w", k("id"), err)
	}
	if err := ValidURL(re.URL); err != nil {
		return nil, fmt.Errorf("%s: %w", k("url"), err)
	}
	e.Events = re.Events
	switch {
	case e.Events == nil:
		e.Events = []string{event.Wildcard}
	case len(e.Events) == 0:
		// Written out, [] reads as "none", as auth: [] does; taken as
		// every event it sent everything to an endpoint meant to get
		// nothing.
		return nil, fmt.Errorf("%s: an empty list subscribes to nothing: leave events out (or write [\"*\"]) for every event type, or set enabled: false", k("events"))
	}
	for i, s := range e.Events {
		if s != event.Wildcard && !event.ValidName(s) {
			return nil, fmt.Errorf("%s[%d]: %q is not an event type name", k("events"), i, s)
		}
	}
	if re.Auth == nil {
		if o.SecretKey != nil {
			e.Auth = []string{auth.SchemeWebioToken}
		}
	} else {
		e.Auth = []string{}
	}
	for i, s := range re.Auth {
		scheme, err := auth.ParseScheme(s)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %q: want webio-token, jwt or standard", k("auth"), i, s)
		}
		switch {
		case scheme == auth.SchemeWebioToken && o.SecretKey == nil:
			return nil, fmt.Errorf("%s[%d]: webio-token needs the organisation's secret_key", k("auth"), i)
		case scheme == auth.SchemeJWT && o.JWTAlgorithm == auth.HS256 && o.SecretKey == nil:
			return nil, fmt.Errorf("%s[%d]: jwt with HS256 needs the organisation's secret_key", k("auth"), i)
		case scheme == auth.SchemeStandard && len(o.StandardSecrets) == 0:
			return nil, fmt.Errorf("%s[%d]: standard needs the organisation's standard_secret", k("auth"), i)
		}
		e.Auth = append(e.Auth, scheme)
	}
	if re.Timeout != "" {
		d, err := units.ParseDuration(re.Timeout)
		if err != nil || d <= 0 || d > maxTimeout {
			return nil, fmt.Errorf("%s: %q is not a duration between 1ms and %s", k("timeout"), re.Timeout, maxTimeout)
		}
		e.Timeout = d
	}
	// Only a key left out is the default: a 0 written out is no more a
	// limit than -1 is.
	if re.MaxInFlight != nil {
		if n := *re.MaxInFlight; n < 1 || n > MaxMaxInFlight {
			return nil, fmt.Errorf("%s: %d is not between 1 and %d (leave it out for the default, %d)",
				k("max_in_flight"), n, MaxMaxInFlight, DefaultMaxInFlight)
		}
		e.MaxInFlight = *re.MaxInFlight
	}
	if e.Ordered {
		// One at a time is what ordered means: a larger limit written out
		// would read as a promise the relay does not keep.
		if e.MaxInFlight > 1 && re.MaxInFlight != nil {
			return nil, fmt.Errorf("%s: %d with ordered: true, which sends one delivery at a time: set it to 1 or leave it out",
				k("max_in_flight"), e.MaxInFlight)
		}
		e.MaxInFlight = 1
	}
	if re.Rate != "" {
		r, err := units.ParseRate(re.Rate)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", k("rate"), err)
		}
		e.Rate = r
	}
	if re.Retry != nil {
		r, err := re.Retry.parse(k("retry"), o.Retry)
		if err != nil {
			return nil, err
		}
		e.Retry = r
	}
	for name := range re.Headers {
		if !httpguts.ValidHeaderFieldName(name) {
			return nil, fmt.Errorf("%s: %q is not a valid header name", k("headers"), name)
		}
		if reservedHeader(name) {
			return nil, fmt.Errorf("%s: %q is set by the relay and cannot be overridden", k("headers"), name)
		}
		if strings.ContainsAny(re.Headers[name], "\r\n") {
			return nil, fmt.Errorf("%s.%s: value contains a line break", k("headers"), name)
		}
	}
	if len(re.Headers) > 0 {
		e.Headers = make(map[string]string, len(re.Headers))
		for n, v := range re.Headers {
			e.Headers[n] = v
		}
	}
	if re.Enabled != nil {
		e.Enabled = *re.Enabled
	}
	return e, nil
}

// Raw returns the document form of a validated endpoint, as the API shows
// it; Validate(Raw()) gives the endpoint back.
func (e Endpoint) Raw() RawEndpoint {
	enabled, inFlight := e.Enabled, e.MaxInFlight
	re := RawEndpoint{
		ID: e.ID, URL: e.URL, Events: e.Events, Auth: e.Auth,
		MaxInFlight: &inFlight, Ordered: e.Ordered, Headers: e.Headers, Enabled: &enabled,
	}
	if re.Auth == nil {
		re.Auth = []string{}
	}
	if e.Timeout > 0 {
		re.Timeout = e.Timeout.String()
	}
	if e.Rate.PerSecond > 0 {
		re.Rate = e.Rate.Text
	}
	if e.Retry != nil {
		j := e.Retry.Jitter
		re.Retry = &RawRetry{Jitter: &j}
		if e.Retry.Schedule != nil { // empty is no retries, not the relay-wide schedule
			re.Retry.Schedule = make([]string, 0, len(e.Retry.Schedule))
		}
		for _, d := range e.Retry.Schedule {
			re.Retry.Schedule = append(re.Retry.Schedule, d.String())
		}
	}
	return re
}

func (rr RawRetry) parse(key string, base Retry) (*Retry, error) {
	r := &Retry{Schedule: base.Schedule, Jitter: base.Jitter}
	if rr.Schedule != nil {
		if len(rr.Schedule) > maxRetrySteps {
			return nil, fmt.Errorf("%s.schedule: %d steps, at most %d", key, len(rr.Schedule), maxRetrySteps)
		}
		r.Schedule = make([]time.Duration, 0, len(rr.Schedule))
		for i, s := range rr.Schedule {
			d, err := units.ParseDuration(s)
			if err != nil || d <= 0 || d > maxConfiguredRetryStep {
				return nil, fmt.Errorf("%s.schedule[%d]: %q is not a positive duration (at most 168h)", key, i, s)
			}
			r.Schedule = append(r.Schedule, d)
		}
	}
	if rr.Jitter != nil {
		// Written as a negated range so NaN, which compares false with
		// everything, fails it too: a NaN jitter made every retry at once.
		if j := *rr.Jitter; !(j >= 0 && j < 1) {
			return nil, fmt.Errorf("%s.jitter: %v is not a number from 0 up to (not including) 1, e.g. 0.2 for ±20%%", key, j)
		}
		r.Jitter = *rr.Jitter
	}
	return r, nil
}

// secret resolves an "env:NAME" value.
func secret(key, v string, getenv Getenv) (string, error) {
	name, ok := strings.CutPrefix(v, "env:")
	if !ok {
		return v, nil
	}
	if name == "" {
		return "", fmt.Errorf("%s: env: names no environment variable", key)
	}
	// An empty variable is as good as none, and a shell's
	// export NAME="$UNSET" makes one.
	s := getenv(name)
	if s == "" {
		return "", fmt.Errorf("%s: environment variable %s is not set (or is empty)", key, name)
	}
	return s, nil
}

// checkSecretKey refuses an HMAC secret key too short, or with white space
// around it: the relay would sign with it, and a receiver given the key
// without it rejects every token.
func checkSecretKey(v string) error {
	if len(v) < auth.MinSecretLen {
		return fmt.Errorf("%d bytes, need at least %d", len(v), auth.MinSecretLen)
	}
	return httpguard.CheckTrimmed(v, "which the relay would sign with: a receiver given the key without it rejects every token")
}

// ValidID checks an organisation or endpoint id: 1–64 of [A-Za-z0-9_-],
// starting with a letter or digit. Ids appear in URLs, store keys and
// metric labels, so nothing else is allowed.
func ValidID(id string) error {
	if id == "" {
		return errors.New("required")
	}
	if len(id) > maxIDLen {
		return fmt.Errorf("%q is longer than %d characters", id, maxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || (i > 0 && (c == '_' || c == '-'))
		if !ok {
			return fmt.Errorf("%q: use letters, digits, '_' and '-' only", id)
		}
	}
	return nil
}

// ValidURL checks an endpoint URL: absolute http(s) with a host and no
// credentials, or tunnel://NAME[/PATH] (SPEC §8).
func ValidURL(s string) error {
	if rest, ok := cutTunnel(s); ok {
		_, _, err := parseTunnel(rest)
		return err
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL or tunnel://NAME[/PATH]", s)
	}
	if u.User != nil {
		return fmt.Errorf("%q: credentials in a URL would be logged and shown; use headers or auth instead", u.Redacted())
	}
	return nil
}

// Tunnel returns the tunnel name and path of a tunnel://NAME[/PATH]
// endpoint; ok is false for an http(s) endpoint. The path is "" or starts
// with "/", as written (escapes kept), to be appended to the tunnel
// client's --forward URL.
func (e Endpoint) Tunnel() (name, path string, ok bool) {
	rest, ok := cutTunnel(e.URL)
	if !ok {
		return "", "", false
	}
	name, path, err := parseTunnel(rest)
	if err != nil {
		return "", "", false
	}
	return name, path, true
}

const tunnelScheme = "tunnel://"

func cutTunnel(s string) (string, bool) {
	if len(s) < len(tunnelScheme) || !strings.EqualFold(s[:len(tunnelScheme)], tunnelScheme) {
		return "", false
	}
	return s[len(tunnelScheme):], true
}

// tunnelName is a tunnel's name as a client registers it.
var tunnelName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// maxTunnelPath bounds the path of a tunnel URL.
const maxTunnelPath = 1024

// parseTunnel splits "NAME[/PATH]" and checks both.
func parseTunnel(rest string) (name, path string, err error) {
	name, path = rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		name, path = rest[:i], rest[i:]
	}
	if !tunnelName.MatchString(name) {
		return "", "", fmt.Errorf("tunnel name %q: use 1 to 63 of a-z, 0-9, '_', '.' and '-', starting with a letter or digit (tunnel://NAME[/PATH])", name)
	}
	if err := CheckTunnelPath(path); err != nil {
		return "", "", err
	}
	return name, path, nil
}

// CheckTunnelPath checks the PATH of tunnel://NAME[/PATH], "" or starting
// with "/", as it is appended to a tunnel client's --forward URL. Dot
// segments are refused as the local app reads them, percent-decoded:
// "%2e%2e" is ".." (RFC 3986 §6.2.2.2) and "%2f" a "/" to many servers,
// so "/%2e%2e/admin" would reach outside the --forward path as "/../admin"
// would. The tunnel client checks what a relay sends with it too.
func CheckTunnelPath(path string) error {
	if path == "" {
		return nil
	}
	if path[0] != '/' {
		return fmt.Errorf("tunnel path %q: want it to start with \"/\"", path)
	}
	if len(path) > maxTunnelPath {
		return fmt.Errorf("tunnel path: longer than %d bytes", maxTunnelPath)
	}
	if strings.ContainsAny(path, "?#") {
		return fmt.Errorf("tunnel path %q: no query or fragment: the path is appended to the client's --forward URL", path)
	}
	for i := 0; i < len(path); i++ {
		if c := path[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return fmt.Errorf("tunnel path %q: percent-encode spaces, control and non-ASCII characters", path)
		}
	}
	decoded, err := url.PathUnescape(path)
	if err != nil {
		return fmt.Errorf("tunnel path %q: bad percent-encoding", path)
	}
	// A backslash ("%5c") separates segments too, to Windows servers; and
	// a ';' starts a segment's parameters, which Tomcat and its kin drop
	// before they read the segment ("/..;x/" is "/../" to them).
	for _, seg := range strings.FieldsFunc(decoded, func(r rune) bool { return r == '/' || r == '\\' }) {
		seg, _, _ = strings.Cut(seg, ";")
		if seg == "." || seg == ".." {
			return fmt.Errorf("tunnel path %q: no \".\" or \"..\" segments, percent-encoded or not", path)
		}
	}
	return nil
}

func reservedHeader(name string) bool {
	switch strings.ToLower(name) {
	case "webhook-id", "webhook-timestamp", "webhook-signature", "sidehook-event", "sidehook-delivery",
		"sidehook-attempt", "sidehook-replay-of", "sidehook-test", "x-webio-token", "authorization",
		"content-length", "host", "transfer-encoding", "connection":
		return true
	}
	return false
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
