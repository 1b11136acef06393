package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/bench/loadgen"
	"github.com/sidehook/sidehook/relay/config"
)

func TestParseConfigs(t *testing.T) {
	tests := []struct {
		in      string
		want    []scaleConfig
		wantErr string
	}{
		{in: "badger,js1,js2,js3", want: []scaleConfig{
			{"badger", 1, false}, {"js1", 1, true}, {"js2", 2, true}, {"js3", 3, true},
		}},
		{in: " js2 , badger", want: []scaleConfig{{"js2", 2, true}, {"badger", 1, false}}},
		{in: "", wantErr: `unknown configuration ""`},
		{in: "js0", wantErr: `unknown configuration "js0"`},
		{in: "js4", wantErr: `unknown configuration "js4"`},
		{in: "js", wantErr: `unknown configuration "js"`},
		{in: "js01", wantErr: `unknown configuration "js01"`},
		{in: "js-1", wantErr: `unknown configuration "js-1"`},
		{in: "redis", wantErr: `unknown configuration "redis"`},
		{in: "js1,badger,js1", wantErr: `"js1" given twice`},
		{in: "badger,", wantErr: `unknown configuration ""`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseConfigs(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func fakeSidehook(t *testing.T) string {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "sidehook")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return exe
}

func TestScaleUsageErrors(t *testing.T) {
	exe := fakeSidehook(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"NoSidehook", nil, "--sidehook is required"},
		{"BadConfigs", []string{"--configs", "badger,js9"}, `unknown configuration "js9"`},
		{"FewerConnectionsThanRelays", []string{"--connections", "2"}, "--connections 2: want at least one per relay (3)"},
		{"BadMaxInFlight", []string{"--max-in-flight", "0"}, "--max-in-flight"},
		{"BadRate", []string{"--rate", "0"}, "--rate"},
		{"NaNRate", []string{"--rate", "NaN"}, "--rate"},
		{"InfiniteRate", []string{"--rate", "+Inf"}, "--rate"},
		{"BadPacedDuration", []string{"--paced-duration", "-1s"}, "--paced-duration"},
		{"BadDrainTimeout", []string{"--drain-timeout", "0s"}, "--drain-timeout"},
		{"NegativeSettle", []string{"--settle", "-1s"}, "--settle"},
		{"BadDuration", []string{"--duration", "0s"}, "--duration"},
		{"StrayArgument", []string{"js1"}, `unexpected argument "js1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"scale"}
			if tt.name != "NoSidehook" {
				args = append(args, "--sidehook", exe)
			}
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append(args, tt.args...), &stdout, &stderr)
			var ue *usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want a usage error containing %q", err, tt.want)
			}
		})
	}
}

func TestScaleFlagsValid(t *testing.T) {
	exe := fakeSidehook(t)
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--sidehook", exe}, []string{"badger", "js1", "js2", "js3"}},
		{[]string{"--sidehook", exe, "--configs", "js1,js2", "--connections", "2"}, []string{"js1", "js2"}},
		{[]string{"--sidehook", exe, "--configs", "badger", "--connections", "1", "--settle", "0s"}, []string{"badger"}},
	}
	for _, tt := range tests {
		var f scaleFlags
		if err := parse(f.flagSet(io.Discard), tt.args); err != nil {
			t.Fatal(err)
		}
		cfgs, err := f.validate()
		if err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		var names []string
		for _, c := range cfgs {
			names = append(names, c.Name)
		}
		if !slices.Equal(names, tt.want) {
			t.Errorf("%v: configs %v, want %v", tt.args, names, tt.want)
		}
	}
}

func TestScaleHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"scale", "-h"}, &stdout, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("scale -h got %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"-configs", "-paced-duration", "jsN"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("scale -h printed %q, want %q in it", stderr.String(), want)
		}
	}
}

func TestSplitConns(t *testing.T) {
	tests := []struct {
		total, n int
		want     []int
	}{
		{32, 1, []int{32}},
		{32, 2, []int{16, 16}},
		{32, 3, []int{11, 11, 10}},
		{3, 3, []int{1, 1, 1}},
		{4, 3, []int{2, 1, 1}},
	}
	for _, tt := range tests {
		if got := splitConns(tt.total, tt.n); !slices.Equal(got, tt.want) {
			t.Errorf("splitConns(%d, %d) = %v, want %v", tt.total, tt.n, got, tt.want)
		}
	}
}

func TestMergeResults(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	rs := []loadgen.Result{
		{Requests: 110, OK: 100, Non2xx: 10, FirstNon2xx: "429 busy", Start: t0.Add(time.Millisecond), Elapsed: 2 * time.Second,
			Latency: loadgen.Summary{Count: 110, P50: time.Millisecond}},
		{Requests: 300, OK: 300, Errors: 2, FirstError: "refused", Start: t0, Elapsed: 1500 * time.Millisecond},
	}
	m := mergeResults(rs)
	want := loadgen.Result{
		Requests: 410, OK: 400, Non2xx: 10, Errors: 2, FirstError: "refused", FirstNon2xx: "429 busy",
		Start: t0, Elapsed: 2001 * time.Millisecond,
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("merged %+v, want %+v", m, want)
	}
	if got := mergeResults(nil); !reflect.DeepEqual(got, loadgen.Result{}) {
		t.Errorf("merge of nothing = %+v, want the zero Result", got)
	}
}

func TestMergePaced(t *testing.T) {
	ms := time.Millisecond
	rs := []loadgen.PacedResult{
		{Result: loadgen.Result{OK: 2, Non2xx: 1, FirstNon2xx: "503 down"}, Lag: 3 * ms, Sent: []loadgen.Sent{
			{Status: 202, Latency: 1 * ms}, {Status: 202, Latency: 2 * ms}, {Status: 503, Latency: 3 * ms},
		}},
		{Result: loadgen.Result{OK: 1, Errors: 1, FirstError: "reset"}, Lag: 7 * ms, Sent: []loadgen.Sent{
			{Status: 202, Latency: 4 * ms}, {Err: "reset"},
		}},
	}
	got := mergePaced(rs)
	if got.Sent != 5 || got.Accepted != 3 || got.LagMs != 7 || got.FirstErr != "503 down" {
		t.Errorf("sent %d, accepted %d, lag %v ms, first %q; want 5, 3, 7 ms, %q", got.Sent, got.Accepted, got.LagMs, got.FirstErr, "503 down")
	}
	// Every answer counts in the ingest latency, whatever its status; a
	// request without one does not.
	if got.Ingest.Count != 4 || got.Ingest.MaxMs != 4 {
		t.Errorf("ingest latency %+v, want 4 answers, max 4 ms", got.Ingest)
	}
}

func ratioOf(r scaleResult) string {
	if r.Ratio == nil {
		return "none"
	}
	return fmt.Sprintf("%.2f", *r.Ratio)
}

func TestSetRatios(t *testing.T) {
	mk := func(name string, relays int, perSec float64) scaleResult {
		r := scaleResult{Name: name, Relays: relays}
		r.DeliveredPerSec = perSec
		return r
	}
	tests := []struct {
		name string
		in   []scaleResult
		want []string
	}{
		{"All", []scaleResult{mk("badger", 1, 5000), mk("js1", 1, 1000), mk("js2", 2, 1600), mk("js3", 3, 2700)},
			[]string{"none", "1.00", "0.80", "0.90"}},
		{"NoJS1", []scaleResult{mk("badger", 1, 5000), mk("js2", 2, 1600)}, []string{"none", "none"}},
		{"JS1DeliveredNothing", []scaleResult{mk("js1", 1, 0), mk("js2", 2, 1600)}, []string{"none", "none"}},
		{"JS1Last", []scaleResult{mk("js3", 3, 600), mk("js1", 1, 100)}, []string{"2.00", "1.00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setRatios(tt.in)
			var got []string
			for _, r := range tt.in {
				got = append(got, ratioOf(r))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ratios %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCoresNeeded(t *testing.T) {
	tests := []struct {
		configs string
		want    int
	}{
		{"badger", 0},
		{"badger,js1", 0},
		{"js1,js2", 6},
		{"badger,js1,js2,js3", 8},
	}
	for _, tt := range tests {
		cfgs, err := parseConfigs(tt.configs)
		if err != nil {
			t.Fatal(err)
		}
		var rs []scaleResult
		for _, c := range cfgs {
			rs = append(rs, scaleResult{Name: c.Name, Relays: c.Relays})
		}
		if got := coresNeeded(rs); got != tt.want {
			t.Errorf("coresNeeded(%s) = %d, want %d", tt.configs, got, tt.want)
		}
	}
}

func sampleResults() []scaleResult {
	mk := func(name string, relays int, store string, ingest, delivered float64, accepted, got int64) scaleResult {
		r := scaleResult{Name: name, Relays: relays, Store: store,
			deliveryCounts: deliveryCounts{Accepted: accepted, Delivered: got, Drained: got >= accepted}}
		r.Ingest.OKPerSec = ingest
		r.DeliveredPerSec = delivered
		r.Kept = delivered / ingest
		r.RelayCPUPerEventUs, r.LoadgenCPUPerEventUs = 400, 100
		r.PacedRelayCPUPerEventUs, r.PacedLoadgenCPUPerEventUs = 300, 50
		r.Paced = &pacedReport{Matched: 250, EndToEnd: latencyReport{P50Ms: 1.5, P99Ms: 4.25}}
		return r
	}
	rs := []scaleResult{
		mk("badger", 1, "badger", 3000, 2900, 30000, 30000),
		mk("js1", 1, "jetstream R3", 1000, 1000, 10000, 10000),
		mk("js2", 2, "jetstream R3", 1800, 1700, 18000, 18000),
		mk("js3", 3, "jetstream R3", 2000, 1800, 20000, 19000),
	}
	rs[3].Paced = &pacedReport{} // nothing matched
	rs[3].Duplicates = 7
	setRatios(rs)
	return rs
}

func TestScaleTargets(t *testing.T) {
	tests := []struct {
		cpus int
		want map[string]string
	}{
		{16, map[string]string{
			"badger: every accepted event delivered": "met",
			"js3: every accepted event delivered":    "MISSED",
			"js2 delivered/s ÷ (2 × js1)":            "met",    // 0.85
			"js3 delivered/s ÷ (3 × js1)":            "MISSED", // 0.60
		}},
		{2, map[string]string{
			"js2 delivered/s ÷ (2 × js1)": "not shown: 2 CPUs, needs 6",
			"js3 delivered/s ÷ (3 × js1)": "not shown: 2 CPUs, needs 8",
		}},
		{7, map[string]string{
			"js2 delivered/s ÷ (2 × js1)": "met",
			"js3 delivered/s ÷ (3 × js1)": "not shown: 7 CPUs, needs 8",
		}},
	}
	for _, tt := range tests {
		rep := scaleReport{Machine: machine{CPUs: tt.cpus}, Configs: sampleResults()}
		got := map[string]target{}
		for _, tg := range scaleTargets(rep) {
			got[tg.Name] = tg
		}
		if len(got) != 6 {
			t.Errorf("%d CPUs: %d targets, want 4 delivered = accepted and 2 ratios", tt.cpus, len(got))
		}
		if _, ok := got["js1 delivered/s ÷ (1 × js1)"]; ok {
			t.Error("js1 compared with itself")
		}
		for name, status := range tt.want {
			tg := got[name]
			if tg.Status != status || tg.Met != (status == "met") {
				t.Errorf("%d CPUs: %q is %q (met %v), want %q", tt.cpus, name, tg.Status, tg.Met, status)
			}
		}
		if g := got["js2 delivered/s ÷ (2 × js1)"].Got; g != "0.85" {
			t.Errorf("js2 ratio shows %q, want 0.85 whatever the machine", g)
		}
	}
}

func TestScaleTable(t *testing.T) {
	out := scaleTable(sampleResults(), 50)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("table has %d lines, want a header and 4 rows:\n%s", len(lines), out)
	}
	wantRows := [][]string{
		{"config", "relays", "store", "ingest/s", "delivered/s", "delivered÷ingest", "duplicates", "paced", "50/s", "p50", "ms", "p99", "ms",
			"relay", "CPU/event", "µs", "at", "50/s", "loadgen", "CPU/event", "µs", "at", "50/s", "delivered", "÷", "(N", "×", "js1)"},
		{"badger", "1", "badger", "3000", "2900", "0.97", "0", "1.50", "4.25", "400.0", "300.0", "100.0", "50.0", "—"},
		{"js1", "1", "jetstream", "R3", "1000", "1000", "1.00", "0", "1.50", "4.25", "400.0", "300.0", "100.0", "50.0", "1.00"},
		{"js2", "2", "jetstream", "R3", "1800", "1700", "0.94", "0", "1.50", "4.25", "400.0", "300.0", "100.0", "50.0", "0.85"},
		{"js3", "3", "jetstream", "R3", "2000", "1800", "0.90", "7", "—", "—", "400.0", "300.0", "100.0", "50.0", "0.60"},
	}
	for i, want := range wantRows {
		if got := strings.Fields(lines[i]); !slices.Equal(got, want) {
			t.Errorf("line %d: %q, want the fields %q", i, lines[i], want)
		}
	}
	// Right-aligned columns: every line is as wide as the header.
	width := len([]rune(lines[0]))
	for _, l := range lines[1:] {
		if len([]rune(l)) != width {
			t.Errorf("line %q is %d wide, want %d", l, len([]rune(l)), width)
		}
	}
}

func TestPrintScaleSmallMachine(t *testing.T) {
	rep := scaleReport{Machine: machine{CPUs: 2}, Rate: 50, Configs: sampleResults()}
	rep.CoresNeeded = coresNeeded(rep.Configs)
	rep.Targets = scaleTargets(rep)
	var buf bytes.Buffer
	printScale(&buf, rep)
	for _, want := range []string{"this machine has 2 CPUs", "needs 8", "compare the CPU per event", "js3: accepted 20000, delivered 19000"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, buf.String())
		}
	}
	rep.Machine.CPUs = 8
	buf.Reset()
	printScale(&buf, rep)
	if strings.Contains(buf.String(), "this machine has") {
		t.Errorf("an 8-CPU machine is told it is too small:\n%s", buf.String())
	}
}

func TestWriteScaleConfig(t *testing.T) {
	dir := t.TempDir()
	b := &relayBench{relayFlags: relayFlags{maxInFlight: 32}, dir: dir, apiKey: "key_" + randomHex(16),
		secret: randomHex(32), sinkURL: "http://127.0.0.1:9"}
	servers := []string{"nats://127.0.0.1:4222", "nats://127.0.0.1:4223", "nats://127.0.0.1:4224"}
	tests := []struct {
		name  string
		store string
		want  *config.Store
	}{
		{"badger", "", nil},
		{"js1-relay1", storeYAML(servers, "bench"), &config.Store{Servers: servers, Replicas: 3, Prefix: "bench"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name+".yaml")
			if err := writeScaleConfig(b, path, "127.0.0.1:8080", tt.name, tt.store); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(path, func(string) string { return "" })
			if err != nil {
				t.Fatalf("sidehook cannot load it: %v", err)
			}
			if !reflect.DeepEqual(cfg.Store, tt.want) {
				t.Errorf("store %+v, want %+v", cfg.Store, tt.want)
			}
			if len(cfg.Organisations) != 1 || len(cfg.Organisations[0].Endpoints) != 1 || cfg.Organisations[0].Endpoints[0].MaxInFlight != 32 {
				t.Errorf("organisations %+v, want one with one endpoint of max_in_flight 32", cfg.Organisations)
			}
		})
	}
}

func TestCountArrivals(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) loadgen.Arrival { return loadgen.Arrival{At: t0.Add(d).UnixNano()} }
	arrivals := []loadgen.Arrival{at(500 * time.Millisecond), at(time.Second), at(2 * time.Second), at(3 * time.Second)}
	got := countArrivals(arrivals, t0, 2*time.Second)
	want := arrivalCounts{InWindow: 3, InWindowPerSec: 1.5, DrainS: 1, DeliveredPerSec: 4.0 / 3}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := countArrivals(nil, t0, time.Second); got != (arrivalCounts{}) {
		t.Errorf("no arrivals: %+v, want zeros", got)
	}
}

func TestIngestToArrival(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	sent := []loadgen.Sent{
		{Status: 202, At: t0, Body: []byte(`{"id":"evt_a"}`)},
		{Status: 202, At: t0.Add(time.Millisecond), Body: []byte(`{"id":"evt_b"}`)}, // never arrived
		{Status: 429, At: t0, Body: []byte(`{"id":"evt_c"}`)},                       // not accepted
		{Status: 202, At: t0, Body: []byte(`{"error":"odd"}`)},
		{Status: 202, At: t0.Add(2 * time.Millisecond), Body: []byte(`{"id":"evt_d"}`)},
	}
	arrivals := []loadgen.Arrival{
		{ID: "evt_a", At: t0.Add(3 * time.Millisecond).UnixNano()},
		{ID: "evt_c", At: t0.Add(time.Millisecond).UnixNano()},
		{ID: "evt_d", At: t0.Add(7 * time.Millisecond).UnixNano()},
	}
	lat, problem := ingestToArrival(sent, arrivals)
	if want := []time.Duration{3 * time.Millisecond, 5 * time.Millisecond}; !slices.Equal(lat, want) {
		t.Errorf("latencies %v, want %v", lat, want)
	}
	if !strings.Contains(problem, `202 without an id: {"error":"odd"}`) {
		t.Errorf("problem %q, want the 202 without an id", problem)
	}
}

// The delivery counts are embedded in both reports; their JSON keys must
// stay at the top level of each, as before they were shared.
func TestReportJSONKeys(t *testing.T) {
	counts := deliveryCounts{Accepted: 3, Delivered: 3, arrivalCounts: arrivalCounts{DeliveredPerSec: 12}}
	for name, v := range map[string]any{
		"relay": deliveryReport{deliveryCounts: counts},
		"scale": scaleResult{deliveryCounts: counts},
	} {
		var buf bytes.Buffer
		if err := writeJSON(&buf, v); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"accepted", "delivered", "duplicates", "drained", "in_window", "in_window_per_s", "drain_after_window_s", "delivered_per_s"} {
			if _, ok := m[k]; !ok {
				t.Errorf("%s report lacks %q: %s", name, k, buf.String())
			}
		}
		if m["delivered_per_s"] != 12.0 {
			t.Errorf("%s report: delivered_per_s = %v, want 12", name, m["delivered_per_s"])
		}
	}
}
