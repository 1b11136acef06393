package memstore_test

import (
	"testing"

	"github.com/sidehook/sidehook/relay/memstore"
	"github.com/sidehook/sidehook/relay/storetest"
)

func FuzzCursor(f *testing.F) {
	s := memstore.New()
	f.Cleanup(func() { s.Close() })
	storetest.FuzzCursor(f, s)
}
