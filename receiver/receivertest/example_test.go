package receivertest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/receiver/receivertest"
)

// The code under test posts a payment webhook signed with the
// organisation's Webio token; the test waits for it and checks what
// arrived. A rule makes the first delivery fail, as a flaky customer
// system would.
func Example() {
	t := &exampleT{} // in a real test: the test's own t
	defer t.finish()
	const secret = "0123456789abcdef0123456789abcdef"
	rcv := receivertest.NewServer(t,
		receivertest.WithWebioSecret(secret, "demo"),
		receivertest.WithRules(receiver.Rule{
			Match:   receiver.Match{Path: "/webhooks"},
			Respond: receiver.Respond{Status: 503, Times: 1},
		}),
	)

	post := func() int {
		req := receivertest.NewRequest(t, "POST", rcv.URL+"/webhooks",
			[]byte(`{"type":"payment","amount":"50.00"}`), receivertest.WebioToken(secret, "demo"))
		resp, err := rcv.Client().Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	fmt.Println("first delivery:", post())
	fmt.Println("retry:", post())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	caps, err := rcv.Wait(ctx, receivertest.Filter{Event: "payment"}, 2)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range caps {
		fmt.Println(c.Method, c.Path, c.Event, c.Verdict.Status, c.Verdict.Claims["org"], c.Response.Status)
	}
	// Output:
	// first delivery: 503
	// retry: 200
	// POST /webhooks payment valid demo 200
	// POST /webhooks payment valid demo 503
}

// exampleT stands in for the *testing.T a test function has and an
// Example function lacks: it runs the cleanups (closing the receiver) when
// the example ends.
type exampleT struct {
	testing.TB
	cleanups []func()
}

func (t *exampleT) Helper()                      {}
func (t *exampleT) Cleanup(f func())             { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Errorf(f string, args ...any) { fmt.Printf(f+"\n", args...) }
func (t *exampleT) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }

func (t *exampleT) finish() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

// A consumer that verifies the relay's per-attempt JWTs through its JWKS:
// the test serves the public key, the receiver checks each Bearer JWT
// against it, and the verdict carries the claims.
func ExampleJWT() {
	t := &exampleT{}
	defer t.finish()
	key, err := receivertest.GenerateKey("ES256")
	if err != nil {
		fmt.Println(err)
		return
	}
	rcv := receivertest.NewServer(t,
		receivertest.WithJWKSURL(receivertest.ServeJWKS(t, key)),
		receivertest.WithAudience("crm"),
		receivertest.WithRequireSHA256(),
	)

	body := []byte(`{"type":"payment","amount":"50.00"}`)
	req := receivertest.NewRequest(t, "POST", rcv.URL+"/webhooks", body,
		receivertest.JWT(key, receivertest.JWTClaims{Issuer: "sidehook", Subject: "demo", Audience: "crm", Event: "payment"}))
	resp, err := rcv.Client().Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()

	caps := rcv.Requests(receivertest.Filter{Verdict: receivertest.VerdictValid})
	for _, c := range caps {
		fmt.Println(resp.StatusCode, c.Verdict.Scheme, c.Verdict.Claims["aud"], c.Verdict.Claims["evt"])
	}
	// Output:
	// 200 jwt crm payment
}
