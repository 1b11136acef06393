package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sidehook/sidehook/bench/loadgen"
)

// relayReport is the result of `loadgen relay`; a phase not run is nil.
type relayReport struct {
	Machine     machine         `json:"machine"`
	Connections int             `json:"connections"`
	BodyBytes   int             `json:"body_bytes"`
	MaxInFlight int             `json:"endpoint_max_in_flight"`
	Direct      *directReport   `json:"direct,omitempty"`
	Forward     *deliveryReport `json:"forward,omitempty"`
	Relay       *deliveryReport `json:"relay,omitempty"`
	Paced       *pacedReport    `json:"paced,omitempty"`
	Backlog     *backlogReport  `json:"backlog,omitempty"`
	Targets     []target        `json:"targets"`
}

// directReport is (a): the load posted straight to the sink.
type directReport struct {
	runReport
	SinkUnique int64 `json:"sink_unique"`
}

// deliveryReport is (b): the same load through the relay (or the
// forwarder), counted at the sink from the start of ingest until the
// backlog has drained.
type deliveryReport struct {
	Ingest runReport `json:"ingest"` // the producer's view: 202s
	deliveryCounts
	Ratio float64 `json:"ratio_to_direct"`
	// CPUPerEventUs is the relay's (or the forwarder's) process CPU time (user and system)
	// from the start of ingest until the backlog drained, per event
	// delivered: what one event costs, ingest and delivery together.
	CPUPerEventUs float64 `json:"relay_cpu_per_event_us,omitempty"`
}

// pacedReport is (c): ingest-to-arrival latency at a steady rate.
type pacedReport struct {
	Rate      float64       `json:"rate"`
	DurationS float64       `json:"duration_s"`
	Sent      int           `json:"sent"`
	Accepted  int64         `json:"accepted"`
	Matched   int           `json:"matched"` // accepted events seen at the sink
	Ingest    latencyReport `json:"ingest"`  // POST /v1/events answer time
	EndToEnd  latencyReport `json:"end_to_end"`
	// Floor is the same rate posted straight to the sink, send to
	// arrival: one HTTP hop between two processes, where the relay's path
	// has two and a durable write between them.
	Floor latencyReport `json:"direct_floor"`
	// DiskSync is one write of a durable accept's size and its fdatasync,
	// at the same rate, on the relay's file system: the disk's part of
	// the path, which the relay's code cannot go below.
	DiskSync      latencyReport `json:"disk_sync"`
	DiskSyncBytes int           `json:"disk_sync_bytes"`
	LagMs         float64       `json:"client_lag_ms"`
	FirstErr      string        `json:"first_error,omitempty"`
}

// backlogReport is (d): an endpoint down, a large backlog, a kill -9 and
// a restart on the same data.
type backlogReport struct {
	Target         int64   `json:"target"`
	Accepted       int64   `json:"accepted"`
	Non2xx         int64   `json:"non_2xx"`
	Errors         int64   `json:"errors"`
	FirstNon2xx    string  `json:"first_non_2xx,omitempty"`
	FirstError     string  `json:"first_error,omitempty"`
	ElapsedS       float64 `json:"elapsed_s"`
	IngestPerSec   float64 `json:"ingest_per_s"`
	WorstChunkP99  float64 `json:"worst_chunk_p99_ms"`
	PeakRSSMiB     float64 `json:"peak_rss_mib"`
	RSSMiB         float64 `json:"rss_mib"`
	DiskMiB        float64 `json:"disk_mib"`
	RestartReadyS  float64 `json:"restart_ready_s"`
	RestartPeakMiB float64 `json:"restart_peak_rss_mib"`
}

const relayUsage = `usage: loadgen relay --sidehook PATH [flags]

Measures, in one run: (a) the load posted straight to a sink (a child
process that answers 200 and records arrival times by webhook-id); (f) the
same load through a bare forwarder (a child that answers 202 and posts each
body on: two HTTP hops and nothing else, what the machine allows a relay);
(b) the same load through 'sidehook relay' to that sink, counted at the sink
until the backlog drains; (c) a paced rate through the relay,
ingest-to-arrival latency per event; (d) with the endpoint down, --backlog
events ingested, the relay's peak RSS, then kill -9 and the time until a
restart on the same data answers /readyz.
`

