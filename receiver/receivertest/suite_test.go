package receivertest_test

import (
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sidehook/sidehook/receiver/receivertest"
)

// These tests are a user's integration suite for a sender (the sender of
// example_test.go): the receiver fails on purpose and the captures show
// that the sender retried, each test shaped as a suite would share its
// receivers: one per test with Reset between subtests, one shared by
// parallel subtests, or one per parallel subtest.

// senderTimeout is each attempt's timeout: the FaultTimeout and Delay
// cases wait for it once.
const senderTimeout = 200 * time.Millisecond

// retryCases script a failure and say what the sender should make of it:
// its result, and the answer of each attempt, oldest first (a fault by
// its name).
var retryCases = []struct {
	name    string
	respond receivertest.Respond
	result  string
	answers []string
}{
	{"FailsTwiceThenSucceeds", receivertest.Respond{Sequence: []int{503, 500, 200}, Per: receivertest.PerWebhookID},
		"delivered on attempt 3", []string{"503", "500", "200"}},
	{"ResetOnce", receivertest.Respond{Fault: receivertest.FaultReset, Times: 1},
		"delivered on attempt 2", []string{"reset", "200"}},
	{"ClosedOnce", receivertest.Respond{Fault: receivertest.FaultClose, Times: 1},
		"delivered on attempt 2", []string{"close", "200"}},
	{"TimesOutOnce", receivertest.Respond{Fault: receivertest.FaultTimeout, Times: 1},
		"delivered on attempt 2", []string{"timeout", "200"}},
	// The capture says 200, the answer chosen; the sender gave up before
	// the delay ended and retried.
	{"SlowOnce", receivertest.Respond{Delay: time.Minute, Times: 1},
		"delivered on attempt 2", []string{"200", "200"}},
	{"Gone", receivertest.Respond{Status: http.StatusGone},
		"gave up on attempt 1: 410", []string{"410"}},
	{"AlwaysDown", receivertest.Respond{Status: http.StatusServiceUnavailable},
		"gave up on attempt 5: <nil> 503", []string{"503", "503", "503", "503", "503"}},
}

// checkRetries sends one event as id to url and checks the sender's
// result and the attempts the receiver captured.
func checkRetries(t *testing.T, rcv *receivertest.Server, url, id, result string, answers []string) {
	t.Helper()
	s := newSender(url)
	s.client.Timeout = senderTimeout
	if got := s.send(id, "payment", `{"type":"payment","amount":"50.00"}`); got != result {
		t.Errorf("sender: got %q, want %q", got, result)
	}
	// The sender has returned: every attempt it made is captured (a
	// capture is stored before its answer goes out), so Requests, not a
	// wait, counts them all, and extra attempts show.
	caps := rcv.Requests(receivertest.Filter{WebhookID: id})
	slices.Reverse(caps) // oldest first
	var got []string
	for i, c := range caps {
		answer := strconv.Itoa(c.Response.Status)
		if c.Response.Fault != "" {
			answer = c.Response.Fault
		}
		got = append(got, answer)
		if a := c.Header("sidehook-attempt"); a != strconv.Itoa(i+1) {
			t.Errorf("capture %d: sidehook-attempt %q, want %d", i+1, a, i+1)
		}
		if c.Verdict.Status != receivertest.VerdictValid {
			t.Errorf("attempt %d: verdict %s (%s), want valid: a retry is signed afresh", i+1, c.Verdict.Status, c.Verdict.Reason)
		}
	}
	if !slices.Equal(got, answers) {
		t.Errorf("attempts answered %v, want %v", got, answers)
	}
}

// TestRetriesResetBetweenSubtests: one receiver for the test, reset at
// the start of each subtest, its rules set there.
func TestRetriesResetBetweenSubtests(t *testing.T) {
	rcv := receivertest.NewServer(t, receivertest.WithJWTSecret(jwtSecret))
	for _, tt := range retryCases {
		t.Run(tt.name, func(t *testing.T) {
			rcv := rcv.In(t) // fails this subtest, not the test
			rcv.Reset()
			rcv.SetRules(receivertest.Rule{Respond: tt.respond})
			checkRetries(t, rcv, rcv.URL+"/webhooks", "evt_1", tt.result, tt.answers)
		})
	}
}

// TestRetriesParallelSharedReceiver: parallel subtests share one receiver,
// never reset it, and keep apart by path (their rules) and webhook-id
// (their captures).
func TestRetriesParallelSharedReceiver(t *testing.T) {
	rcv := receivertest.NewServer(t, receivertest.WithJWTSecret(jwtSecret))
	for _, tt := range retryCases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := "/" + tt.name + "/webhooks"
			rcv := rcv.In(t)
			rcv.AddRules(receivertest.Rule{Match: receivertest.Match{Path: path}, Respond: tt.respond})
			checkRetries(t, rcv, rcv.URL+path, "evt_"+tt.name, tt.result, tt.answers)
		})
	}
}

// TestRetriesReceiverPerSubtest: each parallel subtest has a receiver of
// its own, closed when it ends.
func TestRetriesReceiverPerSubtest(t *testing.T) {
	for _, tt := range retryCases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rcv := receivertest.NewServer(t, receivertest.WithJWTSecret(jwtSecret),
				receivertest.WithRules(receivertest.Rule{Respond: tt.respond}))
			checkRetries(t, rcv, rcv.URL+"/webhooks", "evt_1", tt.result, tt.answers)
		})
	}
}
