package relay_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
)

// TestMain fails the run if a test leaves a goroutine behind, and removes
// the binary buildBinary built: a temporary directory of some 24 MiB that
// every run of these tests would otherwise leave.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if binPath != "" {
			_ = os.RemoveAll(filepath.Dir(binPath))
		}
		os.Exit(code)
	}))
}

// buildBinary builds sidehook once per test binary run.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func buildBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sidehook-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "sidehook")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", binPath, "..").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is a relay running as a real process.
type proc struct {
	cmd *exec.Cmd
	url string
	// logRead is closed once its log has been read to the end: the
	// process has exited, and every line it wrote has been seen.
	logRead chan struct{}
	// log is every line it wrote so far.
	log *lockedBuffer
}

// wait waits for the process to exit. Its log is read to the end first:
// exec's Wait closes the pipe, and lines still in it would be lost.
func (p *proc) wait() error {
	<-p.logRead
	return p.cmd.Wait()
}

// startProc runs `sidehook relay --config cfgPath` and waits for its ready
// line, which carries the address it listens on.
func startProc(t *testing.T, bin, cfgPath string) *proc {
	t.Helper()
	cmd := exec.Command(bin, "--log-format", "json", "relay", "--config", cfgPath, "--grace", "1s")
	cmd.Env = append(os.Environ(), "SIDEHOOK_API_KEY="+apiKey)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	logRead := make(chan struct{})
	log := &lockedBuffer{}
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-logRead
		cmd.Wait()
	})
	go func() {
		defer close(logRead)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.Write(append(sc.Bytes(), '\n'))
			var line struct{ Message, URL string }
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue
			}
			if line.Message == "ready" {
				ready <- line.URL
			}
		}
	}()
	select {
	case u := <-ready:
		return &proc{cmd: cmd, url: u, logRead: logRead, log: log}
	case <-time.After(20 * time.Second):
		t.Fatal("relay process not ready within 20s")
	}
	return nil
}

// TestCrashKeepsAcknowledged kill -9s the relay in the middle of a load of
// concurrent ingests and restarts it on the same data: every event it
// answered 202 reaches the receiver (duplicates allowed, losses not).
func TestCrashKeepsAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	rcv := newSink(t, nil, func(*http.Request, int) int {
		time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond) // an endpoint of varying speed, not a wait
		return 200
	})
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "sidehook.yaml")
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
data: %s
retry: {schedule: [20ms, 50ms, 100ms, 200ms, 500ms]}
organisations:
  - id: demo
    api_keys: [env:SIDEHOOK_API_KEY]
    endpoints:
      - {id: crm, url: %s/hook, max_in_flight: 8}
