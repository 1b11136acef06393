package receivertest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

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
		receivertest.WithRules(receivertest.Rule{
			Match:   receivertest.Match{Path: "/webhooks"},
			Respond: receivertest.Respond{Status: 503, Times: 1},
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

// A sender under test (sender below: a service that forwards Webio
// events, signed with a JWT per attempt) is pointed at the receiver; the
// test waits for its delivery and asserts on the headers, the verified
// claims and the body. Expect fails the test, on one line, when the
// delivery does not come.
func ExampleServer_Expect() {
	t := &exampleT{}
	defer t.finish()
	rcv := receivertest.NewServer(t, receivertest.WithJWTSecret(jwtSecret), receivertest.WithAudience("crm"))
	s := newSender(rcv.URL + "/webhooks")

	s.send("evt_1", "payment", `{"type":"payment","amount":"50.00","currency":"GBP"}`)

	c := rcv.Expect(receivertest.Filter{Event: "payment", Path: "/webhooks"}, 1, 5*time.Second)[0]
	// Header takes any case; the Headers map has lower-case keys.
	fmt.Println("webhook-id:", c.Header("Webhook-Id"), "attempt:", c.Header("sidehook-attempt"))
	fmt.Println("verdict:", c.Verdict.Status, c.Verdict.Scheme)
	fmt.Println("claims:", c.Verdict.Claims["sub"], c.Verdict.Claims["aud"], c.Verdict.Claims["evt"], c.Verdict.Claims["wid"])
	var payment struct{ Amount, Currency string }
	if err := json.Unmarshal(c.Body, &payment); err != nil {
		fmt.Println(err)
	}
	fmt.Println("body:", payment.Amount, payment.Currency)
	// Output:
	// webhook-id: evt_1 attempt: 1
	// verdict: valid jwt
	// claims: demo crm payment evt_1
	// body: 50.00 GBP
}

// Rules make the receiver fail on purpose, and the captures show what the
// sender did about it: each attempt's headers and the answer it got. A
// Sequence per webhook-id fails each event twice and then succeeds; a
// Fault drops the connection; a Delay longer than the sender's timeout
// makes it give up. Captures come newest first: reversed, they read as
// the sender's timeline.
func Example_retries() {
	t := &exampleT{}
	defer t.finish()
	rcv := receivertest.NewServer(t, receivertest.WithJWTSecret(jwtSecret),
		receivertest.WithRules(
			receivertest.Rule{
				Match:   receivertest.Match{Path: "/flaky"},
				Respond: receivertest.Respond{Sequence: []int{503, 500, 200}, Per: receivertest.PerWebhookID},
			},
			receivertest.Rule{
				Match:   receivertest.Match{Path: "/dropping"},
				Respond: receivertest.Respond{Fault: receivertest.FaultReset, Times: 1},
			},
			receivertest.Rule{
				Match:   receivertest.Match{Path: "/slow"},
				Respond: receivertest.Respond{Delay: time.Minute, Times: 1},
			},
			receivertest.Rule{
				Match:   receivertest.Match{Path: "/gone"},
				Respond: receivertest.Respond{Status: 410},
			},
		))

	for _, path := range []string{"/flaky", "/dropping", "/slow", "/gone"} {
		id := "evt" + strings.ReplaceAll(path, "/", "_")
		s := newSender(rcv.URL + path)
		s.client.Timeout = 200 * time.Millisecond // the /slow rule outlasts it
		fmt.Printf("%s: %s\n", path, s.send(id, "payment", `{"type":"payment"}`))

		attempts := rcv.Requests(receivertest.Filter{WebhookID: id})
		slices.Reverse(attempts)
		for _, c := range attempts {
			answer := strconv.Itoa(c.Response.Status)
			if c.Response.Fault != "" {
				answer = c.Response.Fault
			}
			fmt.Printf("  attempt %s answered %s, duplicate: %t\n", c.Header("sidehook-attempt"), answer, c.DuplicateOf != "")
		}
	}
	// Output:
	// /flaky: delivered on attempt 3
	//   attempt 1 answered 503, duplicate: false
	//   attempt 2 answered 500, duplicate: true
	//   attempt 3 answered 200, duplicate: true
	// /dropping: delivered on attempt 2
	//   attempt 1 answered reset, duplicate: false
	//   attempt 2 answered 200, duplicate: true
	// /slow: delivered on attempt 2
	//   attempt 1 answered 200, duplicate: false
	//   attempt 2 answered 200, duplicate: true
	// /gone: gave up on attempt 1: 410
	//   attempt 1 answered 410, duplicate: false
}

// The sender fills a <<fieldname>> template with custom values it GETs
// from the customer's system; WithValuesJSON gives the receiver the
// values to answer, by customer, then channel, then default.
func Example_customValues() {
	t := &exampleT{}
	defer t.finish()
	rcv := receivertest.NewServer(t, receivertest.WithJWTSecret(jwtSecret), receivertest.WithValuesJSON(`{
		"default":   {"fullname": "there"},
		"customers": {"ACC-10023": {"fullname": "Jane Doe", "arrangementamount": "50.00"}}
	}`))
	s := newSender(rcv.URL + "/custom-values")

	fmt.Println(s.render("ACC-10023", "Hi <<fullname>>, you owe <<arrangementamount>>"))
	fmt.Println(s.render("ACC-99999", "Hi <<fullname>>, you owe <<arrangementamount>>"))

	for _, c := range rcv.Expect(receivertest.Filter{Event: "custom_value_request"}, 2, 5*time.Second) {
		fmt.Println(c.Method, c.Path+"?"+c.Query, c.Verdict.Status, c.Response.Body)
	}
	// Output:
	// Hi Jane Doe, you owe 50.00
	// Hi there, you owe null
	// GET /custom-values?customerUID=ACC-99999&fields=fullname%2Carrangementamount valid {"arrangementamount":null,"fullname":"there"}
	// GET /custom-values?customerUID=ACC-10023&fields=fullname%2Carrangementamount valid {"arrangementamount":"50.00","fullname":"Jane Doe"}
}

// jwtSecret is the HS256 secret the sender signs with and the receiver
// checks (WithJWTSecret).
const jwtSecret = "0123456789abcdef0123456789abcdef"

// sender stands in for the code under test: a service that forwards
// Webio events to a customer's webhook URL, with a fresh JWT per attempt
// (receivertest.JWT here; the service's own JWT library in a real one),
// retrying 5xx answers, timeouts and dropped connections at once, and
// that fills <<fieldname>> templates with custom values GET from the same
// system.
type sender struct {
	url      string
	key      receivertest.Key
	client   *http.Client // Timeout is each attempt's
	attempts int
}

func newSender(url string) *sender {
	return &sender{
		url:      url,
		key:      receivertest.SecretKey(jwtSecret),
		client:   &http.Client{Timeout: 5 * time.Second},
		attempts: 5,
	}
}

// send delivers one event and says how it went.
func (s *sender) send(id, event, body string) string {
	for n := 1; ; n++ {
		req, err := http.NewRequest("POST", s.url, strings.NewReader(body))
		if err != nil {
			return err.Error()
		}
		req.Header.Set("content-type", "application/json")
		req.Header.Set("webhook-id", id)
		req.Header.Set("sidehook-event", event)
		req.Header.Set("sidehook-attempt", strconv.Itoa(n))
		claims := receivertest.JWTClaims{Subject: "demo", Audience: "crm", Event: event, WebhookID: id}
		if err := receivertest.Sign(req, []byte(body), receivertest.JWT(s.key, claims)); err != nil {
			return err.Error()
		}
		status, err := s.do(req)
		switch {
		case err == nil && status/100 == 2:
			return fmt.Sprintf("delivered on attempt %d", n)
		case err == nil && status < 500:
			return fmt.Sprintf("gave up on attempt %d: %d", n, status)
		case n == s.attempts:
			return fmt.Sprintf("gave up on attempt %d: %v %d", n, err, status)
		}
	}
}

func (s *sender) do(req *http.Request) (int, error) {
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// render fills template's <<fields>> with the customer's values, "null"
// for a field the customer's system does not know.
func (s *sender) render(customerUID, template string) string {
	var fields []string
	for _, part := range strings.Split(template, "<<")[1:] {
		fields = append(fields, strings.SplitN(part, ">>", 2)[0])
	}
	q := url.Values{"customerUID": {customerUID}, "fields": {strings.Join(fields, ",")}}
	req, err := http.NewRequest("GET", s.url+"?"+q.Encode(), nil)
	if err != nil {
		return err.Error()
	}
	claims := receivertest.JWTClaims{Subject: "demo", Audience: "crm", Event: "custom_value_request"}
	if err := receivertest.Sign(req, nil, receivertest.JWT(s.key, claims)); err != nil {
		return err.Error()
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var values map[string]*string
	if err := json.NewDecoder(resp.Body).Decode(&values); err != nil {
		return err.Error()
	}
	for _, f := range fields {
		v := "null"
		if values[f] != nil {
			v = *values[f]
		}
		template = strings.ReplaceAll(template, "<<"+f+">>", v)
	}
	return template
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
