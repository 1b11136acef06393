package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/sidehook/sidehook/bench/jscluster"
	"github.com/sidehook/sidehook/bench/loadgen"
)

const scaleUsage = `usage: loadgen scale --sidehook PATH [flags]

Measures, in one run, 'sidehook relay' on each store of --configs:
  badger   one relay on its default store (Badger under its data directory)
  jsN      N relays (1 to 3) sharing one three-node NATS JetStream cluster,
           streams with three replicas; the cluster runs inside this process,
           a fresh one for each configuration
For each, on empty stores: --warmup at the paced rate; --rate events/s
spread over the relays for --paced-duration, ingest-to-arrival latency per
event at a sink (a child process recording arrivals by webhook-id); then a
closed-loop ingest for --duration with the connections split over the
relays, counted at the sink until the backlog drains (or --drain-timeout),
and the relays' CPU per event delivered. jsN's delivered/s is compared
with N times js1's.
`

// scaleRelaysMax is the most relays a configuration may have: the NATS
// server's default max_batch_inflight_per_stream fits three (README, Scale
// out).
const scaleRelaysMax = 3

// scaleConfig is one configuration of the run.
type scaleConfig struct {
	Name      string
	Relays    int
	JetStream bool
}

// parseConfigs reads --configs: badger and js1..js3, comma-separated, each
// at most once, in the order given.
func parseConfigs(s string) ([]scaleConfig, error) {
	var cfgs []scaleConfig
	seen := map[string]bool{}
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		var c scaleConfig
		if name == "badger" {
			c = scaleConfig{Name: name, Relays: 1}
		} else if n := jsRelays(name); n > 0 {
			c = scaleConfig{Name: name, Relays: n, JetStream: true}
		} else {
			return nil, fmt.Errorf("unknown configuration %q (want badger, js1, js2 or js3)", name)
		}
		if seen[name] {
			return nil, fmt.Errorf("configuration %q given twice", name)
		}
		seen[name] = true
		cfgs = append(cfgs, c)
	}
	return cfgs, nil
}

// jsRelays is N of a name jsN with N from 1 to scaleRelaysMax, else 0.
func jsRelays(name string) int {
	for n := 1; n <= scaleRelaysMax; n++ {
		if name == "js"+strconv.Itoa(n) {
			return n
		}
	}
	return 0
}

// scaleFlags are the relay benchmark's flags (its phase and backlog flags
// unused: relayBench, whose methods scale reuses, holds them) and the
// configurations.
type scaleFlags struct {
	relayFlags
	configs string
}

func (f *scaleFlags) flagSet(stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, scaleUsage); fs.PrintDefaults() }
	f.register(fs)
	fs.StringVar(&f.configs, "configs", "badger,js1,js2,js3", "configurations to run, comma-separated: badger, js1, js2, js3")
	fs.IntVar(&f.maxInFlight, "max-in-flight", 32, "the endpoint's max_in_flight, per relay")
	fs.DurationVar(&f.drainTimeout, "drain-timeout", time.Minute, "bound on waiting for the relays to deliver what they accepted")
	fs.Float64Var(&f.rate, "rate", 50, "events per second of the paced phase, over all relays")
	fs.DurationVar(&f.pacedDuration, "paced-duration", 10*time.Second, "length of the paced phase")
	fs.DurationVar(&f.settle, "settle", 2*time.Second, "pause before each paced phase")
	return fs
}

// validate checks the flags and returns the configurations to run.
func (f *scaleFlags) validate() ([]scaleConfig, error) {
	if err := f.check("scale"); err != nil {
		return nil, err
	}
	cfgs, err := parseConfigs(f.configs)
	if err != nil {
		return nil, usageErrorf("scale: --configs: %v", err)
	}
	most := 0
	for _, c := range cfgs {
		most = max(most, c.Relays)
	}
	switch {
	case f.conns < most:
		return nil, usageErrorf("scale: --connections %d: want at least one per relay (%d)", f.conns, most)
	case f.maxInFlight < 1:
		return nil, usageErrorf("scale: --max-in-flight must be positive")
	case !(f.rate > 0) || math.IsInf(f.rate, 0) || f.pacedDuration <= 0:
		return nil, usageErrorf("scale: --rate and --paced-duration must be positive")
	case f.drainTimeout <= 0 || f.settle < 0:
		return nil, usageErrorf("scale: --drain-timeout must be positive and --settle not negative")
	}
	return cfgs, nil
}

