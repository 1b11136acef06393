package memstore_test

import (
	"testing"

	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/receiver/memstore"
	"github.com/sidehook/sidehook/receiver/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) receiver.Store {
		st := memstore.New()
		t.Cleanup(func() { st.Close() })
		return st
	})
}
