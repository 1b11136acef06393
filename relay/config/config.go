// Package config is the relay's configuration: the YAML file of SPEC §4, the
// one-organisation setup made from flags, and the endpoint documents the
// management API reads and writes. Everything is validated here, once, with
// one-line errors that name the offending key, so the relay itself can trust
// what it is given.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/internal/event"
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
	Listen        string
	Data          string
	InMemory      bool // no files at all: tests and `sidehook dev --in-memory`
	Issuer        string
	Retry         Retry
	Retention     time.Duration
	Limits        Limits
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

// Org is one organisation: its keys and endpoints.
type Org struct {
	ID             string
	APIKeys        []string
	SecretKey      []byte
	StandardSecret []byte
	JWTAlgorithm   auth.Algorithm
	InboundAuth    string
	Endpoints      []Endpoint
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

// Load reads and validates a configuration file.
func Load(path string, getenv Getenv) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(b, getenv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
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
	Organisations []RawOrg `yaml:"organisations"`
}

// RawRetry is a retry policy as written.
type RawRetry struct {
	Schedule []string `yaml:"schedule" json:"schedule,omitempty"`
	Jitter   *float64 `yaml:"jitter" json:"jitter,omitempty"`
}

// RawOrg is an organisation as written.
type RawOrg struct {
	ID             string   `yaml:"id"`
	APIKeys        []string `yaml:"api_keys"`
	SecretKey      string   `yaml:"secret_key"`
	StandardSecret string   `yaml:"standard_secret"`
	JWT            struct {
		Algorithm string `yaml:"algorithm"`
	} `yaml:"jwt"`
	InboundAuth string        `yaml:"inbound_auth"`
	Endpoints   []RawEndpoint `yaml:"endpoints"`
}

// RawEndpoint is an endpoint as written in YAML or sent to the API; the API
// answers with the same document.
type RawEndpoint struct {
	ID          string            `yaml:"id" json:"id"`
	URL         string            `yaml:"url" json:"url"`
	Events      []string          `yaml:"events" json:"events"`
	Auth        []string          `yaml:"auth" json:"auth"`
	Timeout     string            `yaml:"timeout" json:"timeout,omitempty"`
	MaxInFlight int               `yaml:"max_in_flight" json:"max_in_flight,omitempty"`
	Rate        string            `yaml:"rate" json:"rate,omitempty"`
	Ordered     bool              `yaml:"ordered" json:"ordered"`
	Retry       *RawRetry         `yaml:"retry" json:"retry,omitempty"`
	Headers     map[string]string `yaml:"headers" json:"headers,omitempty"`
	Enabled     *bool             `yaml:"enabled" json:"enabled,omitempty"`
}

// Parse decodes and validates a YAML configuration. Unknown keys are errors.
func Parse(data []byte, getenv Getenv) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty configuration: organisations is required")
		}
		return nil, errors.New(oneLine(err.Error()))
	}
	return f.Validate(getenv)
}

// oneLine joins yaml's multi-line type errors so every error is one line.
func oneLine(s string) string {
	s = strings.ReplaceAll(s, "yaml: unmarshal errors:\n", "")
	lines := strings.Split(s, "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, "; ")
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
		d, err := ParseDuration(f.Retention)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("retention: %q is not a positive duration", f.Retention)
		}
		c.Retention = d
	}
	if f.Limits.MaxBody != "" {
		n, err := ParseSize(f.Limits.MaxBody)
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
		n, err := ParseSize(f.Limits.MinFreeDisk)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("limits.min_free_disk: %q is not a size (e.g. 128MiB)", f.Limits.MinFreeDisk)
		}
		c.Limits.MinFreeDisk = n
	}
	if len(f.Organisations) == 0 {
		return nil, errors.New("organisations: at least one organisation is required")
	}
	seen := map[string]bool{}
	for i, ro := range f.Organisations {
		key := fmt.Sprintf("organisations[%d]", i)
		o, err := ro.validate(key, getenv)
		if err != nil {
			return nil, err
		}
		if seen[o.ID] {
			return nil, fmt.Errorf("%s.id: %q is used by another organisation", key, o.ID)
		}
		seen[o.ID] = true
		c.Organisations = append(c.Organisations, *o)
	}
	return c, nil
}

