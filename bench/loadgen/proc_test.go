package loadgen_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sidehook/sidehook/bench/loadgen"
)

// childEnv makes the test binary act as a child process for proc tests.
const childEnv = "LOADGEN_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "serve":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		if err := loadgen.Serve(ctx, "127.0.0.1:0", loadgen.NewSink(), os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	case "mute":
		fmt.Println("not a listening line")
		time.Sleep(time.Minute)
		os.Exit(0)
	case "fail":
		fmt.Fprintln(os.Stderr, "child: cannot start")
		os.Exit(3)
	}
}

func child(tb testing.TB, mode string) loadgen.Command {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	return loadgen.Command{
		Name: mode,
		Path: exe,
		Args: []string{"-test.run=^$"},
		Env:  []string{childEnv + "=" + mode},
		Log:  filepath.Join(tb.TempDir(), mode+".log"),
	}
}

func TestParseMemStatus(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    loadgen.MemStatus
		wantErr bool
	}{
		{"OK", "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nThreads:\t4\n", loadgen.MemStatus{RSS: 1 << 20, HWM: 2 << 20}, false},
		{"ErrMissing", "Name:\tkthreadd\nThreads:\t1\n", loadgen.MemStatus{}, true},
		{"ErrUnit", "VmHWM:\t2048 MB\nVmRSS:\t1 kB\n", loadgen.MemStatus{}, true},
		{"ErrNumber", "VmHWM:\tlots kB\nVmRSS:\t1 kB\n", loadgen.MemStatus{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadgen.ParseMemStatus(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("got %+v, %v; want %+v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseCPUTime(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"OK", "4242 (sidehook) S 1 4242 4242 0 -1 4194560 1200 0 0 0 250 130 0 0 20 0 9 0 100 1000 200", 3800 * time.Millisecond, false},
		{"NameWithSpacesAndParens", "7 (a) b (c)) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0", 70 * time.Millisecond, false},
		{"ErrNoName", "4242 sidehook S 1", 0, true},
		{"ErrShort", "4242 (x) S 1 2 3", 0, true},
		{"ErrNumber", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 lots 1 0 0", 0, true},
		{"ErrNegative", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 -5 1 0 0", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadgen.ParseCPUTime([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("got %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestReadCPUTimeSelf: this process's CPU time grows while it spins.
func TestReadCPUTimeSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc/PID/stat is Linux's")
	}
	before, err := loadgen.ReadCPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Bounded by wall time only as a guard: on a loaded machine the spin
	// may get the CPU late, which must not fail the test.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		after, err := loadgen.ReadCPUTime(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if after >= before+20*time.Millisecond {
			return
		}
		for spin := time.Now(); time.Since(spin) < 5*time.Millisecond; {
		}
	}
	t.Errorf("cpu time still about %v after spinning for 30 s", before)
}

func TestReadMemStatusSelf(t *testing.T) {
	m, err := loadgen.ReadMemStatus(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if m.RSS == 0 || m.HWM < m.RSS {
		t.Errorf("got %+v, want 0 < RSS <= HWM", m)
	}
}

func TestStartServer(t *testing.T) {
	var g loadgen.Group
	t.Cleanup(g.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, url, err := g.StartServer(ctx, child(t, "serve"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Errorf("url got %q, want a loopback URL", url)
	}
	if _, err := p.WaitHTTP(ctx, url+loadgen.SinkStatsPath); err != nil {
		t.Fatal(err)
	}
	if m, err := p.MemStatus(); err == nil && m.HWM == 0 {
		t.Errorf("child memory got %+v, want a peak", m)
	}
	if !p.Stop(10 * time.Second) {
		t.Error("stop: child did not exit on SIGTERM")
	}
	if _, err := p.MemStatus(); err == nil {
		t.Error("memory of an exited child: got nil error, want one")
	}
	p.Kill() // safe after exit
}

func TestGroupCloseKills(t *testing.T) {
	var g loadgen.Group
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, _, err := g.StartServer(ctx, child(t, "serve"))
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	select {
	case <-p.Done():
	default:
		t.Error("child still running after Group.Close")
	}
	g.Close()
	if _, err := g.Start(child(t, "serve")); err == nil {
		t.Error("start in a closed group: got nil error, want one")
	}
}

func TestStartServerErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t.Run("ErrNoListeningLine", func(t *testing.T) {
		if _, _, err := loadgen.StartServer(ctx, child(t, "mute")); err == nil {
			t.Error("got nil error, want one")
		}
	})
	t.Run("ErrExit", func(t *testing.T) {
		_, _, err := loadgen.StartServer(ctx, child(t, "fail"))
		if err == nil || !strings.Contains(err.Error(), "child: cannot start") {
			t.Errorf("got %v, want the child's stderr in the error", err)
		}
	})
	t.Run("ErrNoBinary", func(t *testing.T) {
		if _, err := loadgen.Start(loadgen.Command{Path: filepath.Join(t.TempDir(), "missing")}); err == nil {
			t.Error("got nil error, want one")
		}
		if _, err := loadgen.Start(loadgen.Command{}); err == nil {
			t.Error("empty path: got nil error, want one")
		}
	})
}

func TestWaitHTTPChildExits(t *testing.T) {
	p, err := loadgen.Start(child(t, "fail"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	addr, err := loadgen.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = p.WaitHTTP(ctx, "http://"+addr+"/")
	if err == nil || !strings.Contains(err.Error(), "exited") {
		t.Errorf("got %v, want an error saying the child exited", err)
	}
	<-p.Done()
	if p.Err() == nil {
		t.Error("exit error got nil, want exit status 3")
	}
}
