package config_test

import (
	"strings"
	"testing"

	"github.com/sidehook/sidehook/relay/config"
)

// An endpoint's headers: is where the receiver's credential goes (a URL
// may not carry one), so a value there may be written env:NAME as every
// other secret in the file may; it was sent to the endpoint as the literal
// "env:NAME". Through the API a value is taken as it is: the relay's
// environment is not for its API clients to read.
func TestEndpointHeaderFromEnvironment(t *testing.T) {
	const doc = "organisations:\n  - id: a\n    api_keys: [k]\n    endpoints:\n      - {id: e, url: \"http://127.0.0.1:1/x\", headers: {x-api-key: %s, x-team: billing}}\n"
	for _, tc := range []struct {
		name, value string
		env         map[string]string
		want, err   string
	}{
		{"from the environment", "env:CRM_KEY", map[string]string{"CRM_KEY": "s3cret"}, "s3cret", ""},
		{"literal", "plain", nil, "plain", ""},
		{"unset", "env:CRM_KEY", nil, "", "organisations[0].endpoints[0].headers.x-api-key: environment variable CRM_KEY is not set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(strings.Replace(doc, "%s", tc.value, 1)), env(tc.env))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want an error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			h := cfg.Organisations[0].Endpoints[0].Headers
			if h["x-api-key"] != tc.want || h["x-team"] != "billing" {
				t.Errorf("headers %v, want x-api-key %q and x-team billing", h, tc.want)
			}
		})
	}
	o := &config.Org{ID: "a"}
	e, err := config.RawEndpoint{ID: "api", URL: "http://127.0.0.1:1/x", Headers: map[string]string{"x-api-key": "env:CRM_KEY"}}.Validate("", o)
	if err != nil || e.Headers["x-api-key"] != "env:CRM_KEY" {
		t.Errorf("through the API: got %v, %v; want the value as it is", e, err)
	}
}
