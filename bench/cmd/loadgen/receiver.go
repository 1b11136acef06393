package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sidehook/sidehook/bench/loadgen"
)

// common are the flags both benchmarks share.
type common struct {
	sidehook     string
	extra        string
	duration     time.Duration
	warmup       time.Duration
	conns        int
	bodySize     int
	pool         int
	startTimeout time.Duration
	json         bool
	keep         bool
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.sidehook, "sidehook", "", "path to the sidehook binary (required; go build -o /tmp/sidehook .)")
	fs.StringVar(&c.extra, "sidehook-args", "", "extra arguments for the sidehook command, space-separated")
	fs.DurationVar(&c.duration, "duration", loadgen.DefaultDuration, "length of each timed run")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "untimed run before each timed one (0 for none)")
	fs.IntVar(&c.conns, "connections", loadgen.DefaultWorkers, "keep-alive connections, one goroutine each")
	fs.IntVar(&c.bodySize, "body-size", loadgen.DefaultBodySize, "bytes of each webhook body")
	fs.IntVar(&c.pool, "pool", 0, "requests precomputed for the timed runs (0: three times what the warm-up rate needs)")
	fs.DurationVar(&c.startTimeout, "start-timeout", 30*time.Second, "how long a server may take to become ready")
	fs.BoolVar(&c.json, "json", false, "print the report as JSON")
	fs.BoolVar(&c.keep, "keep", false, "keep the temporary directory (data and logs)")
}

func (c *common) check(name string) error {
	switch {
	case c.sidehook == "":
		return usageErrorf("%s: --sidehook is required (go build -o /tmp/sidehook . first)", name)
	case c.duration <= 0:
		return usageErrorf("%s: --duration must be positive", name)
	case c.warmup < 0:
		return usageErrorf("%s: --warmup must not be negative", name)
	case c.conns < 1 || c.conns > 4096:
		return usageErrorf("%s: --connections must be between 1 and 4096", name)
	case c.bodySize < 1 || c.bodySize > 1<<20:
		return usageErrorf("%s: --body-size must be between 1 and 1048576", name)
	case c.pool < 0:
		return usageErrorf("%s: --pool must not be negative", name)
	case c.startTimeout <= 0:
		return usageErrorf("%s: --start-timeout must be positive", name)
	}
	info, err := os.Stat(c.sidehook)
	if err != nil {
		return usageErrorf("%s: --sidehook: %v", name, err)
	}
	if info.IsDir() || info.Mode()&0o111 == 0 {
		return usageErrorf("%s: --sidehook %s is not an executable file", name, c.sidehook)
	}
	return nil
}

// poolSize is how many requests to precompute for a timed run, from the
// rate seen in warm-up: three times what the run needs (a one-second
// warm-up on a busy machine reads low), so the client never builds
// requests in the window unless the warm-up badly underestimated.
func (c *common) poolSize(warm loadgen.Result) int {
	if c.pool > 0 {
		return c.pool
	}
	n := int(3 * warm.RPS() * c.duration.Seconds())
	return max(n, 20_000)
}

// setup makes the run's temporary directory and finds this binary (for
// the baseline children).
func (c *common) setup() (dir, self string, err error) {
	self, err = os.Executable()
	if err != nil {
		return "", "", fmt.Errorf("find own binary: %w", err)
	}
	dir, err = os.MkdirTemp("", "sidehook-loadgen-")
	if err != nil {
		return "", "", fmt.Errorf("temp dir: %w", err)
	}
	return dir, self, nil
}

func (c *common) cleanup(dir string, p progress) {
	if c.keep {
		p.printf("kept %s", dir)
		return
	}
	os.RemoveAll(dir)
}

func (c *common) sidehookCommand(name, log string, args ...string) loadgen.Command {
	// --log-format is sidehook's global flag: it goes before the command.
	full := append([]string{"--log-format", "json"}, args...)
	full = append(full, strings.Fields(c.extra)...)
	return loadgen.Command{Name: name, Path: c.sidehook, Args: full, Log: log}
}