`, filepath.Join(dir, "data"), rcv.URL())
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, bin, cfgPath)

	var (
		mu    sync.Mutex
		acked []string
		n     atomic.Int64
		wg    sync.WaitGroup
	)
	client := &http.Client{Timeout: 5 * time.Second}
	killed := make(chan struct{})
	// loaded is closed at the 400th acknowledgement: the kill comes in the
	// middle of a load, not before it.
	loaded := make(chan struct{})
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-killed:
					return
				default:
				}
				id := fmt.Sprintf("evt_w%d_%d", w, i)
				req, _ := http.NewRequest("POST", p.url+"/v1/events", strings.NewReader(`{"type":"payment","amount":"1.00"}`))
				req.Header.Set("Authorization", "Bearer "+apiKey)
				req.Header.Set("webhook-id", id)
				resp, err := client.Do(req)
				if err != nil {
					continue // the process is gone: not acknowledged
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
					if n.Add(1) == 400 {
						close(loaded)
					}
				}
			}
		}(w)
	}
	select {
	case <-loaded:
	case <-time.After(20 * time.Second):
		// Killed anyway: fewer acknowledged events, the same claim.
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.wait()
	close(killed)
	wg.Wait()
	if len(acked) < 50 {
		t.Fatalf("only %d events acknowledged before the kill", len(acked))
	}
	t.Logf("%d acknowledged before kill -9; %d had arrived", len(acked), len(delivered(rcv.requests())))

	startProc(t, bin, cfgPath)
	rcv.wait(t, 30*time.Second, func(c []captured) bool {
		got := delivered(c)
		for _, id := range acked {
			if got[id] == 0 {
				return false
			}
		}
		return true
	})
	dups := 0
	for _, c := range delivered(rcv.requests()) {
		dups += c - 1
	}
	t.Logf("all %d acknowledged events delivered after restart (%d duplicates)", len(acked), dups)
}

// TestReceiverDownThenUp: deliveries fail while the receiver is down and
// arrive once it is back, following the schedule.
func TestReceiverDownThenUp(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	rcv := newSink(t, nil, func(*http.Request, int) int {
		if down.Load() {
			return 0 // connection dropped
		}
		return 200
	})
	cfg := orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL(), Retry: &config.RawRetry{Schedule: []string{"50ms", "100ms", "200ms", "400ms", "800ms", "1600ms", "3s"}}})
	r := startRelay(t, cfg, relay.Options{})
	var ids, events []string
	for i := 0; i < 20; i++ {
		ans := ingest(t, r, `{"type":"payment"}`, nil)
		ids, events = append(ids, ans.Deliveries[0].ID), append(events, ans.ID)
	}
	// Down until every delivery has failed three times.
	rcv.wait(t, 10*time.Second, func(c []captured) bool {
		tries := map[string]int{}
		for _, r := range c {
			tries[r.Header.Get("webhook-id")]++
		}
		for _, id := range events {
			if tries[id] < 3 {
				return false
			}
		}
		return true
	})
	down.Store(false)
	for _, id := range ids {
		d := waitDelivery(t, r, id, "delivered", 10*time.Second)
		if len(d.Attempts) < 3 {
			t.Errorf("%s: %d attempts, want at least 3 while down", id, len(d.Attempts))
		}
		for i, a := range d.Attempts[:len(d.Attempts)-1] {
			if a.Error == "" {
				t.Errorf("%s attempt %d: no error recorded for a dropped connection", id, i+1)
			}
		}
	}
}

// TestRandomFailures: a receiver answering 500 half of the time still
// gets everything.
func TestRandomFailures(t *testing.T) {
	rcv := newSink(t, nil, func(*http.Request, int) int {
		if rand.IntN(2) == 0 {
			return 500
		}
		return 200
	})
	sched := make([]string, 24)
	for i := range sched {
		sched[i] = "5ms"
	}
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL(), Retry: &config.RawRetry{Schedule: sched}}), relay.Options{})
	var ids []string
	for i := 0; i < 200; i++ {
		ids = append(ids, ingest(t, r, fmt.Sprintf(`{"type":"payment","n":"%d"}`, i), nil).ID)
	}
	rcv.wait(t, 20*time.Second, func(c []captured) bool {
		got := delivered(c)
		for _, id := range ids {
			if got[id] == 0 {
				return false
			}
		}
		return true
	})
	waitCount(t, r, "status=delivered", 200)
}

// TestDiskFull fills a small tmpfs under the relay's data: ingest answers
// 503, what was acknowledged before is delivered, and ingest recovers when
// space returns.
func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", dir).CombinedOutput(); err != nil {
		msg := fmt.Sprintf("cannot mount a tmpfs (%v: %s)", err, strings.TrimSpace(string(out)))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })

	// Retrying every 500ms for half a minute: long enough to outlast filling the
	// disk on a slow machine.
	slowSchedule := make([]string, 60)
	for i := range slowSchedule {
		slowSchedule[i] = "500ms"
	}
	var down atomic.Bool
	down.Store(true)
	rcv := newSink(t, nil, func(*http.Request, int) int {
		if down.Load() {
			return 503
		}
		return 200
	})
	cfg := orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL(), Retry: &config.RawRetry{Schedule: slowSchedule}})
	cfg.Data = filepath.Join(dir, "relay")
	cfg.Limits.MinFreeDisk = 96 << 20
	r := startRelay(t, cfg, relay.Options{Store: diskStore(t, cfg)})
	var before []string
	for i := 0; i < 10; i++ {
		before = append(before, ingest(t, r, `{"type":"payment"}`, nil).ID)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, free-(24<<20)), 0o600); err != nil {
		t.Fatal(err)
	}
	a := call(t, "POST", r.URL()+"/v1/events", apiKey, []byte(`{"type":"payment"}`), nil)
	var e struct{ Error, Reason string }
	a.decode(t, &e)
	if a.Status != http.StatusServiceUnavailable || !strings.Contains(e.Reason, "disk") {
		t.Fatalf("disk full: got %d %s, want 503 naming the disk", a.Status, a.Body)
	}
	if a := call(t, "GET", r.URL()+"/v1/events/"+before[0], apiKey, nil, nil); a.Status != 200 {
		t.Errorf("reading an acknowledged event while full: got %d, want 200", a.Status)
	}
	os.Remove(filler)
	down.Store(false)
	after := ingest(t, r, `{"type":"payment"}`, nil).ID
	rcv.wait(t, 10*time.Second, func(c []captured) bool {
		got := delivered(c)
		for _, id := range append(before, after) {
			if got[id] == 0 {
				return false
			}
		}
		return true
	})
}

// downEndpointConfig writes the configuration of a relay process whose
// one endpoint refuses connections, and returns its path and the relay's
// data directory.
func downEndpointConfig(t *testing.T) (cfgPath, data string) {
	t.Helper()
	dir := t.TempDir()
	cfgPath, data = filepath.Join(dir, "sidehook.yaml"), filepath.Join(dir, "data")
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
data: %s
organisations:
  - id: demo
    api_keys: [env:SIDEHOOK_API_KEY]
    endpoints:
      - {id: crm, url: http://127.0.0.1:1/hook}
`, data)
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, data
}

