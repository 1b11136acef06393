package receivertest_test

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/receiver/receivertest"
)

// childEnv names the helper a re-run of this test binary makes fail
// (TestHelperFailure); unset, that test is skipped.
const childEnv = "RECEIVERTEST_FAIL"

// TestHelperFailure is the test TestFailureOutput runs in a child process,
// where each helper fails it as a user's test would fail. Each call is on
// a line marked "// fails:NAME", which the failure must name.
func TestHelperFailure(t *testing.T) {
	name := os.Getenv(childEnv)
	if name == "" {
		t.Skip("run by TestFailureOutput")
	}
	rcv := receivertest.NewServer(t)
	switch name {
	case "Expect":
		rcv.Expect(receivertest.Filter{Event: "payment"}, 1, 10*time.Millisecond) // fails:Expect
	case "ExpectIn":
		t.Run("Sub", func(t *testing.T) {
			rcv.In(t).Expect(receivertest.Filter{Path: "/sub"}, 2, 10*time.Millisecond) // fails:ExpectIn
		})
	case "SetRules":
		rcv.SetRules(receivertest.Rule{Respond: receivertest.Respond{Status: 42}}) // fails:SetRules
	case "AddRules":
		rcv.AddRules(receivertest.Rule{Respond: receivertest.Respond{Per: "event"}}) // fails:AddRules
	case "NewServer":
		receivertest.NewServer(t, receivertest.WithLeeway(-time.Second)) // fails:NewServer
	case "Values":
		receivertest.NewServer(t, receivertest.WithValuesJSON(`{"defaults":{"fullname":"there"}}`)) // fails:Values
	case "ExpectBadFilter":
		rcv.Expect(receivertest.Filter{Path: "hooks"}, 1, time.Hour) // fails:ExpectBadFilter
	case "RequestsBadFilter":
		rcv.Requests(receivertest.Filter{Event: "messageSend"}) // fails:RequestsBadFilter
	case "JWKSURL":
		receivertest.NewServer(t, receivertest.WithJWKSURL("localhost:8080/jwks")) // fails:JWKSURL
	case "AudienceWithoutJWT":
		receivertest.NewServer(t, receivertest.WithWebioSecret(secret, "demo"), receivertest.WithAudience("crm")) // fails:AudienceWithoutJWT
	case "ShortJWTSecret":
		receivertest.NewServer(t, receivertest.WithJWTSecret("short")) // fails:ShortJWTSecret
	case "ShortWebioSecret":
		receivertest.NewServer(t, receivertest.WithWebioSecret("", "demo")) // fails:ShortWebioSecret
	case "WithRules":
		receivertest.NewServer(t, receivertest.WithRules(receivertest.Rule{Respond: receivertest.Respond{Status: 42}})) // fails:WithRules
	case "WithRulesSameID":
		a := receivertest.Rule{ID: "slow", Respond: receivertest.Respond{Status: 503}}
		receivertest.NewServer(t, receivertest.WithRules(a), receivertest.WithRules(a)) // fails:WithRulesSameID
	case "StandardSecret":
		receivertest.NewServer(t, receivertest.WithStandardSecret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")) // fails:StandardSecret
	case "JWTPublicKey":
		receivertest.NewServer(t, receivertest.WithJWTPublicKey([]byte("not a pem"))) // fails:JWTPublicKey
	case "NewRequest":
		receivertest.NewRequest(t, "BAD METHOD", rcv.URL, nil) // fails:NewRequest
	}
}

// TestFailureOutput: a helper that fails a test prints one line, at the
// line of the test that called it (t.Helper), saying what went wrong.
func TestFailureOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the test binary again")
	}
	src, err := os.ReadFile("failure_test.go")
	if err != nil {
		t.Fatal(err)
	}
	lineOf := func(name string) int {
		for i, l := range strings.Split(string(src), "\n") {
			if strings.HasSuffix(l, "// fails:"+name) {
				return i + 1
			}
		}
		t.Fatalf("no line marked fails:%s", name)
		return 0
	}
	tests := []struct{ name, want string }{
		{"Expect", "receivertest: waited 10ms for 1 request matching event=payment: none came; no other request did"},
		{"ExpectIn", "receivertest: waited 10ms for 2 requests matching path=/sub: none came; no other request did"},
		{"SetRules", "receivertest: set rules: rule 1: respond.status: 42 is not between 200 and 599"},
		{"AddRules", `receivertest: add rules: rule 1: respond.per: "event": want "global" or "webhook-id"`},
		{"NewServer", "receivertest: WithLeeway: -1s is negative"},
		{"Values", `receivertest: WithValuesJSON: invalid values: line 1: unknown key "defaults": want default, channels or customers`},
		{"ExpectBadFilter", `receivertest: filter: path: path pattern "hooks" matches no path: a path starts with /, such as "/hooks"`},
		{"RequestsBadFilter", `receivertest: filter: event: "messageSend" is a payload's type: its event type is message_send`},
		{"JWKSURL", `receivertest: WithJWKSURL("localhost:8080/jwks"): want an http:// or https:// URL`},
		{"AudienceWithoutJWT", "receivertest: WithAudience, WithIssuer and WithRequireSHA256 check a JWT: add WithJWTSecret, WithJWTPublicKey or WithJWKSURL"},
		{"ShortJWTSecret", "receivertest: WithJWTSecret: 5 bytes, need at least 32"},
		{"ShortWebioSecret", "receivertest: WithWebioSecret: 0 bytes, need at least 32"},
		{"WithRules", "receivertest: WithRules: rule 1: respond.status: 42 is not between 200 and 599"},
		{"WithRulesSameID", `receivertest: WithRules: rule 2: id "slow" already in use`},
		{"StandardSecret", `receivertest: WithStandardSecret: must start with "whsec_"`},
		{"JWTPublicKey", "receivertest: WithJWTPublicKey: no PEM block found"},
		{"NewRequest", `receivertest: new request: net/http: invalid method "BAD METHOD"`},
	}
	// A failure is the line "    file:line: message"; anything indented
	// more under it continues the message.
	failure := regexp.MustCompile(`^(\s+)(\w+\.go):(\d+): (.*)$`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperFailure$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), childEnv+"="+tt.name)
			out, _ := cmd.CombinedOutput()
			var got []string
			var indent string
			sc := bufio.NewScanner(strings.NewReader(string(out)))
			for sc.Scan() {
				l := sc.Text()
				if m := failure.FindStringSubmatch(l); m != nil {
					indent = m[1]
					got = append(got, m[2]+":"+m[3]+": "+m[4])
					continue
				}
				if indent != "" && strings.HasPrefix(l, indent+" ") {
					got = append(got, "(continued) "+strings.TrimSpace(l))
				} else {
					indent = ""
				}
			}
			want := "failure_test.go:" + strconv.Itoa(lineOf(tt.name)) + ": " + tt.want
			if len(got) != 1 || got[0] != want {
				t.Errorf("got failure lines\n%s\nwant one\n%s\n(the whole output:\n%s)", strings.Join(got, "\n"), want, out)
			}
		})
	}
}
