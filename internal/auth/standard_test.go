package auth_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/internal/auth"
)

// The example of the Standard Webhooks specification; matching it is what
// lets receivers verify sidehook's deliveries with that spec's libraries.
func TestSignStandard_SpecVector(t *testing.T) {
	t.Parallel()
	key, err := auth.ParseStandardSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	const want = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	got := auth.SignStandard(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	reason := auth.VerifyStandard([][]byte{key}, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", want,
		[]byte(`{"test": 2432232314}`), time.Unix(1614265330+60, 0), 0)
	if reason != "" {
		t.Fatalf("verify: got %q, want valid", reason)
	}
}

func TestParseStandardSecret(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef01234567")
	for _, in := range []string{
		auth.FormatStandardSecret(key),
		" " + auth.FormatStandardSecret(key) + "\n",
		strings.TrimRight(auth.FormatStandardSecret(key[:23+1]), "="),
	} {
		got, err := auth.ParseStandardSecret(in)
		if err != nil || string(got) != string(key) {
			t.Errorf("%q: got %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_!!!!", "whsec_c2hvcnQ=", "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"} {
		if _, err := auth.ParseStandardSecret(in); err == nil {
			t.Errorf("%q: got nil error, want one", in)
		}
	}
}

func TestStandard_Rotation(t *testing.T) {
	t.Parallel()
	oldKey := standardSecret(t)
	newKey := []byte("a-new-secret-of-32-bytes-exactly")
	header := auth.SignStandardMulti([][]byte{oldKey, newKey}, "evt_1", t0, body)
	if n := len(strings.Fields(header)); n != 2 {
		t.Fatalf("got %d signatures in %q, want 2", n, header)
	}
	h := http.Header{}
	h.Set("webhook-id", "evt_1")
	h.Set("webhook-timestamp", "1800000000")
	h.Set("webhook-signature", header)
	// A receiver that knows either secret accepts; one that knows neither
	// does not.
	for name, tt := range map[string]struct {
		secrets [][]byte
		want    string
	}{
		"OKOld":        {[][]byte{oldKey}, auth.StatusValid},
		"OKNew":        {[][]byte{newKey}, auth.StatusValid},
		"OKBoth":       {[][]byte{[]byte("unrelated-secret-unrelated-secret"), newKey}, auth.StatusValid},
		"ErrNeither":   {[][]byte{[]byte("unrelated-secret-unrelated-secret")}, auth.StatusInvalid},
		"OKSingleSent": {[][]byte{oldKey, newKey}, auth.StatusValid},
	} {
		hh := h.Clone()
		if name == "OKSingleSent" {
			hh.Set("webhook-signature", auth.SignStandard(newKey, "evt_1", t0, body))
		}
		got := verify(newVerifier(t, auth.VerifyConfig{StandardSecrets: tt.secrets}), request("POST", "/", body, hh), body)
		if got.Status != tt.want {
			t.Errorf("%s: got %+v, want %s", name, got, tt.want)
		}
	}
}

func TestParseStandardSignatures(t *testing.T) {
	t.Parallel()
	good := auth.SignStandard(standardSecret(t), "evt_1", t0, body)
	tests := []struct {
		header string
		want   int
	}{
		{"", 0},
		{good, 1},
		{good + " " + good, 2},
		{"  " + good + "\t", 1},
		{"v1a,abc v2," + strings.TrimPrefix(good, "v1,"), 0},
		{"v1,not-base64!", 0},
		{"v1,AAAA", 0}, // decodes, but not a SHA-256 MAC
		{"v1," + strings.TrimSuffix(strings.TrimPrefix(good, "v1,"), "="), 0}, // strict padding
		{strings.Repeat(good+" ", 100), 16},
	}
	for _, tt := range tests {
		if got := auth.ParseStandardSignatures(tt.header); len(got) != tt.want {
			t.Errorf("%.40q: got %d signatures, want %d", tt.header, len(got), tt.want)
		}
	}
}
