package relay_test

import (
	"strings"
	"testing"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/badgerstore"
	"github.com/sidehook/sidehook/relay/config"
)

// TestMaxBodyOverTheStore: a relay does not start with a limits.max_body
// its store cannot hold (a 70 MB event under max_body: 100MiB was
// accepted by the configuration, then refused by Badger at every try);
// the error is one line naming the key, the store and its limit. Up to
// the limit it starts, and in memory (storeFor's) there is none.
func TestMaxBodyOverTheStore(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name    string
		store   func(testing.TB, *config.Config) relay.Store
		maxBody int64
		want    string // "" when the relay starts
	}{
		{"BadgerAbove", diskStore, 100 * mib, "relay: limits.max_body: 100 MiB is more than the Badger store holds of one event: at most 63 MiB ("},
		{"BadgerAtTheLimit", diskStore, badgerstore.BodyLimit().MaxBody, ""},
		{"InMemory", storeFor, 100 * mib, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := orgConfig(t)
			cfg.Limits.MaxBody = tt.maxBody
			r, err := relay.New(cfg, relay.Options{Store: tt.store(t, cfg)})
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got %v, want the relay made", err)
			case tt.want == "":
				return
			case err == nil:
				r.Close(t.Context())
				t.Fatalf("got a relay, want %q", tt.want)
			case !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n"):
				t.Fatalf("got %q, want one line starting %q", err, tt.want)
			}
		})
	}
}