// scaleReport is the result of `loadgen scale`.
type scaleReport struct {
	Machine     machine       `json:"machine"`
	Connections int           `json:"connections"`
	BodyBytes   int           `json:"body_bytes"`
	MaxInFlight int           `json:"endpoint_max_in_flight"`
	Rate        float64       `json:"paced_rate"`
	PacedFloor  latencyReport `json:"paced_direct_floor"`
	Configs     []scaleResult `json:"configs"`
	// CoresNeeded is what the largest jsN needs to show scaling (see
	// coresNeeded); Machine.CPUs below it and the ratios say little.
	CoresNeeded int      `json:"cores_needed"`
	Targets     []target `json:"targets"`
}

// scaleResult is one configuration's numbers.
type scaleResult struct {
	Name   string `json:"name"`
	Relays int    `json:"relays"`
	Store  string `json:"store"`
	// IngestPerRelay is each relay's closed loop; Ingest all of them
	// together, without latencies (percentiles of separate runs do not
	// merge).
	IngestPerRelay []runReport `json:"ingest_per_relay"`
	Ingest         runReport   `json:"ingest"`
	deliveryCounts
	// Kept is delivered/s over ingest/s: whether delivery keeps up.
	Kept float64 `json:"delivered_per_ingest"`
	// RelayCPUPerEventUs is the CPU time (user and system) of every relay
	// process from the start of ingest until the backlog drained, per
	// event delivered.
	RelayCPUPerEventUs float64 `json:"relay_cpu_per_event_us,omitempty"`
	// LoadgenCPUPerEventUs is the same for this process: the client and,
	// on JetStream, the NATS cluster.
	LoadgenCPUPerEventUs float64 `json:"loadgen_cpu_per_event_us,omitempty"`
	// The same two over the paced phase, from its first send until the
	// sink had every event: the cost of an event on a store without a
	// backlog, the relays' idle work included (at 50/s, each millisecond
	// of CPU a second they spend idle adds 20 µs per event).
	PacedRelayCPUPerEventUs   float64      `json:"paced_relay_cpu_per_event_us,omitempty"`
	PacedLoadgenCPUPerEventUs float64      `json:"paced_loadgen_cpu_per_event_us,omitempty"`
	Paced                     *pacedReport `json:"paced,omitempty"`
	// Ratio is delivered/s over N times js1's, for jsN when js1 ran.
	Ratio *float64 `json:"ratio_to_n_js1,omitempty"`
}

func runScale(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f scaleFlags
	if err := parse(f.flagSet(stderr), args); err != nil {
		return err
	}
	cfgs, err := f.validate()
	if err != nil {
		return err
	}

	p := progress{stderr}
	dir, self, err := f.setup()
	if err != nil {
		return err
	}
	defer f.cleanup(dir, p)
	var g loadgen.Group
	defer g.Close()

	b := &relayBench{relayFlags: f.relayFlags, p: p, g: &g, dir: dir, apiKey: "key_" + randomHex(16), secret: randomHex(32)}
	rep := scaleReport{
		Machine: readMachine(), Connections: f.conns, BodyBytes: f.bodySize, MaxInFlight: f.maxInFlight, Rate: f.rate,
	}
	sctx, cancel := context.WithTimeout(ctx, f.startTimeout)
	_, sinkURL, err := g.StartServer(sctx, loadgen.Command{
		Name: "sink", Path: self, Args: []string{"serve-sink"}, Log: filepath.Join(dir, "sink.log"),
	})
	cancel()
	if err != nil {
		return err
	}
	if b.sink, err = loadgen.NewSinkClient(sinkURL); err != nil {
		return err
	}
	b.sinkURL = sinkURL
	if rep.PacedFloor, err = b.pacedFloor(ctx); err != nil {
		return err
	}
	for _, c := range cfgs {
		r, err := scaleRun(ctx, b, c)
		if err != nil {
			return fmt.Errorf("%s: %w", c.Name, err)
		}
		r.Paced.Floor = rep.PacedFloor
		rep.Configs = append(rep.Configs, r)
	}
	rep.Machine.LoadAfter = loadAvg()
	setRatios(rep.Configs)
	rep.CoresNeeded = coresNeeded(rep.Configs)
	rep.Targets = scaleTargets(rep)
	if f.json {
		return writeJSON(stdout, rep)
	}
	printScale(stdout, rep)
	return nil
}

