package store

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// With AnswerOnSync a Write returns while Badger does not have it yet, and
// a read waits until it does.
func TestAnswerOnSyncReadsWaitForBadger(t *testing.T) {
	t.Parallel()
	held := make(chan struct{})
	release := make(chan struct{})
	s := openInternal(t, Options{Dir: t.TempDir(), AnswerOnSync: true})
	var first atomic.Bool
	s.hooks.beforeApply = func() {
		if first.CompareAndSwap(false, true) { // the first group only
			close(held)
			<-release
		}
	}

	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before Close, which drains the applier

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Write(ctx, Set([]byte("k"), []byte("v"))); err != nil {
		t.Fatalf("Write with Badger's commit held: %v (it waited for Badger)", err)
	}
	<-held
	// Write has returned and the applier holds the group: Badger cannot
	// have it.
	type result struct {
		v   []byte
		err error
	}
	got := make(chan result, 1)
	go func() {
		v, err := s.Get([]byte("k"))
		got <- result{v, err}
	}()
	select {
	case r := <-got:
		t.Fatalf("Get returned %q, %v before Badger had the write", r.v, r.err)
	case <-time.After(50 * time.Millisecond):
	}
	unblock()
	if r := <-got; r.err != nil || string(r.v) != "v" {
		t.Fatalf("Get = %q, %v; want v", r.v, r.err)
	}
	var keys []string
	if err := s.Scan(context.Background(), ScanOptions{}, func(k, _ []byte) error {
		keys = append(keys, string(k))
		return nil
	}); err != nil || len(keys) != 1 || keys[0] != "k" {
		t.Fatalf("Scan = %v, %v; want [k]", keys, err)
	}
}

// A write answered before Badger failed to commit it is not lost: the
// store fails from then on and keeps its WAL, and the next Open replays it.
func TestAnswerOnSyncUnappliedReplays(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openInternal(t, Options{Dir: dir, AnswerOnSync: true})
	write(t, s, Set([]byte("before"), []byte("b")))
	wantValue(t, s, "before", "b") // in Badger, before its commits fail
	if err := s.Failed(); err != nil {
		t.Fatalf("Failed before any failure: %v", err)
	}
	s.hooks.failCommit.Store(true)
	write(t, s, Set([]byte("answered"), []byte("a"))) // answered on sync, then fails in Badger

	if _, err := s.Get([]byte("answered")); !errors.Is(err, ErrUnapplied) {
		t.Fatalf("Get after the failed commit: %v, want ErrUnapplied", err)
	}
	if err := s.Scan(context.Background(), ScanOptions{}, func(_, _ []byte) error { return nil }); !errors.Is(err, ErrUnapplied) {
		t.Fatalf("Scan after the failed commit: %v, want ErrUnapplied", err)
	}
	if err := s.Write(context.Background(), Set([]byte("later"), []byte("l"))); !errors.Is(err, ErrUnapplied) {
		t.Fatalf("Write after the failed commit: %v, want ErrUnapplied", err)
	}
	if err := s.Failed(); !errors.Is(err, ErrUnapplied) {
		t.Fatalf("Failed after the failed commit: %v, want ErrUnapplied", err)
	}
	if err := s.checkpoint(); !errors.Is(err, ErrUnapplied) {
		t.Fatalf("checkpoint after the failed commit: %v, want ErrUnapplied", err)
	}
	if err := s.Close(); !errors.Is(err, ErrUnapplied) {
		t.Fatalf("Close after the failed commit: %v, want ErrUnapplied", err)
	}

	s = openInternal(t, Options{Dir: dir, AnswerOnSync: true})
	wantValue(t, s, "before", "b")
	wantValue(t, s, "answered", "a")
	wantMissing(t, s, "later")
	if st := s.Stats(); st.Replayed == 0 {
		t.Error("nothing was replayed: the answered write came from elsewhere")
	}
	write(t, s, Set([]byte("after"), []byte("x")))
	wantValue(t, s, "after", "x")
}

// In memory there is no WAL to answer from: the option changes nothing.
func TestAnswerOnSyncInMemory(t *testing.T) {
	t.Parallel()
	s := openInternal(t, Options{InMemory: true, AnswerOnSync: true})
	if s.answerOnSync() {
		t.Fatal("answerOnSync in memory")
	}
	write(t, s, Set([]byte("k"), []byte("v")))
	wantValue(t, s, "k", "v")
}