type relayFlags struct {
	common
	phases         string
	maxInFlight    int
	drainTimeout   time.Duration
	rate           float64
	pacedDuration  time.Duration
	backlog        int64
	backlogTimeout time.Duration
	settle         time.Duration
	restartTimeout time.Duration
}

func runRelay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f relayFlags
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, relayUsage); fs.PrintDefaults() }
	f.register(fs)
	fs.StringVar(&f.phases, "phases", "direct,forward,relay,paced,backlog", "phases to run, comma-separated")
	fs.IntVar(&f.maxInFlight, "max-in-flight", 32, "the endpoint's max_in_flight (as many as the client's connections)")
	fs.DurationVar(&f.drainTimeout, "drain-timeout", time.Minute, "bound on waiting for the relay to deliver what it accepted")
	fs.Float64Var(&f.rate, "rate", 50, "events per second of the paced phase")
	fs.DurationVar(&f.pacedDuration, "paced-duration", 10*time.Second, "length of the paced phase")
	fs.Int64Var(&f.backlog, "backlog", 1_000_000, "events to queue for a down endpoint")
	fs.DurationVar(&f.backlogTimeout, "backlog-timeout", 25*time.Minute, "bound on ingesting the backlog (a million took 13 min on 2 cores)")
	fs.DurationVar(&f.settle, "settle", 5*time.Second, "pause before the paced phase, and after the backlog and the restart before reading memory")
	fs.DurationVar(&f.restartTimeout, "restart-timeout", time.Minute, "bound on waiting for the restarted relay's /readyz")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := f.check("relay"); err != nil {
		return err
	}
	phases := map[string]bool{}
	for _, ph := range strings.Split(f.phases, ",") {
		ph = strings.TrimSpace(ph)
		if !slices.Contains([]string{"direct", "forward", "relay", "paced", "backlog"}, ph) {
			return usageErrorf("relay: --phases: unknown phase %q (want direct, forward, relay, paced, backlog)", ph)
		}
		phases[ph] = true
	}
	switch {
	case f.maxInFlight < 1:
		return usageErrorf("relay: --max-in-flight must be positive")
	case f.rate <= 0 || f.pacedDuration <= 0:
		return usageErrorf("relay: --rate and --paced-duration must be positive")
	case f.backlog < 1:
		return usageErrorf("relay: --backlog must be positive (leave backlog out of --phases to skip it)")
	case f.drainTimeout <= 0 || f.backlogTimeout <= 0 || f.settle < 0 || f.restartTimeout <= 0:
		return usageErrorf("relay: timeouts must be positive")
	}

	p := progress{stderr}
	dir, self, err := f.setup()
	if err != nil {
		return err
	}
	defer f.cleanup(dir, p)
	var g loadgen.Group
	defer g.Close()

	b := &relayBench{relayFlags: f, p: p, g: &g, dir: dir, apiKey: "key_" + randomHex(16), secret: randomHex(32)}
	rep := relayReport{Machine: readMachine(), Connections: f.conns, BodyBytes: f.bodySize, MaxInFlight: f.maxInFlight}

	if phases["direct"] || phases["forward"] || phases["relay"] || phases["paced"] {
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
	}
	if phases["direct"] {
		if rep.Direct, err = b.direct(ctx); err != nil {
			return err
		}
	}
	if phases["forward"] {
		if rep.Forward, err = b.forward(ctx, self, rep.Direct); err != nil {
			return err
		}
	}
	if phases["relay"] || phases["paced"] {
		relay, relayURL, err := b.startRelay(ctx, "relay", b.sinkURL+"/webhooks", 0)
		if err != nil {
			return err
		}
		if phases["relay"] {
			if rep.Relay, err = b.throughput(ctx, "relay", relay, relayURL); err != nil {
				return err
			}
			rep.Relay.Ratio = ratioTo(rep.Relay, rep.Direct)
			b.bodies = nil // nothing after this phase needs them
		}
		if phases["paced"] {
			// Let the throughput phase's compactions finish: the paced
			// phase measures a relay at rest, not one catching up.
			sleepCtx(ctx, b.settle)
			if rep.Paced, err = b.paced(ctx, relayURL); err != nil {
				return err
			}
		}
		relay.Stop(30 * time.Second)
	}
	if phases["backlog"] {
		if rep.Backlog, err = b.backlogPhase(ctx); err != nil {
			return err
		}
	}
	rep.Machine.LoadAfter = loadAvg()
	rep.Targets = relayTargets(rep)
	if f.json {
		return writeJSON(stdout, rep)
	}
	printRelay(stdout, rep)
	return nil
}

