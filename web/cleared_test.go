package web_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/web"
)

// TestWebsocketClearedReachesEveryViewer: a clear is the whole server's,
// so a viewer scoped to one organisation is told of it as the admin is,
// with its time and reason; a Publish on the same hub is still scoped.
func TestWebsocketClearedReachesEveryViewer(t *testing.T) {
	keys := map[string]string{"key-of-org-a-0123456789": "a", "admin-token-0123456789": ""}
	token := func(r *http.Request) string { return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ") }
	d := startDashboard(t, dashOptions{
		Authorize: func(r *http.Request) bool { _, ok := keys[token(r)]; return ok },
		Scope:     func(r *http.Request) string { return keys[token(r)] },
	})
	scoped := dial(t, d, http.Header{"Authorization": {"Bearer key-of-org-a-0123456789"}})
	admin := dial(t, d, http.Header{"Authorization": {"Bearer admin-token-0123456789"}})
	readRaw(t, scoped)
	readRaw(t, admin)
	waitFor(t, "both subscriptions", func() bool { return d.Hub.Subscribers() == 2 })

	at := time.Date(2026, 12, 6, 4, 30, 15, 0, time.UTC)
	other := item(1)
	other.Org = "b"
	d.Hub.Publish(other)
	d.Hub.Cleared(at, web.ClearedByReset)
	want, err := json.Marshal(map[string]any{"type": web.MsgCleared, "time": at, "by": web.ClearedByReset})
	if err != nil {
		t.Fatal(err)
	}
	if got := readRaw(t, admin); !strings.Contains(string(got), other.ID) {
		t.Errorf("admin: got %s first, want the item %s", got, other.ID)
	}
	for name, c := range map[string][]byte{"scoped": readRaw(t, scoped), "admin": readRaw(t, admin)} {
		if !sameJSON(t, c, want) {
			t.Errorf("%s viewer: got %s, want %s", name, c, want)
		}
	}
}
