package loadgen_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/bench/loadgen"
)

func newJSONServer(tb testing.TB, body string) string {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	}))
	tb.Cleanup(srv.Close)
	return srv.URL
}

func TestSink(t *testing.T) {
	srv := httptest.NewServer(loadgen.NewSink())
	t.Cleanup(srv.Close)
	sc, err := loadgen.NewSinkClient(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	post := func(id string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks", strings.NewReader("{}"))
		if id != "" {
			req.Header.Set("webhook-id", id)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("delivery got %d, want 200", resp.StatusCode)
		}
	}
	before := time.Now().UnixNano()
	post("evt_a")
	post("evt_b")
	post("evt_a")
	post("")

	st, err := sc.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := loadgen.SinkStats{Total: 4, Unique: 2, Duplicates: 1, NoID: 1, First: st.First, Last: st.Last}
	if st != want || st.First < before || st.Last < st.First {
		t.Errorf("stats got %+v, want %+v with times from %d on", st, want, before)
	}
	arr, err := sc.Arrivals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(arr) != 2 {
		t.Fatalf("arrivals got %v, want evt_a and evt_b", arr)
	}
	for _, a := range arr {
		if (a.ID != "evt_a" && a.ID != "evt_b") || a.At < before {
			t.Errorf("arrival got %+v, want evt_a or evt_b after %d", a, before)
		}
	}
	if got, err := sc.WaitUnique(ctx, 2); err != nil || got.Unique != 2 {
		t.Errorf("wait got %+v, %v; want 2 unique", got, err)
	}
	if err := sc.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := sc.Stats(ctx); st != (loadgen.SinkStats{}) {
		t.Errorf("after reset got %+v, want zero", st)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if _, err := sc.WaitUnique(wctx, 1); err == nil {
		t.Error("wait on an empty sink got nil error, want the deadline")
	}
}

func TestSinkWrongMethod(t *testing.T) {
	srv := httptest.NewServer(loadgen.NewSink())
	t.Cleanup(srv.Close)
	resp, err := http.Post(srv.URL+loadgen.SinkStatsPath, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("got %d, want 405", resp.StatusCode)
	}
}

func TestBareHandler(t *testing.T) {
	srv := httptest.NewServer(loadgen.BareHandler())
	t.Cleanup(srv.Close)
	resp, err := http.Post(srv.URL+"/anything", "application/json", bytes.NewReader(loadgen.WebhookBody(1, 1024)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("got %d, want 200", resp.StatusCode)
	}
}

func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r, w := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- loadgen.Serve(ctx, "127.0.0.1:0", loadgen.BareHandler(), w) }()
	line := make([]byte, 64)
	n, err := r.Read(line)
	if err != nil {
		t.Fatal(err)
	}
	u, found := strings.CutPrefix(strings.TrimSpace(string(line[:n])), loadgen.ListeningPrefix)
	if !found {
		t.Fatalf("got %q, want a listening line", line[:n])
	}
	resp, err := http.Get(u + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve got %v, want nil after cancel", err)
	}
}

func TestGetJSON(t *testing.T) {
	url := newJSONServer(t, `{"count":3}`)
	var out struct{ Count int }
	if err := loadgen.GetJSON(context.Background(), url, &out); err != nil || out.Count != 3 {
		t.Errorf("got %+v, %v; want count 3", out, err)
	}
	bad := newJSONServer(t, `not json`)
	if err := loadgen.GetJSON(context.Background(), bad, &out); err == nil {
		t.Error("got nil error for a non-JSON answer, want one")
	}
}

func TestForwarder(t *testing.T) {
	sink := loadgen.NewSink()
	dst := httptest.NewServer(sink)
	t.Cleanup(dst.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	fwd := httptest.NewServer(loadgen.NewForwarder(ctx, dst.URL+"/webhooks", 4))
	t.Cleanup(fwd.Close)

	const n = 20
	for i := range n {
		resp, err := http.Post(fwd.URL+"/v1/events", "application/json", strings.NewReader(`{"n":1}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted || !bytes.HasPrefix(body, []byte(`{"id":"fwd_`)) {
			t.Fatalf("post %d: got %d %s, want 202 with an id", i, resp.StatusCode, body)
		}
	}
	sc, err := loadgen.NewSinkClient(dst.URL)
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if _, err := sc.WaitUnique(wctx, n); err != nil {
		t.Fatal(err)
	}
	if st := sink.Stats(); st.Unique != n || st.Duplicates != 0 || st.NoID != 0 {
		t.Errorf("sink got %+v, want %d distinct webhook-ids, no duplicates", st, n)
	}

	resp, err := http.Get(fwd.URL + "/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET got %d, want 405", resp.StatusCode)
	}
}
