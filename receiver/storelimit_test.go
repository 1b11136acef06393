package receiver_test

import (
	"strings"
	"testing"

	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/receiver/memstore"
)

// limitedStore is a store that holds bodies of at most lim.MaxBody bytes.
type limitedStore struct {
	receiver.Store
	lim receiver.StoreLimit
}

func (s limitedStore) BodyLimit() receiver.StoreLimit { return s.lim }

// TestNewRefusesMaxBodyOverTheStore: New refuses a MaxBody its store
// cannot hold in one line saying both sizes and why, since every body
// between the two would be read and then refused (a 413 at each try);
// the default MaxBody is checked too, and memory holds any.
func TestNewRefusesMaxBodyOverTheStore(t *testing.T) {
	small := receiver.StoreLimit{Store: "the tiny store", MaxBody: 512 << 10, Why: "a page of 512 KiB"}
	tests := []struct {
		name    string
		lim     *receiver.StoreLimit // nil: the in-memory store's own
		maxBody int64
		want    string
	}{
		{"AtTheLimit", &small, 512 << 10, ""},
		{"Over", &small, 600 << 10, "receiver: max body: 600 KiB is more than the tiny store holds of one capture: at most 512 KiB (a page of 512 KiB); lower it"},
		{"DefaultOver", &small, 0, "receiver: max body: 1.0 MiB is more than the tiny store holds of one capture: at most 512 KiB (a page of 512 KiB); lower it"},
		{"NoWhy", &receiver.StoreLimit{Store: "the tiny store", MaxBody: 1024}, 2048, "receiver: max body: 2.0 KiB is more than the tiny store holds of one capture: at most 1.0 KiB; lower it"},
		{"InMemory", nil, 1 << 40, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st receiver.Store = memstore.New()
			if tt.lim != nil {
				st = limitedStore{Store: st, lim: *tt.lim}
			}
			_, err := receiver.New(receiver.Config{Listen: "127.0.0.1:0", Store: st, MaxBody: tt.maxBody})
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
			if strings.Contains(got, "\n") {
				t.Errorf("got several lines, want one")
			}
		})
	}
}