// TestHangupStopsGracefully: a hangup (the terminal that started the
// relay closed) stops it as SIGTERM does, draining and saying so; it
// killed the process on the spot.
func TestHangupStopsGracefully(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	cfgPath, _ := downEndpointConfig(t)
	p := startProc(t, buildBinary(t), cfgPath)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- p.wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("after SIGHUP the relay exited with %v, want a clean stop", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the relay did not stop within 20s of SIGHUP")
	}
	// A graceful stop's last line.
	if !strings.Contains(p.log.text(), `"message":"stopped"`) {
		t.Error(`the relay exited without logging "stopped"`)
	}
}

// TestRemovedDataStops: a relay whose data directory is removed while it
// runs (rm -rf .sidehook) refuses events (they would be written to files
// already unlinked, and go with the process) and is not ready; it stops at
// SIGTERM and says why, instead of retrying Badger's memtable flush into
// the missing directory for ever, deaf to every later signal.
func TestRemovedDataStops(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	cfgPath, data := downEndpointConfig(t)
	p := startProc(t, buildBinary(t), cfgPath)
	// An event in Badger's memtable, which its close would flush.
	if a := call(t, "POST", p.url+"/v1/events", apiKey, []byte(`{"type":"payment"}`), nil); a.Status != http.StatusAccepted {
		t.Fatalf("ingest: got %d %s, want 202", a.Status, a.Body)
	}
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	if a := call(t, "POST", p.url+"/v1/events", apiKey, []byte(`{"type":"payment"}`), nil); a.Status != http.StatusServiceUnavailable {
		t.Errorf("ingest after the removal: got %d %s, want 503", a.Status, a.Body)
	}
	if a := call(t, "GET", p.url+"/readyz", "", nil, nil); a.Status != http.StatusServiceUnavailable {
		t.Errorf("/readyz after the removal: got %d %s, want 503", a.Status, a.Body)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- p.wait() }()
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Fatal("the relay did not stop within 20s of SIGTERM once its data directory was removed")
	}
	if want := "directory was removed while open"; !strings.Contains(p.log.text(), want) {
		t.Errorf("the relay's log does not say %q:\n%s", want, p.log.text())
	}
}

