package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/relay/natsstore/natstest"
)

// TestSharedKeyRotation: a key rotated through the store (as `sidehook
// relay rotate-key --store` does, with no relay of its own) is followed by
// every relay on the same JetStream without a restart: each publishes the
// new key and the retired one, the same set, and signs with the new one
// (SPEC §9: the JWKS is the same from every relay).
func TestSharedKeyRotation(t *testing.T) {
	srv := natstest.Run(t, natstest.Options(-1, t.TempDir()))
	servers := []string{srv.ClientURL()}
	var mu sync.Mutex
	bearer := map[string]string{} // webhook-id → Authorization
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		bearer[r.Header.Get("webhook-id")] = r.Header.Get("Authorization")
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	f := config.File{
		Listen: "127.0.0.1:0",
		Organisations: []config.RawOrg{{ID: "demo", APIKeys: []string{apiKey}, SecretKey: secretKey,
			Endpoints: []config.RawEndpoint{{ID: "crm", URL: hook.URL + "/crm", Events: []string{"*"}, Auth: []string{"jwt"}}}}},
	}
	f.Organisations[0].JWT.Algorithm = "ES256"
	cfg, err := f.Validate(nil)
	if err != nil {
		t.Fatal(err)
	}
	a := startRelay(t, cfg, openStore(t, servers, 1))
	b := startRelay(t, cfg, openStore(t, servers, 1))
	relays := map[string]string{"A": a, "B": b}

	before := jwksKids(t, a)
	if len(before) != 1 || fmt.Sprint(jwksKids(t, b)) != fmt.Sprint(before) {
		t.Fatalf("before the rotation: got A %v, B %v, want one key, the same", before, jwksKids(t, b))
	}
	rot, err := relay.RotateStoredKey(context.Background(), openStore(t, servers, 1), auth.ES256)
	if err != nil {
		t.Fatal(err)
	}
	if rot.Retired != before[0] || rot.KID == "" || rot.KID == rot.Retired {
		t.Fatalf("rotation: got %+v, want a new key retiring %s", rot, before[0])
	}
	// The current key is listed first: a relay listing the new key first
	// signs with it.
	want := fmt.Sprint([]string{rot.KID, rot.Retired})
	for name, base := range relays {
		waitFor(t, 10*time.Second, "relay "+name+" to publish the rotated keys", func() bool {
			return fmt.Sprint(jwksKids(t, base)) == want
		})
	}

	var set auth.JWKS
	getJSON(t, a+"/.well-known/jwks.json", &set)
	for name, base := range relays {
		id := "after-rotation-" + name
		if code := post(base, id, "payment"); code != http.StatusAccepted {
			t.Fatalf("post to %s: got %d, want 202", name, code)
		}
		var got string
		waitFor(t, 10*time.Second, "the delivery of "+id, func() bool {
			mu.Lock()
			defer mu.Unlock()
			got = bearer[id]
			return got != ""
		})
		tok, err := jwt.Parse(strings.TrimPrefix(got, "Bearer "), func(tok *jwt.Token) (any, error) {
			kid, _ := tok.Header["kid"].(string)
			i := slices.IndexFunc(set.Keys, func(k auth.JWK) bool { return k.Kid == kid })
			if i < 0 {
				return nil, fmt.Errorf("kid %q is not in the JWKS", kid)
			}
			pub, _, err := set.Keys[i].PublicKey()
			return pub, err
		}, jwt.WithValidMethods([]string{"ES256"}))
		if err != nil {
			t.Fatalf("%s: the delivery's JWT does not verify with the JWKS: %v", id, err)
		}
		if kid := tok.Header["kid"]; kid != rot.KID {
			t.Errorf("%s: signed with kid %v, want the new key %s", id, kid, rot.KID)
		}
	}
}

// jwksKids are the key ids a relay's JWKS lists, in its order.
func jwksKids(t *testing.T, base string) []string {
	t.Helper()
	var set auth.JWKS
	getJSON(t, base+"/.well-known/jwks.json", &set)
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, want 200", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