// relayBench holds what the phases share.
type relayBench struct {
	relayFlags
	p       progress
	g       *loadgen.Group
	dir     string
	apiKey  string
	secret  string
	sink    *loadgen.SinkClient
	sinkURL string
	seq     atomic.Int64
	bodies  [][]byte // the direct phase's bodies, sent again through the relay
}

func (b *relayBench) body() []byte { return loadgen.WebhookBody(b.seq.Add(1), b.bodySize) }

func (b *relayBench) ingestGen() loadgen.SourceFunc {
	return loadgen.SourceFunc(func() (loadgen.Request, error) {
		return loadgen.IngestRequest(b.apiKey, b.body()), nil
	})
}

func (b *relayBench) direct(ctx context.Context) (*directReport, error) {
	gen := loadgen.SourceFunc(func() (loadgen.Request, error) {
		return loadgen.DeliveryRequest("/webhooks", b.seq.Add(1), b.bodySize, nil, time.Now())
	})
	var warm loadgen.Result
	var err error
	if b.warmup > 0 {
		b.p.printf("direct: warm-up %v", b.warmup)
		if warm, err = (loadgen.ClosedLoop{Workers: b.conns, Duration: b.warmup}).Run(ctx, b.sinkURL, gen); err != nil {
			return nil, err
		}
	}
	n := b.poolSize(warm)
	b.p.printf("direct: precomputing %d requests", n)
	reqs, err := loadgen.Precompute(ctx, n, runtime.NumCPU(), func(int) (loadgen.Request, error) { return gen() })
	if err != nil {
		return nil, err
	}
	if err := b.sink.Reset(ctx); err != nil {
		return nil, err
	}
	pool := loadgen.NewPool(reqs, gen)
	b.p.printf("direct: %v", b.duration)
	res, err := withoutGC(func() (loadgen.Result, error) {
		return loadgen.ClosedLoop{Workers: b.conns, Duration: b.duration, SampleHint: n}.Run(ctx, b.sinkURL, pool)
	})
	if err != nil {
		return nil, err
	}
	st, err := b.sink.Stats(ctx)
	if err != nil {
		return nil, err
	}
	rep := &directReport{runReport: newRunReport("direct to sink", res), SinkUnique: st.Unique}
	rep.Generated = pool.Generated()
	b.bodies = make([][]byte, len(reqs))
	for i, r := range reqs {
		b.bodies[i] = r.Body
	}
	return rep, nil
}

// startRelay writes a one-organisation config (one endpoint, every event)
// and starts `sidehook relay` on it, waiting for /readyz.
func (b *relayBench) startRelay(ctx context.Context, name, endpointURL string, maxQueue int64) (*loadgen.Process, string, error) {
	addr, err := loadgen.FreeAddr()
	if err != nil {
		return nil, "", err
	}
	cfg := filepath.Join(b.dir, name+".yaml")
	if err := b.writeConfig(cfg, addr, filepath.Join(b.dir, name), endpointURL, maxQueue); err != nil {
		return nil, "", err
	}
	cmd := b.sidehookCommand("sidehook relay", filepath.Join(b.dir, name+".log"), "relay", "--config", cfg)
	proc, err := b.g.Start(cmd)
	if err != nil {
		return nil, "", err
	}
	url := "http://" + addr
	sctx, cancel := context.WithTimeout(ctx, b.startTimeout)
	defer cancel()
	if _, err := proc.WaitHTTP(sctx, url+"/readyz"); err != nil {
		return nil, "", err
	}
	b.p.printf("sidehook relay at %s (pid %d, data %s)", url, proc.PID(), filepath.Join(b.dir, name))
	return proc, url, nil
}

func (b *relayBench) writeConfig(path, listen, data, endpointURL string, maxQueue int64) error {
	q := strconv.Quote
	var sb strings.Builder
	fmt.Fprintf(&sb, "listen: %s\ndata: %s\n", q(listen), q(data))
	if maxQueue > 0 {
		fmt.Fprintf(&sb, "limits:\n  max_queue: %d\n", maxQueue)
	}
	fmt.Fprintf(&sb, "organisations:\n  - id: bench\n    api_keys: [%s]\n    secret_key: %s\n", q(b.apiKey), q(b.secret))
	fmt.Fprintf(&sb, "    endpoints:\n      - id: sink\n        url: %s\n        events: [\"*\"]\n        max_in_flight: %d\n",
		q(endpointURL), b.maxInFlight)
	if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
		return fmt.Errorf("write relay config: %w", err)
	}
	return nil
}

