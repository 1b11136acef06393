package receiverapi_test

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/internal/httpjson"
	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/receiver/receiverapi"
	"github.com/sidehook/sidehook/receiver/receivertest"
)

func TestNew(t *testing.T) {
	for _, base := range []string{"localhost:8081", "ftp://x", "http://", ""} {
		if _, err := receiverapi.New(base, "", nil); err == nil || !strings.Contains(err.Error(), "want an http") {
			t.Errorf("New(%q): got %v", base, err)
		}
	}
}

func TestClient(t *testing.T) {
	rcv := receivertest.NewServer(t)
	c, err := receiverapi.New(rcv.URL+"/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	post(t, rcv.URL+"/a", `{"type":"payment"}`, map[string]string{"webhook-id": "evt_A"})
	post(t, rcv.URL+"/b", `{"type":"payment"}`, map[string]string{"webhook-id": "evt_B"})
	got, err := c.Wait(ctx, receiver.Filter{}, 2, 5*time.Second)
	if err != nil || len(got) != 2 {
		t.Fatalf("wait: got %d, %v", len(got), err)
	}

	page, err := c.List(ctx, receiver.Filter{Event: "payment"}, 1, "")
	if err != nil || len(page.Requests) != 1 || page.Requests[0].WebhookID != "evt_B" || page.Next == "" {
		t.Fatalf("list: got %+v, %v", page, err)
	}
	page, err = c.List(ctx, receiver.Filter{Event: "payment"}, 1, page.Next)
	if err != nil || len(page.Requests) != 1 || page.Requests[0].WebhookID != "evt_A" {
		t.Errorf("second page: got %+v, %v", page, err)
	}
	one, err := c.Get(ctx, page.Requests[0].ID)
	if err != nil || one.Path != "/a" || string(one.Body) != `{"type":"payment"}` {
		t.Errorf("get: got %+v, %v", one, err)
	}
	if n, err := c.Count(ctx, receiver.Filter{WebhookID: "evt_A"}); err != nil || n != 1 {
		t.Errorf("count: got %d, %v", n, err)
	}

	// Too few in time: the error holds those that came.
	_, err = c.Wait(ctx, receiver.Filter{Event: "payment"}, 3, 50*time.Millisecond)
	var wt *receiverapi.WaitTimeoutError
	if !errors.As(err, &wt) || len(wt.Requests) != 2 || wt.Err.Status != http.StatusRequestTimeout {
		t.Errorf("wait timeout: got %v", err)
	}

	ex, err := c.Export(ctx, receiver.Filter{}, "ndjson")
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	sc := bufio.NewScanner(ex)
	for sc.Scan() {
		lines++
	}
	ex.Close()
	if lines != 2 {
		t.Errorf("export: %d lines, want 2", lines)
	}

	dst := receivertest.NewServer(t)
	ans, err := c.Replay(ctx, one.ID, receiverapi.ReplayRequest{To: dst.URL})
	if err != nil || ans.Status != http.StatusOK || ans.Target != dst.URL+"/a" {
		t.Errorf("replay: got %+v, %v", ans, err)
	}

	ids, err := c.AddRules(ctx, []byte(`[{"match":{"path":"/x"},"respond":{"status":503}},{"respond":{"status":202}}]`))
	if err != nil || len(ids) != 2 {
		t.Fatalf("add rules: got %v, %v", ids, err)
	}
	rules, err := c.Rules(ctx)
	if err != nil || len(rules) != 2 || rules[0].ID != ids[0] || rules[0].Match.Path != "/x" {
		t.Errorf("rules: got %+v, %v", rules, err)
	}
	if err := c.DeleteRules(ctx); err != nil {
		t.Errorf("delete rules: %v", err)
	}
	if err := c.Reset(ctx); err != nil {
		t.Errorf("reset: %v", err)
	}
	if n, err := c.Count(ctx, receiver.Filter{}); err != nil || n != 0 {
		t.Errorf("count after reset: got %d, %v", n, err)
	}
	post(t, rcv.URL+"/c", `{}`, nil)
	if _, err := c.Wait(ctx, receiver.Filter{}, 1, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteAll(ctx); err != nil {
		t.Errorf("delete all: %v", err)
	}
	if n, _ := c.Count(ctx, receiver.Filter{}); n != 0 {
		t.Errorf("count after delete: %d, want 0", n)
	}
}

func TestClientErrors(t *testing.T) {
	rcv := receivertest.NewServer(t)
	c := client(t, rcv, nil)
	ctx := context.Background()
	var e *receiverapi.Error
	if _, err := c.Get(ctx, "cap_01JDQ0000000000000000000ZZ"); !errors.As(err, &e) || e.Status != http.StatusNotFound || e.Code == "" {
		t.Errorf("unknown id: got %v", err)
	}
	if _, err := c.Count(ctx, receiver.Filter{Verdict: "maybe"}); !errors.As(err, &e) || e.Status != http.StatusBadRequest || !strings.Contains(e.Reason, "verdict") {
		t.Errorf("bad verdict: got %v", err)
	}
	if _, err := c.AddRules(ctx, []byte(`{"respond":{"status":99}}`)); !errors.As(err, &e) || e.Status != http.StatusBadRequest {
		t.Errorf("bad rule: got %v", err)
	}
	if _, err := c.Export(ctx, receiver.Filter{}, "xml"); !errors.As(err, &e) || !strings.Contains(e.Reason, "format") {
		t.Errorf("bad format: got %v", err)
	}
}

// A wait longer than the HTTP client's own timeout (30 s by default) still
// ends as the receiver answers it: a *WaitTimeoutError with what came, not
// the client giving up first. The client's timeout is what the answer has
// once the wait ends: 50 ms was too little on a loaded CI machine.
func TestWaitLongerThanClientTimeout(t *testing.T) {
	rcv := receivertest.NewServer(t)
	c := client(t, rcv, &http.Client{Timeout: 500 * time.Millisecond})
	post(t, rcv.URL+"/a", `{"type":"payment"}`, nil)
	got, err := c.Wait(context.Background(), receiver.Filter{Event: "payment"}, 2, time.Second)
	var te *receiverapi.WaitTimeoutError
	if !errors.As(err, &te) || len(te.Requests) != 1 {
		t.Fatalf("got %v, %v; want a *WaitTimeoutError holding the one capture", got, err)
	}
}

// TestWaitTimeoutSaysWhatCame: a wait that runs out says what it waited
// for and what came instead, as the receiver's 408 reason says it.
func TestWaitTimeoutSaysWhatCame(t *testing.T) {
	rcv := receivertest.NewServer(t)
	c := client(t, rcv, nil)
	post(t, rcv.URL+"/a", `{"type":"payment"}`, nil)
	post(t, rcv.URL+"/b", `{"type":"inboundMessage"}`, nil)
	_, err := c.Wait(context.Background(), receiver.Filter{Event: "payment"}, 2, 50*time.Millisecond)
	var te *receiverapi.WaitTimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("got %v, want a *WaitTimeoutError", err)
	}
	for _, want := range []string{
		"waited 50ms for 2 requests matching event=payment: 1 came: POST /a event=payment",
		"1 other did: POST /b event=inbound_message",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want it to say %q", err, want)
		}
	}
}

