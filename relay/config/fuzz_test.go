package config_test

import (
	"encoding/json"
	"math"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/sidehook/sidehook/relay/config"
)

// FuzzParseStoreServers covers --store: every server read is a NATS URL
// without credentials, and the list reads back the same written out.
func FuzzParseStoreServers(f *testing.F) {
	for _, s := range []string{"nats://127.0.0.1:4222", "nats://a:4222, tls://b:4222", "nats://u:p@a:4222", "http://a", "nats://a/x",
		"nats://a?x", "nats://a#x", "nats://:4222", "", ",", "nats://[::1]:4222", "NATS://A", "nats://a,,nats://b", " nats://a/ "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		servers, err := config.ParseStoreServers(s)
		if err != nil {
			if servers != nil {
				t.Fatalf("ParseStoreServers(%q) = %q with %v", s, servers, err)
			}
			return
		}
		if len(servers) != strings.Count(s, ",")+1 {
			t.Fatalf("ParseStoreServers(%q) = %q: %d servers", s, servers, len(servers))
		}
		for _, srv := range servers {
			u, err := url.Parse(srv)
			if err != nil || u.User != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Hostname() == "" || srv != strings.TrimSpace(srv) {
				t.Fatalf("ParseStoreServers(%q): server %q read", s, srv)
			}
		}
		again, err := config.ParseStoreServers(strings.Join(servers, ","))
		if err != nil || !reflect.DeepEqual(again, servers) {
			t.Fatalf("%q read as %q, read back as %q, %v", s, servers, again, err)
		}
	})
}

// FuzzEndpoint covers an endpoint as the API and the YAML give it: its
// url (tunnel:// included), timeout, rate and retry policy. An endpoint
// read comes back unchanged from its document form (Validate(Raw()), as
// the API shows and takes it), and its retry policy is within bounds.
func FuzzEndpoint(f *testing.F) {
	f.Add("http://127.0.0.1:8081/webhooks", "5s", "50/s", "1s,30s,5m", true, 0.2, true, "payment,order.*", "webio-token,jwt")
	f.Add("tunnel://laptop/hooks/%7Ecrm", "", "", "", false, 0.0, false, "", "")
	f.Add("TUNNEL://lap/a{b}", "1.5d", "5/10s", "0.5d,168h", true, 0.999999, true, "*", "standard")
	f.Add("tunnel://lap/../x", "0s", "0/s", "169h", true, 1.0, true, "", "none")
	f.Add("https://u:p@x", "-1s", "1e9/s", ",", true, math.Copysign(0, -1), true, "a b", "JWT")
	f.Add("http://x", "15m", "10/m", "", false, 0.0, true, "", "")
	f.Add("http://x", "", "", "", true, 0.1, true, "", "")
	f.Fuzz(func(t *testing.T, u, timeout, rate, schedule string, ownSchedule bool, jitter float64, retry bool, events, auths string) {
		o := &config.Org{ID: "demo", SecretKey: []byte(strings.Repeat("k", 32)),
			Retry: config.Retry{Schedule: config.DefaultSchedule(), Jitter: 0.2}}
		re := config.RawEndpoint{ID: "ep", URL: u, Timeout: timeout, Rate: rate}
		if events != "" {
			re.Events = strings.Split(events, ",")
		}
		if auths != "" {
			re.Auth = strings.Split(auths, ",")
		}
		if retry {
			re.Retry = &config.RawRetry{Jitter: &jitter}
			if ownSchedule {
				re.Retry.Schedule = []string{} // no retries
				if schedule != "" {
					re.Retry.Schedule = strings.Split(schedule, ",")
				}
			}
		}
		e, err := re.Validate("endpoints[0]", o)
		if err != nil {
			if e != nil || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %+v with %q", e, err)
			}
			return
		}
		if r := e.Retry; r != nil {
			if !(r.Jitter >= 0 && r.Jitter < 1) {
				t.Fatalf("retry %+v read", r)
			}
			for _, d := range r.Schedule {
				if d <= 0 || d > 168*60*60*1e9 {
					t.Fatalf("retry step %v read", d)
				}
			}
		}
		if _, _, isTunnel := e.Tunnel(); isTunnel != strings.HasPrefix(strings.ToLower(u), "tunnel://") {
			t.Fatalf("%q read, but Tunnel says %v", u, isTunnel)
		}
		// The API shows and the store keeps an endpoint as the JSON of Raw.
		doc, err := json.Marshal(e.Raw())
		if err != nil {
			t.Fatal(err)
		}
		var raw config.RawEndpoint
		if err := json.Unmarshal(doc, &raw); err != nil {
			t.Fatal(err)
		}
		again, err := raw.Validate("endpoints[0]", o)
		if err != nil || !reflect.DeepEqual(again, e) {
			t.Fatalf("endpoint %+v (retry %+v), as a document %s, read back as %+v, %v", e, e.Retry, doc, again, err)
		}
	})
}
