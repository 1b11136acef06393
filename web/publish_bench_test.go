package web_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sidehook/sidehook/web"
)

// BenchmarkPublishLargeItems is the cost of an open dashboard to a busy
// server: items carrying a 60 KB body and credentials are built, redacted
// and published to K browsers over loopback websockets, and the benchmark
// waits until every browser has read every item. One op is one item
// delivered to all K; nothing is dropped (the queues hold b.N). Beside
// the time it reports cpu-ns/op, the CPU the process spent (server and
// browsers, which read the same bytes either way): on a busy machine that
// is the steadier figure.
//
// "before" is the path until the hub encoded once, kept here only as the
// baseline: the server marshalled the item, Publish redacted it by decoding
// and re-encoding that JSON (legacyRedactJSON), and every connection
// marshalled the item again. "after" is the real path: the headers are
// redacted on the typed value (web.RedactHeaders), Publish encodes the
// message once, and every connection writes the same frame.
func BenchmarkPublishLargeItems(b *testing.B) {
	for _, k := range []int{1, 5} {
		b.Run(fmt.Sprintf("before/browsers=%d", k), func(b *testing.B) { benchLegacyPublish(b, k) })
		b.Run(fmt.Sprintf("after/browsers=%d", k), func(b *testing.B) { benchPublish(b, k) })
	}
}

// benchCapture stands for a server's item data: headers and a body.
type benchCapture struct {
	ID           string              `json:"id"`
	Headers      map[string][]string `json:"headers"`
	Body         string              `json:"body"`
	BodyEncoding string              `json:"body_encoding"`
	BodySize     int                 `json:"body_size"`
}

var (
	benchHeaders = map[string][]string{
		"content-type":      {"application/json"},
		"authorization":     {"Bearer eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJzaWRlaG9vayIsInN1YiI6ImRlbW8ifQ.c2lnbmF0dXJl"},
		"webhook-id":        {"evt_01KBENCH"},
		"webhook-signature": {"v1,c2lnbmF0dXJlLXNlY3JldC1wYXJ0"},
		"user-agent":        {"sidehook/bench"},
	}
	// benchBody is a 60 KB JSON payload, with quotes and markup to escape.
	benchBody = func() string {
		var sb strings.Builder
		sb.WriteString(`{"type":"inbound_message","messages":[`)
		for i := 0; sb.Len() < 60<<10; i++ {
			fmt.Fprintf(&sb, `{"id":"msg_%06d","text":"hello <b>world</b> & \"friends\"","amount":12.50},`, i)
		}
		return strings.TrimSuffix(sb.String(), ",") + `]}`
	}()
)

func benchItem(i int, headers map[string][]string) web.Item {
	data, err := json.Marshal(benchCapture{ID: fmt.Sprintf("cap_%08d", i), Headers: headers, Body: benchBody, BodyEncoding: "utf8", BodySize: len(benchBody)})
	if err != nil {
		panic(err)
	}
	return web.Item{Kind: web.KindCapture, ID: fmt.Sprintf("cap_%08d", i), Time: time.Unix(1764064800, 0).UTC(),
		Event: "inbound_message", Method: "POST", Path: "/webhooks", Status: "valid", Data: data}
}

func benchPublish(b *testing.B, k int) {
	d := startDashboard(b, dashOptions{ClientBuffer: b.N + 1})
	wait := benchReaders(b, d.wsURL(), k, b.N)
	b.SetBytes(int64(len(benchBody)))
	cpu := startCPU(b)
	for i := range b.N {
		d.Hub.Publish(benchItem(i, web.RedactHeaders(benchHeaders)))
	}
	wait()
	cpu()
	if v := metricValue(b, d.Reg, "sidehook_dashboard_dropped_messages_total"); v != 0 {
		b.Fatalf("%v messages dropped: the benchmark measures less than it says", v)
	}
}