// drain waits until the sink holds n distinct webhook-ids, bounded.
func (b *relayBench) drain(ctx context.Context, n int64) (loadgen.SinkStats, bool, error) {
	dctx, cancel := context.WithTimeout(ctx, b.drainTimeout)
	defer cancel()
	st, err := b.sink.WaitUnique(dctx, n)
	if err != nil && ctx.Err() != nil {
		return st, false, ctx.Err()
	}
	if err != nil && dctx.Err() == nil {
		return st, false, err
	}
	return st, st.Unique >= n, nil
}

// forward is (f): the throughput run through the bare forwarder.
func (b *relayBench) forward(ctx context.Context, self string, direct *directReport) (*deliveryReport, error) {
	sctx, cancel := context.WithTimeout(ctx, b.startTimeout)
	proc, url, err := b.g.StartServer(sctx, loadgen.Command{
		Name: "forwarder", Path: self, Log: filepath.Join(b.dir, "forward.log"),
		Args: []string{"serve-forward", "--to", b.sinkURL + "/webhooks", "--workers", strconv.Itoa(b.maxInFlight)},
	})
	cancel()
	if err != nil {
		return nil, err
	}
	defer proc.Stop(10 * time.Second)
	rep, err := b.throughput(ctx, "forward", proc, url)
	if err != nil {
		return nil, err
	}
	rep.Ratio = ratioTo(rep, direct)
	return rep, nil
}

// ratioTo is d's delivered/s ÷ the direct post's 2xx/s, 0 without one.
func ratioTo(d *deliveryReport, direct *directReport) float64 {
	if direct == nil || direct.OKPerSec <= 0 {
		return 0
	}
	return d.DeliveredPerSec / direct.OKPerSec
}

// throughput runs the ingest load through proc (the relay, or the
// forwarder), named name in the report, and counts it at the sink.
func (b *relayBench) throughput(ctx context.Context, name string, proc *loadgen.Process, relayURL string) (*deliveryReport, error) {
	var warm loadgen.Result
	var err error
	if b.warmup > 0 {
		b.p.printf("%s: warm-up %v", name, b.warmup)
		if warm, err = (loadgen.ClosedLoop{Workers: b.conns, Duration: b.warmup}).Run(ctx, relayURL, b.ingestGen()); err != nil {
			return nil, err
		}
		if _, drained, err := b.drain(ctx, warm.OK); err != nil {
			return nil, err
		} else if !drained {
			b.p.printf("%s: warm-up not delivered within %v", name, b.drainTimeout)
		}
	}
	reqs := make([]loadgen.Request, 0, max(len(b.bodies), b.poolSize(warm)))
	for _, body := range b.bodies {
		reqs = append(reqs, loadgen.IngestRequest(b.apiKey, body))
	}
	for len(reqs) < cap(reqs) {
		reqs = append(reqs, loadgen.IngestRequest(b.apiKey, b.body()))
	}
	if err := b.sink.Reset(ctx); err != nil {
		return nil, err
	}
	pool := loadgen.NewPool(reqs, b.ingestGen())
	b.p.printf("%s: %v of ingest, then until the sink has every accepted event", name, b.duration)
	cpuBefore, cpuErr := proc.CPUTime()
	res, err := withoutGC(func() (loadgen.Result, error) {
		return loadgen.ClosedLoop{Workers: b.conns, Duration: b.duration, SampleHint: len(reqs)}.Run(ctx, relayURL, pool)
	})
	if err != nil {
		return nil, err
	}
	st, drained, err := b.drain(ctx, res.OK)
	if err != nil {
		return nil, err
	}
	cpuAfter, cpuErrAfter := proc.CPUTime()
	arrivals, err := b.sink.Arrivals(ctx)
	if err != nil {
		return nil, err
	}
	rep := &deliveryReport{
		Ingest:         newRunReport(name+" ingest (202)", res),
		deliveryCounts: deliveryCounts{Accepted: res.OK, Delivered: st.Unique, Duplicates: st.Duplicates, Drained: drained},
	}
	rep.Ingest.Generated = pool.Generated()
	if cpuErr == nil && cpuErrAfter == nil && st.Unique > 0 {
		rep.CPUPerEventUs = float64((cpuAfter - cpuBefore).Microseconds()) / float64(st.Unique)
	}
	rep.arrivalCounts = countArrivals(arrivals, res.Start, b.duration)
	return rep, nil
}

