package natsstore

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/sidehook/sidehook/relay"
)

// fileEndpointKey is the control bucket's record of what the last relay
// to start read for an endpoint from its configuration file.
func fileEndpointKey(org, id string) string { return "file." + tok(org) + "." + tok(id) }

// RecordFileEndpoint records print, with this relay's id and host, as
// what its configuration file gives org's endpoint id, and returns the
// record it replaced: the relay compares the two.
func (s *Store) RecordFileEndpoint(ctx context.Context, org, id, print string) (*relay.FileEndpointRecord, error) {
	key := fileEndpointKey(org, id)
	old, err := s.kvGet(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("record file endpoint: %w", err)
	}
	var prev *relay.FileEndpointRecord
	if old != nil {
		var r relay.FileEndpointRecord
		if json.Unmarshal(old, &r) == nil {
			prev = &r
		}
	}
	host, _ := os.Hostname()
	doc, err := json.Marshal(relay.FileEndpointRecord{Print: print, Relay: s.id, Host: host, At: time.Now().UTC()})
	if err != nil {
		return prev, fmt.Errorf("record file endpoint: %w", err)
	}
	if err := s.kvPut(ctx, key, doc); err != nil {
		return prev, fmt.Errorf("record file endpoint: %w", err)
	}
	return prev, nil
}
