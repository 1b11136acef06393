package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sidehook/sidehook/bench/loadgen"
)

// machine is where a benchmark ran: enough to judge whether two reports
// are comparable.
type machine struct {
	CPUs       int    `json:"cpus"`
	CPUModel   string `json:"cpu_model"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	LoadBefore string `json:"load_before"` // /proc/loadavg at the start: others' work on the same cores
	LoadAfter  string `json:"load_after"`
}

func readMachine() machine {
	m := machine{
		CPUs:       runtime.NumCPU(),
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS + "/" + runtime.GOARCH,
		LoadBefore: loadAvg(),
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	return m
}

// loadAvg is the 1, 5 and 15-minute load averages, or "" off Linux.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// runReport is a loadgen.Result for people and for JSON: times in
// milliseconds.
type runReport struct {
	Name      string  `json:"name"`
	Requests  int64   `json:"requests"`
	OK        int64   `json:"ok"`
	Non2xx    int64   `json:"non_2xx"`
	Errors    int64   `json:"errors"`
	ElapsedS  float64 `json:"elapsed_s"`
	RPS       float64 `json:"rps"`
	OKPerSec  float64 `json:"ok_per_s"`
	MeanMs    float64 `json:"mean_ms"`
	P50Ms     float64 `json:"p50_ms"`
	P90Ms     float64 `json:"p90_ms"`
	P99Ms     float64 `json:"p99_ms"`
	MaxMs     float64 `json:"max_ms"`
	Generated int64   `json:"generated_in_window,omitempty"` // requests the client built during the window
	// ServerCPUus is the server process's CPU time (user and system) over
	// the run per 2xx, in µs; 0 when not measured.
	ServerCPUus float64 `json:"server_cpu_per_2xx_us,omitempty"`
	// ClientCPUus is the same for the load generator's own process.
	ClientCPUus float64 `json:"client_cpu_per_2xx_us,omitempty"`
	FirstError  string  `json:"first_error,omitempty"`
	FirstNon2xx string  `json:"first_non_2xx,omitempty"`
}

func newRunReport(name string, r loadgen.Result) runReport {
	return runReport{
		Name: name, Requests: r.Requests, OK: r.OK, Non2xx: r.Non2xx, Errors: r.Errors,
		ElapsedS: r.Elapsed.Seconds(), RPS: r.RPS(), OKPerSec: r.OKPerSecond(),
		MeanMs: ms(r.Latency.Mean), P50Ms: ms(r.Latency.P50), P90Ms: ms(r.Latency.P90),
		P99Ms: ms(r.Latency.P99), MaxMs: ms(r.Latency.Max),
		FirstError: r.FirstError, FirstNon2xx: r.FirstNon2xx,
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// latencyReport is a loadgen.Summary in milliseconds.
type latencyReport struct {
	Count int     `json:"count"`
	P50Ms float64 `json:"p50_ms"`
	P90Ms float64 `json:"p90_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

func newLatencyReport(s loadgen.Summary) latencyReport {
	return latencyReport{Count: s.Count, P50Ms: ms(s.P50), P90Ms: ms(s.P90), P99Ms: ms(s.P99), MaxMs: ms(s.Max)}
}

// target is one of the targets and whether this run met it.
type target struct {
	Name   string `json:"name"`
	Want   string `json:"want"`
	Got    string `json:"got"`
	Met    bool   `json:"met"`
	Status string `json:"status"` // met, missed, not measured
}

func newTarget(name, want, got string, met, measured bool) target {
	t := target{Name: name, Want: want, Got: got, Met: met && measured}
	switch {
	case !measured:
		t.Status, t.Got = "not measured", "—"
	case met:
		t.Status = "met"
	default:
		t.Status = "MISSED"
	}
	return t
}

func printRuns(w io.Writer, runs ...runReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\trequests\t2xx/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\tnon-2xx\terrors\t")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.1f\t%d\t%d\t\n",
			r.Name, r.Requests, r.OKPerSec, r.P50Ms, r.P90Ms, r.P99Ms, r.MaxMs, r.Non2xx, r.Errors)
	}
	tw.Flush()
	var srv, cli []string
	for _, r := range runs {
		if r.ServerCPUus > 0 {
			srv = append(srv, fmt.Sprintf("%s %.1f µs", r.Name, r.ServerCPUus))
		}
		if r.ClientCPUus > 0 {
			cli = append(cli, fmt.Sprintf("%s %.1f µs", r.Name, r.ClientCPUus))
		}
	}
	if len(srv) > 0 {
		fmt.Fprintf(w, "server CPU per 2xx (user+system of the server process): %s\n", strings.Join(srv, ", "))
	}
	if len(cli) > 0 {
		fmt.Fprintf(w, "client CPU per 2xx (user+system of this load generator): %s\n", strings.Join(cli, ", "))
	}
	for _, r := range runs {
		if r.Generated > 0 {
			fmt.Fprintf(w, "  note: %s ran out of precomputed requests; %d were built in the window\n", r.Name, r.Generated)
		}
		if r.FirstError != "" {
			fmt.Fprintf(w, "  %s first error: %s\n", r.Name, r.FirstError)
		}
		if r.FirstNon2xx != "" {
			fmt.Fprintf(w, "  %s first non-2xx: %s\n", r.Name, r.FirstNon2xx)
		}
	}
}

func printTargets(w io.Writer, targets []target) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\twant\tgot\t")
	for _, t := range targets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, t.Want, t.Got, t.Status)
	}
	tw.Flush()
}

func printMachine(w io.Writer, m machine) {
	fmt.Fprintf(w, "machine: %d CPUs, %s, %s, %s; load average before %s, after %s\n",
		m.CPUs, m.CPUModel, m.GoVersion, m.OS, m.LoadBefore, m.LoadAfter)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// randomHex is n random bytes in hex: secrets and API keys for one run.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// dirSize is the bytes of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// progress prints one line per phase to stderr, so a long run shows life
// without mixing with the report on stdout.
type progress struct{ w io.Writer }

func (p progress) printf(format string, args ...any) {
	fmt.Fprintf(p.w, "loadgen: "+format+"\n", args...)
}