// receiverReport is the result of `loadgen receiver`.
type receiverReport struct {
	Machine     machine   `json:"machine"`
	Connections int       `json:"connections"`
	BodyBytes   int       `json:"body_bytes"`
	Bare        runReport `json:"bare"`
	Receiver    runReport `json:"receiver"`
	// Ratio is the receiver's 2xx/s over the bare handler's.
	Ratio float64 `json:"ratio"`
	// Captures is what the receiver holds after the timed run; Client2xx
	// what the client saw answered 2xx in total (warm-up included).
	Captures    int64    `json:"captures"`
	Client2xx   int64    `json:"client_2xx"`
	AllCaptured bool     `json:"every_2xx_captured"`
	PeakRSSMiB  float64  `json:"peak_rss_mib"`
	Fill        *fill    `json:"fill,omitempty"`
	Targets     []target `json:"targets"`
}

// fill is the phase that grows the receiver to a capture count.
type fill struct {
	Target      int64   `json:"target"`
	Captures    int64   `json:"captures"`
	Client2xx   int64   `json:"client_2xx"`
	AllCaptured bool    `json:"every_2xx_captured"`
	ElapsedS    float64 `json:"elapsed_s"`
	OKPerSec    float64 `json:"ok_per_s"`
	Non2xx      int64   `json:"non_2xx"`
	Errors      int64   `json:"errors"`
	PeakRSSMiB  float64 `json:"peak_rss_mib"`
	RSSMiB      float64 `json:"rss_mib"`
	DiskMiB     float64 `json:"disk_mib"`
}

const receiverUsage = `usage: loadgen receiver --sidehook PATH [flags]

Measures, in one run: a bare net/http handler that reads the body and
answers 200 (in a child process), then 'sidehook receive' verifying each
request's own HS256 JWT and capturing it durably; both get the same
precomputed requests. Then keeps posting until --captures captures exist and
reads the receiver's peak RSS.
`

