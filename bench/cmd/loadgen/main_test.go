package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunUsageErrors(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "sidehook")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	notExec := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(notExec, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"NoCommand", nil, "no command"},
		{"UnknownCommand", []string{"bench"}, `unknown command "bench"`},
		{"NoSidehook", []string{"receiver"}, "--sidehook is required"},
		{"MissingSidehook", []string{"relay", "--sidehook", filepath.Join(t.TempDir(), "nope")}, "no such file"},
		{"NotExecutable", []string{"receiver", "--sidehook", notExec}, "not an executable"},
		{"BadDuration", []string{"receiver", "--sidehook", exe, "--duration", "0s"}, "--duration"},
		{"BadConnections", []string{"relay", "--sidehook", exe, "--connections", "0"}, "--connections"},
		{"BadPhase", []string{"relay", "--sidehook", exe, "--phases", "direct,warp"}, `unknown phase "warp"`},
		{"BadBacklog", []string{"relay", "--sidehook", exe, "--backlog", "0"}, "--backlog"},
		{"BadRate", []string{"relay", "--sidehook", exe, "--rate", "-1"}, "--rate"},
		{"BadCaptures", []string{"receiver", "--sidehook", exe, "--captures", "-1"}, "--captures"},
		{"UnknownFlag", []string{"receiver", "--frobnicate"}, "frobnicate"},
		{"StrayArgument", []string{"receiver", "--sidehook", exe, "extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, &stdout, &stderr)
			var ue *usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want a usage error containing %q", err, tt.want)
			}
		})
	}
}

func TestRunHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"help"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "receiver") || !strings.Contains(stdout.String(), "relay") {
		t.Errorf("help got %q, want both commands", stdout.String())
	}
	err := run(context.Background(), []string{"relay", "-h"}, &stdout, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Errorf("relay -h got %v, want flag.ErrHelp", err)
	}
	if !strings.Contains(stderr.String(), "-backlog") {
		t.Errorf("relay -h printed %q, want the flags", stderr.String())
	}
}

func TestTargets(t *testing.T) {
	rep := receiverReport{
		Bare:     runReport{Name: "bare net/http", Requests: 100, OKPerSec: 100, ServerCPUus: 41.25},
		Receiver: runReport{Name: "sidehook receive", Requests: 40, OKPerSec: 40, P99Ms: 25, ServerCPUus: 128, ClientCPUus: 70.4},
		Ratio:    0.4,
		Captures: 40, Client2xx: 40, AllCaptured: true,
	}
	got := map[string]string{}
	for _, tg := range receiverTargets(rep) {
		got[tg.Name] = tg.Status
	}
	want := map[string]string{
		"receiver / bare 2xx/s":     "met",
		"receiver p99":              "MISSED",
		"every 2xx captured":        "met",
		"peak RSS after 0 captures": "not measured",
		"every 2xx captured (fill)": "not measured",
	}
	for name, status := range want {
		if got[name] != status {
			t.Errorf("%s: got %q, want %q", name, got[name], status)
		}
	}
	var buf bytes.Buffer
	printReceiver(&buf, rep)
	if !strings.Contains(buf.String(), "ratio receiver/bare (2xx/s): 0.40") {
		t.Errorf("report got %q, want the ratio line", buf.String())
	}
	if !strings.Contains(buf.String(), "server CPU per 2xx (user+system of the server process): bare net/http 41.2 µs, sidehook receive 128.0 µs\n") {
		t.Errorf("report got %q, want the server CPU line", buf.String())
	}
	for _, line := range []string{
		"client CPU per 2xx (user+system of this load generator): sidehook receive 70.4 µs\n",
	} {
		if !strings.Contains(buf.String(), line) {
			t.Errorf("report got %q, want the line %q", buf.String(), line)
		}
	}

	rr := relayReport{Paced: &pacedReport{Rate: 50, Matched: 500, EndToEnd: latencyReport{P50Ms: 0.9, P99Ms: 12},
		Floor: latencyReport{P50Ms: 0.34, P99Ms: 0.72}, DiskSync: latencyReport{Count: 200, P50Ms: 0.5, P99Ms: 0.8}, DiskSyncBytes: 2048}}
	for _, tg := range relayTargets(rr) {
		switch {
		case strings.HasSuffix(tg.Name, "p50") && tg.Status != "met",
			strings.HasSuffix(tg.Name, "p99") && tg.Status != "MISSED",
			strings.Contains(tg.Name, "direct") && tg.Status != "not measured":
			t.Errorf("%s: got %q, want met for p50, MISSED for p99, not measured for direct", tg.Name, tg.Status)
		}
	}
	buf.Reset()
	printRelay(&buf, rr)
	for _, line := range []string{"paced 50/s", "straight to the sink: send→arrival p50 0.34 ms, p99 0.72 ms",
		"a 2048-byte write and fdatasync at that rate: p50 0.50 ms, p99 0.80 ms (two hops and one sync: p50 1.18 ms)"} {
		if !strings.Contains(buf.String(), line) {
			t.Errorf("report got %q, want the line %q", buf.String(), line)
		}
	}
}
