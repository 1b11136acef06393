package config

import (
	"errors"
	"fmt"
	"strings"
)

// OneOrg describes a one-organisation relay made without a file: from
// `sidehook relay` flags, or in code by `sidehook dev`.
type OneOrg struct {
	Listen         string
	Data           string
	InMemory       bool
	Org            string   // default "demo"
	APIKeys        []string // at least one
	SecretKey      string   // optional, >= 32 bytes
	StandardSecret string   // optional, whsec_…
	JWTAlgorithm   string   // optional
	InboundAuth    string   // optional: none or webio-token
	InboundSecret  string   // with webio-token: the platform's secret, not SecretKey
	InboundIssuer  string   // optional: the iss inbound tokens must carry
	AdminToken     string   // optional, >= 16 bytes
	// AllowTargets and DenyTargets are outbound target rules (CIDR, IP or
	// host name).
	AllowTargets, DenyTargets []string
	TLSCert, TLSKey           string    // optional, both or neither
	Store                     *RawStore // optional: NATS JetStream
	// Endpoints are URLs subscribed to "*" with the default auth, named
	// ep1, ep2, …
	Endpoints []string
	// CustomValues, when set, is the URL of the organisation's custom-value
	// endpoint (named "values").
	CustomValues string
	// Schedule overrides the retry schedule ("100ms", …) when non-nil.
	Schedule []string
	// Getenv resolves secrets written env:NAME, as in the file; nil is an
	// empty environment.
	Getenv Getenv
}

// FromOneOrg builds and validates the configuration of o.
func FromOneOrg(o OneOrg) (*Config, error) {
	if len(o.APIKeys) == 0 {
		return nil, errors.New("api-key: at least one API key is required")
	}
	org := RawOrg{
		ID:            o.Org,
		APIKeys:       o.APIKeys,
		SecretKey:     o.SecretKey,
		InboundAuth:   o.InboundAuth,
		InboundSecret: o.InboundSecret,
		InboundIssuer: o.InboundIssuer,
	}
	if o.StandardSecret != "" {
		org.StandardSecret = Secrets{o.StandardSecret}
	}
	if org.ID == "" {
		org.ID = "demo"
	}
	org.JWT.Algorithm = o.JWTAlgorithm
	for i, u := range o.Endpoints {
		org.Endpoints = append(org.Endpoints, RawEndpoint{ID: fmt.Sprintf("ep%d", i+1), URL: u, Events: []string{"*"}})
	}
	if o.CustomValues != "" {
		org.Endpoints = append(org.Endpoints, RawEndpoint{ID: "values", URL: o.CustomValues, Events: []string{"custom_value_request"}})
	}
	f := File{Listen: o.Listen, Data: o.Data, AdminToken: o.AdminToken, AllowTargets: o.AllowTargets, DenyTargets: o.DenyTargets,
		TLSCert: o.TLSCert, TLSKey: o.TLSKey, Store: o.Store, Organisations: []RawOrg{org}}
	if o.Schedule != nil {
		f.Retry = &RawRetry{Schedule: o.Schedule}
	}
	c, err := f.Validate(o.Getenv)
	if err != nil {
		return nil, flagError(err, o)
	}
	c.InMemory = o.InMemory
	return c, nil
}

// flagWords are the keys of the organisation FromOneOrg builds, as the
// flags they came from are written; the longer first, as NewReplacer
// tries them in order.
var flagWords = strings.NewReplacer(
	"inbound_auth: webio-token", "--inbound-auth webio-token",
	"inbound_auth", "--inbound-auth",
	"inbound_secret", "--inbound-secret",
	"inbound_issuer", "--inbound-issuer",
	"standard_secret", "--standard-secret",
	"secret_key", "--secret-key",
	"jwt.algorithm", "--jwt-algorithm",
	"admin_token", "--admin-token",
)

// flagError words an error of Validate, which names YAML keys
// (organisations[0].secret_key), by the flags of o the user gave instead.
// Keys with no flag of their own are left as they are.
func flagError(err error, o OneOrg) error {
	key, rest, ok := strings.Cut(err.Error(), ": ")
	if !ok {
		return err
	}
	var flag string
	switch orgKey, inOrg := strings.CutPrefix(key, "organisations[0]."); {
	case key == "admin_token":
		flag = "--admin-token"
	case !inOrg:
		return err
	case orgKey == "id":
		flag = "--org"
	case strings.HasPrefix(orgKey, "api_keys["):
		flag = "--api-key"
	case strings.HasPrefix(orgKey, "standard_secret"):
		flag = "--standard-secret"
	case strings.HasPrefix(orgKey, "endpoints["):
		// ep1, ep2, … are the --endpoint URLs in order; the custom-value
		// endpoint comes after them.
		var i int
		flag = "--endpoint"
		if _, err := fmt.Sscanf(orgKey, "endpoints[%d]", &i); err == nil && i >= len(o.Endpoints) {
			flag = "--custom-values"
		}
	case strings.ContainsAny(orgKey, ".[") && orgKey != "jwt.algorithm":
		return err
	default:
		flag = flagWords.Replace(orgKey)
	}
	return fmt.Errorf("%s: %s", flag, flagWords.Replace(rest))
}