func runReceiver(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := flag.NewFlagSet("receiver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, receiverUsage); fs.PrintDefaults() }
	c.register(fs)
	captures := fs.Int64("captures", 150_000, "captures to reach in the fill phase (0 skips it)")
	fillTimeout := fs.Duration("fill-timeout", 5*time.Minute, "bound on the fill phase")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := c.check("receiver"); err != nil {
		return err
	}
	if *captures < 0 || *fillTimeout <= 0 {
		return usageErrorf("receiver: --captures must not be negative and --fill-timeout must be positive")
	}
	p := progress{stderr}
	dir, self, err := c.setup()
	if err != nil {
		return err
	}
	defer c.cleanup(dir, p)
	var g loadgen.Group
	defer g.Close()

	rep := receiverReport{Machine: readMachine(), Connections: c.conns, BodyBytes: c.bodySize}

	sctx, cancel := context.WithTimeout(ctx, c.startTimeout)
	defer cancel()
	bareProc, bareURL, err := g.StartServer(sctx, loadgen.Command{
		Name: "bare handler", Path: self, Args: []string{"serve-bare"}, Log: filepath.Join(dir, "bare.log"),
	})
	if err != nil {
		return err
	}
	addr, err := loadgen.FreeAddr()
	if err != nil {
		return err
	}
	secret := randomHex(32)
	recv, err := g.Start(c.sidehookCommand("sidehook receive", filepath.Join(dir, "receiver.log"),
		"receive", "--listen", addr, "--data", filepath.Join(dir, "receiver"), "--jwt-secret", secret))
	if err != nil {
		return err
	}
	recvURL := "http://" + addr
	if _, err := recv.WaitHTTP(sctx, recvURL+"/_sidehook/healthz"); err != nil {
		return err
	}
	p.printf("bare handler at %s, sidehook receive at %s (pid %d)", bareURL, recvURL, recv.PID())

	signer := &loadgen.JWTSigner{Secret: []byte(secret), Org: "bench", Endpoint: "receiver"}
	var seq atomic.Int64
	build := func() (loadgen.Request, error) {
		return loadgen.DeliveryRequest("/webhooks", seq.Add(1), c.bodySize, signer, time.Now())
	}
	gen := loadgen.SourceFunc(build)

	var client2xx int64
	var warmBare loadgen.Result
	if c.warmup > 0 {
		p.printf("warm-up %v each", c.warmup)
		warm := loadgen.ClosedLoop{Workers: c.conns, Duration: c.warmup}
		if warmBare, err = warm.Run(ctx, bareURL, gen); err != nil {
			return err
		}
		r, err := warm.Run(ctx, recvURL, gen)
		if err != nil {
			return err
		}
		client2xx += r.OK
	}

	n := c.poolSize(warmBare)
	p.printf("precomputing %d requests (one JWT each)", n)
	reqs, err := loadgen.Precompute(ctx, n, runtime.NumCPU(), func(int) (loadgen.Request, error) { return build() })
	if err != nil {
		return err
	}
	pool := loadgen.NewPool(reqs, gen)
	timed := loadgen.ClosedLoop{Workers: c.conns, Duration: c.duration, SampleHint: n}

	p.printf("bare handler: %v", c.duration)
	bare, bareCPU, err := withCPU(bareProc, func() (loadgen.Result, error) {
		return withoutGC(func() (loadgen.Result, error) { return timed.Run(ctx, bareURL, pool) })
	})
	if err != nil {
		return err
	}
	rep.Bare = newRunReport("bare net/http", bare)
	rep.Bare.ServerCPUus, rep.Bare.ClientCPUus = bareCPU.server, bareCPU.client
	rep.Bare.Generated = pool.Generated()
	pool.Rewind()

	p.printf("sidehook receive: %v", c.duration)
	res, recvCPU, err := withCPU(recv, func() (loadgen.Result, error) {
		return withoutGC(func() (loadgen.Result, error) { return timed.Run(ctx, recvURL, pool) })
	})
	if err != nil {
		return err
	}
	rep.Receiver = newRunReport("sidehook receive", res)
	rep.Receiver.ServerCPUus, rep.Receiver.ClientCPUus = recvCPU.server, recvCPU.client
	rep.Receiver.Generated = pool.Generated()
	client2xx += res.OK
	reqs, pool = nil, nil // the fill phase builds its own; let the GC have these
	if bare.OKPerSecond() > 0 {
		rep.Ratio = res.OKPerSecond() / bare.OKPerSecond()
	}

	count, err := captureCount(ctx, recvURL)
	if err != nil {
		return err
	}
	rep.Captures, rep.Client2xx, rep.AllCaptured = count, client2xx, count == client2xx
	mem, err := recv.MemStatus()
	if err != nil {
		return err
	}
	rep.PeakRSSMiB = mib(mem.HWM)

	if *captures > 0 {
		f, err := fillReceiver(ctx, p, c, recv, recvURL, gen, *captures, *fillTimeout, count, client2xx, filepath.Join(dir, "receiver"))
		if err != nil {
			return err
		}
		rep.Fill = f
	}
	rep.Machine.LoadAfter = loadAvg()
	rep.Targets = receiverTargets(rep)

	if c.json {
		return writeJSON(stdout, rep)
	}
	printReceiver(stdout, rep)
	return nil
}

// fillReceiver posts until the receiver holds target captures (or the
// timeout), then reads its memory: the steady-state cost of a big store.
func fillReceiver(ctx context.Context, p progress, c common, recv *loadgen.Process, recvURL string, gen loadgen.Source,
	target int64, timeout time.Duration, count, client2xx int64, dataDir string) (*fill, error) {
	f := &fill{Target: target}
	start := time.Now()
	deadline := start.Add(timeout)
	var ok int64
	for count < target {
		left := time.Until(deadline)
		if left <= 0 {
			p.printf("fill: timed out at %d captures", count)
			break
		}
		p.printf("fill: %d captures, posting %d more", count, target-count)
		res, err := loadgen.ClosedLoop{Workers: c.conns, Duration: left, MaxRequests: target - count}.Run(ctx, recvURL, gen)
		if err != nil {
			return nil, err
		}
		ok += res.OK
		client2xx += res.OK
		f.Non2xx += res.Non2xx
		f.Errors += res.Errors
		if count, err = captureCount(ctx, recvURL); err != nil {
			return nil, err
		}
		if res.OK == 0 {
			p.printf("fill: no 2xx in a round (first error %q, first non-2xx %q); stopping", res.FirstError, res.FirstNon2xx)
			break
		}
	}
	elapsed := time.Since(start)
	mem, err := recv.MemStatus()
	if err != nil {
		return nil, err
	}
	f.Captures, f.Client2xx, f.AllCaptured = count, client2xx, count == client2xx
	f.ElapsedS = elapsed.Seconds()
	if elapsed > 0 {
		f.OKPerSec = float64(ok) / elapsed.Seconds()
	}
	f.PeakRSSMiB, f.RSSMiB = mib(mem.HWM), mib(mem.RSS)
	f.DiskMiB = float64(dirSize(dataDir)) / (1 << 20)
	return f, nil
}

func receiverTargets(r receiverReport) []target {
	measured := r.Receiver.Requests > 0 && r.Bare.Requests > 0
	ts := []target{
		newTarget("receiver / bare 2xx/s", ">= 0.35", fmt.Sprintf("%.2f", r.Ratio), r.Ratio >= 0.35, measured),
		newTarget("receiver p99", "< 20 ms", fmt.Sprintf("%.2f ms", r.Receiver.P99Ms), r.Receiver.P99Ms < 20, measured),
		newTarget("every 2xx captured", "captures = client 2xx",
			fmt.Sprintf("%d = %d", r.Captures, r.Client2xx), r.AllCaptured, measured),
	}
	f := r.Fill
	if f == nil {
		f = &fill{}
	}
	ts = append(ts,
		newTarget(fmt.Sprintf("peak RSS after %d captures", f.Target), "< 200 MiB",
			fmt.Sprintf("%.1f MiB at %d", f.PeakRSSMiB, f.Captures), f.PeakRSSMiB < 200,
			r.Fill != nil && f.Captures >= f.Target),
		newTarget("every 2xx captured (fill)", "captures = client 2xx",
			fmt.Sprintf("%d = %d", f.Captures, f.Client2xx), f.AllCaptured, r.Fill != nil),
	)
	return ts
}

func printReceiver(w io.Writer, r receiverReport) {
	printMachine(w, r.Machine)
	fmt.Fprintf(w, "load: %d keep-alive connections, %d-byte bodies, one HS256 JWT per request\n\n", r.Connections, r.BodyBytes)
	printRuns(w, r.Bare, r.Receiver)
	fmt.Fprintf(w, "\nratio receiver/bare (2xx/s): %.2f\n", r.Ratio)
	fmt.Fprintf(w, "captures after the run: %d, client 2xx (warm-up included): %d\n", r.Captures, r.Client2xx)
	fmt.Fprintf(w, "receiver peak RSS after the run: %.1f MiB\n", r.PeakRSSMiB)
	if f := r.Fill; f != nil {
		fmt.Fprintf(w, "fill to %d captures: %d captures, client 2xx %d, %.1f s (%.0f 2xx/s, %d non-2xx, %d errors)\n",
			f.Target, f.Captures, f.Client2xx, f.ElapsedS, f.OKPerSec, f.Non2xx, f.Errors)
		fmt.Fprintf(w, "receiver then: peak RSS %.1f MiB, RSS %.1f MiB, data on disk %.1f MiB\n", f.PeakRSSMiB, f.RSSMiB, f.DiskMiB)
	}
	fmt.Fprintln(w)
	printTargets(w, r.Targets)
}

// withCPU runs a timed run and returns, with its result, the CPU time
// (user and system) the server process and this load generator used during
// it per 2xx answer: the server's own cost per request, which a busy
// machine changes less than it changes the p99, and what the client took
// from the cores they share. A figure is 0 where the CPU time cannot be
// read (outside Linux); the run itself does not depend on it.
func withCPU(server *loadgen.Process, run func() (loadgen.Result, error)) (loadgen.Result, cpuPer2xx, error) {
	srvBefore, errSrv := server.CPUTime()
	cliBefore, errCli := loadgen.ReadCPUTime(os.Getpid())
	res, err := run()
	if err != nil {
		return res, cpuPer2xx{}, err
	}
	var cpu cpuPer2xx
	if res.OK == 0 {
		return res, cpu, nil
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(res.OK) }
	if after, err := server.CPUTime(); err == nil && errSrv == nil {
		cpu.server = per(after - srvBefore)
	}
	if after, err := loadgen.ReadCPUTime(os.Getpid()); err == nil && errCli == nil {
		cpu.client = per(after - cliBefore)
	}
	return res, cpu, nil
}

// cpuPer2xx is withCPU's result, in µs per 2xx.
type cpuPer2xx struct{ server, client float64 }

func captureCount(ctx context.Context, base string) (int64, error) {
	var out struct {
		Count *int64 `json:"count"`
	}
	if err := loadgen.GetJSON(ctx, base+"/_sidehook/requests/count", &out); err != nil {
		return 0, err
	}
	if out.Count == nil {
		return 0, fmt.Errorf("capture count: answer has no count")
	}
	return *out.Count, nil
}
