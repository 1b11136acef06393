package receiver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/receiver/memstore"
)

func TestParseRules(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantN   int
		wantErr string
	}{
		{"JSONList", `[{"match":{"method":"POST","path":"/flaky*","event":"payment","headers":{"x-team":"billing"}},
			"respond":{"status":200,"headers":{},"body":"ok","delay":"250ms","sequence":[500,503,200],"per":"webhook-id","times":0,"fault":""}}]`, 1, ""},
		{"YAMLList", "- match: {path: /a}\n  respond: {status: 503}\n- respond: {fault: reset}\n", 2, ""},
		{"SingleObject", `{"respond":{"status":204}}`, 1, ""},
		{"Empty", ``, 0, ""},
		{"ErrUnknownField", `[{"respond":{"stauts":500}}]`, 0, `rule 1: unknown field "respond.stauts"`},
		{"ErrUnknownTop", `[{"respond":{}}, {"mach":{}}]`, 0, `rule 2: unknown field "mach"`},
		{"ErrStatus", `[{"respond":{"status":600}}]`, 0, "rule 1: respond.status: 600 is not between 200 and 599"},
		{"ErrFaultWithStatus", `[{"respond":{"status":500,"fault":"reset"}}]`, 0, `rule 1: respond.status: a rule with fault "reset" sends no answer; leave status out`},
		{"ErrFaultWithBody", `[{"respond":{"fault":"close","body":"x"}}]`, 0, `rule 1: respond.body: a rule with fault "close" sends no answer`},
		{"ErrFaultWithSequence", `[{"respond":{"fault":"timeout","sequence":[500]}}]`, 0, "rule 1: respond.sequence:"},
		{"ErrStatusInformational", `[{"respond":{"status":103}}]`, 0, "rule 1: respond.status: 103 is not between 200 and 599"},
		{"ErrSequenceInformational", `[{"respond":{"sequence":[500,100]}}]`, 0, "rule 1: respond.sequence[1]: 100 is not between 200 and 599"},
		{"ErrStatusType", `[{"respond":{"status":"ok"}}]`, 0, "rule 1: respond.status"},
		{"ErrSequence", `[{"respond":{"sequence":[500,42]}}]`, 0, "rule 1: respond.sequence[1]"},
		{"ErrStatusFraction", `[{"respond":{"status":500.5}}]`, 0, "rule 1: respond.status: 500.5 is not a whole number"},
		{"ErrTimesFraction", `[{"respond":{"times":1.5}}]`, 0, "rule 1: respond.times: 1.5 is not a whole number"},
		{"ErrSequenceFraction", `[{"respond":{"sequence":[500,200.9]}}]`, 0, "rule 1: respond.sequence[1]: 200.9 is not a whole number"},
		{"ErrStatusHuge", `[{"respond":{"status":99999999999999999999}}]`, 0, "rule 1: respond.status: 99999999999999999999 is out of range"},
		{"ErrTimesHuge", `[{"respond":{"times":1e30}}]`, 0, "rule 1: respond.times: 1e30 is out of range"},
		{"ErrSequenceHuge", `[{"respond":{"sequence":[-1e19]}}]`, 0, "rule 1: respond.sequence[0]: -1e19 is out of range"},
		{"ErrDelay", `[{"respond":{"delay":"soon"}}]`, 0, `rule 1: respond.delay: "soon" is not a duration`},
		{"ErrNegativeDelay", `[{"respond":{"delay":"-1s"}}]`, 0, "rule 1: respond.delay"},
		{"ErrFault", `[{"respond":{"fault":"explode"}}]`, 0, `rule 1: respond.fault: "explode"`},
		{"ErrPer", `[{"respond":{"per":"customer"}}]`, 0, `rule 1: respond.per: "customer"`},
		{"ErrTimes", `[{"respond":{"times":-1}}]`, 0, "rule 1: respond.times"},
		{"ErrPath", `[{"match":{"path":"/a["}}]`, 0, "rule 1: match.path"},
		{"ErrPathNoSlash", `[{"match":{"path":"flaky*"}}]`, 0, `rule 1: match.path: path pattern "flaky*" matches no path`},
		{"ErrPathAdmin", `[{"match":{"path":"/_sidehook/requests*"}}]`, 0,
			`rule 1: match.path: "/_sidehook/requests*" is under /_sidehook/, the receiver's own API, which no rule answers`},
		{"PathSidehookLike", `[{"match":{"path":"/_sidehook-hooks/*"}}]`, 1, ""},
		{"PathStar", `[{"match":{"path":"*"}}]`, 1, ""},
		{"ErrEvent", `[{"match":{"event":"Payment Made"}}]`, 0, "rule 1: match.event"},
		{"ErrEventPayloadType", `[{"match":{"event":"inboundMessage"}}]`, 0,
			`rule 1: match.event: "inboundMessage" is a payload's type: its event type is inbound_message`},
		{"ErrMethod", `[{"match":{"method":"PO ST"}}]`, 0, "rule 1: match.method"},
		{"ErrMethodStar", `[{"match":{"method":"*"}}]`, 0, `rule 1: match.method: "*" is no wildcard (it matches only a method named *): leave method out to match any`},
		{"ErrHeaderName", `[{"match":{"headers":{"x team":"a"}}}]`, 0, "rule 1: match.headers"},
		{"ErrRespondHeaderValue", `[{"respond":{"headers":{"x-a":"a\r\nSet-Cookie: b=1"}}}]`, 0, `rule 1: respond.headers: the value of "x-a" is not a header value`},
		{"ErrRespondTransferEncoding", `[{"respond":{"headers":{"Transfer-Encoding":"gzip"},"body":"abc"}}]`, 0,
			`rule 1: respond.headers: "Transfer-Encoding" is set by the receiver to frame the body: leave it out`},
		{"ErrRespondContentLength", `[{"respond":{"headers":{"content-length":"5"},"body":"abc"}}]`, 0,
			`rule 1: respond.headers: "content-length" is set by the receiver to frame the body: leave it out`},
		{"ErrDuplicateID", `[{"id":"a"},{"id":"a"}]`, 0, `rule 2: id "a" already used by rule 1`},
		{"ErrScalar", `42`, 0, "want a list of rules"},
		{"ErrTabFirstLine", "\t- match: {path: /a}\n", 0, "invalid rules: line 1: a tab indents this line: YAML indents with spaces"},
		{"ErrTabLater", "- match: {path: /a}\n\t respond: {status: 500}\n", 0, "invalid rules: line 2: a tab indents this line: YAML indents with spaces"},
		{"ErrSyntax", `[{"match":`, 0, "invalid rules: line 1: did not find expected node content"},
		{"ErrStatusString", `[{"respond":{"status":"ok"}}]`, 0, `rule 1: respond.status: "ok" is not a whole number`},
		{"ErrTimesBool", `[{"respond":{"times":true}}]`, 0, `rule 1: respond.times: true is not a whole number`},
		{"ErrStatusObject", `[{"respond":{"status":{"code":500}}}]`, 0, `rule 1: respond.status: want a whole number`},
		{"ErrSequenceNumber", `[{"respond":{"sequence":500}}]`, 0, `rule 1: respond.sequence: want a list of statuses, such as [500, 200]`},
		{"ErrSequenceItem", `[{"respond":{"sequence":[500,"ok"]}}]`, 0, `rule 1: respond.sequence[1]: "ok" is not a whole number`},
		{"ErrPerList", `[{"respond":{"per":["webhook-id"]}}]`, 0, `rule 1: respond.per: want a string`},
		{"ErrIDNumber", `[{"id":{"a":1}}]`, 0, `rule 1: id: want a string`},
		{"ErrPathList", `[{"match":{"path":["/a"]}}]`, 0, `rule 1: match.path: want a string`},
		{"StatusNull", `[{"respond":{"status":null}}]`, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules, err := receiver.ParseRules([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error spans lines: %q", err)
				}
				if strings.Contains(err.Error(), "yaml:") || strings.Contains(err.Error(), "!!") {
					t.Errorf("error speaks of the YAML parser, not of the rule: %q", err)
				}
				return
			}
			if err != nil || len(rules) != tt.wantN {
				t.Fatalf("got %d rules, %v; want %d", len(rules), err, tt.wantN)
			}
		})
	}
	rules, _ := receiver.ParseRules([]byte(`[{"respond":{"delay":"250ms","sequence":[500,200],"per":"webhook-id"}}]`))
	if rules[0].Respond.Delay != 250*time.Millisecond || rules[0].Respond.Per != receiver.PerWebhookID {
		t.Errorf("got %+v, want a delay of 250ms per webhook-id", rules[0].Respond)
	}
}

