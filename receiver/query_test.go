package receiver_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/receiver"
)

// TestUnknownQueryParameter: a misspelt or foreign parameter on a list,
// count, wait, export or the rules' list is a 400 naming it, not a filter silently ignored,
// and so is one given twice, of which only the first was read; each
// endpoint's own parameters are accepted.
func TestUnknownQueryParameter(t *testing.T) {
	srv := start(t, receiver.Config{})
	send(t, "POST", srv.URL()+"/x", []byte(`{}`), nil)
	tests := []struct {
		name, path, query string
		bad               string // the parameter named, "" for a 200
	}{
		{"ListTypo", "/_sidehook/requests", "evnt=payment", "evnt"},
		{"ListRelayName", "/_sidehook/requests", "status=valid", "status"},
		{"ListOwn", "/_sidehook/requests", "event=x&limit=5&since=5m&verdict=unverified", ""},
		{"CountLimit", "/_sidehook/requests/count", "limit=3", "limit"},
		{"CountOwn", "/_sidehook/requests/count", "path=/x&method=post&webhook_id=a", ""},
		{"WaitFormat", "/_sidehook/requests/wait", "format=har", "format"},
		{"WaitOwn", "/_sidehook/requests/wait", "count=1&timeout=1s&path=/x", ""},
		{"ExportCursor", "/_sidehook/requests/export", "cursor=cap_x", "cursor"},
		{"ExportOwn", "/_sidehook/requests/export", "format=har&since=1700000000", ""},
		{"ListRepeated", "/_sidehook/requests", "event=payment&event=message_send", "event"},
		{"CountRepeated", "/_sidehook/requests/count", "path=/x&path=/y", "path"},
		{"WaitRepeated", "/_sidehook/requests/wait", "count=1&count=5&timeout=1s", "count"},
		{"ExportRepeated", "/_sidehook/requests/export", "format=har&format=curl", "format"},
		// Read as "the rule keep", it listed every rule.
		{"RulesID", "/_sidehook/rules", "id=keep", "id"},
		{"RulesOwn", "/_sidehook/rules", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := send(t, "GET", srv.URL()+tt.path+"?"+tt.query, nil, nil)
			if tt.bad == "" {
				if r.status != 200 {
					t.Fatalf("got %d %s, want 200", r.status, r.body)
				}
				return
			}
			var e struct{ Error, Reason string }
			r.json(t, &e)
			if r.status != 400 || e.Error != "bad_request" || !strings.Contains(e.Reason, `"`+tt.bad+`"`) {
				t.Fatalf("got %d %s, want 400 bad_request naming %q", r.status, r.body, tt.bad)
			}
		})
	}
}

