package relay_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestDiskFullBinary is issue 14's bad day through the real binary: a tmpfs
// data directory filled by another process while the endpoint is down;
// ingest answers 503 "disk full" and /readyz says so; SIGTERM stops the
// relay cleanly (no SIGBUS); a start on the full disk exits 1 in one line;
// once space is freed a start delivers every event it acknowledged.
func TestDiskFullBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", dir).CombinedOutput(); err != nil {
		msg := fmt.Sprintf("cannot mount a tmpfs (%v: %s)", err, strings.TrimSpace(string(out)))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	bin := buildBinary(t)

	var up atomic.Bool
	rcv := newSink(t, nil, func(*http.Request, int) int {
		if up.Load() {
			return 200
		}
		return 503
	})
	cfgPath := filepath.Join(t.TempDir(), "sidehook.yaml")
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
data: %s
retry: {schedule: [200ms, 200ms, 200ms, 200ms, 200ms, 200ms, 200ms, 200ms, 200ms, 200ms, 200ms, 200ms, 200ms, 200ms, 200ms, 200ms, 200ms, 200ms, 200ms, 200ms]}
limits: {min_free_disk: 96MiB}
organisations:
  - id: demo
    api_keys: [env:SIDEHOOK_API_KEY]
    endpoints:
      - {id: crm, url: %s/hook}
`, filepath.Join(dir, "relay"), rcv.URL())
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, bin, cfgPath)
	var acked []string
	for range 10 {
		acked = append(acked, ingestAt(t, p.url).ID)
	}

	// Another process takes the space, leaving less than the reserve.
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	filler := filepath.Join(dir, "filler")
	if out, err := exec.Command("fallocate", "-l", fmt.Sprint(free-(32<<20)), filler).CombinedOutput(); err != nil {
		t.Fatalf("fill the disk: %v: %s", err, out)
	}
	a := call(t, "POST", p.url+"/v1/events", apiKey, []byte(`{"type":"payment"}`), nil)
	if a.Status != http.StatusServiceUnavailable || !strings.Contains(string(a.Body), "disk full") {
		t.Fatalf("ingest on a full disk: got %d %s, want 503 saying disk full", a.Status, a.Body)
	}
	if r := call(t, "GET", p.url+"/readyz", "", nil, nil); r.Status != http.StatusServiceUnavailable || !strings.Contains(string(r.Body), "disk full") {
		t.Fatalf("/readyz on a full disk: got %d %s, want 503 saying disk full", r.Status, r.Body)
	}

	// SIGTERM: a clean stop, not a SIGBUS inside Badger.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := p.wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signaled() {
		t.Fatalf("stop on a full disk: killed by %v, want an exit", exit.Sys().(syscall.WaitStatus).Signal())
	}

	// A start on the full disk: exit 1, one line saying why.
	cmd := exec.Command(bin, "--log-format", "json", "relay", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "SIDEHOOK_API_KEY="+apiKey)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("start on a full disk: got %v, want exit 1; stderr %s", err, stderr.String())
	}
	last := strings.TrimSpace(stderr.String())
	if i := strings.LastIndexByte(last, '\n'); i >= 0 {
		last = last[i+1:]
	}
	if !strings.Contains(last, "disk full") {
		t.Fatalf("start on a full disk: last line %q, want it to say disk full", last)
	}

	// Space freed: every acknowledged event is delivered.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	up.Store(true)
	startProc(t, bin, cfgPath)
	rcv.wait(t, 20*time.Second, func(c []captured) bool {
		got := delivered(c)
		for _, id := range acked {
			if got[id] == 0 {
				return false
			}
		}
		return true
	})
}

// ingestAt posts one payment to a relay process and returns its answer.
func ingestAt(t *testing.T, url string) (ans struct{ ID string }) {
	t.Helper()
	a := call(t, "POST", url+"/v1/events", apiKey, []byte(`{"type":"payment"}`), nil)
	if a.Status != http.StatusAccepted {
		t.Fatalf("ingest: got %d %s, want 202", a.Status, a.Body)
	}
	a.decode(t, &ans)
	return ans
}
