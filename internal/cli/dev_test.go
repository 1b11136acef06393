package cli

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestDevCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"sidehook", "--log-format", "json", "dev",
			"--relay-listen", "127.0.0.1:0", "--receiver-listen", "127.0.0.1:0",
			"--data", t.TempDir()}, func(string) string { return "" }, stdout, stderr)
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("dev: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("dev did not stop within 20s")
		}
	}
	t.Cleanup(stop)

	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stdout.String(), "Press Ctrl-C") {
		if time.Now().After(deadline) {
			t.Fatalf("dev did not finish sending within 30s:\n%s\n%s", stdout, stderr)
		}
		select {
		case err := <-done:
			t.Fatalf("dev exited early: %v\n%s", err, stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
	out := stdout.String()
	for _, typ := range []string{"inbound_message", "message_send", "delivery_report", "payment", "custom_value_request"} {
		line := lineWith(out, "  "+typ+" ")
		if !strings.Contains(line, "-> 200  valid (webio-token,jwt,standard)") {
			t.Errorf("%s: got %q, want it delivered and verified by every scheme", typ, line)
		}
	}
	for _, want := range []string{"/_sidehook/ui/", "sk_dev_sidehook_demo_key", devSecretKey, devStandardSecret} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	// The receiver's API, at the URL dev printed, holds the five captures.
	recvURL := strings.Fields(lineWith(out, "Receiver "))[1]
	resp, err := http.Get(recvURL + "/_sidehook/requests/count?verdict=valid")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var count struct{ Count int }
	if err := json.NewDecoder(resp.Body).Decode(&count); err != nil {
		t.Fatal(err)
	}
	if count.Count != 5 {
		t.Errorf("valid captures: got %d, want 5", count.Count)
	}
	stop()
}

func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