// deliveryCounts is what a throughput run accepted and what reached the
// sink: `loadgen relay`'s and each `loadgen scale` configuration's.
type deliveryCounts struct {
	Accepted   int64 `json:"accepted"`
	Delivered  int64 `json:"delivered"` // distinct webhook-ids at the sink
	Duplicates int64 `json:"duplicates"`
	Drained    bool  `json:"drained"`
	arrivalCounts
}

// arrivalCounts is the sink's side of a throughput run.
type arrivalCounts struct {
	// InWindowPerSec counts arrivals during the ingest window only;
	// DeliveredPerSec every arrival, over the time from the start of
	// ingest to the last arrival.
	InWindow        int64   `json:"in_window"`
	InWindowPerSec  float64 `json:"in_window_per_s"`
	DrainS          float64 `json:"drain_after_window_s"`
	DeliveredPerSec float64 `json:"delivered_per_s"`
}

// countArrivals counts a throughput run's arrivals at the sink, its ingest
// window of length window having begun at start.
func countArrivals(arrivals []loadgen.Arrival, start time.Time, window time.Duration) arrivalCounts {
	var d arrivalCounts
	from := start.UnixNano()
	end := start.Add(window).UnixNano()
	var last int64
	for _, a := range arrivals {
		if a.At >= from && a.At <= end {
			d.InWindow++
		}
		last = max(last, a.At)
	}
	d.InWindowPerSec = float64(d.InWindow) / window.Seconds()
	if last > from {
		d.DeliveredPerSec = float64(len(arrivals)) / (float64(last-from) / 1e9)
	}
	if last > end {
		d.DrainS = float64(last-end) / 1e9
	}
	return d
}

func (b *relayBench) paced(ctx context.Context, relayURL string) (*pacedReport, error) {
	if err := b.sink.Reset(ctx); err != nil {
		return nil, err
	}
	floor, err := b.pacedFloor(ctx)
	if err != nil {
		return nil, err
	}
	// A write the size of an event's body and its records.
	syncBytes := b.bodySize + 1024
	b.p.printf("paced: %d writes of %d bytes with fdatasync at %.0f/s (the disk's floor)", diskSyncWrites, syncBytes, b.rate)
	disk, err := loadgen.DiskSync(ctx, b.dir, diskSyncWrites, syncBytes, time.Duration(float64(time.Second)/b.rate))
	if err != nil {
		return nil, err
	}
	if err := b.sink.Reset(ctx); err != nil {
		return nil, err
	}
	b.p.printf("paced: %.0f events/s for %v", b.rate, b.pacedDuration)
	res, err := loadgen.Paced{Rate: b.rate, Duration: b.pacedDuration, KeepBody: 4096}.Run(ctx, relayURL, b.ingestGen())
	if err != nil {
		return nil, err
	}
	rep := &pacedReport{
		Rate: b.rate, DurationS: b.pacedDuration.Seconds(), Sent: len(res.Sent), Accepted: res.OK,
		Ingest: newLatencyReport(res.Latency), LagMs: ms(res.Lag), FirstErr: res.FirstError,
	}
	if rep.FirstErr == "" {
		rep.FirstErr = res.FirstNon2xx
	}
	if _, _, err := b.drain(ctx, res.OK); err != nil {
		return nil, err
	}
	arrivals, err := b.sink.Arrivals(ctx)
	if err != nil {
		return nil, err
	}
	lat, problem := ingestToArrival(res.Sent, arrivals)
	if rep.FirstErr == "" {
		rep.FirstErr = problem
	}
	rep.Matched = len(lat)
	rep.EndToEnd = newLatencyReport(loadgen.Summarize(lat))
	rep.Floor = floor
	rep.DiskSync, rep.DiskSyncBytes = newLatencyReport(disk), syncBytes
	return rep, nil
}

