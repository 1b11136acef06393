package wal

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

const crashDirEnv = "SIDEHOOK_WAL_CRASH_DIR"

// TestKill9MidAppend runs a child process (this test binary again) that
// appends numbered records in small segments, syncing each batch and then
// printing the last number synced. The parent kill -9s it mid-stream and
// checks that the replay holds every record synced, in order, with no gap
// and nothing torn.
func TestKill9MidAppend(t *testing.T) {
	t.Parallel()
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(dir)
		return
	}
	const killAfter = 3000 // synced records: a few dozen segments
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestKill9MidAppend$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	synced := -1
	r := bufio.NewReader(out)
	for synced < killAfter {
		line, err := r.ReadString('\n')
		if err != nil {
			break // a line without its newline may be cut short
		}
		if n, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "synced "); ok {
			if synced, err = strconv.Atoi(n); err != nil {
				t.Fatalf("child line %q: %v", line, err)
			}
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}
	_ = cmd.Wait()
	if synced < killAfter {
		t.Fatalf("child stopped after %d synced records, want %d", synced, killAfter)
	}

	l := openLog(t, dir, 4096)
	next := 0
	if err := l.Replay(func(p []byte) error {
		if want := string(record(next)); string(p) != want {
			return fmt.Errorf("record %d: got %.30q, want %.30q", next, p, want)
		}
		next++
		return nil
	}); err != nil {
		t.Fatalf("replay: %v", err)
	}
	if next <= synced {
		t.Fatalf("replay: got records 0..%d, want at least 0..%d (synced)", next-1, synced)
	}
	// The log goes on after the crash tail.
	if err := l.Append(record(next)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := replayAll(t, openLog(t, dir, 4096)); len(got) != next+1 {
		t.Errorf("replay after appending: got %d records, want %d", len(got), next+1)
	}
}

func crashChild(dir string) {
	l := New(dir, 4096)
	if err := l.Open(); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	w := bufio.NewWriter(os.Stdout)
	for i := 0; ; i += 3 {
		if err := l.Append(record(i), record(i+1), record(i+2)); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		if err := l.Sync(); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		fmt.Fprintf(w, "synced %d\n", i+2)
		_ = w.Flush()
	}
}
