package tunnel_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sidehook/sidehook/relay/tunnel"
	"github.com/sidehook/sidehook/web"
)

type inspectedList struct {
	Requests []tunnel.InspectedView `json:"requests"`
}

func getJSON(tb testing.TB, url string, v any) {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		tb.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		tb.Fatal(err)
	}
}

func inspectorBase(tb testing.TB, rc *runningClient) string {
	tb.Helper()
	u := rc.InspectorURL()
	if u == "" {
		tb.Fatal("no inspector URL")
	}
	return strings.TrimSuffix(u, web.UIPath)
}

func TestInspector(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	a := newApp(t)
	a.answerWith(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App", "yes")
		w.Header().Set("Set-Cookie", "session=app-secret")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "made it")
	})
	cfg := clientConfig(fr.URL, a.URL)
	cfg.Inspect = "127.0.0.1:0"
	rc := startClient(t, cfg)
	base := inspectorBase(t, rc)

	if ready := rc.out.jsonLines(t, "ready")[0]; ready["inspector"] != rc.InspectorURL() {
		t.Errorf("ready inspector: got %v, want %s", ready["inspector"], rc.InspectorURL())
	}

	page, err := http.Get(rc.InspectorURL())
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if page.StatusCode != http.StatusOK || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") {
		t.Errorf("inspector page: got %d %s, want the dashboard", page.StatusCode, page.Header.Get("Content-Type"))
	}
	// A replay sends the recorded headers: the page offers no schemes to
	// sign with (web.RoleInspector), whose "sign" the replay call
	// would refuse.
	if !strings.Contains(string(html), `"role":"inspector"`) {
		t.Errorf("inspector page config: want role inspector")
	}
	posted := postJSON(t, rc.InspectorURL(), `{}`, nil)
	posted.Body.Close()
	if posted.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST to the inspector page: got %d, want 405", posted.StatusCode)
	}
	// The inspector has no exports, rules or delete-all (they answer 404
	// and 405): the page shows no buttons for them.
	for _, id := range []string{`id="export-ndjson"`, `id="export-har"`, `id="show-rules"`, `id="clear-all"`} {
		if strings.Contains(string(html), id) {
			t.Errorf("inspector page shows %s, which the inspector does not serve", id)
		}
	}

	// A browser opens the dashboard before the delivery comes.
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+web.WSPath, nil)
	if err != nil {
		t.Fatalf("dashboard websocket: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	var snap struct {
		Type string `json:"type"`
	}
	if err := ws.ReadJSON(&snap); err != nil || snap.Type != "snapshot" {
		t.Fatalf("first frame: got %v %v, want a snapshot", snap, err)
	}

	body := []byte("{\"type\":\"payment\", \"bin\":\"\xff\"}")
	h := http.Header{"Sidehook-Event": {"payment"}, "Webhook-Id": {"evt_7"}, "X-Webio-Token": {"secret.token"}, "Content-Type": {"application/json"}}
	_, err = fr.tunnels().Send(context.Background(), relayRequest{path: "/hooks?q=1", header: h, body: body}.req(), 4096)
	if err != nil {
		t.Fatal(err)
	}

	var live struct {
		Type string   `json:"type"`
		Item web.Item `json:"item"`
	}
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := ws.ReadJSON(&live); err != nil || live.Type != "item" || live.Item.Status != "201" || live.Item.Event != "payment" {
		t.Fatalf("live item: got %+v %v, want the delivery answered 201", live, err)
	}
	if bytes.Contains(live.Item.Data, []byte("secret.token")) {
		t.Errorf("the dashboard item carries the token unredacted: %s", live.Item.Data)
	}

	var list inspectedList
	getJSON(t, base+"/_sidehook/requests", &list)
	if len(list.Requests) != 1 {
		t.Fatalf("requests: got %d, want 1", len(list.Requests))
	}
	v := list.Requests[0]
	if v.Method != "POST" || v.Path != "/hooks" || v.Query != "q=1" || v.Event != "payment" || v.WebhookID != "evt_7" || v.BodyEncoding != "base64" {
		t.Errorf("request: got %+v", v)
	}
	if r := v.Response; r.Status != 201 || r.Body != "made it" || r.Headers["x-app"][0] != "yes" || r.DurationMS <= 0 {
		t.Errorf("answer: got %+v, want 201 made it with x-app and a duration", r)
	}
	if got := v.Headers["x-webio-token"]; len(got) != 1 || got[0] != web.RedactedValue {
		t.Errorf("x-webio-token in the API: got %v, want redacted", got)
	}
	if got := v.Response.Headers["set-cookie"]; len(got) != 1 || got[0] != web.RedactedValue {
		t.Errorf("the answer's set-cookie in the API: got %v, want redacted", got)
	}

	// One click: the same bytes and headers to the app again.
	a.answerWith(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "now broken", 500) })
	resp := postJSON(t, base+"/_sidehook/requests/"+v.ID+"/replay", `{}`, nil)
	var replayed tunnel.InspectedView
	if err := json.NewDecoder(resp.Body).Decode(&replayed); err != nil || resp.StatusCode != 200 {
		t.Fatalf("replay: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if replayed.ReplayOf != v.ID || replayed.Response.Status != 500 || replayed.ID == v.ID {
		t.Errorf("replay record: got %+v, want a new record of %s answered 500", replayed, v.ID)
	}
	got := a.requests()
	if len(got) != 2 {
		t.Fatalf("app got %d requests, want 2", len(got))
	}
	if !bytes.Equal(got[1].Body, body) || got[1].Path != "/hooks" || got[1].Query != "q=1" {
		t.Errorf("replayed request: got %s %s?%s %q, want the original bytes", got[1].Method, got[1].Path, got[1].Query, got[1].Body)
	}
	for k := range h {
		if got[1].Header.Get(k) != h.Get(k) {
			t.Errorf("replayed header %s: got %q, want %q (the token unredacted)", k, got[1].Header.Get(k), h.Get(k))
		}
	}
	if got := got[1].Header.Get("Sidehook-Replay-Of"); got != v.ID {
		t.Errorf("replayed sidehook-replay-of: got %q, want %q", got, v.ID)
	}
	if got := replayed.Headers["sidehook-replay-of"]; len(got) != 1 || got[0] != v.ID {
		t.Errorf("replay record's sidehook-replay-of: got %v, want [%s]", got, v.ID)
	}

	// An edited body.
	resp = postJSON(t, base+"/_sidehook/requests/"+v.ID+"/replay", `{"body":"edited"}`, nil)
	resp.Body.Close()
	if got := a.requests(); len(got) != 3 || string(got[2].Body) != "edited" {
		t.Errorf("edited replay: got %d requests, last %q", len(got), got[len(got)-1].Body)
	}
}