// rulesServer starts a receiver with the rules given as a JSON list.
func rulesServer(t *testing.T, rulesJSON string) *receiver.Server {
	t.Helper()
	rules, err := receiver.ParseRules([]byte(rulesJSON))
	if err != nil {
		t.Fatal(err)
	}
	return start(t, receiver.Config{Rules: rules})
}

func TestRulesRespond(t *testing.T) {
	srv := rulesServer(t, `[
		{"id":"teapot","match":{"method":"post","path":"/tea*","headers":{"x-team":"billing"}},
		 "respond":{"status":418,"headers":{"x-rule":"yes","content-type":"text/plain"},"body":"short and stout"}},
		{"id":"pay","match":{"event":"payment"},"respond":{"status":202,"body":"paid"}},
		{"id":"wid","match":{"webhook_id":"evt_special"},"respond":{"status":409}},
		{"id":"fallback","match":{"path":"/tea/*"},"respond":{"status":500}}
	]`)
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		header     map[string]string
		wantStatus int
		wantRule   string
		wantBody   string
	}{
		{"AllMatch", "POST", "/tea/pot/big", "", map[string]string{"x-team": "billing"}, 418, "teapot", "short and stout"},
		{"HeaderMismatch", "POST", "/tea/pot", "", map[string]string{"x-team": "ops"}, 500, "fallback", ""},
		{"MethodMismatch", "PUT", "/teapot", "", map[string]string{"x-team": "billing"}, 200, "", ""},
		{"Event", "POST", "/x", `{"type":"payment"}`, nil, 202, "pay", "paid"},
		{"WebhookID", "POST", "/x", `{}`, map[string]string{"webhook-id": "evt_special"}, 409, "wid", ""},
		{"NoMatch", "POST", "/other", `{}`, nil, 200, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			r := send(t, tt.method, srv.URL()+tt.path, body, tt.header)
			if r.status != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", r.status, r.body, tt.wantStatus)
			}
			if tt.wantBody != "" && string(r.body) != tt.wantBody {
				t.Errorf("body: got %q, want %q", r.body, tt.wantBody)
			}
			caps, _ := list(t, srv, "limit=1")
			if caps[0].Response.Rule != tt.wantRule || caps[0].Response.Status != tt.wantStatus {
				t.Errorf("capture response: got %+v, want rule %q status %d", caps[0].Response, tt.wantRule, tt.wantStatus)
			}
		})
	}
	if r := send(t, "POST", srv.URL()+"/teapot", nil, map[string]string{"x-team": "billing"}); r.header.Get("x-rule") != "yes" {
		t.Errorf("rule headers not sent: %v", r.header)
	}
}