// scaleRun measures one configuration: its cluster (on JetStream) and
// relays live for this call only.
func scaleRun(ctx context.Context, b *relayBench, c scaleConfig) (scaleResult, error) {
	res := scaleResult{Name: c.Name, Relays: c.Relays, Store: "badger"}
	var store string
	if c.JetStream {
		res.Store = "jetstream R3"
		b.p.printf("%s: starting a three-node JetStream cluster", c.Name)
		cctx, cancel := context.WithTimeout(ctx, b.startTimeout)
		cl, err := jscluster.Start(cctx, jscluster.Options{Dir: filepath.Join(b.dir, c.Name+"-nats")})
		cancel()
		if err != nil {
			return res, err
		}
		defer cl.Close() // after the relays stop: deferred before theirs
		store = storeYAML(cl.URLs(), "bench")
	}
	relays := make([]*loadgen.Process, 0, c.Relays)
	defer func() { stopAll(relays) }()
	urls := make([]string, 0, c.Relays)
	for i := range c.Relays {
		// One at a time: the first makes the streams and buckets.
		proc, url, err := startScaleRelay(ctx, b, fmt.Sprintf("%s-relay%d", c.Name, i+1), store)
		if err != nil {
			return res, err
		}
		relays = append(relays, proc)
		urls = append(urls, url)
	}
	// Paced first, on empty stores: a throughput phase leaves a backlog
	// wherever delivery is slower than ingest (on JetStream it is today),
	// and paced events would queue behind it.
	if err := b.sink.Reset(ctx); err != nil {
		return res, err
	}
	if b.warmup > 0 {
		b.p.printf("%s: warm-up, paced %.0f events/s for %v", c.Name, b.rate, b.warmup)
		warm, err := pacedAll(ctx, b, urls, b.warmup)
		if err != nil {
			return res, err
		}
		if _, drained, err := b.drain(ctx, mergePaced(warm).Accepted); err != nil {
			return res, err
		} else if !drained {
			b.p.printf("%s: warm-up not delivered within %v", c.Name, b.drainTimeout)
		}
	}
	sleepCtx(ctx, b.settle)
	if err := scalePaced(ctx, b, c.Name, relays, urls, &res); err != nil {
		return res, err
	}
	if err := scaleThroughput(ctx, b, c.Name, relays, urls, &res); err != nil {
		return res, err
	}
	return res, ctx.Err()
}

// storeYAML is the relay configuration's store section for servers.
func storeYAML(servers []string, prefix string) string {
	quoted := make([]string, len(servers))
	for i, s := range servers {
		quoted[i] = strconv.Quote(s)
	}
	return fmt.Sprintf("store:\n  servers: [%s]\n  replicas: 3\n  prefix: %s\n", strings.Join(quoted, ", "), strconv.Quote(prefix))
}

