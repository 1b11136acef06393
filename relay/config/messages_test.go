package config_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/sidehook/sidehook/relay/config"
)

// org is a valid organisation to build documents on.
const org = "organisations:\n  - id: demo\n    api_keys: [k]\n"

// TestParse_Messages checks what a user reads for the mistakes they make:
// the YAML key path, the line, the nearest valid key, what was expected,
// and never a Go type.
func TestParse_Messages(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, yaml, want string }{
		{name: "ErrTypoInEndpoint", yaml: org + "    endpoints:\n      - id: crm\n        url: http://x\n        evnts: [payment]\n",
			want: `line 7: unknown key "evnts" in organisations[0].endpoints[0]; did you mean "events"?`},
		{name: "ErrTypoTopLevel", yaml: "lisen: 127.0.0.1:8080\n" + org, want: `line 1: unknown key "lisen"; did you mean "listen"?`},
		{name: "ErrTypoTransposed", yaml: org + "    secret_kye: x\n", want: `line 4: unknown key "secret_kye" in organisations[0]; did you mean "secret_key"?`},
		{name: "ErrTypoCase", yaml: "Listen: x\n" + org, want: `unknown key "Listen"; did you mean "listen"?`},
		{name: "ErrTypoNested", yaml: "limits: {max_bdy: 1MiB}\n" + org, want: `line 1: unknown key "max_bdy" in limits; did you mean "max_body"?`},
		{name: "ErrTypoRetry", yaml: "retry: {shedule: [1s]}\n" + org, want: `in retry; did you mean "schedule"?`},
		{name: "ErrTypoStore", yaml: "store: {servers: [nats://x:4222], replica: 3}\n" + org, want: `in store; did you mean "replicas"?`},
		{name: "ErrUnknownFarFromAll", yaml: "colour: red\n" + org, want: `line 1: unknown key "colour"; valid keys are admin_token, allow_targets,`},
		{name: "ErrWantNumber", yaml: org + "    endpoints:\n      - {id: a, url: http://x, max_in_flight: many}\n",
			want: `line 5: organisations[0].endpoints[0].max_in_flight: want a whole number, got "many"`},
		{name: "ErrWantBool", yaml: org + "    endpoints:\n      - {id: a, url: http://x, ordered: sometimes}\n",
			want: `organisations[0].endpoints[0].ordered: want true or false, got "sometimes"`},
		{name: "ErrWantList", yaml: org + "    endpoints:\n      - {id: a, url: http://x, events: payment}\n",
			want: `organisations[0].endpoints[0].events: want a list ([a, b] or one "- item" per line), got "payment"`},
		{name: "ErrWantMapping", yaml: "limits: 5\n" + org, want: `line 1: limits: want a mapping of keys (key: value), got "5"`},
		{name: "ErrWantString", yaml: "listen: {host: x}\n" + org, want: `line 1: listen: want a string, got a mapping`},
		{name: "ErrOrganisationsNotList", yaml: "organisations: {id: demo}\n", want: `organisations: want a list`},
		{name: "ErrJitterNotNumber", yaml: "retry: {jitter: lots}\n" + org, want: `retry.jitter: want a number, got "lots"`},
		{name: "ErrHeadersNotMapping", yaml: org + "    endpoints:\n      - {id: a, url: http://x, headers: [x]}\n", want: `organisations[0].endpoints[0].headers: want a mapping (name: value), got a list`},
		{name: "ErrSyntax", yaml: "listen: [\n", want: `not valid YAML: did not find expected node content`},
		{name: "ErrSyntaxLine", yaml: "listen: x\n  data: y\n", want: `line 2: not valid YAML: mapping values are not allowed in this context`},
		{name: "ErrTabs", yaml: "listen: x\n\tdata: y\n", want: `line 2: not valid YAML: a tab indents this line: YAML indents with spaces`},
		// yaml words a tab before a list item "found character that
		// cannot start any token", which does not say what to change.
		{name: "ErrTabBeforeItem", yaml: "organisations:\n\t- id: demo\n", want: `line 2: not valid YAML: a tab indents this line: YAML indents with spaces`},
		{name: "ErrTabBeforeNestedItem", yaml: org + "    endpoints:\n    \t- {id: a, url: http://x}\n", want: `line 5: not valid YAML: a tab indents this line: YAML indents with spaces`},
		{name: "ErrSecondDocument", yaml: org + "---\nlisten: 0.0.0.0:8080\n", want: `line 4: a second YAML document starts here: a configuration is one document`},
		{name: "ErrNotAMapping", yaml: "- a\n- b\n", want: `line 1: the configuration: want a mapping of keys (key: value), got a list`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse([]byte(tt.yaml), env(nil))
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %q, want one line containing %q", err, tt.want)
			}
			if goTypeInMessage.MatchString(err.Error()) {
				t.Fatalf("got %q, which names a Go type", err)
			}
		})
	}
}

// goTypeInMessage catches what yaml says about Go: "config.RawOrg",
// "!!str `x` into int", "unmarshal".
var goTypeInMessage = regexp.MustCompile(`config\.|\binto (u?int|float|bool|string|\[\]|map|struct)|unmarshal|!!`)

func TestParse_EmptyTrailingDocumentIsFine(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{"---\n" + org, org + "---\n", org + "...\n"} {
		if _, err := config.Parse([]byte(doc), env(nil)); err != nil {
			t.Errorf("%q: got %v, want valid", doc, err)
		}
	}
}

func TestParse_AnchorsAndMerges(t *testing.T) {
	t.Parallel()
	doc := "defaults: &ep {events: [payment], timeout: 5s}\n"
	if _, err := config.Parse([]byte(doc+org), env(nil)); err == nil || !strings.Contains(err.Error(), `unknown key "defaults"`) {
		t.Fatalf("got %v, want unknown key defaults", err)
	}
	yml := org + "    endpoints:\n      - &ep {id: a, url: http://x, events: [payment], timeout: 5s}\n      - {<<: *ep, id: b, evnts: [x]}\n"
	if _, err := config.Parse([]byte(yml), env(nil)); err == nil || !strings.Contains(err.Error(), `unknown key "evnts" in organisations[0].endpoints[1]; did you mean "events"?`) {
		t.Fatalf("got %v, want the typo named", err)
	}
	yml = org + "    endpoints:\n      - &ep {id: a, url: http://x, events: [payment], timeout: 5s}\n      - {<<: *ep, id: b}\n"
	c, err := config.Parse([]byte(yml), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if e := c.Organisations[0].Endpoints[1]; e.ID != "b" || e.Events[0] != "payment" || e.Timeout.String() != "5s" {
		t.Fatalf("merged endpoint: got %+v, want b for payment with a 5s timeout", e)
	}
}

// FuzzParse feeds arbitrary documents: no panic, and every error is one
// line without Go type names.
func FuzzParse(f *testing.F) {
	for _, s := range []string{org, "organisations: [{id: a, endpoints: [{id: b, url: 'tunnel://x/y', retry: {jitter: .nan}}]}]",
		"listen: [\n", "a: &x [*x]\n", "organisations:\n  - id: demo\n    standard_secret: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, 7]\n",
		"store: {servers: nats://x, replicas: two}\n" + org, org + "---\n- x\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := config.Parse(b, env(nil))
		if err == nil {
			return
		}
		if strings.Contains(err.Error(), "\n") || goTypeInMessage.MatchString(err.Error()) {
			t.Fatalf("got %q: want one line without Go types", err)
		}
	})
}
