package perkey_test

import (
	"sync"
	"testing"

	"github.com/sidehook/sidehook/internal/perkey"
)

func TestLimit(t *testing.T) {
	l := perkey.New(2)
	r1, ok1 := l.Acquire("acme")
	_, ok2 := l.Acquire("acme")
	if !ok1 || !ok2 {
		t.Fatal("the first two of a key were refused")
	}
	if _, ok := l.Acquire("acme"); ok {
		t.Fatal("a third of a key was let in with Max 2")
	}
	if _, ok := l.Acquire("other"); !ok {
		t.Fatal("another key was counted against the first")
	}
	r1()
	if _, ok := l.Acquire("acme"); !ok {
		t.Fatal("a release did not make room")
	}
}

// Concurrent acquires never let more than Max in at once.
func TestLimitConcurrent(t *testing.T) {
	l := perkey.New(3)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		in, most int
	)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, ok := l.Acquire("k")
			if !ok {
				return
			}
			mu.Lock()
			in++
			most = max(most, in)
			mu.Unlock()
			mu.Lock()
			in--
			mu.Unlock()
			release()
		}()
	}
	wg.Wait()
	if most > 3 {
		t.Errorf("%d held at once, want at most 3", most)
	}
}