// startScaleRelay is relayBench.startRelay with a store section (none when
// store is "").
func startScaleRelay(ctx context.Context, b *relayBench, name, store string) (*loadgen.Process, string, error) {
	addr, err := loadgen.FreeAddr()
	if err != nil {
		return nil, "", err
	}
	cfg := filepath.Join(b.dir, name+".yaml")
	if err := writeScaleConfig(b, cfg, addr, name, store); err != nil {
		return nil, "", err
	}
	proc, err := b.g.Start(b.sidehookCommand("sidehook relay "+name, filepath.Join(b.dir, name+".log"), "relay", "--config", cfg))
	if err != nil {
		return nil, "", err
	}
	url := "http://" + addr
	sctx, cancel := context.WithTimeout(ctx, b.startTimeout)
	defer cancel()
	if _, err := proc.WaitHTTP(sctx, url+"/readyz"); err != nil {
		return nil, "", err
	}
	b.p.printf("%s at %s (pid %d)", name, url, proc.PID())
	return proc, url, nil
}

// writeScaleConfig writes the relay benchmark's configuration with a
// store section (none when store is "").
func writeScaleConfig(b *relayBench, path, listen, name, store string) error {
	if err := b.writeConfig(path, listen, filepath.Join(b.dir, name), b.sinkURL+"/webhooks", 0); err != nil {
		return err
	}
	if store == "" {
		return nil
	}
	if err := appendFile(path, store); err != nil {
		return fmt.Errorf("write relay config: %w", err)
	}
	return nil
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// stopAll stops the relays together: each may take a moment to finish its
// deliveries in flight.
func stopAll(procs []*loadgen.Process) {
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(func() { p.Stop(30 * time.Second) })
	}
	wg.Wait()
}

// splitConns shares total connections over n relays as evenly as can be.
func splitConns(total, n int) []int {
	conns := make([]int, n)
	for i := range conns {
		conns[i] = total / n
		if i < total%n {
			conns[i]++
		}
	}
	return conns
}

// ingestAll runs one closed loop per relay at once, the connections split
// over them, every loop drawing from src.
func ingestAll(ctx context.Context, conns int, d time.Duration, hint int, urls []string, src loadgen.Source) ([]loadgen.Result, error) {
	split := splitConns(conns, len(urls))
	results := make([]loadgen.Result, len(urls))
	errs := make([]error, len(urls))
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Go(func() {
			loop := loadgen.ClosedLoop{Workers: split[i], Duration: d, SampleHint: hint / len(urls)}
			results[i], errs[i] = loop.Run(ctx, u, src)
		})
	}
	wg.Wait()
	return results, errors.Join(errs...)
}

// mergeResults adds up runs made at the same time: counts summed, the
// window from the first start to the last answer, the first failures of
// the first run that had one. Latency stays empty: percentiles of
// separate runs do not merge.
func mergeResults(rs []loadgen.Result) loadgen.Result {
	var m loadgen.Result
	var end time.Time
	for _, r := range rs {
		m.Requests += r.Requests
		m.OK += r.OK
		m.Non2xx += r.Non2xx
		m.Errors += r.Errors
		m.Exhausted = m.Exhausted || r.Exhausted
		if m.FirstError == "" {
			m.FirstError = r.FirstError
		}
		if m.FirstNon2xx == "" {
			m.FirstNon2xx = r.FirstNon2xx
		}
		if m.Start.IsZero() || r.Start.Before(m.Start) {
			m.Start = r.Start
		}
		if e := r.Start.Add(r.Elapsed); e.After(end) {
			end = e
		}
	}
	if !m.Start.IsZero() {
		m.Elapsed = end.Sub(m.Start)
	}
	return m
}

// cpuTimes reads the relays' CPU times and this process's, summed.
func cpuTimes(relays []*loadgen.Process) (relay, self time.Duration, err error) {
	for _, p := range relays {
		t, err := p.CPUTime()
		if err != nil {
			return 0, 0, err
		}
		relay += t
	}
	self, err = loadgen.ReadCPUTime(os.Getpid())
	return relay, self, err
}

