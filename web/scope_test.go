package web_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/sidehook/sidehook/web"
)

// TestWebsocketScopedToOrganisation: a viewer whose credential names one
// organisation receives only that organisation's items, in the snapshot
// and live; the admin sees all.
func TestWebsocketScopedToOrganisation(t *testing.T) {
	keys := map[string]string{"key-of-org-a-0123456789": "a", "admin-token-0123456789": ""}
	auth := func(r *http.Request) bool {
		_, ok := keys[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		return ok
	}
	scope := func(r *http.Request) string {
		return keys[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	}
	d := startDashboard(t, dashOptions{Authorize: auth, Scope: scope})
	d.Log.scoped = true
	for i := range 6 {
		it := item(i)
		it.Org = []string{"a", "b"}[i%2]
		d.publish(it)
	}
	cases := []struct {
		name, token string
		want        int
	}{
		{"OrgKeySeesItsOwn", "key-of-org-a-0123456789", 3},
		{"AdminSeesAll", "admin-token-0123456789", -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, d, http.Header{"Authorization": {"Bearer " + tc.token}})
			want := tc.want
			if want < 0 {
				want = d.Log.len()
			}
			snap := readMsg(t, c)
			if len(snap.Items) != want {
				t.Fatalf("got %d items in the snapshot, want %d", len(snap.Items), want)
			}
			waitFor(t, "the subscription", func() bool { return d.Hub.Subscribers() >= 1 })
			other, own := item(100), item(101)
			other.Org, own.Org = "b", "a"
			d.publish(other)
			d.publish(own)
			m := readMsg(t, c)
			if tc.want == 3 && (m.Item == nil || m.Item.ID != own.ID) {
				t.Fatalf("got %+v, want only organisation a's item %s", m.Item, own.ID)
			}
			if tc.want < 0 && (m.Item == nil || m.Item.ID != other.ID) {
				t.Fatalf("got %+v, want the admin to see %s", m.Item, other.ID)
			}
			c.Close()
			waitFor(t, "the subscription to end", func() bool { return d.Hub.Subscribers() == 0 })
		})
	}
}

// TestWebsocketRedactsOnTheServer: credentials never reach the browser,
// whatever the page's script does, at any depth of an item's data.
func TestWebsocketRedactsOnTheServer(t *testing.T) {
	d := startDashboard(t, dashOptions{})
	secret := `eyJhbGciOiJIUzI1NiJ9.e30.SIGNATURE`
	it := item(1)
	it.Data = json.RawMessage(`{"headers":{"X-Webio-Token":["` + secret + `"],"authorization":["Bearer ` + secret + `"],"x-team":["billing"]},` +
		`"attempts":[{"request_headers":{"webhook-signature":["v1,SIGNATURE"],"svix-signature":"v1,SIGNATURE"}}],"amount":12.50}`)
	d.publish(it)
	c := dial(t, d, nil)
	snap := readMsg(t, c)
	waitFor(t, "the subscription", func() bool { return d.Hub.Subscribers() == 1 })
	d.Hub.Publish(it)
	live := readMsg(t, c)
	for name, got := range map[string]*web.Item{"snapshot": &snap.Items[0], "live": live.Item} {
		s := string(got.Data)
		if strings.Contains(s, "SIGNATURE") {
			t.Fatalf("%s: got %s, want every credential redacted", name, s)
		}
		for _, want := range []string{`"Bearer eyJhbGciOiJIUzI1NiJ9.e30.[redacted]"`, `"billing"`, `12.50`} {
			if !strings.Contains(s, want) {
				t.Fatalf("%s: got %s, want it to keep %s", name, s, want)
			}
		}
	}
}

func TestRedactJSON(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"NoCredential", `{"a":1}`, `{"a":1}`},
		{"NotJSON", `{"authorization":`, `{"authorization":`},
		{"CaseInsensitive", `{"Cookie":"sid=1"}`, `{"Cookie":"[redacted]"}`},
		{"NestedList", `[{"x-webio-token":["t1","t2"]}]`, `[{"x-webio-token":["[redacted]","[redacted]"]}]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(web.RedactJSON(json.RawMessage(tc.in))); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}
