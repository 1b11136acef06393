package memstore_test

import (
	"testing"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/memstore"
	"github.com/sidehook/sidehook/relay/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Factory{New: func(t *testing.T) relay.Store {
		s := memstore.New()
		t.Cleanup(func() { s.Close() })
		return s
	}})
}