// TestAddRule: a typed rule goes in as it is written in Go, delay and
// all, answers, and goes out again by its id.
func TestAddRule(t *testing.T) {
	rcv := receivertest.NewServer(t)
	c := client(t, rcv, nil)
	ctx := context.Background()
	rule := receiver.Rule{
		Match:   receiver.Match{Method: "POST", Path: "/flaky*", Headers: map[string]string{"x-team": "billing"}},
		Respond: receiver.Respond{Sequence: []int{503, 200}, Per: receiver.PerWebhookID, Delay: 10 * time.Millisecond},
	}
	id, err := c.AddRule(ctx, rule)
	if err != nil || !strings.HasPrefix(id, receiver.RuleIDPrefix) {
		t.Fatalf("add rule: got %q, %v; want a rule_ id", id, err)
	}
	rules, err := c.Rules(ctx)
	if err != nil || len(rules) != 1 {
		t.Fatalf("rules: got %+v, %v; want the one added", rules, err)
	}
	rule.ID, rule.Match.Method = id, "POST"
	if got := rules[0]; got.ID != id || got.Match.Path != "/flaky*" || got.Match.Headers["x-team"] != "billing" ||
		got.Respond.Delay != rule.Respond.Delay || got.Respond.Per != receiver.PerWebhookID || len(got.Respond.Sequence) != 2 {
		t.Errorf("rules: got %+v, want %+v", got, rule)
	}
	post(t, rcv.URL+"/flaky/1", `{}`, map[string]string{"x-team": "billing", "webhook-id": "evt_1"})
	caps := rcv.Expect(receiver.Filter{Path: "/flaky/1"}, 1, 5*time.Second)
	if caps[0].Response.Status != 503 || caps[0].Response.Rule != id {
		t.Errorf("answer: got %d by %q, want 503 by %s", caps[0].Response.Status, caps[0].Response.Rule, id)
	}

	if err := c.DeleteRule(ctx, id); err != nil {
		t.Errorf("delete rule: %v", err)
	}
	if rules, _ := c.Rules(ctx); len(rules) != 0 {
		t.Errorf("after delete: got %d rules, want 0", len(rules))
	}
	var e *receiverapi.Error
	if err := c.DeleteRule(ctx, id); !errors.As(err, &e) || e.Status != http.StatusNotFound {
		t.Errorf("delete an unknown rule: got %v, want a 404", err)
	}
	if err := c.DeleteRule(ctx, ""); err == nil || !strings.Contains(err.Error(), "DeleteRules") {
		t.Errorf("delete rule \"\": got %v, want an error pointing to DeleteRules", err)
	}
	_, err = c.AddRule(ctx, receiver.Rule{Respond: receiver.Respond{Fault: "explode"}})
	if !errors.As(err, &e) || e.Status != http.StatusBadRequest || !strings.Contains(e.Reason, "respond.fault") {
		t.Errorf("a bad rule: got %v, want a 400 naming respond.fault", err)
	}
}

