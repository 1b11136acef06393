package auth_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/sidehook/sidehook/internal/auth"
)

// These tests check sidehook's Standard Webhooks against the reference Go
// library of the specification, both ways. The library reads the real
// clock, so they sign at the real time.

func TestStandardInterop_ReferenceVerifiesOurs(t *testing.T) {
	t.Parallel()
	oldKey, newKey := standardSecret(t), []byte("a-new-secret-of-32-bytes-exactly")
	h := http.Header{}
	err := auth.SignRequest(h, []string{auth.SchemeStandard}, auth.OutboundKeys{Standard: [][]byte{oldKey, newKey}},
		auth.Outbound{WebhookID: "evt_1", Body: body, Timestamp: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	// During a rotation, a receiver holding either secret accepts.
	for name, key := range map[string][]byte{"old": oldKey, "new": newKey} {
		wh, err := standardwebhooks.NewWebhookRaw(key)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(body, h); err != nil {
			t.Errorf("reference library with the %s secret: %v", name, err)
		}
	}
	wh, _ := standardwebhooks.NewWebhookRaw([]byte("unrelated-secret-unrelated-secret"))
	if err := wh.Verify(body, h); err == nil {
		t.Error("reference library with an unrelated secret: got nil error")
	}
}

func TestStandardInterop_WeVerifyReference(t *testing.T) {
	t.Parallel()
	key := standardSecret(t)
	wh, err := standardwebhooks.NewWebhookRaw(key)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sig, err := wh.Sign("msg_1", now, body)
	if err != nil {
		t.Fatal(err)
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	v, err := auth.NewVerifier(auth.VerifyConfig{StandardSecrets: [][]byte{key}})
	if err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"webhook-", "svix-"} {
		h := http.Header{}
		h.Set(prefix+"id", "msg_1")
		h.Set(prefix+"timestamp", ts)
		h.Set(prefix+"signature", sig)
		if got := verify(v, request(http.MethodPost, "/", body, h), body); got.Status != auth.StatusValid {
			t.Errorf("%s headers: got %+v, want valid", prefix, got)
		}
	}
}

// TestStandardInterop_ToleranceEdge: a timestamp the whole tolerance old
// is refused by the reference library (its clock reads past the second)
// and by ours; one a second younger passes both.
func TestStandardInterop_ToleranceEdge(t *testing.T) {
	t.Parallel()
	key := standardSecret(t)
	wh, err := standardwebhooks.NewWebhookRaw(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		age  time.Duration
		ok   bool
	}{{"ErrWholeTolerance", auth.DefaultStandardTolerance, false}, {"OKSecondYounger", auth.DefaultStandardTolerance - time.Second, true}} {
		now := time.Now()
		stamp := now.Truncate(time.Second).Add(-tt.age)
		h := http.Header{}
		h.Set("webhook-id", "msg_1")
		h.Set("webhook-timestamp", strconv.FormatInt(stamp.Unix(), 10))
		h.Set("webhook-signature", auth.SignStandard(key, "msg_1", stamp, body))
		if err := wh.Verify(body, h); (err == nil) != tt.ok {
			t.Errorf("%s: reference library got %v, want ok %v", tt.name, err, tt.ok)
		}
		ours := auth.VerifyStandard([][]byte{key}, "msg_1", h.Get("webhook-timestamp"), h.Get("webhook-signature"), body,
			stamp.Add(tt.age), 0)
		if (ours == "") != tt.ok {
			t.Errorf("%s: ours got %q, want ok %v", tt.name, ours, tt.ok)
		}
	}
}