func TestInspectorRefuses(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	a := newApp(t)
	cfg := clientConfig(fr.URL, a.URL)
	cfg.Inspect = "127.0.0.1:0"
	rc := startClient(t, cfg)
	base := inspectorBase(t, rc)
	if _, err := fr.send(context.Background(), "/", "payment", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	var list inspectedList
	getJSON(t, base+"/_sidehook/requests", &list)
	id := list.Requests[0].ID
	tests := []struct {
		name   string
		body   string
		header http.Header
		want   int
	}{
		{"CrossSite", `{}`, http.Header{"Sec-Fetch-Site": {"cross-site"}}, http.StatusForbidden},
		{"OtherOrigin", `{}`, http.Header{"Origin": {"http://evil.example"}}, http.StatusForbidden},
		{"RebindHost", `{}`, http.Header{"Host": {"evil.example"}}, http.StatusForbidden},
		{"FormBody", `a=b`, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, http.StatusUnsupportedMediaType},
		{"BadJSON", `{"to":`, nil, http.StatusBadRequest},
		{"BadTarget", `{"to":"ftp://x"}`, nil, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := postJSON(t, base+"/_sidehook/requests/"+id+"/replay", tt.body, tt.header)
			defer resp.Body.Close()
			if resp.StatusCode != tt.want {
				b, _ := io.ReadAll(resp.Body)
				t.Errorf("got %d %s, want %d", resp.StatusCode, b, tt.want)
			}
		})
	}
	if n := len(a.requests()); n != 1 {
		t.Errorf("app got %d requests, want only the delivery", n)
	}
	resp := postJSON(t, base+"/_sidehook/requests/fwd_nope/replay", `{}`, nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("replay of an unknown id: got %d, want 404", resp.StatusCode)
	}
}

func postJSON(tb testing.TB, url, body string, h http.Header) *http.Response {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range h {
		req.Header[k] = v
	}
	if host := h.Get("Host"); host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	return resp
}
