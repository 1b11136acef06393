package relay_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/relay/memstore"
)

// sharedFiles stands in for what a store shared by relays (natsstore)
// keeps of their files' endpoints.
type sharedFiles struct {
	mu   sync.Mutex
	last map[string]relay.FileEndpointRecord
}

// fileRecordingStore is one relay's store, recording in files.
type fileRecordingStore struct {
	relay.Store
	files *sharedFiles
	id    string
}

func (s *fileRecordingStore) RecordFileEndpoint(_ context.Context, org, id, print string) (*relay.FileEndpointRecord, error) {
	s.files.mu.Lock()
	defer s.files.mu.Unlock()
	key := org + "/" + id
	prev, ok := s.files.last[key]
	s.files.last[key] = relay.FileEndpointRecord{Print: print, Relay: s.id}
	if !ok {
		return nil, nil
	}
	return &prev, nil
}

// TestFileEndpointsCompared: relays sharing a store each read their
// endpoints from their own file; one whose file gives an endpoint
// otherwise than the relay before it warns, naming that relay, and one
// whose file agrees says nothing.
func TestFileEndpointsCompared(t *testing.T) {
	rcv := newSink(t, nil, nil)
	files := &sharedFiles{last: map[string]relay.FileEndpointRecord{}}
	start := func(id, url string) *lockedBuffer {
		logs := &lockedBuffer{}
		st := &fileRecordingStore{Store: memstore.New(), files: files, id: id}
		t.Cleanup(func() { st.Close() })
		runRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: url}, config.RawEndpoint{ID: "erp", URL: rcv.URL() + "/erp"}),
			relay.Options{Store: st, Logger: zerolog.New(logs)})
		return logs
	}
	warned := func(logs *lockedBuffer) []string {
		logs.mu.Lock()
		defer logs.mu.Unlock()
		var out []string
		for _, line := range strings.Split(logs.b.String(), "\n") {
			if strings.Contains(line, "read this endpoint otherwise") {
				out = append(out, line)
			}
		}
		return out
	}
	if w := warned(start("a", rcv.URL()+"/crm")); len(w) != 0 {
		t.Errorf("the first relay warned: %v", w)
	}
	if w := warned(start("b", rcv.URL()+"/crm")); len(w) != 0 {
		t.Errorf("a relay with the same file warned: %v", w)
	}
	w := warned(start("c", rcv.URL()+"/crm-v2"))
	if len(w) != 1 || !strings.Contains(w[0], `"endpoint":"crm"`) || !strings.Contains(w[0], `"other_relay":"b"`) {
		t.Errorf("a relay whose file moved crm: got %v, want one warning about crm naming relay b", w)
	}
}