// TestUnknownQueryParameterDeletesNothing: the calls that delete take no
// filter (DELETE /_sidehook/requests, POST /_sidehook/reset) or only id
// (DELETE /_sidehook/rules); a filter, a misspelt id or an empty one is a
// 400 and nothing goes, where it was read as "delete everything".
func TestUnknownQueryParameterDeletesNothing(t *testing.T) {
	srv := start(t, receiver.Config{})
	send(t, "POST", srv.URL()+"/x", []byte(`{"type":"payment"}`), nil)
	if _, err := srv.SetRules(receiver.Rule{ID: "keep"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, target, bad string
	}{
		{"DeleteRequestsFilter", "DELETE", "/_sidehook/requests?event=payment", `"event"`},
		{"ResetParameter", "POST", "/_sidehook/reset?keep_rules=1", `"keep_rules"`},
		{"DeleteRulesTypo", "DELETE", "/_sidehook/rules?rule=keep", `"rule"`},
		{"DeleteRulesEmptyID", "DELETE", "/_sidehook/rules?id=", "id: empty"},
		{"DeleteRulesTwoIDs", "DELETE", "/_sidehook/rules?id=keep&id=other", `"id"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := send(t, tt.method, srv.URL()+tt.target, nil, nil)
			var e struct{ Error, Reason string }
			r.json(t, &e)
			if r.status != 400 || e.Error != "bad_request" || !strings.Contains(e.Reason, tt.bad) {
				t.Fatalf("got %d %s, want 400 bad_request naming %s", r.status, r.body, tt.bad)
			}
			if caps, _ := list(t, srv, ""); len(caps) != 1 {
				t.Errorf("captures: got %d, want 1", len(caps))
			}
			if rules := srv.Rules(); len(rules) != 1 {
				t.Errorf("rules: got %d, want 1", len(rules))
			}
		})
	}
	// Their own parameters still work.
	if r := send(t, "DELETE", srv.URL()+"/_sidehook/rules?id=keep", nil, nil); r.status != 204 || len(srv.Rules()) != 0 {
		t.Errorf("DELETE /_sidehook/rules?id=keep: got %d %s and %d rules, want 204 and none", r.status, r.body, len(srv.Rules()))
	}
	if r := send(t, "DELETE", srv.URL()+"/_sidehook/requests", nil, nil); r.status != 204 {
		t.Errorf("DELETE /_sidehook/requests: got %d %s, want 204", r.status, r.body)
	}
}

// TestFilterValidate: a filter that can match nothing (a path without its
// leading slash, a verdict or method misspelt, a payload's type where the
// event type goes) is an error saying what to write, from the Go API and
// the admin API alike, not a list that stays empty or a wait that times
// out.
func TestFilterValidate(t *testing.T) {
	srv := start(t, receiver.Config{})
	tests := []struct {
		name  string
		f     receiver.Filter
		query string
		want  string // "" for a valid filter
	}{
		{"OK", receiver.Filter{Event: "payment", Path: "/hooks/*", Method: "post", Verdict: "valid"}, "event=payment&path=/hooks/*&method=post&verdict=valid", ""},
		{"CustomEvent", receiver.Filter{Event: "order.created"}, "event=order.created", ""},
		{"PathWithoutSlash", receiver.Filter{Path: "hooks"}, "path=hooks",
			`path: path pattern "hooks" matches no path: a path starts with /, such as "/hooks"`},
		{"PathAdmin", receiver.Filter{Path: "/_sidehook/*"}, "path=/_sidehook/*",
			`path: "/_sidehook/*" is under /_sidehook/, the receiver's own API, whose requests are never captured`},
		{"PathBadGlob", receiver.Filter{Path: "/a["}, "path=/a[", `path: bad path pattern "/a["`},
		{"Verdict", receiver.Filter{Verdict: "ok"}, "verdict=ok", `verdict: "ok": want valid, invalid or unverified`},
		{"PayloadType", receiver.Filter{Event: "inboundMessage"}, "event=inboundMessage",
			`event: "inboundMessage" is a payload's type: its event type is inbound_message`},
		{"EventName", receiver.Filter{Event: "Payment!"}, "event=Payment!",
			`event: "Payment!" is not an event type name (such as payment or order.created)`},
		{"Method", receiver.Filter{Method: "PO ST"}, "method=PO+ST", `method: "PO ST" is not an HTTP method`},
		// A token, so a method in HTTP's grammar, but read as a wildcard.
		{"MethodStar", receiver.Filter{Method: "*"}, "method=*", `method: "*" is no wildcard (it matches only a method named *): leave method out to match any`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.f.Validate()
			if tt.want == "" {
				if err != nil {
					t.Errorf("Validate: got %v, want nil", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate: got %v, want %q", err, tt.want)
			}
			if tt.want != "" {
				// A minute: the wait must end at once, on the filter.
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				_, werr := srv.Wait(ctx, tt.f, 1)
				if werr == nil || errors.Is(werr, receiver.ErrWaitTimeout) || !strings.Contains(werr.Error(), tt.want) {
					t.Errorf("Wait: got %v, want at once %q", werr, tt.want)
				}
			}
			r := send(t, "GET", srv.URL()+"/_sidehook/requests?"+tt.query, nil, nil)
			if tt.want == "" && r.status != 200 || tt.want != "" && (r.status != 400 || !strings.Contains(string(r.body), strings.ReplaceAll(tt.want, `"`, `\"`))) {
				t.Errorf("admin API: got %d %s, want %q", r.status, r.body, tt.want)
			}
		})
	}
}