func benchLegacyPublish(b *testing.B, k int) {
	var mu sync.Mutex
	var queues []chan web.Item
	upgrader := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 16 << 10}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		// Subscribed before the snapshot, as the hub's viewers are.
		q := make(chan web.Item, b.N+1)
		mu.Lock()
		queues = append(queues, q)
		mu.Unlock()
		_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"snapshot","items":[]}`))
		for it := range q {
			msg, err := json.Marshal(struct {
				Type string   `json:"type"`
				Item web.Item `json:"item"`
			}{web.MsgItem, it})
			if err != nil {
				return
			}
			_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := conn.WriteMessage(websocket.TextMessage, msg); err != nil {
				return
			}
		}
	}))
	b.Cleanup(srv.Close)
	wait := benchReaders(b, "ws"+strings.TrimPrefix(srv.URL, "http"), k, b.N)
	mu.Lock()
	qs := queues
	mu.Unlock()
	b.Cleanup(func() {
		for _, q := range qs {
			close(q)
		}
	})
	b.SetBytes(int64(len(benchBody)))
	cpu := startCPU(b)
	for i := range b.N {
		it := benchItem(i, benchHeaders)
		it.Data = legacyRedactJSON(it.Data)
		for _, q := range qs {
			q <- it
		}
	}
	wait()
	cpu()
}

// startCPU resets the benchmark's timer; the func it returns stops it and
// reports the process's CPU time per op as cpu-ns/op.
func startCPU(b *testing.B) (stop func()) {
	start, ok := processCPU()
	b.ResetTimer()
	return func() {
		b.StopTimer()
		if end, ok2 := processCPU(); ok && ok2 {
			b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

// benchReaders connects k browsers to url, each reading its first message
// (the snapshot: it is subscribed from then on) and then n more; wait
// returns once all have.
func benchReaders(b *testing.B, url string, k, n int) (wait func()) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, k)
	for range k {
		c, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			b.Fatalf("dial %s: %v", url, err)
		}
		b.Cleanup(func() { _ = c.Close() })
		if _, _, err := c.ReadMessage(); err != nil {
			b.Fatalf("read the snapshot: %v", err)
		}
		wg.Go(func() {
			for range n {
				_ = c.SetReadDeadline(time.Now().Add(time.Minute))
				_, r, err := c.NextReader()
				if err != nil {
					errs <- err
					return
				}
				var head [16]byte
				m, _ := r.Read(head[:])
				if !bytes.HasPrefix(head[:m], []byte(`{"type":"item"`)) {
					errs <- fmt.Errorf("got %q…, want an item", head[:m])
					return
				}
				if _, err := bytes.NewBuffer(nil).ReadFrom(r); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	return func() {
		wg.Wait()
		select {
		case err := <-errs:
			b.Fatal(err)
		default:
		}
	}
}

// legacyRedactJSON is how Hub.Publish redacted an item until it encoded
// once (web.RedactJSON as it was): decode the whole document, including
// its body, and encode it again. It is the baseline of
// BenchmarkPublishLargeItems, nothing else.
func legacyRedactJSON(data json.RawMessage) json.RawMessage {
	if len(data) == 0 || !legacyNeedsRedaction(data) {
		return data
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return data
	}
	out, err := json.Marshal(legacyRedactTree(v))
	if err != nil {
		return data
	}
	return out
}

var legacyNames = []string{"authorization", "proxy-authorization", "x-webio-token", "webhook-signature", "svix-signature", "cookie", "set-cookie"}

func legacyIsRedacted(name string) bool {
	for _, n := range legacyNames {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

func legacyNeedsRedaction(data []byte) bool {
	for i := bytes.IndexByte(data, '"'); i >= 0; {
		rest := data[i+1:]
		for _, n := range legacyNames {
			if len(rest) > len(n) && rest[len(n)] == '"' && bytes.EqualFold(rest[:len(n)], []byte(n)) {
				return true
			}
		}
		j := bytes.IndexByte(rest, '"')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

func legacyRedactTree(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			if !legacyIsRedacted(k) {
				t[k] = legacyRedactTree(val)
				continue
			}
			switch vv := val.(type) {
			case string:
				t[k] = web.RedactHeaders(map[string][]string{k: {vv}})[k][0]
			case []any:
				for i, e := range vv {
					if s, ok := e.(string); ok {
						vv[i] = web.RedactHeaders(map[string][]string{k: {s}})[k][0]
					}
				}
			}
		}
	case []any:
		for i, e := range t {
			t[i] = legacyRedactTree(e)
		}
	}
	return v
}