// scaleThroughput is relayBench.throughput over several relays, after
// the paced phase (which warmed them up).
func scaleThroughput(ctx context.Context, b *relayBench, name string, relays []*loadgen.Process, urls []string, res *scaleResult) error {
	reqs := make([]loadgen.Request, scalePoolSize(b.pool, b.duration))
	for i := range reqs {
		reqs[i] = loadgen.IngestRequest(b.apiKey, b.body())
	}
	if err := b.sink.Reset(ctx); err != nil {
		return err
	}
	pool := loadgen.NewPool(reqs, b.ingestGen())
	b.p.printf("%s: %v of ingest over %d relays, then until the sink has every accepted event", name, b.duration, len(urls))
	relayBefore, selfBefore, cpuErr := cpuTimes(relays)
	rs, err := withoutGC(func() ([]loadgen.Result, error) {
		return ingestAll(ctx, b.conns, b.duration, len(reqs), urls, pool)
	})
	if err != nil {
		return err
	}
	all := mergeResults(rs)
	st, drained, err := b.drain(ctx, all.OK)
	if err != nil {
		return err
	}
	relayAfter, selfAfter, cpuErrAfter := cpuTimes(relays)
	arrivals, err := b.sink.Arrivals(ctx)
	if err != nil {
		return err
	}
	for i, r := range rs {
		res.IngestPerRelay = append(res.IngestPerRelay, newRunReport(fmt.Sprintf("%s relay %d", name, i+1), r))
	}
	res.Ingest = newRunReport(name+" ingest (202)", all)
	res.Ingest.Generated = pool.Generated()
	res.Accepted, res.Delivered, res.Duplicates, res.Drained = all.OK, st.Unique, st.Duplicates, drained
	res.arrivalCounts = countArrivals(arrivals, all.Start, b.duration)
	if res.Ingest.OKPerSec > 0 {
		res.Kept = res.DeliveredPerSec / res.Ingest.OKPerSec
	}
	if cpuErr == nil && cpuErrAfter == nil && st.Unique > 0 {
		res.RelayCPUPerEventUs = perEventUs(relayAfter-relayBefore, st.Unique)
		res.LoadgenCPUPerEventUs = perEventUs(selfAfter-selfBefore, st.Unique)
	}
	return nil
}

func perEventUs(d time.Duration, events int64) float64 {
	return float64(d.Microseconds()) / float64(events)
}

// scalePaced is relayBench.paced over several relays, with the CPU per
// event of a store without a backlog.
func scalePaced(ctx context.Context, b *relayBench, name string, relays []*loadgen.Process, urls []string, res *scaleResult) error {
	if err := b.sink.Reset(ctx); err != nil {
		return err
	}
	b.p.printf("%s: paced %.0f events/s over %d relays for %v", name, b.rate, len(urls), b.pacedDuration)
	relayBefore, selfBefore, cpuErr := cpuTimes(relays)
	results, err := pacedAll(ctx, b, urls, b.pacedDuration)
	if err != nil {
		return err
	}
	rep := mergePaced(results)
	rep.Rate, rep.DurationS = b.rate, b.pacedDuration.Seconds()
	st, _, err := b.drain(ctx, rep.Accepted)
	if err != nil {
		return err
	}
	relayAfter, selfAfter, cpuErrAfter := cpuTimes(relays)
	if cpuErr == nil && cpuErrAfter == nil && st.Unique > 0 {
		res.PacedRelayCPUPerEventUs = perEventUs(relayAfter-relayBefore, st.Unique)
		res.PacedLoadgenCPUPerEventUs = perEventUs(selfAfter-selfBefore, st.Unique)
	}
	arrivals, err := b.sink.Arrivals(ctx)
	if err != nil {
		return err
	}
	var sent []loadgen.Sent
	for _, r := range results {
		sent = append(sent, r.Sent...)
	}
	lat, problem := ingestToArrival(sent, arrivals)
	if rep.FirstErr == "" {
		rep.FirstErr = problem
	}
	rep.Matched = len(lat)
	rep.EndToEnd = newLatencyReport(loadgen.Summarize(lat))
	res.Paced = rep
	return nil
}

// pacedAll runs the paced rate for d, split evenly over the relays, each
// share on its own schedule.
func pacedAll(ctx context.Context, b *relayBench, urls []string, d time.Duration) ([]loadgen.PacedResult, error) {
	results := make([]loadgen.PacedResult, len(urls))
	errs := make([]error, len(urls))
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Go(func() {
			pc := loadgen.Paced{Rate: b.rate / float64(len(urls)), Duration: d, KeepBody: 4096}
			results[i], errs[i] = pc.Run(ctx, u, b.ingestGen())
		})
	}
	wg.Wait()
	return results, errors.Join(errs...)
}

