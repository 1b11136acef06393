package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildSidehook builds the sidehook binary once for the test.
func buildSidehook(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command builds the relay under test: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "sidehook")
	out, err := exec.Command(goBin, "build", "-o", bin, "github.com/sidehook/sidehook").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// relayProc is a relay process.
type relayProc struct {
	name string
	url  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	mu   sync.Mutex
	tail []string // its last log lines
	// notable are its last log lines but delivered attempts, which are
	// most of a log: what a failure needs (warnings, failed attempts,
	// leases) beyond the tail.
	notable []string
	// delivered counts its attempts logged as delivered, by endpoint.
	delivered map[string]int
}

// lastLines is the last n of lines.
func lastLines(lines []string, n int) []string {
	if len(lines) > n {
		return lines[len(lines)-n:]
	}
	return lines
}

// deliveredTo is how many deliveries to endpoint this relay made.
func (p *relayProc) deliveredTo(endpoint string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.delivered[endpoint]
}

// writeProcConfig writes the configuration file of the relay processes:
// head (the store: and retry: blocks), then the demo organisation, with the
// tests' API key and secret, and its endpoints, one YAML flow mapping each.
func writeProcConfig(t *testing.T, head string, endpoints ...string) string {
	t.Helper()
	yaml := head + `organisations:
  - id: demo
    api_keys: [` + apiKey + `]
    secret_key: ` + secretKey + `
    endpoints:
`
	for _, e := range endpoints {
		yaml += "      - " + e + "\n"
	}
	cfg := filepath.Join(t.TempDir(), "sidehook.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startRelayProc starts `sidehook relay --config cfg --store servers`
// and waits for its ready line; it is killed when the test ends.
func startRelayProc(t *testing.T, bin, name, cfg, servers string) *relayProc {
	t.Helper()
	p := &relayProc{name: name, done: make(chan struct{}), delivered: map[string]int{}}
	p.cmd = exec.Command(bin, "--log-format", "json", "relay",
		"--config", cfg, "--store", servers, "--listen", "127.0.0.1:0")
	p.cmd.Env = []string{} // nothing of the test's environment
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	// The whole log, kept with go test -artifacts.
	whole, err := os.OpenFile(filepath.Join(t.ArtifactDir(), name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		defer whole.Close()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			whole.WriteString(line + "\n")
			var l struct{ Message, URL, Outcome, Endpoint string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Message == "ready" && l.URL != "" {
				ready <- l.URL
				continue
			}
			p.mu.Lock()
			if l.Message == "attempt" && l.Outcome == "delivered" {
				p.delivered[l.Endpoint]++
			} else {
				p.notable = lastLines(append(p.notable, line), 300)
			}
			p.tail = lastLines(append(p.tail, line), 20)
			p.mu.Unlock()
		}
	}()
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			p.mu.Lock()
			t.Logf("%s's last log lines but delivered attempts:\n%s", name, strings.Join(p.notable, "\n"))
			t.Logf("%s's last log lines:\n%s", name, strings.Join(p.tail, "\n"))
			p.mu.Unlock()
		}
	})
	select {
	case p.url = <-ready:
	case <-p.done:
		t.Fatalf("%s exited before it was ready", name)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s not ready within 30s", name)
	}
	return p
}

// cpu is the process's CPU time so far (user + system), read from /proc.
func (p *relayProc) cpu(t *testing.T) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("cpu of %s: %v", p.name, err)
	}
	// Fields after the command name (which may hold spaces) in ")".
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * (time.Second / 100) // USER_HZ is 100 on Linux
}

// selfCPU is the test process's CPU time: the NATS nodes, the endpoint and
// the load generator.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// load posts ids[i] with typ through relays (round robin, skipping a
// relay that does not answer) with workers concurrent posts, and returns
// the ids answered 202. after, when set, is called with the count of posts
// done after each post.
func load(relays func() []string, ids []string, typ string, workers int, after func(int)) []string {
	var (
		mu       sync.Mutex
		accepted []string
		done     int
		wg       sync.WaitGroup
	)
	next := make(chan int)
	go func() {
		for i := range ids {
			next <- i
		}
		close(next)
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				rs := relays()
				code := 0
				// A dead relay or a 503 while NATS moves: the producer
				// tries another relay, as a client behind a balancer.
				for try := 0; try < 2*len(rs) && code != 202 && code != 200; try++ {
					code = post(rs[(i+try)%len(rs)], ids[i], typ)
				}
				mu.Lock()
				if code == 202 || code == 200 {
					accepted = append(accepted, ids[i])
				}
				done++
				n := done
				mu.Unlock()
				if after != nil {
					after(n)
				}
			}
		}()
	}
	wg.Wait()
	return accepted
}

