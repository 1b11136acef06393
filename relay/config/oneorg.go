package config

import (
	"errors"
	"fmt"
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
	c, err := f.Validate(nil)
	if err != nil {
		return nil, err
	}
	c.InMemory = o.InMemory
	return c, nil
}
