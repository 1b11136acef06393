package badgerstore_test

import (
	"testing"

	"github.com/sidehook/sidehook/relay/storetest"
)

func FuzzCursor(f *testing.F) {
	storetest.FuzzCursor(f, open(f, f.TempDir()))
}
