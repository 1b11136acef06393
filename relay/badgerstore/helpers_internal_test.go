package badgerstore

import (
	"context"
	"testing"

	"github.com/rs/zerolog"
)

// openTemp opens a store in a fresh directory, closed at the test's end.
func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{Dir: t.TempDir(), Logger: zerolog.Nop(), Reserve: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
