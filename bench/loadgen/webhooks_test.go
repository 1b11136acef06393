package loadgen_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sidehook/sidehook/bench/loadgen"
	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/internal/event"
)

func TestWebhookBody(t *testing.T) {
	for _, size := range []int{0, 100, 400, 1024, 4096} {
		b := loadgen.WebhookBody(42, size)
		if size >= 400 && len(b) != size {
			t.Errorf("size %d: got %d bytes, want %d", size, len(b), size)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("size %d: not JSON: %v: %s", size, err, b)
		}
		for k, v := range m {
			if _, ok := v.(string); !ok {
				t.Errorf("size %d: field %s is %T, want a string (Webio style)", size, k, v)
			}
		}
		if got, ok := event.FromPayload(b); !ok || got != event.InboundMessage {
			t.Errorf("size %d: event type got %q, want %q", size, got, event.InboundMessage)
		}
	}
	if bytes.Equal(loadgen.WebhookBody(1, 1024), loadgen.WebhookBody(2, 1024)) {
		t.Error("bodies 1 and 2 are equal, want them to differ")
	}
	if !bytes.Equal(loadgen.WebhookBody(3, 1024), loadgen.WebhookBody(3, 1024)) {
		t.Error("body 3 differs between calls, want it deterministic")
	}
}

// The tokens must pass sidehook's own verifier, or the receiver benchmark
// measures 401s.
func TestDeliveryRequestVerifies(t *testing.T) {
	secret := bytes.Repeat([]byte("k"), 32)
	v, err := auth.NewVerifier(auth.VerifyConfig{JWTSecret: secret, RequireSHA256: true})
	if err != nil {
		t.Fatal(err)
	}
	signer := &loadgen.JWTSigner{Secret: secret, Org: "bench", Endpoint: "receiver"}
	seen := map[string]bool{}
	for n := range int64(3) {
		req, err := loadgen.DeliveryRequest("/webhooks", n, 1024, signer, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if seen[req.ID] {
			t.Fatalf("webhook-id %s repeated", req.ID)
		}
		seen[req.ID] = true
		if got := req.Header.Get("webhook-id"); got != req.ID {
			t.Errorf("webhook-id header got %q, want %q", got, req.ID)
		}
		hr := httptest.NewRequest(req.Method, "http://127.0.0.1"+req.Path, bytes.NewReader(req.Body))
		hr.Header = req.Header
		verdict := v.Verify(context.Background(), hr, req.Body)
		if verdict.Status != auth.StatusValid {
			t.Fatalf("verdict got %+v, want valid", verdict)
		}
		for _, claim := range []string{"iss", "sub", "aud", "iat", "nbf", "exp", "jti", "evt", "wid", "sha256"} {
			if _, ok := verdict.Claims[claim]; !ok {
				t.Errorf("claim %s missing from %v", claim, verdict.Claims)
			}
		}
		if got := verdict.Claims["wid"]; got != req.ID {
			t.Errorf("wid claim got %v, want %s", got, req.ID)
		}
	}
}

func TestDeliveryRequestUnsigned(t *testing.T) {
	req, err := loadgen.DeliveryRequest("/x", 1, 1024, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := req.Header.Get("Authorization"); got != "" {
		t.Errorf("authorization got %q, want none", got)
	}
}

func TestJWTSignerWeakSecret(t *testing.T) {
	_, err := loadgen.JWTSigner{Secret: []byte("short")}.Sign(nil, "payment", "evt_x", time.Now())
	if err == nil {
		t.Error("got nil error for a 5-byte secret, want one")
	}
}

func TestIngestRequest(t *testing.T) {
	req := loadgen.IngestRequest("key_1", loadgen.WebhookBody(7, 1024))
	if req.Method != http.MethodPost || req.Path != loadgen.IngestPath {
		t.Errorf("got %s %s, want POST %s", req.Method, req.Path, loadgen.IngestPath)
	}
	if got := req.Header.Get("Authorization"); got != "Bearer key_1" {
		t.Errorf("authorization got %q, want Bearer key_1", got)
	}
	if got := req.Header.Get("sidehook-event"); got != string(event.InboundMessage) {
		t.Errorf("sidehook-event got %q, want %q", got, event.InboundMessage)
	}
	if len(req.Body) != 1024 {
		t.Errorf("body got %d bytes, want 1024", len(req.Body))
	}
}