// TestClientNotAReceiversAdminAPI: given a receiver's webhook URL
// (/webhooks) as its base, every admin call reached a path the receiver
// captures, answered 200 {"id":"cap_…"}: a list read it as no captures
// (replay said "nothing matched", exit 0), a count as 0. Each read finds
// the field its route always answers missing, and says so.
func TestClientNotAReceiversAdminAPI(t *testing.T) {
	rcv := receivertest.NewServer(t)
	c, err := receiverapi.New(rcv.URL+"/webhooks", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
	}{
		{"List", func() error { _, err := c.List(ctx, receiver.Filter{}, 0, ""); return err }},
		{"Get", func() error { _, err := c.Get(ctx, "cap_1"); return err }},
		{"Count", func() error { _, err := c.Count(ctx, receiver.Filter{}); return err }},
		{"Wait", func() error { _, err := c.Wait(ctx, receiver.Filter{}, 1, time.Second); return err }},
		{"Replay", func() error { _, err := c.Replay(ctx, "cap_1", receiverapi.ReplayRequest{}); return err }},
		{"Rules", func() error { _, err := c.Rules(ctx); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, httpjson.ErrWrongServer) || !strings.Contains(err.Error(), "receiver") || !strings.Contains(err.Error(), `{"id":"cap_`) {
				t.Errorf("got %v, want ErrWrongServer naming the receiver, with the answer", err)
			}
		})
	}
}