// scalePoolRate is the ingest rate the precomputed requests are sized
// for: above what a relay ingests on loopback (about 4,000/s in
// docs/BENCHMARKS.md), so the client rarely builds one in the window.
// The paced warm-up says nothing of the closed loop's rate.
const scalePoolRate = 10_000

// scalePoolSize is --pool, or scalePoolRate for the run's duration.
func scalePoolSize(pool int, d time.Duration) int {
	if pool > 0 {
		return pool
	}
	return int(scalePoolRate * d.Seconds())
}

// mergePaced is the client's side of paced runs made at the same time:
// every record of them in one latency summary.
func mergePaced(rs []loadgen.PacedResult) *pacedReport {
	rep := &pacedReport{}
	var answered []time.Duration
	var lag time.Duration
	for _, r := range rs {
		rep.Sent += len(r.Sent)
		rep.Accepted += r.OK
		lag = max(lag, r.Lag)
		if rep.FirstErr == "" {
			rep.FirstErr = r.FirstError
		}
		if rep.FirstErr == "" {
			rep.FirstErr = r.FirstNon2xx
		}
		for _, s := range r.Sent {
			if s.Err == "" {
				answered = append(answered, s.Latency)
			}
		}
	}
	rep.Ingest = newLatencyReport(loadgen.Summarize(answered))
	rep.LagMs = ms(lag)
	return rep
}

// setRatios sets each jsN's delivered/s over N times js1's, when js1 ran
// and delivered.
func setRatios(rs []scaleResult) {
	var one float64
	for _, r := range rs {
		if r.Name == "js1" {
			one = r.DeliveredPerSec
		}
	}
	if one <= 0 {
		return
	}
	for i := range rs {
		if r := &rs[i]; strings.HasPrefix(r.Name, "js") {
			ratio := r.DeliveredPerSec / (float64(r.Relays) * one)
			r.Ratio = &ratio
		}
	}
}

// coresNeeded is how many CPUs the largest jsN of the run needs before N
// relays can deliver N times as much: a core for each relay, another for
// its share of the three NATS nodes (every event written three times),
// and one each for the load generator's client and the sink. Below it the
// relays take turns on the same cores, and delivered/s stays flat however
// many there are; the CPU per event still compares.
func coresNeeded(rs []scaleResult) int {
	most := 0
	for _, r := range rs {
		if strings.HasPrefix(r.Name, "js") {
			most = max(most, r.Relays)
		}
	}
	if most < 2 {
		return 0
	}
	return 2*most + 2
}

// scaleTargets are issue #18's: N relays on JetStream deliver at least
// 0.8·N times one; and, everywhere, every accepted event delivered.
func scaleTargets(r scaleReport) []target {
	var ts []target
	for _, c := range r.Configs {
		ts = append(ts, newTarget(c.Name+": every accepted event delivered", "delivered = accepted",
			fmt.Sprintf("%d = %d", c.Delivered, c.Accepted), c.Drained, true))
	}
	for _, c := range r.Configs {
		if c.Ratio == nil || c.Relays < 2 {
			continue
		}
		t := newTarget(fmt.Sprintf("%s delivered/s ÷ (%d × js1)", c.Name, c.Relays), ">= 0.8",
			fmt.Sprintf("%.2f", *c.Ratio), *c.Ratio >= 0.8, true)
		if need := 2*c.Relays + 2; r.Machine.CPUs < need {
			t.Met = false
			t.Status = fmt.Sprintf("not shown: %d CPUs, needs %d", r.Machine.CPUs, need)
		}
		ts = append(ts, t)
	}
	return ts
}

