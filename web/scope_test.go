package web_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

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

// TestWebsocketItemWireForm: an item reaches the browser, live and in the
// snapshot, as json.Marshal would write it (its data copied, not
// re-encoded), and every viewer gets the same bytes.
func TestWebsocketItemWireForm(t *testing.T) {
	d := startDashboard(t, dashOptions{})
	it := item(1)
	it.Org = "a"
	it.Data = json.RawMessage(`{"headers":{"x-team":["billing"]},"body":"<b>\"hi\"</b>","amount":12.50,"n":[1,{"m":null}]}`)
	d.Log.add(it)
	a, b := dial(t, d, nil), dial(t, d, nil)
	snapA, snapB := readRaw(t, a), readRaw(t, b)
	d.Hub.Publish(it)
	liveA, liveB := readRaw(t, a), readRaw(t, b)
	if !bytes.Equal(liveA, liveB) || !bytes.Equal(snapA, snapB) {
		t.Fatalf("viewers got different bytes:\n%s\n%s", liveA, liveB)
	}
	for _, tc := range []struct {
		name string
		got  []byte
		want any
	}{
		{"live", liveA, map[string]any{"type": web.MsgItem, "item": it}},
		{"snapshot", snapA, map[string]any{"type": web.MsgSnapshot, "items": []web.Item{it}}},
	} {
		want, err := json.Marshal(tc.want)
		if err != nil {
			t.Fatal(err)
		}
		if !sameJSON(t, tc.got, want) {
			t.Errorf("%s: got %s, want %s", tc.name, tc.got, want)
		}
	}
}

func readRaw(tb testing.TB, c *websocket.Conn) []byte {
	tb.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil {
		tb.Fatalf("read websocket: %v", err)
	}
	return b
}

func sameJSON(tb testing.TB, a, b []byte) bool {
	tb.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		tb.Fatalf("decode %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		tb.Fatalf("decode %s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}