// A 204 or 304 has no body: the capture records the answer as sent, not
// the rule's body, which net/http drops for those statuses.
func TestRulesBodylessStatus(t *testing.T) {
	srv := rulesServer(t, `[{"match":{"path":"/nb"},"respond":{"body":"x","sequence":[204,304,200]}}]`)
	for _, want := range []struct {
		status int
		body   string
	}{{204, ""}, {304, ""}, {200, "x"}} {
		r := send(t, "POST", srv.URL()+"/nb", nil, nil)
		if r.status != want.status || string(r.body) != want.body {
			t.Fatalf("got %d %q, want %d %q", r.status, r.body, want.status, want.body)
		}
		caps, _ := list(t, srv, "limit=1")
		got := caps[0].Response
		if got.Status != want.status || got.Body != want.body {
			t.Errorf("capture response: got %d %q, want %d %q", got.Status, got.Body, want.status, want.body)
		}
		if cl, sent := got.Headers["content-length"], r.header.Get("Content-Length"); len(cl) > 0 && cl[0] != sent || len(cl) == 0 && sent != "" {
			t.Errorf("capture response content-length: got %v, sent %q", cl, sent)
		}
	}
}

// A HEAD is answered without a body, whatever the rule or the default
// answer says: the capture records none, and the content-length sent.
func TestRulesHeadRecordsNoBody(t *testing.T) {
	srv := rulesServer(t, `[{"match":{"path":"/ruled"},"respond":{"status":202,"body":"accepted"}}]`)
	for _, p := range []string{"/ruled", "/default"} {
		r := send(t, "HEAD", srv.URL()+p, nil, nil)
		caps, _ := list(t, srv, "limit=1")
		got := caps[0].Response
		if got.Body != "" || string(r.body) != "" {
			t.Errorf("%s: capture response body %q, sent %q; want none", p, got.Body, r.body)
		}
		if cl := got.Headers["content-length"]; len(cl) != 1 || cl[0] != r.header.Get("Content-Length") {
			t.Errorf("%s: capture response content-length %v, sent %q", p, cl, r.header.Get("Content-Length"))
		}
	}
}

// The capture's response headers are those the client got: a rule body
// without a content-type is sent with the one net/http sniffs, and the
// capture says so.
func TestRulesResponseContentType(t *testing.T) {
	srv := rulesServer(t, `[{"match":{"path":"/text"},"respond":{"body":"ok"}},
		{"match":{"path":"/json"},"respond":{"body":"{\"ok\":true}"}},
		{"match":{"path":"/html"},"respond":{"body":"<html><body>hi</body></html>"}},
		{"match":{"path":"/given"},"respond":{"body":"ok","headers":{"Content-Type":"application/x-thing"}}},
		{"match":{"path":"/empty"},"respond":{"status":202}}]`)
	for _, p := range []string{"/text", "/json", "/html", "/given", "/empty"} {
		t.Run(p[1:], func(t *testing.T) {
			r := send(t, "POST", srv.URL()+p, nil, nil)
			caps, _ := list(t, srv, "limit=1")
			got := strings.Join(caps[0].Response.Headers["content-type"], ",")
			if sent := r.header.Get("Content-Type"); got != sent {
				t.Errorf("capture content-type: got %q, sent %q", got, sent)
			}
		})
	}
}

