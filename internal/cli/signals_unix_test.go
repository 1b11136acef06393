//go:build unix

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStoppingNamesTheSignal: a server's stopping line says which signal
// stopped it, so that a relay that stopped when its terminal closed
// (SIGHUP) does not leave its operator guessing, and how long it may wait
// for what is in flight (dev has no such flag). The signals are real,
// sent to this process: the test is not parallel, so no other test's
// command receives them.
func TestStoppingNamesTheSignal(t *testing.T) {
	if signal.Ignored(syscall.SIGHUP) {
		t.Fatal("the test process ignores SIGHUP: run it without nohup")
	}
	secret := "0123456789abcdef0123456789abcdef"
	relay := []string{"relay", "--in-memory", "--listen", "127.0.0.1:0", "--api-key", "k1", "--secret-key", secret,
		"--endpoint", "http://127.0.0.1:9/hook", "--shutdown-grace", "7s"}
	receive := []string{"receive", "--in-memory", "--listen", "127.0.0.1:0", "--shutdown-grace", "7s"}
	dev := []string{"dev", "--in-memory", "--no-send", "--relay-listen", "127.0.0.1:0", "--receiver-listen", "127.0.0.1:0"}
	for _, tc := range []struct {
		name string
		args []string
		sig  syscall.Signal
		want string
		// grace is the line's grace, nil when it has none.
		grace any
	}{
		{"RelaySIGINT", relay, syscall.SIGINT, "SIGINT", "7s"},
		{"RelaySIGTERM", relay, syscall.SIGTERM, "SIGTERM", "7s"},
		{"RelaySIGHUP", relay, syscall.SIGHUP, "SIGHUP", "7s"},
		{"ReceiveSIGHUP", receive, syscall.SIGHUP, "SIGHUP", "7s"},
		{"DevSIGTERM", dev, syscall.SIGTERM, "SIGTERM", nil},
		{"DevSIGHUP", dev, syscall.SIGHUP, "SIGHUP", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := runUntilSignal(t, tc.args, tc.sig)
			line, ok := logLine(logs, "stopping")
			if !ok {
				t.Fatalf("no stopping line in %s", logs)
			}
			if line["signal"] != tc.want || line["grace"] != tc.grace {
				t.Errorf("stopping line %v: got signal %v, grace %v; want %s, %v", line, line["signal"], line["grace"], tc.want, tc.grace)
			}
			if _, ok := logLine(logs, "stopped"); !ok {
				t.Errorf("no stopped line after the stop in %s", logs)
			}
		})
	}
}

// runUntilSignal runs a server command in-process with JSON logs until it
// is ready, sends this process sig, and returns its logs once it has
// stopped.
func runUntilSignal(t *testing.T, args []string, sig syscall.Signal) string {
	t.Helper()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), append([]string{"sidehook", "--log-format", "json"}, args...),
			func(string) string { return "" }, strings.NewReader(""), io.Discard, logs)
	}()
	deadline := time.After(30 * time.Second)
	for _, ok := logLine(logs.String(), "ready"); !ok; _, ok = logLine(logs.String(), "ready") {
		select {
		case err := <-done:
			t.Fatalf("%s exited before it was ready: %v; logs: %s", args[0], err, logs)
		case <-deadline:
			t.Fatalf("%s not ready within 30s; logs: %s", args[0], logs)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := syscall.Kill(os.Getpid(), sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v", args[0], err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop within 30s of %v; logs: %s", args[0], sig, logs)
	}
	return logs.String()
}

// logLine is the first JSON log line whose message is msg.
func logLine(logs, msg string) (map[string]any, bool) {
	for _, l := range strings.Split(logs, "\n") {
		var line map[string]any
		if json.Unmarshal([]byte(l), &line) == nil && line["message"] == msg {
			return line, true
		}
	}
	return nil, false
}