func idsOf(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s_%04d", prefix, i)
	}
	return ids
}

// waitDelivered waits until every id arrived at path. On a timeout it
// reports the ids still missing and what the relays answer for the first
// of them, so that a failure says whether they were stuck, retried or dead.
func waitDelivered(t *testing.T, hook *sink, path string, ids []string, d time.Duration, relays func() []string) {
	t.Helper()
	var missing []string
	deadline := time.Now().Add(d)
	for {
		got := map[string]bool{}
		for _, id := range hook.ids(path) {
			got[id] = true
		}
		missing = missing[:0]
		for _, id := range ids {
			if !got[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var report strings.Builder
	for _, id := range missing[:min(len(missing), 5)] {
		fmt.Fprintf(&report, "\n  %s:", id)
		for _, base := range relays() {
			fmt.Fprintf(&report, "\n    %s: %s", base, describeEvent(base, id))
		}
	}
	t.Fatalf("timed out after %v: %d of %d events not delivered to %s; the first:%s",
		d, len(missing), len(ids), path, report.String())
}

// describeEvent is a relay's GET /v1/events/{id}, clipped, or why it failed.
func describeEvent(base, id string) string {
	req, err := http.NewRequest(http.MethodGet, base+"/v1/events/"+id, nil)
	if err != nil {
		return err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := client.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	return fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(b))
}

// TestRelaysOnCluster runs relay processes on a three-node JetStream
// cluster with replicas 3 and the endpoint in the test: throughput through
// one and two relays, idempotency across relays, then load through three
// relays while one relay is killed (SIGKILL) and one NATS node stopped:
// every event answered 202 is delivered, and an ordered endpoint keeps its
// order. It takes about a minute (a killed relay's leases last the store's
// 30 s ack wait), so -short skips it.
func TestRelaysOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("about a minute: relay processes on a NATS cluster, one killed (skipped under -short)")
	}
	start := time.Now()
	bin := buildSidehook(t)
	nodes, urls := startCluster(t)
	servers := strings.Join(urls, ",")
	hook := newSink(t)
	cfg := writeProcConfig(t, `store:
  servers: [`+urls[0]+`]
  replicas: 3
retry: {schedule: [200ms, 500ms, 1s, 2s, 5s]}
`,
		`{id: all, url: "`+hook.URL+`/all", events: [load, idem], max_in_flight: 32}`,
		`{id: seq, url: "`+hook.URL+`/seq", events: [seq], ordered: true}`)
	t.Logf("built and cluster up in %v", time.Since(start).Round(time.Millisecond))

	var (
		relaysMu sync.Mutex
		live     []*relayProc
	)
	relays := func() []string {
		relaysMu.Lock()
		defer relaysMu.Unlock()
		var out []string
		for _, p := range live {
			out = append(out, p.url)
		}
		return out
	}
	add := func(name string) *relayProc {
		p := startRelayProc(t, bin, name, cfg, servers)
		relaysMu.Lock()
		live = append(live, p)
		relaysMu.Unlock()
		return p
	}

	// Throughput: through one relay, then two (both deliver). The
	// machine's two cores run the NATS nodes, the endpoint and the load
	// too, so this is per-event cost, not scaling.
	measure := func(name string, n int) {
		procs := append([]*relayProc(nil), live...)
		ids := idsOf(name, n)
		cpu0, self0 := time.Duration(0), selfCPU()
		for _, p := range procs {
			cpu0 += p.cpu(t)
		}
		t0 := time.Now()
		accepted := load(relays, ids, "load", 16, nil)
		ingested := time.Since(t0)
		if len(accepted) != n {
			t.Fatalf("%s: %d of %d accepted with nothing failing", name, len(accepted), n)
		}
		waitDelivered(t, hook, "/all", ids, 90*time.Second, relays)
		took := time.Since(t0)
		cpu := -cpu0
		for _, p := range procs {
			cpu += p.cpu(t)
		}
		self := selfCPU() - self0
		t.Logf("%s: %d events through %d relay(s): ingest %.0f/s, delivered %.0f/s; relay CPU %v/event, test process (3 NATS nodes, endpoint, load) %v/event",
			name, n, len(procs), float64(n)/ingested.Seconds(), float64(n)/took.Seconds(),
			(cpu / time.Duration(n)).Round(time.Microsecond), (self / time.Duration(n)).Round(time.Microsecond))
	}
	add("relay1")
	measure("one", 300)
	add("relay2")
	measure("two", 300)

	// Idempotency across relays: the same webhook-id on two relays is one
	// event.
	rs := relays()
	if code := post(rs[0], "evt_idem", "idem"); code != 202 {
		t.Fatalf("first post of evt_idem: %d, want 202", code)
	}
	if code := post(rs[1], "evt_idem", "idem"); code != 200 {
		t.Errorf("the same webhook-id on another relay: %d, want 200 (the first answer)", code)
	}

	victim := add("relay3")

	// Load through three relays; at a third of it relay3 is killed, at
	// two thirds a NATS node is stopped.
	const n, nSeq = 600, 60
	var kill, stop sync.Once
	after := func(done int) {
		if done >= n/3 {
			kill.Do(func() {
				relaysMu.Lock()
				live = live[:2]
				relaysMu.Unlock()
				victim.cmd.Process.Signal(syscall.SIGKILL)
				t.Logf("killed relay3 after %d posts", done)
			})
		}
		if done >= 2*n/3 {
			stop.Do(func() {
				nodes[2].Shutdown()
				t.Logf("stopped NATS node n3 after %d posts", done)
			})
		}
	}
	t0 := time.Now()
	var seqAccepted []string
	seqDone := make(chan struct{})
	go func() {
		defer close(seqDone)
		// One at a time, so acceptance order is this order.
		seqAccepted = load(relays, idsOf("seq", nSeq), "seq", 1, nil)
	}()
	accepted := load(relays, idsOf("load", n), "load", 6, after)
	<-seqDone
	t.Logf("crash phase: %d of %d load events and %d of %d ordered events answered 202 in %v",
		len(accepted), n, len(seqAccepted), nSeq, time.Since(t0).Round(time.Millisecond))

	// A killed relay's leases come back after AckWait (30 s) and are seen
	// within AckWait/4; the rest is room for a loaded CI machine.
	waitDelivered(t, hook, "/all", accepted, 90*time.Second, relays)
	waitDelivered(t, hook, "/seq", seqAccepted, 90*time.Second, relays)
	allN, allDups := hook.distinct("/all")
	seqN, seqDups := hook.distinct("/seq")
	t.Logf("0 lost: every accepted event delivered %v after the load began; duplicates: %d of %d on /all, %d of %d on /seq (at-least-once after the kill)",
		time.Since(t0).Round(time.Millisecond), allDups, allN, seqDups, seqN)

	idem := 0
	for _, id := range hook.ids("/all") {
		if id == "evt_idem" {
			idem++
		}
	}
	if idem != 1 {
		t.Errorf("evt_idem, posted to two relays, arrived %d times; want 1", idem)
	}

	// FIFO: in arrival order, each id's first arrival follows the one
	// before it (a repeat after a crash is the head tried again).
	last := -1
	seen := map[string]bool{}
	for _, id := range hook.ids("/seq") {
		if seen[id] {
			continue
		}
		seen[id] = true
		k, _ := strconv.Atoi(strings.TrimPrefix(id, "seq_"))
		if k < last {
			t.Errorf("ordered endpoint: %s arrived after seq_%04d", id, last)
		}
		last = k
	}

	// The surviving relays stop cleanly.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, p := range live[:2] {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			if code := p.cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("%s exited %d after SIGTERM", p.name, code)
			}
		case <-ctx.Done():
			t.Errorf("%s did not stop within 20s of SIGTERM", p.name)
		}
	}
	t.Logf("whole test %v", time.Since(start).Round(time.Millisecond))
}