func printScale(w io.Writer, r scaleReport) {
	printMachine(w, r.Machine)
	fmt.Fprintf(w, "load: %d keep-alive connections split over the relays, %d-byte bodies; endpoint max_in_flight %d per relay\n\n",
		r.Connections, r.BodyBytes, r.MaxInFlight)
	fmt.Fprintln(w, scaleTable(r.Configs, r.Rate))
	fmt.Fprintf(w, "paced floor, %.0f/s straight to the sink: send→arrival p50 %.2f ms, p99 %.2f ms\n",
		r.Rate, r.PacedFloor.P50Ms, r.PacedFloor.P99Ms)
	fmt.Fprintln(w, "relay CPU: every relay process, user+system, from the start of ingest until drained (or the drain timeout),")
	fmt.Fprintf(w, "per event delivered; at %.0f/s: the same over the paced phase, on a store without a backlog;\n", r.Rate)
	fmt.Fprintln(w, "loadgen CPU: this process the same way: the client, and on JetStream the three NATS nodes")
	for _, c := range r.Configs {
		var per []string
		for _, ir := range c.IngestPerRelay {
			per = append(per, fmt.Sprintf("%.0f/s", ir.OKPerSec))
		}
		fmt.Fprintf(w, "%s: accepted %d, delivered %d (drained %v, %.2f s after the window); ingest per relay %s\n",
			c.Name, c.Accepted, c.Delivered, c.Drained, c.DrainS, strings.Join(per, ", "))
		for _, ir := range append(c.IngestPerRelay, c.Ingest) {
			if ir.FirstError != "" {
				fmt.Fprintf(w, "  %s first error: %s\n", ir.Name, ir.FirstError)
			}
			if ir.FirstNon2xx != "" {
				fmt.Fprintf(w, "  %s first non-2xx: %s\n", ir.Name, ir.FirstNon2xx)
			}
		}
		if c.Ingest.Generated > 0 {
			fmt.Fprintf(w, "  note: ran out of precomputed requests; %d were built in the window\n", c.Ingest.Generated)
		}
		if c.Paced != nil && c.Paced.FirstErr != "" {
			fmt.Fprintf(w, "  paced first problem: %s\n", c.Paced.FirstErr)
		}
	}
	if r.CoresNeeded > r.Machine.CPUs {
		fmt.Fprintf(w, "\nthis machine has %d CPUs; showing N relays deliver N times one needs %d (a core per relay, one per\n"+
			"relay for its share of NATS, the client and the sink): here the relays share the cores, so compare the CPU per event\n",
			r.Machine.CPUs, r.CoresNeeded)
	}
	fmt.Fprintln(w)
	printTargets(w, r.Targets)
}

// scaleTable is the run's table, one row per configuration.
func scaleTable(rs []scaleResult, rate float64) string {
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "config\trelays\tstore\tingest/s\tdelivered/s\tdelivered÷ingest\tduplicates\tpaced %.0f/s p50 ms\tp99 ms\trelay CPU/event µs\tat %.0f/s\tloadgen CPU/event µs\tat %.0f/s\tdelivered ÷ (N × js1)\t\n", rate, rate, rate)
	for _, r := range rs {
		p50, p99 := "—", "—"
		if r.Paced != nil && r.Paced.Matched > 0 {
			p50, p99 = fmt.Sprintf("%.2f", r.Paced.EndToEnd.P50Ms), fmt.Sprintf("%.2f", r.Paced.EndToEnd.P99Ms)
		}
		ratio := "—"
		if r.Ratio != nil {
			ratio = fmt.Sprintf("%.2f", *r.Ratio)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.0f\t%.0f\t%.2f\t%d\t%s\t%s\t%.1f\t%.1f\t%.1f\t%.1f\t%s\t\n",
			r.Name, r.Relays, r.Store, r.Ingest.OKPerSec, r.DeliveredPerSec, r.Kept, r.Duplicates,
			p50, p99, r.RelayCPUPerEventUs, r.PacedRelayCPUPerEventUs, r.LoadgenCPUPerEventUs, r.PacedLoadgenCPUPerEventUs, ratio)
	}
	tw.Flush()
	return sb.String()
}