// ingestToArrival matches the ingest requests the relay accepted with
// their arrivals at the sink, by the id of the relay's answer: the time
// from each send to its arrival, and the first accepted answer without an
// id ("" when none).
func ingestToArrival(sent []loadgen.Sent, arrivals []loadgen.Arrival) ([]time.Duration, string) {
	at := make(map[string]int64, len(arrivals))
	for _, a := range arrivals {
		at[a.ID] = a.At
	}
	var lat []time.Duration
	var problem string
	for _, s := range sent {
		if s.Status/100 != 2 {
			continue
		}
		var ans loadgen.IngestAnswer
		if json.Unmarshal(s.Body, &ans) != nil || ans.ID == "" {
			if problem == "" {
				problem = fmt.Sprintf("202 without an id: %.200s", s.Body)
			}
			continue
		}
		if arrived, ok := at[ans.ID]; ok {
			lat = append(lat, time.Duration(arrived-s.At.UnixNano()))
		}
	}
	return lat, problem
}

// pacedFloor posts the paced rate straight to the sink and measures send
// to arrival: what the machine's scheduler and loopback cost one hop.
func (b *relayBench) pacedFloor(ctx context.Context) (latencyReport, error) {
	gen := loadgen.SourceFunc(func() (loadgen.Request, error) {
		return loadgen.DeliveryRequest("/webhooks", b.seq.Add(1), b.bodySize, nil, time.Now())
	})
	b.p.printf("paced: %.0f events/s for %v straight to the sink (the floor)", b.rate, b.pacedDuration)
	res, err := loadgen.Paced{Rate: b.rate, Duration: b.pacedDuration}.Run(ctx, b.sinkURL, gen)
	if err != nil {
		return latencyReport{}, err
	}
	arrivals, err := b.sink.Arrivals(ctx)
	if err != nil {
		return latencyReport{}, err
	}
	at := make(map[string]int64, len(arrivals))
	for _, a := range arrivals {
		at[a.ID] = a.At
	}
	var lat []time.Duration
	for _, s := range res.Sent {
		if arrived, ok := at[s.ID]; ok && s.Status/100 == 2 {
			lat = append(lat, time.Duration(arrived-s.At.UnixNano()))
		}
	}
	return newLatencyReport(loadgen.Summarize(lat)), nil
}

// chunk is how many backlog events go in one closed-loop round: a
// progress line each, and a kill costs at most one round.
const chunk = 100_000

// diskSyncWrites is how many synced writes measure the disk's floor.
const diskSyncWrites = 200

