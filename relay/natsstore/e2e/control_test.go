package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay/natsstore/natstest"
)

// TestSharedControl: what one relay changes through the API (an endpoint
// created, disabled, deleted; a new Webio token) every relay on the same
// JetStream uses, without a restart (SPEC §9: the API and the Webio token
// are the same from every relay).
func TestSharedControl(t *testing.T) {
	srv := natstest.Run(t, natstest.Options(-1, t.TempDir()))
	servers := []string{srv.ClientURL()}
	var mu sync.Mutex
	tokens := map[string]string{} // webhook-id → x-webio-token
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		tokens[r.Header.Get("webhook-id")] = r.Header.Get("x-webio-token")
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	a := startRelay(t, orgConfig(t), openStore(t, servers, 1))
	b := startRelay(t, orgConfig(t), openStore(t, servers, 1))

	api := func(base, method, path, body string) (int, string) {
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+apiKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	enabledOn := func(base string) (found, enabled bool) {
		code, body := api(base, http.MethodGet, "/v1/endpoints/api1", "")
		var e struct{ Enabled *bool }
		json.Unmarshal([]byte(body), &e)
		return code == http.StatusOK, code == http.StatusOK && (e.Enabled == nil || *e.Enabled)
	}

	if code, body := api(a, http.MethodPost, "/v1/endpoints", `{"id":"api1","url":"`+hook.URL+`/api1","events":["payment"],"auth":["webio-token"]}`); code != http.StatusCreated {
		t.Fatalf("create on A: got %d %s, want 201", code, body)
	}
	waitFor(t, 10*time.Second, "the endpoint made on A to be on B", func() bool { found, _ := enabledOn(b); return found })
	if code := post(b, "via-b", "payment"); code != http.StatusAccepted {
		t.Fatalf("post to B: got %d, want 202", code)
	}
	waitFor(t, 10*time.Second, "B's event at the endpoint made on A", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return tokens["via-b"] != ""
	})

	code, body := api(a, http.MethodPost, "/v1/tokens", `{"secret_key":"`+secretKey+`"}`)
	var minted struct{ Token string }
	if json.Unmarshal([]byte(body), &minted); code != http.StatusOK || minted.Token == "" {
		t.Fatalf("new token on A: got %d %s, want 200 with a token", code, body)
	}
	waitFor(t, 10*time.Second, "B to sign with the token minted on A", func() bool {
		id := "tok-" + time.Now().Format("150405.000000")
		if post(b, id, "payment") != http.StatusAccepted {
			return false
		}
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			mu.Lock()
			got := tokens[id]
			mu.Unlock()
			if got != "" {
				return got == minted.Token
			}
		}
		return false
	})

	if code, body := api(b, http.MethodPut, "/v1/endpoints/api1", `{"id":"api1","url":"`+hook.URL+`/api1","events":["payment"],"enabled":false}`); code != http.StatusOK {
		t.Fatalf("disable on B: got %d %s, want 200", code, body)
	}
	waitFor(t, 10*time.Second, "the endpoint disabled on B to be disabled on A", func() bool { found, on := enabledOn(a); return found && !on })
	if code, body := api(b, http.MethodDelete, "/v1/endpoints/api1", ""); code != http.StatusNoContent {
		t.Fatalf("delete on B: got %d %s, want 204", code, body)
	}
	waitFor(t, 10*time.Second, "the endpoint deleted on B to be gone from A", func() bool { found, _ := enabledOn(a); return !found })
}
