package receivertest_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/sidehook/sidehook/receiver/receivertest"
)

// TestJWKSConnectionEndsWithServer: a Server made WithJWKSURL lets go of
// its connection to the JWKS when the test ends, as of every other one: a
// JWKS served by a relay that outlives it (one per package, say) would
// otherwise hold an idle connection, and two goroutines, until the idle
// timeout.
func TestJWKSConnectionEndsWithServer(t *testing.T) {
	key := newKey(t, "RS256")
	jwks := receivertest.ServeJWKS(t, key) // outlives the receiver below
	before := goleak.IgnoreCurrent()
	t.Run("Receiver", func(t *testing.T) {
		rcv := receivertest.NewServer(t, receivertest.WithJWKSURL(jwks))
		if s := post(t, rcv, "/x", receivertest.JWT(key, receivertest.JWTClaims{})); s != 200 {
			t.Fatalf("signed with a key of the JWKS: got %d, want 200", s)
		}
	})
	if err := goleak.Find(before); err != nil {
		t.Errorf("after the receiver's test: got goroutines left, want none:\n%v", err)
	}
}