func (b *relayBench) backlogPhase(ctx context.Context) (*backlogReport, error) {
	down, err := loadgen.FreeAddr()
	if err != nil {
		return nil, err
	}
	relay, relayURL, err := b.startRelay(ctx, "relay-backlog", "http://"+down+"/webhooks", max(1_000_000, 2*b.backlog))
	if err != nil {
		return nil, err
	}
	rep := &backlogReport{Target: b.backlog}
	gen := b.ingestGen()
	start := time.Now()
	deadline := start.Add(b.backlogTimeout)
	var sent int64
	for sent < b.backlog {
		left := time.Until(deadline)
		if left <= 0 {
			b.p.printf("backlog: timed out after %d events", rep.Accepted)
			break
		}
		n := min(chunk, b.backlog-sent)
		res, err := loadgen.ClosedLoop{Workers: b.conns, Duration: left, MaxRequests: n, SampleHint: int(n)}.Run(ctx, relayURL, gen)
		if err != nil {
			return nil, err
		}
		sent += res.Requests + res.Errors
		rep.Accepted += res.OK
		rep.Non2xx += res.Non2xx
		rep.Errors += res.Errors
		rep.WorstChunkP99 = max(rep.WorstChunkP99, ms(res.Latency.P99))
		if rep.FirstNon2xx == "" {
			rep.FirstNon2xx = res.FirstNon2xx
		}
		if rep.FirstError == "" {
			rep.FirstError = res.FirstError
		}
		b.p.printf("backlog: %d of %d accepted (%.0f/s in this round, %d non-2xx, %d errors)",
			rep.Accepted, b.backlog, res.OKPerSecond(), rep.Non2xx, rep.Errors)
		if res.OK == 0 {
			b.p.printf("backlog: nothing accepted in a round; stopping")
			break
		}
	}
	elapsed := time.Since(start)
	rep.ElapsedS = elapsed.Seconds()
	rep.IngestPerSec = float64(rep.Accepted) / elapsed.Seconds()
	if b.settle > 0 {
		b.p.printf("backlog: settling %v", b.settle)
		sleepCtx(ctx, b.settle)
	}
	mem, err := relay.MemStatus()
	if err != nil {
		return nil, err
	}
	rep.PeakRSSMiB, rep.RSSMiB = mib(mem.HWM), mib(mem.RSS)
	rep.DiskMiB = float64(dirSize(filepath.Join(b.dir, "relay-backlog"))) / (1 << 20)

	b.p.printf("backlog: kill -9 and restart on the same data")
	relay.Kill()
	cmd := b.sidehookCommand("sidehook relay (restart)", filepath.Join(b.dir, "relay-backlog-restart.log"),
		"relay", "--config", filepath.Join(b.dir, "relay-backlog.yaml"))
	t0 := time.Now()
	again, err := b.g.Start(cmd)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, b.restartTimeout)
	defer cancel()
	if _, err := again.WaitHTTP(rctx, relayURL+"/readyz"); err != nil {
		return nil, err
	}
	rep.RestartReadyS = time.Since(t0).Seconds()
	if b.settle > 0 {
		sleepCtx(ctx, b.settle)
	}
	if mem, err := again.MemStatus(); err == nil {
		rep.RestartPeakMiB = mib(mem.HWM)
	}
	again.Stop(30 * time.Second)
	return rep, ctx.Err()
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func relayTargets(r relayReport) []target {
	var ts []target
	{
		d := r.Relay
		if d == nil {
			d = &deliveryReport{}
		}
		keep := 0.0
		if d.Ingest.OKPerSec > 0 {
			keep = d.DeliveredPerSec / d.Ingest.OKPerSec
		}
		ts = append(ts, newTarget("relay delivered/s ÷ direct", ">= 0.25", fmt.Sprintf("%.2f", d.Ratio),
			d.Ratio >= 0.25, r.Relay != nil && r.Direct != nil),
			newTarget("relay delivered/s ÷ its ingest/s", ">= 0.9", fmt.Sprintf("%.2f", keep), keep >= 0.9, r.Relay != nil),
			newTarget("every accepted event delivered", "delivered = accepted",
				fmt.Sprintf("%d = %d", d.Delivered, d.Accepted), d.Drained, r.Relay != nil))
	}
	{
		pc := r.Paced
		if pc == nil {
			pc = &pacedReport{}
		}
		measured := r.Paced != nil && pc.Matched > 0
		ts = append(ts,
			newTarget(fmt.Sprintf("paced %.0f/s ingest→arrival p50", pc.Rate), "<= 1 ms",
				fmt.Sprintf("%.2f ms", pc.EndToEnd.P50Ms), pc.EndToEnd.P50Ms <= 1, measured),
			newTarget(fmt.Sprintf("paced %.0f/s ingest→arrival p99", pc.Rate), "<= 5 ms",
				fmt.Sprintf("%.2f ms", pc.EndToEnd.P99Ms), pc.EndToEnd.P99Ms <= 5, measured))
	}
	{
		bk := r.Backlog
		if bk == nil {
			bk = &backlogReport{}
		}
		full := r.Backlog != nil && bk.Accepted >= bk.Target
		ts = append(ts,
			newTarget(fmt.Sprintf("peak RSS, %d queued", bk.Target), "<= 128 MiB",
				fmt.Sprintf("%.1f MiB", bk.PeakRSSMiB), bk.PeakRSSMiB <= 128, full),
			newTarget("restart ready", "<= 1 s", fmt.Sprintf("%.2f s", bk.RestartReadyS), bk.RestartReadyS <= 1,
				r.Backlog != nil && bk.RestartReadyS > 0))
	}
	return ts
}

// printDelivery prints a throughput run through name, if it ran.
func printDelivery(w io.Writer, name string, d *deliveryReport) {
	if d == nil {
		return
	}
	fmt.Fprintf(w, "%s: accepted %d, delivered %d (%d duplicates, drained %v), %.0f delivered/s end to end, ratio to direct %.2f\n",
		name, d.Accepted, d.Delivered, d.Duplicates, d.Drained, d.DeliveredPerSec, d.Ratio)
	fmt.Fprintf(w, "       %d arrived in the ingest window (%.0f/s); the rest %.2f s after it\n",
		d.InWindow, d.InWindowPerSec, d.DrainS)
	if d.CPUPerEventUs > 0 {
		fmt.Fprintf(w, "       %s CPU per event (user+system, ingest and delivery): %.1f µs\n", name, d.CPUPerEventUs)
	}
}

