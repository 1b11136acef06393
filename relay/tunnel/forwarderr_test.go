package tunnel_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestForwardFailureWords: when the local app gives no answer, the
// delivery line says what happened to it, as a developer reads it, not as
// Go's client words it ("Post \"URL\": …", the URL twice).
func TestForwardFailureWords(t *testing.T) {
	tests := []struct {
		name   string
		answer http.HandlerFunc // nil: the app is stopped
		want   []string
	}{
		{"AppDown", nil, []string{"connection refused", "is the app running on 127.0.0.1:"}},
		{"ClosedWithoutAnswer", func(w http.ResponseWriter, r *http.Request) {
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				c.Close()
			}
		}, []string{"the app closed the connection without answering"}},
		// --forward given a port that is no web server's (a database's):
		// said so, not Go's transport error with its greeting.
		{"NotHTTP", func(w http.ResponseWriter, r *http.Request) {
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				c.Write([]byte("INFO {\"server_id\":\"NDY5\"}\r\n"))
				c.Close()
			}
		}, []string{"the app does not answer in HTTP: is --forward the app's URL?"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr := newFakeRelay(t, fastServer())
			a := newApp(t)
			rc := startClient(t, clientConfig(fr.URL, a.URL))
			if tt.answer == nil {
				a.Close()
			} else {
				a.answerWith(tt.answer)
			}
			if _, err := fr.send(context.Background(), "/", "payment", []byte("{}")); err == nil {
				t.Fatal("Send: got an answer, want the forward's error")
			}
			rc.out.wait(t, "the delivery line", func() bool { return len(rc.out.jsonLines(t, "delivery")) == 1 })
			got, _ := rc.out.jsonLines(t, "delivery")[0]["error"].(string)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("error %q: want it to say %q", got, w)
				}
			}
			if strings.Contains(got, `Post "`) {
				t.Errorf("error %q: want the URL said once, not Go's Post %q", got, a.URL)
			}
		})
	}
}

// TestStopWithDeliveryInFlight: stopping the client while the app works on
// a delivery ends the forward at once, and its line says the tunnel
// stopped, not that the app failed with "context canceled".
func TestStopWithDeliveryInFlight(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	a := newApp(t)
	got := make(chan struct{}, 1)
	a.answerWith(func(w http.ResponseWriter, r *http.Request) {
		got <- struct{}{}
		<-r.Context().Done()
	})
	cfg := clientConfig(fr.URL, a.URL)
	logs := newLines()
	cfg.Logger = zerolog.New(logs)
	rc := startClient(t, cfg)
	sent := make(chan error, 1)
	go func() {
		_, err := fr.send(context.Background(), "/", "payment", []byte("{}"))
		sent <- err
	}()
	<-got
	rc.stop(t)
	if err := <-sent; err == nil {
		t.Error("Send: got an answer, want the attempt failed (the relay retries it)")
	}
	lines := rc.out.jsonLines(t, "delivery")
	if len(lines) != 1 {
		t.Fatalf("got %d delivery lines, want 1", len(lines))
	}
	if msg, _ := lines[0]["error"].(string); !strings.Contains(msg, "the tunnel stopped before the app answered") || strings.Contains(msg, "context canceled") {
		t.Errorf("error %q: want it to say the tunnel stopped", msg)
	}
	// The line says it all; a log of the result not sent would blame the
	// websocket ("too busy") or the connection for a Ctrl-C.
	if got := strings.Join(logs.all(), "\n"); strings.Contains(got, "result not sent") {
		t.Errorf("logs %q: want no word of the result a stopping client does not send", got)
	}
}

// TestRedirectLine: a redirect is the app's answer, not followed (the
// relay follows none either); the line says where it pointed, so a
// developer sees the http→https or trailing-slash redirect at once.
func TestRedirectLine(t *testing.T) {
	tests := []struct {
		name     string
		answer   http.HandlerFunc
		json     bool
		want     string
		location any
	}{
		{"JSON", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://localhost:3443/hooks", http.StatusMovedPermanently)
		},
			true, `"status":301`, "https://localhost:3443/hooks"},
		{"Text", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/hooks/", http.StatusTemporaryRedirect)
		},
			false, "307 ", nil},
		{"NoRedirect", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "/made/1")
			w.WriteHeader(http.StatusCreated)
		},
			true, `"status":201`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr := newFakeRelay(t, fastServer())
			a := newApp(t)
			a.answerWith(tt.answer)
			cfg := clientConfig(fr.URL, a.URL)
			cfg.JSON = tt.json
			out := runClient(t, cfg)
			fr.waitConnected(t, 1)
			if _, err := fr.send(context.Background(), "/", "payment", []byte("{}")); err != nil {
				t.Fatal(err)
			}
			out.wait(t, "the delivery line", func() bool { return strings.Contains(strings.Join(out.all(), "\n"), "dlv_1") })
			var line string
			for _, l := range out.all() {
				if strings.Contains(l, "dlv_1") {
					line = l
				}
			}
			if !strings.Contains(line, tt.want) {
				t.Errorf("line %q: want %q", line, tt.want)
			}
			if tt.json {
				got := out.jsonLines(t, "delivery")[0]["location"]
				if got != tt.location {
					t.Errorf("location: got %v, want %v", got, tt.location)
				}
			} else if !strings.Contains(line, "redirect to /hooks/, not followed") {
				t.Errorf("line %q: want it to say where the redirect points", line)
			}
		})
	}
}

// TestTimeoutLine: an app slower than the endpoint's timeout is cut a
// tenth before it, so the result reaches the relay in time; the line says
// both numbers, or "timeout: 15s" and a cut at 14 s look like a bug.
func TestTimeoutLine(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	a := newApp(t)
	a.answerWith(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	rc := startClient(t, clientConfig(fr.URL, a.URL))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	fr.send(ctx, "/", "payment", []byte("{}"))
	rc.out.wait(t, "the delivery line", func() bool { return len(rc.out.jsonLines(t, "delivery")) == 1 })
	msg, _ := rc.out.jsonLines(t, "delivery")[0]["error"].(string)
	// The relay's wait is what is left of its 500ms when the delivery
	// leaves: a few milliseconds less.
	if !strings.Contains(msg, "did not answer within the endpoint's timeout (") || !strings.Contains(msg, "0ms, of which the app gets 4") {
		t.Errorf("error %q: want the endpoint's timeout and the app's share of it", msg)
	}
}