func TestRulesSequence(t *testing.T) {
	srv := rulesServer(t, `[
		{"match":{"path":"/global"},"respond":{"sequence":[500,503,200]}},
		{"match":{"path":"/per"},"respond":{"sequence":[500,200],"per":"webhook-id"}}
	]`)
	var got []int
	for i := 0; i < 5; i++ {
		got = append(got, send(t, "POST", srv.URL()+"/global", nil, map[string]string{"webhook-id": "evt_" + string(rune('a'+i))}).status)
	}
	if want := []int{500, 503, 200, 200, 200}; !equalInts(got, want) {
		t.Errorf("global: got %v, want %v", got, want)
	}
	got = nil
	for _, wid := range []string{"evt_1", "evt_2", "evt_1", "evt_2", "evt_1"} {
		got = append(got, send(t, "POST", srv.URL()+"/per", nil, map[string]string{"webhook-id": wid}).status)
	}
	if want := []int{500, 500, 200, 200, 200}; !equalInts(got, want) {
		t.Errorf("per webhook-id: got %v, want %v", got, want)
	}
	// Reset starts the sequences again.
	if r := send(t, "POST", srv.URL()+"/_sidehook/reset", nil, nil); r.status != 204 {
		t.Fatalf("reset: got %d, want 204", r.status)
	}
	if s := send(t, "POST", srv.URL()+"/global", nil, nil).status; s != 500 {
		t.Errorf("after reset: got %d, want 500", s)
	}
}

