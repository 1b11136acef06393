package relay_test

import (
	"context"
	"strings"
	"testing"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/memstore"
)

// TestRotateStoredKeyWantsARelaysKey: rotate-key on a store where no
// relay signing with the algorithm has run (on NATS: another prefix than
// the relays', or other servers) is refused, and makes nothing; it made a
// key no relay used, said "there was no key to retire" and exited 0.
func TestRotateStoredKeyWantsARelaysKey(t *testing.T) {
	ctx := context.Background()
	t.Run("NoKey", func(t *testing.T) {
		st := memstore.New()
		t.Cleanup(func() { st.Close() })
		_, err := relay.RotateStoredKey(ctx, st, auth.ES256)
		if err == nil || !strings.Contains(err.Error(), "holds no ES256 key") || strings.Contains(err.Error(), "\n") {
			t.Fatalf("got %v, want one line saying the store holds no ES256 key", err)
		}
		if docs, err := st.SigningKeys(ctx); err != nil || len(docs) != 0 {
			t.Errorf("a refused rotation left keys %v (%v), want none", docs, err)
		}
	})
	t.Run("OK", func(t *testing.T) {
		cfg := orgConfig(t)
		cfg.Organisations[0].JWTAlgorithm = auth.ES256
		r := startRelay(t, cfg, relay.Options{})
		before := r.JWKS().Keys
		rot, err := relay.RotateStoredKey(ctx, storeFor(t, cfg), auth.ES256)
		if err != nil {
			t.Fatal(err)
		}
		if len(before) != 1 || rot.Retired != before[0].Kid || rot.KID == "" {
			t.Errorf("rotation %+v, want a new key retiring %v", rot, before)
		}
	})
}