// TestGracefulStop stops the relay while attempts are in flight: they
// finish and are recorded; whatever was still waiting is delivered after
// the next start, with no duplicates.
func TestGracefulStop(t *testing.T) {
	rcv := newSink(t, nil, func(*http.Request, int) int {
		time.Sleep(100 * time.Millisecond) // a slow endpoint, not a wait
		return 200
	})
	cfg := orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL(), MaxInFlight: new(4)})
	r := startRelay(t, cfg, relay.Options{Grace: 5 * time.Second})
	var ids []string
	for i := 0; i < 40; i++ {
		ids = append(ids, ingest(t, r, `{"type":"payment"}`, nil).ID)
	}
	// Stopped once the first answers are in and the next attempts in
	// flight (the sink records a request when it has answered it).
	rcv.wait(t, 10*time.Second, func(c []captured) bool { return len(c) > 0 })
	start := time.Now()
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("close took %s with 4 attempts of 100ms in flight, want at most 2s", el)
	}
	got := delivered(rcv.requests())
	if len(got) == 0 || len(got) == len(ids) {
		t.Fatalf("delivered before stop: %d of %d, want some but not all", len(got), len(ids))
	}
	t.Logf("%d of %d delivered before the stop", len(got), len(ids))
	r2 := startRelay(t, cfg, relay.Options{})
	rcv.wait(t, 10*time.Second, func(c []captured) bool { return len(delivered(c)) == len(ids) })
	waitCount(t, r2, "status=delivered", len(ids))
	for id, n := range delivered(rcv.requests()) {
		if n != 1 {
			t.Errorf("%s delivered %d times, want once (in-flight attempts were drained, not abandoned)", id, n)
		}
	}
}

// TestGraceExpires: an attempt that outlives the grace period is abandoned
// and tried again on the next start, and the stop says so: an operator
// whose relay stopped with attempts cut short must not have to guess why
// receivers see them again.
func TestGraceExpires(t *testing.T) {
	var slow atomic.Bool
	slow.Store(true)
	arrived := make(chan struct{}, 1)
	rcv := newSink(t, nil, func(req *http.Request, _ int) int {
		if slow.Load() {
			select {
			case arrived <- struct{}{}:
			default:
			}
			// Answers only once the relay has given up on the request.
			<-req.Context().Done()
		}
		return 200
	})
	cfg := orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL()})
	var logs bytes.Buffer
	r := runRelay(t, cfg, relay.Options{Grace: 200 * time.Millisecond, Logger: zerolog.New(zerolog.SyncWriter(&logs)).Level(zerolog.InfoLevel)})
	ans := ingest(t, r, `{"type":"payment"}`, nil)
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the attempt did not reach the receiver within 10s")
	}
	start := time.Now()
	r.Close(context.Background())
	if el := time.Since(start); el > time.Second {
		t.Errorf("close took %s, want about the 200ms grace", el)
	}
	var cut map[string]any
	for _, l := range logLines(logs.Bytes()) {
		if l["message"] == "attempts in flight cut short by the stop, attempted again at the next start" {
			cut = l
		}
	}
	if cut == nil || cut["level"] != "warn" || cut["attempts"] != 1.0 || fmt.Sprint(cut["deliveries"]) != fmt.Sprint([]any{ans.Deliveries[0].ID}) {
		t.Errorf("got %v, want a warning naming the 1 attempt cut short, %s", cut, ans.Deliveries[0].ID)
	}
	slow.Store(false)
	r2 := startRelay(t, cfg, relay.Options{})
	d := waitDelivery(t, r2, ans.Deliveries[0].ID, "delivered", 10*time.Second)
	if len(d.Attempts) != 1 {
		t.Errorf("attempts: got %d, want 1 (the abandoned one is not an attempt)", len(d.Attempts))
	}
}

// TestStopWithSpareConnection: a client's connection that never sent a
// request (a spare keep-alive dial) does not hold the stop beyond the
// grace, which net/http alone would for its first five seconds.
func TestStopWithSpareConnection(t *testing.T) {
	cfg := orgConfig(t)
	r, err := relay.New(cfg, relay.Options{Store: storeFor(t, cfg), Grace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Closed below, the point of the test; this stops it should the test
	// end before.
	t.Cleanup(func() { r.Close(context.Background()) })
	conn, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	// The server has accepted it once a request on another connection is
	// answered: the accept loop runs in order.
	if a := call(t, "GET", r.URL()+"/healthz", "", nil, nil); a.Status != 200 {
		t.Fatalf("healthz: %d, want 200", a.Status)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatalf("close with a spare connection open: %v", err)
	}
}