// TestSvixIDIsTheWebhookID: a Svix sender names the Standard Webhooks id
// svix-id (the receiver verifies its svix-* signature). Its retries walk
// a per-webhook-id sequence of their own, are marked duplicates and are
// found by webhook_id, as a webhook-id sender's are; all of a Svix
// sender's messages shared one sequence, so only the first ever failed.
func TestSvixIDIsTheWebhookID(t *testing.T) {
	srv := rulesServer(t, `[
		{"match":{"path":"/one","webhook_id":"msg_b"},"respond":{"status":418}},
		{"match":{"path":"/per"},"respond":{"sequence":[503,200],"per":"webhook-id"}}
	]`)
	var got []int
	for _, id := range []string{"msg_a", "msg_a", "msg_b", "msg_b"} {
		got = append(got, send(t, "POST", srv.URL()+"/per", []byte(`{}`), map[string]string{"svix-id": id}).status)
	}
	if want := []int{503, 200, 503, 200}; !equalInts(got, want) {
		t.Errorf("per webhook-id: got %v, want %v", got, want)
	}
	if s := send(t, "POST", srv.URL()+"/one", nil, map[string]string{"svix-id": "msg_b"}).status; s != 418 {
		t.Errorf("match.webhook_id of svix-id: got %d, want 418", s)
	}
	caps, _ := list(t, srv, "webhook_id=msg_a")
	if len(caps) != 2 || caps[0].WebhookID != "msg_a" || caps[0].DuplicateOf != caps[1].ID || caps[1].DuplicateOf != "" {
		t.Errorf("webhook_id=msg_a: got %+v, want two captures, the newer a duplicate of the older", caps)
	}
	// Both present: webhook-id is the one Standard Webhooks names.
	send(t, "POST", srv.URL()+"/both", nil, map[string]string{"webhook-id": "evt_1", "svix-id": "msg_1"})
	if caps, _ := list(t, srv, "path=/both"); len(caps) != 1 || caps[0].WebhookID != "evt_1" {
		t.Errorf("webhook-id and svix-id: got %+v, want webhook_id evt_1", caps)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRulesTimes(t *testing.T) {
	srv := rulesServer(t, `[
		{"match":{"path":"/t"},"respond":{"status":503,"times":2}},
		{"match":{"path":"/t"},"respond":{"status":201}}
	]`)
	var got []int
	for i := 0; i < 4; i++ {
		got = append(got, send(t, "POST", srv.URL()+"/t", nil, nil).status)
	}
	if want := []int{503, 503, 201, 201}; !equalInts(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestRulesTimesPerWebhookID: with per webhook-id, times counts each
// webhook-id's requests, as a relay retries each event: "fail each event
// twice" is status 503, times 2, and a fault, which no sequence holds,
// hits each event's first attempt. Times counted every webhook-id's
// requests together: only the first event ever failed.
func TestRulesTimesPerWebhookID(t *testing.T) {
	srv := rulesServer(t, `[
		{"match":{"path":"/fail"},"respond":{"status":503,"times":2,"per":"webhook-id"}},
		{"match":{"path":"/reset"},"respond":{"fault":"reset","times":1,"per":"webhook-id"}},
		{"match":{"path":"/seq"},"respond":{"sequence":[500,502],"times":2,"per":"webhook-id"}}
	]`)
	// A connection each, so a reset is seen by the request it ends.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	t.Cleanup(client.CloseIdleConnections)
	tests := []struct {
		path string
		ids  []string
		want []string
	}{
		{"/fail", []string{"a", "a", "b", "a", "b", "b"}, []string{"503", "503", "503", "200", "503", "200"}},
		{"/reset", []string{"a", "a", "b", "b"}, []string{"reset", "200", "reset", "200"}},
		{"/seq", []string{"a", "a", "a", "b"}, []string{"500", "502", "200", "500"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			var got []string
			for _, id := range tt.ids {
				req, err := http.NewRequest("POST", srv.URL()+tt.path, strings.NewReader(`{}`))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("webhook-id", "evt_"+id)
				resp, err := client.Do(req)
				if err != nil {
					got = append(got, "reset")
					continue
				}
				resp.Body.Close()
				got = append(got, strconv.Itoa(resp.StatusCode))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRulesDelay(t *testing.T) {
	srv := rulesServer(t, `[{"match":{"path":"/slow"},"respond":{"status":200,"delay":"200ms"}}]`)
	begin := time.Now()
	send(t, "GET", srv.URL()+"/slow", nil, nil)
	if d := time.Since(begin); d < 200*time.Millisecond {
		t.Errorf("answered after %v, want at least 200ms", d)
	}
}

func TestRulesFaults(t *testing.T) {
	srv := rulesServer(t, `[
		{"match":{"path":"/reset"},"respond":{"fault":"reset"}},
		{"match":{"path":"/close"},"respond":{"fault":"close"}},
		{"match":{"path":"/timeout"},"respond":{"fault":"timeout"}}
	]`)
	noKeepAlive := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	post := func(client *http.Client, path string) error {
		req, _ := http.NewRequest("POST", srv.URL()+path, strings.NewReader(`{"type":"payment"}`))
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			return errors.New("got an answer: " + resp.Status)
		}
		return err
	}
	t.Run("Reset", func(t *testing.T) {
		err := post(noKeepAlive, "/reset")
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("got %v, want connection reset", err)
		}
	})
	t.Run("Close", func(t *testing.T) {
		err := post(noKeepAlive, "/close")
		if !errors.Is(err, io.EOF) {
			t.Errorf("got %v, want EOF", err)
		}
	})
	t.Run("Timeout", func(t *testing.T) {
		client := &http.Client{Timeout: 300 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
		err := post(client, "/timeout")
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("got %v, want a client timeout", err)
		}
	})
	// A fault's capture is stored as the fault begins, but the client
	// may give up (the timeout) before it is: wait for all three.
	waitCount(t, srv, 3)
	caps, _ := list(t, srv, "")
	faults := map[string]bool{}
	for _, c := range caps {
		if c.Response.Status != 0 {
			t.Errorf("%s: response status %d, want 0 for a fault", c.Path, c.Response.Status)
		}
		faults[c.Response.Fault] = true
	}
	if len(caps) != 3 || !faults["reset"] || !faults["close"] || !faults["timeout"] {
		t.Errorf("got %d captures with faults %v, want the three", len(caps), faults)
	}
}

// A held connection ends when the receiver stops: Close does not wait for
// the client to give up.
func TestRulesTimeoutReleasedByClose(t *testing.T) {
	rules, _ := receiver.ParseRules([]byte(`[{"respond":{"fault":"timeout"}}]`))
	srv, err := receiver.New(receiver.Config{Store: memstore.New(), Listen: "127.0.0.1:0", Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) }) // should the test end before its Close
	errc := make(chan error, 1)
	go func() {
		resp, err := http.Post(srv.URL()+"/hold", "text/plain", strings.NewReader("x"))
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	waitCount(t, srv, 1)
	begin := time.Now()
	if err := srv.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("Close took %v with a held connection, want at most 2s", d)
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Error("held request got an answer")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("held client still waiting after Close")
	}
}

// waitCount blocks until the receiver holds n captures.
func waitCount(t *testing.T, srv *receiver.Server, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := srv.Wait(ctx, receiver.Filter{}, n); err != nil {
		t.Fatalf("waiting for %d captures: %v", n, err)
	}
}

func TestRulesAPI(t *testing.T) {
	srv := rulesServer(t, `[{"id":"file","match":{"path":"/file"},"respond":{"status":418}}]`)
	post := send(t, "POST", srv.URL()+"/_sidehook/rules", []byte(`{"match":{"path":"/api"},"respond":{"status":503}}`), jsonHeader)
	if post.status != 201 {
		t.Fatalf("POST: got %d %s, want 201", post.status, post.body)
	}
	var added map[string]string
	post.json(t, &added)
	if !strings.HasPrefix(added["id"], receiver.RuleIDPrefix) {
		t.Errorf("POST: got %s, want {\"id\":\"rule_…\"}", post.body)
	}
	if s := send(t, "POST", srv.URL()+"/api", nil, nil).status; s != 503 {
		t.Errorf("posted rule: got %d, want 503", s)
	}
	var listed struct {
		Rules []receiver.Rule `json:"rules"`
	}
	send(t, "GET", srv.URL()+"/_sidehook/rules", nil, nil).json(t, &listed)
	if len(listed.Rules) != 2 || listed.Rules[0].ID != "file" || listed.Rules[1].ID != added["id"] {
		t.Errorf("GET: got %+v, want the file rule, then the one added", listed.Rules)
	}

	bad := send(t, "POST", srv.URL()+"/_sidehook/rules", []byte(`{"respond":{"status":99}}`), jsonHeader)
	var e map[string]string
	bad.json(t, &e)
	if bad.status != 400 || e["error"] != "bad_request" || !strings.Contains(e["reason"], "respond.status") {
		t.Errorf("invalid rule: got %d %s, want 400 naming respond.status", bad.status, bad.body)
	}

	if r := send(t, "DELETE", srv.URL()+"/_sidehook/rules?id="+added["id"], nil, nil); r.status != 204 {
		t.Errorf("DELETE one: got %d, want 204", r.status)
	}
	if r := send(t, "DELETE", srv.URL()+"/_sidehook/rules?id=nope", nil, nil); r.status != 404 {
		t.Errorf("DELETE unknown: got %d, want 404", r.status)
	}
	if s := send(t, "POST", srv.URL()+"/api", nil, nil).status; s != 200 {
		t.Errorf("deleted rule still answers: %d", s)
	}
	send(t, "DELETE", srv.URL()+"/_sidehook/rules", nil, nil)
	if s := send(t, "POST", srv.URL()+"/file", nil, nil).status; s != 200 {
		t.Errorf("DELETE all: file rule still answers %d", s)
	}
	// Reset brings back the file's rules.
	send(t, "POST", srv.URL()+"/_sidehook/reset", nil, nil)
	if s := send(t, "POST", srv.URL()+"/file", nil, nil).status; s != 418 {
		t.Errorf("after reset: got %d, want the file rule's 418", s)
	}
}

// A rule as GET /_sidehook/rules writes it decodes back into a Rule:
// receiverapi's Rules reads the list that way, and failed on any rule with
// a delay, which is written as a duration string.
func TestRuleJSONRoundTrip(t *testing.T) {
	srv := rulesServer(t, `[{"id":"slow","match":{"path":"/slow"},"respond":{"status":503,"delay":"250ms","sequence":[500,200]}},
		{"id":"plain","respond":{"status":204}}]`)
	var listed struct {
		Rules []receiver.Rule `json:"rules"`
	}
	send(t, "GET", srv.URL()+"/_sidehook/rules", nil, nil).json(t, &listed)
	if len(listed.Rules) != 2 {
		t.Fatalf("got %d rules, want 2", len(listed.Rules))
	}
	if got := listed.Rules[0].Respond; got.Delay != 250*time.Millisecond || got.Status != 503 || !equalInts(got.Sequence, []int{500, 200}) {
		t.Errorf("slow rule: got %+v, want delay 250ms, status 503, sequence [500 200]", got)
	}
	if got := listed.Rules[1].Respond; got.Delay != 0 || got.Status != 204 {
		t.Errorf("plain rule: got %+v, want no delay, status 204", got)
	}

	tests := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"Duration", `{"delay":"1.5s"}`, 1500 * time.Millisecond, false},
		{"Absent", `{}`, 0, false},
		{"Empty", `{"delay":""}`, 0, false},
		{"ErrNotDuration", `{"delay":"soon"}`, 0, true},
		{"ErrNumber", `{"delay":250}`, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r receiver.Respond
			err := json.Unmarshal([]byte(tt.in), &r)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if err == nil && r.Delay != tt.want {
				t.Errorf("got delay %v, want %v", r.Delay, tt.want)
			}
		})
	}
}

// A rules body over the API's limit is refused whole: cut at the limit,
// a YAML list can still parse, as fewer rules or a shorter value.
func TestRulesAPITooLarge(t *testing.T) {
	srv := rulesServer(t, `[]`)
	// Padded so the limit falls inside the last rule's path: cut there,
	// the document still parses, with that path shortened.
	rule := "- match: {path: /a}\n  respond: {status: 503}\n"
	var b strings.Builder
	for b.Len() < 1<<20-len(rule)-200 {
		b.WriteString(rule)
	}
	b.WriteString("- respond: {status: 202}\n  match:\n    path: /" + strings.Repeat("p", 4096) + "\n")
	r := send(t, "POST", srv.URL()+"/_sidehook/rules", []byte(b.String()), jsonHeader)
	if r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("got %d %.200s, want 413", r.status, r.body)
	}
	if n := len(srv.Rules()); n != 0 {
		t.Errorf("got %d rules in force, want none", n)
	}
}

// A request that fails verification is answered 401 whatever the rules
// say: a rule must not make a forged delivery look accepted.
func TestRulesAfterVerification(t *testing.T) {
	rules, _ := receiver.ParseRules([]byte(`[{"respond":{"status":202}}]`))
	srv := start(t, receiver.Config{Rules: rules, Verify: auth.VerifyConfig{JWTSecret: []byte(testSecret)}})
	if s := send(t, "POST", srv.URL()+"/x", nil, nil).status; s != 401 {
		t.Errorf("got %d, want 401", s)
	}
}

// Rules come before custom values, so a custom-value endpoint's failures
// can be scripted too.
func TestRulesBeforeValues(t *testing.T) {
	srv := rulesServer(t, `[{"match":{"event":"custom_value_request"},"respond":{"status":500}}]`)
	if s := send(t, "GET", srv.URL()+"/cv?fields=fullname", nil, nil).status; s != 500 {
		t.Errorf("got %d, want 500", s)
	}
}

// TestRulesWithoutAnAnswer: a rule that sets no status, sequence, body or
// fault changes only what it sets (a delay, headers) of the answer the
// receiver would give without it: a custom-value endpoint answers its
// values slowly, as a bot's timeout test needs, where it answered an
// empty 200 that no custom-value caller can read.
func TestRulesWithoutAnAnswer(t *testing.T) {
	srv := rulesServer(t, `[
		{"id":"slow-values","match":{"event":"custom_value_request"},"respond":{"delay":"50ms"}},
		{"id":"tagged","match":{"path":"/tagged"},"respond":{"headers":{"x-rule":"yes"}}},
		{"id":"empty","match":{"path":"/empty"},"respond":{"status":200}}
	]`)
	tests := []struct {
		name, method, target string
		wantBody             string // a prefix
		wantHeader           string
		atLeast              time.Duration
	}{
		{"DelayedValues", "GET", "/cv?customerUID=ACC-10023&fields=fullname", `{"fullname":"Jane Doe"}`, "", 50 * time.Millisecond},
		{"HeadersOnDefault", "POST", "/tagged", `{"id":"cap_`, "yes", 0},
		// A status is an answer: its empty body is what was asked for.
		{"StatusIsAnAnswer", "POST", "/empty", "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			begin := time.Now()
			r := send(t, tt.method, srv.URL()+tt.target, nil, nil)
			if took := time.Since(begin); took < tt.atLeast {
				t.Errorf("answered after %v, want at least %v", took, tt.atLeast)
			}
			if r.status != 200 || !strings.HasPrefix(string(r.body), tt.wantBody) || tt.wantBody == "" && len(r.body) != 0 {
				t.Errorf("got %d %q, want 200 %q", r.status, r.body, tt.wantBody)
			}
			if got := r.header.Get("x-rule"); got != tt.wantHeader {
				t.Errorf("x-rule: got %q, want %q", got, tt.wantHeader)
			}
			caps, _ := list(t, srv, "limit=1")
			if got := caps[0].Response; got.Rule == "" || got.Body != string(r.body) {
				t.Errorf("capture response: got rule %q body %q, want the rule and the body sent, %q", got.Rule, got.Body, r.body)
			}
		})
	}
}

// refusingStore refuses captures while refuse is set, as a full disk does.
type refusingStore struct {
	receiver.Store
	refuse atomic.Bool
}

func (s *refusingStore) Append(ctx context.Context, c *receiver.Capture) error {
	if s.refuse.Load() {
		return fmt.Errorf("append: %w", receiver.ErrDiskFull)
	}
	return s.Store.Append(ctx, c)
}

// TestRulesRefusedCaptureKeepsItsTurn: a request the store refuses (503,
// not captured) takes nothing from a rule: the sender's retry gets the
// answer the refused request would have had.
func TestRulesRefusedCaptureKeepsItsTurn(t *testing.T) {
	type step struct {
		refuse bool
		want   int
	}
	tests := []struct {
		name  string
		rules string
		steps []step
	}{
		{"Times", `[{"match":{"path":"/t"},"respond":{"status":202,"times":1}}]`,
			[]step{{true, 503}, {true, 503}, {false, 202}, {false, 200}}},
		{"SequenceGlobal", `[{"match":{"path":"/t"},"respond":{"sequence":[500,200]}}]`,
			[]step{{true, 503}, {false, 500}, {true, 503}, {false, 200}}},
		{"SequencePerWebhookID", `[{"match":{"path":"/t"},"respond":{"sequence":[500,200],"per":"webhook-id"}}]`,
			[]step{{true, 503}, {false, 500}, {true, 503}, {false, 200}}},
		{"SequenceWithTimes", `[{"match":{"path":"/t"},"respond":{"sequence":[500,201],"times":2}}]`,
			[]step{{false, 500}, {true, 503}, {false, 201}, {false, 200}}},
		{"TimesPerWebhookID", `[{"match":{"path":"/t"},"respond":{"status":502,"times":1,"per":"webhook-id"}}]`,
			[]step{{true, 503}, {false, 502}, {false, 200}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules, err := receiver.ParseRules([]byte(tt.rules))
			if err != nil {
				t.Fatal(err)
			}
			st := &refusingStore{Store: memstore.New()}
			srv := start(t, receiver.Config{Store: st, Rules: rules})
			for i, s := range tt.steps {
				st.refuse.Store(s.refuse)
				got := send(t, "POST", srv.URL()+"/t", []byte(`{}`), map[string]string{"webhook-id": "evt_1"}).status
				if got != s.want {
					t.Errorf("request %d (store refusing: %v): got %d, want %d", i+1, s.refuse, got, s.want)
				}
			}
		})
	}
}

// gateStore holds every Append until n have begun, so n requests are
// matched against the rules before any of them is stored.
type gateStore struct {
	receiver.Store
	arrived sync.WaitGroup
}

func (s *gateStore) Append(ctx context.Context, c *receiver.Capture) error {
	s.arrived.Done()
	s.arrived.Wait()
	return s.Store.Append(ctx, c)
}

// TestRulesTimesConcurrent: requests in flight together never share a
// rule's last use, however their writes interleave.
func TestRulesTimesConcurrent(t *testing.T) {
	const n = 8
	rules, err := receiver.ParseRules([]byte(`[{"respond":{"status":202,"times":1}}]`))
	if err != nil {
		t.Fatal(err)
	}
	st := &gateStore{Store: memstore.New()}
	st.arrived.Add(n)
	srv := start(t, receiver.Config{Store: st, Rules: rules})
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			statuses <- send(t, "POST", srv.URL()+"/c", []byte(`{}`), nil).status
		})
	}
	wg.Wait()
	close(statuses)
	ruled := 0
	for s := range statuses {
		if s == 202 {
			ruled++
		}
	}
	if ruled != 1 {
		t.Errorf("got %d answers from the times=1 rule, want 1", ruled)
	}
}

