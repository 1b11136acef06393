package cli

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/sidehook/sidehook/receiver/receivertest"
	"github.com/sidehook/sidehook/relay"
)

// TestClientCommandsLeaveNoConnection: send, test, render and replay,
// run in-process as the tests run them, leave no idle keep-alive
// connection behind when they return. One would hold two goroutines here
// (and one at the server) until the transport's idle timeout, as the
// servers below outlive the commands.
func TestClientCommandsLeaveNoConnection(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.Method + " " + r.URL.Path {
		case "POST /v1/events":
			w.WriteHeader(http.StatusAccepted)
			io.WriteString(w, `{"id":"evt_1","type":"payment","deliveries":[]}`)
		case "POST /v1/endpoints/ep1/test":
			io.WriteString(w, `{"results":[{"event":"payment","ok":true,"status":200}]}`)
		case "POST /v1/render":
			io.WriteString(w, `{"text":"Hi there","missing":[]}`)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(api.Close)
	relayURL, _ := fakeRelay(t, []relay.DeliveryView{{ID: "dlv_1", EventID: "evt_1", Endpoint: "ep1", Type: "payment", Status: "dead"}})
	dst := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(dst.Close)
	src := receivertest.NewServer(t)
	post := &http.Client{Transport: &http.Transport{}}
	resp, err := post.Post(src.URL+"/hooks", "application/json", strings.NewReader(`{"type":"payment"}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	post.CloseIdleConnections()
	waitFor(t, src, receivertest.Filter{}, 1)

	before := goleak.IgnoreCurrent()
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"Send", []string{"send", "--relay", api.URL, "--api-key", "k", "--event", "payment"}},
		{"Test", []string{"test", "--relay", api.URL, "--api-key", "k", "--endpoint", "ep1"}},
		{"Render", []string{"render", "--relay", api.URL, "--api-key", "k", "Hi <<fullname|there>>"}},
		{"ReplayRelay", []string{"replay", "--relay", relayURL, "--api-key", "k", "--all"}},
		{"ReplayReceiver", []string{"replay", "--receiver", src.URL, "--all", "--to", dst.URL}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if code, stdout, stderr := runCLI(t, nil, tt.args...); code != 0 {
				t.Fatalf("got exit %d (%s%s), want 0", code, stdout, stderr)
			}
			if err := goleak.Find(before); err != nil {
				t.Errorf("after %s: got goroutines left, want none:\n%v", tt.args[0], err)
			}
		})
	}
}
