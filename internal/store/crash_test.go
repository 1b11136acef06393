package store_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidehook/sidehook/internal/store"
)

const crashDirEnv = "SIDEHOOK_STORE_CRASH_DIR"

func crashValue(key string) []byte {
	// Above the value threshold, so values go through the value log too.
	return bytes.Repeat([]byte(key), 1024/len(key)+1)
}

// TestKill9Durability runs a child process (this test binary again) that
// writes keys from 16 goroutines and prints each key once Write has
// acknowledged it. The parent kill -9s the child mid-stream, reopens the
// directory and checks that every acknowledged key is there.
func TestKill9Durability(t *testing.T) {
	t.Parallel()
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(dir)
		return
	}
	const killAfter = 6000 // acknowledged writes; a few memtable rotations
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestKill9Durability$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	r := bufio.NewReader(out)
	for len(acked) < killAfter {
		line, err := r.ReadString('\n')
		if err != nil {
			// A line without its newline may be cut short: not an ack.
			break
		}
		if k, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "ack "); ok {
			acked = append(acked, k)
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatalf("kill: %v", err)
	}
	_, _ = io.Copy(io.Discard, out)
	_ = cmd.Wait()
	if len(acked) < killAfter {
		t.Fatalf("child stopped after %d acks, want %d", len(acked), killAfter)
	}

	s := openStore(t, store.Options{Dir: dir})
	for _, k := range acked {
		v, err := s.Get([]byte(k))
		if err != nil {
			t.Fatalf("acknowledged %s lost: %v", k, err)
		}
		if !bytes.Equal(v, crashValue(k)) {
			t.Fatalf("acknowledged %s: got %d bytes, want its value", k, len(v))
		}
	}
	t.Logf("%d acknowledged writes survived kill -9", len(acked))
}

// crashChild writes until it is killed (or a bound is reached, which the
// parent reports as a failure).
func crashChild(dir string) {
	// A small memtable, so memtable logs rotate during the run.
	s, err := store.Open(store.Options{Dir: dir, MemTableSize: 256 << 10, Reserve: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 20000 {
				k := fmt.Sprintf("crash/%02d/%06d", g, i)
				if err := s.Write(context.Background(), store.Set([]byte(k), crashValue(k))); err != nil {
					fmt.Fprintln(os.Stderr, "child write:", err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ack %s\n", k)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	os.Exit(3)
}