// TestCheckRules: CheckRules refuses what New would, in the words New
// uses after its own prefix, and takes what New takes.
func TestCheckRules(t *testing.T) {
	tests := []struct {
		name  string
		rules []receiver.Rule
		want  string
	}{
		{"OK", []receiver.Rule{{Respond: receiver.Respond{Status: 503}}, {Respond: receiver.Respond{Fault: receiver.FaultClose}}}, ""},
		{"None", nil, ""},
		{"BadStatus", []receiver.Rule{{}, {Respond: receiver.Respond{Status: 42}}}, "rule 2: respond.status: 42 is not between 200 and 599"},
		{"SameID", []receiver.Rule{{ID: "a"}, {ID: "a"}}, `rule 2: id "a" already in use`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := receiver.CheckRules(tt.rules...)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			_, newErr := receiver.New(receiver.Config{Listen: "127.0.0.1:0", Store: memstore.New(), Rules: tt.rules})
			if (newErr == nil) != (err == nil) {
				t.Errorf("New: got %v, want it to agree with CheckRules", newErr)
			}
		})
	}
}

// TestRuleMatchesHost: a rule's match.headers can name host, as a capture
// records it among its headers (net/http keeps it apart in r.Host), so a
// receiver serving several names answers each its own way.
func TestRuleMatchesHost(t *testing.T) {
	srv := rulesServer(t, `[
		{"id":"api","match":{"headers":{"Host":"api.example:9000"}},"respond":{"status":418}},
		{"id":"anyhost","match":{"path":"/any","headers":{"host":"*"}},"respond":{"status":202}}
	]`)
	tests := []struct {
		name, path, host string
		want             int
	}{
		{"Named", "/x", "api.example:9000", 418},
		{"OtherName", "/x", "web.example", 200},
		{"AnyHost", "/any", "web.example", 202},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("POST", srv.URL()+tt.path, strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Host = tt.host
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("Host %s: got %d, want %d", tt.host, resp.StatusCode, tt.want)
			}
		})
	}
}
