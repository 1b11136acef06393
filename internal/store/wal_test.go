package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/sidehook/sidehook/internal/wal"
)

// TestOpenReplaysWAL: Open applies the WAL's records in order (sets, a TTL
// as its absolute expiry, deletes, a key set twice), over what Badger
// already has, then drops them.
func TestOpenReplaysWAL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	s := openInternal(t, Options{Dir: dir})
	if err := s.Write(ctx, Set([]byte("old"), []byte("o")), Set([]byte("gone"), []byte("g"))); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	now := time.Now()
	groups := [][]Op{
		{Set([]byte("a"), []byte("1")), SetTTL([]byte("ttl"), []byte("t"), time.Hour), Delete([]byte("gone"))},
		{SetTTL([]byte("expired"), []byte("e"), time.Second), Set([]byte("a"), []byte("2"))},
	}
	l := wal.New(filepath.Join(dir, walDir), 1<<20)
	if err := l.Open(); err != nil {
		t.Fatal(err)
	}
	for _, ops := range groups {
		if err := l.Append(appendOps(nil, ops, now.Add(-2*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	s = openInternal(t, Options{Dir: dir})
	if st := s.Stats(); st.Replayed != 2 {
		t.Errorf("Replayed: got %d, want 2", st.Replayed)
	}
	for key, want := range map[string]string{"old": "o", "a": "2", "ttl": "t"} {
		if v, err := s.Get([]byte(key)); err != nil || string(v) != want {
			t.Errorf("get %s: got %q, %v; want %q", key, v, err, want)
		}
	}
	for _, key := range []string{"gone", "expired"} {
		if _, err := s.Get([]byte(key)); !errors.Is(err, ErrNotFound) {
			t.Errorf("get %s: got %v, want ErrNotFound", key, err)
		}
	}
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte("ttl"))
		if err != nil {
			return err
		}
		if got, want := item.ExpiresAt(), expiresAt(now.Add(-2*time.Second), time.Hour); got != want {
			t.Errorf("ttl's expiry: got %d, want %d (the logged one)", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(dir, walDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if filepath.Ext(e.Name()) == ".wal" {
			t.Errorf("after Open: got %s in wal/, want the replayed segments dropped", e.Name())
		}
	}
}