func (ro RawOrg) validate(key string, getenv Getenv) (*Org, error) {
	o := &Org{ID: ro.ID}
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
		o.APIKeys = append(o.APIKeys, v)
	}
	if ro.SecretKey != "" {
		v, err := secret(key+".secret_key", ro.SecretKey, getenv)
		if err != nil {
			return nil, err
		}
		if len(v) < auth.MinSecretLen {
			return nil, fmt.Errorf("%s.secret_key: %d bytes, need at least %d", key, len(v), auth.MinSecretLen)
		}
		o.SecretKey = []byte(v)
	}
	if ro.StandardSecret != "" {
		v, err := secret(key+".standard_secret", ro.StandardSecret, getenv)
		if err != nil {
			return nil, err
		}
		b, err := auth.ParseStandardSecret(v)
		if err != nil {
			return nil, fmt.Errorf("%s.standard_secret: %v", key, err)
		}
		o.StandardSecret = b
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
	switch ro.InboundAuth {
	case "", InboundAuthNone:
		o.InboundAuth = InboundAuthNone
	case InboundAuthWebioToken:
		if o.SecretKey == nil {
			return nil, fmt.Errorf("%s.inbound_auth: webio-token needs secret_key", key)
		}
		o.InboundAuth = InboundAuthWebioToken
	default:
		return nil, fmt.Errorf("%s.inbound_auth: %q: want none or webio-token", key, ro.InboundAuth)
	}
	ids := map[string]bool{}
	custom := ""
	for i, re := range ro.Endpoints {
		ek := fmt.Sprintf("%s.endpoints[%d]", key, i)
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
	if len(e.Events) == 0 {
		e.Events = []string{event.Wildcard}
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
		case scheme == auth.SchemeStandard && o.StandardSecret == nil:
			return nil, fmt.Errorf("%s[%d]: standard needs the organisation's standard_secret", k("auth"), i)
		}
		e.Auth = append(e.Auth, scheme)
	}
	if re.Timeout != "" {
		d, err := ParseDuration(re.Timeout)
		if err != nil || d <= 0 || d > maxTimeout {
			return nil, fmt.Errorf("%s: %q is not a duration between 1ms and %s", k("timeout"), re.Timeout, maxTimeout)
		}
		e.Timeout = d
	}
	if re.MaxInFlight != 0 {
		if re.MaxInFlight < 0 || re.MaxInFlight > MaxMaxInFlight {
			return nil, fmt.Errorf("%s: %d is not between 1 and %d", k("max_in_flight"), re.MaxInFlight, MaxMaxInFlight)
		}
		e.MaxInFlight = re.MaxInFlight
	}
	if re.Rate != "" {
		r, err := ParseRate(re.Rate)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", k("rate"), err)
		}
		e.Rate = r
	}
	if re.Retry != nil {
		r, err := re.Retry.parse(k("retry"), Retry{Jitter: DefaultJitter})
		if err != nil {
			return nil, err
		}
		e.Retry = r
	}
	for name := range re.Headers {
		if !validHeaderName(name) {
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
	enabled := e.Enabled
	re := RawEndpoint{
		ID: e.ID, URL: e.URL, Events: e.Events, Auth: e.Auth,
		MaxInFlight: e.MaxInFlight, Ordered: e.Ordered, Headers: e.Headers, Enabled: &enabled,
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
			d, err := ParseDuration(s)
			if err != nil || d <= 0 || d > maxConfiguredRetryStep {
				return nil, fmt.Errorf("%s.schedule[%d]: %q is not a positive duration (at most 168h)", key, i, s)
			}
			r.Schedule = append(r.Schedule, d)
		}
	}
	if rr.Jitter != nil {
		if *rr.Jitter < 0 || *rr.Jitter >= 1 {
			return nil, fmt.Errorf("%s.jitter: %v is not in [0, 1)", key, *rr.Jitter)
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
	s := getenv(name)
	if s == "" {
		return "", fmt.Errorf("%s: environment variable %s is not set", key, name)
	}
	return s, nil
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

// ErrTunnel is returned for tunnel:// endpoint URLs until the tunnel
// server exists.
var ErrTunnel = errors.New("tunnel endpoints are not supported yet")

// ValidURL checks an endpoint URL: absolute http(s) with a host.
func ValidURL(s string) error {
	if strings.HasPrefix(strings.ToLower(s), "tunnel://") {
		return ErrTunnel
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	return nil
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
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