func printRelay(w io.Writer, r relayReport) {
	printMachine(w, r.Machine)
	fmt.Fprintf(w, "load: %d keep-alive connections, %d-byte bodies; endpoint max_in_flight %d\n\n",
		r.Connections, r.BodyBytes, r.MaxInFlight)
	var runs []runReport
	if r.Direct != nil {
		runs = append(runs, r.Direct.runReport)
	}
	if r.Forward != nil {
		runs = append(runs, r.Forward.Ingest)
	}
	if r.Relay != nil {
		runs = append(runs, r.Relay.Ingest)
	}
	if len(runs) > 0 {
		printRuns(w, runs...)
		fmt.Fprintln(w)
	}
	if d := r.Direct; d != nil {
		fmt.Fprintf(w, "direct: %.0f 2xx/s, sink saw %d distinct webhook-ids\n", d.OKPerSec, d.SinkUnique)
	}
	printDelivery(w, "forward", r.Forward)
	printDelivery(w, "relay", r.Relay)
	if f, d := r.Forward, r.Relay; f != nil && d != nil && f.DeliveredPerSec > 0 {
		fmt.Fprintf(w, "relay ÷ forward: %.2f in delivered/s", d.DeliveredPerSec/f.DeliveredPerSec)
		if f.CPUPerEventUs > 0 && d.CPUPerEventUs > 0 {
			fmt.Fprintf(w, "; the relay's own work beyond two hops: %.1f µs of CPU per event", d.CPUPerEventUs-f.CPUPerEventUs)
		}
		fmt.Fprintln(w)
	}
	if pc := r.Paced; pc != nil {
		fmt.Fprintf(w, "paced %.0f/s for %.0f s: sent %d, accepted %d, matched at the sink %d\n",
			pc.Rate, pc.DurationS, pc.Sent, pc.Accepted, pc.Matched)
		fmt.Fprintf(w, "       ingest→arrival p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms; ingest answer p50 %.2f ms, p99 %.2f ms\n",
			pc.EndToEnd.P50Ms, pc.EndToEnd.P90Ms, pc.EndToEnd.P99Ms, pc.EndToEnd.MaxMs, pc.Ingest.P50Ms, pc.Ingest.P99Ms)
		fmt.Fprintf(w, "       the floor, the same rate straight to the sink: send→arrival p50 %.2f ms, p99 %.2f ms\n",
			pc.Floor.P50Ms, pc.Floor.P99Ms)
		if pc.DiskSync.Count > 0 {
			fmt.Fprintf(w, "       the disk, a %d-byte write and fdatasync at that rate: p50 %.2f ms, p99 %.2f ms (two hops and one sync: p50 %.2f ms)\n",
				pc.DiskSyncBytes, pc.DiskSync.P50Ms, pc.DiskSync.P99Ms, 2*pc.Floor.P50Ms+pc.DiskSync.P50Ms)
		}
		if pc.FirstErr != "" {
			fmt.Fprintf(w, "       first problem: %s\n", pc.FirstErr)
		}
	}
	if bk := r.Backlog; bk != nil {
		fmt.Fprintf(w, "backlog (endpoint down): %d of %d accepted in %.1f s (%.0f/s, worst p99 %.1f ms), %d non-2xx, %d errors\n",
			bk.Accepted, bk.Target, bk.ElapsedS, bk.IngestPerSec, bk.WorstChunkP99, bk.Non2xx, bk.Errors)
		fmt.Fprintf(w, "       relay peak RSS %.1f MiB (RSS %.1f MiB), data %.1f MiB; after kill -9, ready in %.2f s (peak RSS %.1f MiB)\n",
			bk.PeakRSSMiB, bk.RSSMiB, bk.DiskMiB, bk.RestartReadyS, bk.RestartPeakMiB)
		if bk.FirstNon2xx != "" {
			fmt.Fprintf(w, "       first non-2xx: %s\n", bk.FirstNon2xx)
		}
		if bk.FirstError != "" {
			fmt.Fprintf(w, "       first error: %s\n", bk.FirstError)
		}
	}
	fmt.Fprintln(w)
	printTargets(w, r.Targets)
}
