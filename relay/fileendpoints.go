package relay

import (
	"context"
	"encoding/json"
	"time"

	"github.com/sidehook/sidehook/relay/config"
)

// fileEndpointRecorder is a store that several relays share (natsstore).
// Each relay reads its endpoints from its own configuration file, so the
// store keeps what the last relay's file gave each one, for the next to
// compare with its own.
type fileEndpointRecorder interface {
	// RecordFileEndpoint records print for org's endpoint id and returns
	// the record it replaced (nil: none).
	RecordFileEndpoint(ctx context.Context, org, id, print string) (*FileEndpointRecord, error)
}

// FileEndpointRecord is what one relay's configuration file gave an
// endpoint, as a store shared by relays keeps it.
type FileEndpointRecord struct {
	Print string    `json:"print"` // endpointPrint of the endpoint
	Relay string    `json:"relay"` // the store's id of the relay that recorded it
	Host  string    `json:"host"`  // the host it ran on
	At    time.Time `json:"at"`
}

// checkFileEndpoints records o's endpoints from the file in a shared store
// and warns of each that another relay's file gave otherwise: that relay
// makes the endpoint's deliveries, and sends those it attempts, by its own
// file. During a change rolled out relay by relay the warning is expected.
func (r *Relay) checkFileEndpoints(ctx context.Context, o *orgState) {
	rec, ok := r.store.(fileEndpointRecorder)
	if !ok {
		return
	}
	for _, e := range o.cfg.Endpoints {
		print := endpointPrint(e)
		prev, err := rec.RecordFileEndpoint(ctx, o.id, e.ID, print)
		if err != nil {
			// The store answers none of them now: one line says so.
			r.log.Warn().Err(err).Str(logOrg, o.id).Msg("could not compare the file's endpoints with other relays'")
			return
		}
		if prev != nil && prev.Print != print {
			r.log.Warn().Str(logOrg, o.id).Str(logEndpoint, e.ID).Str("other_relay", prev.Relay).Str("other_host", prev.Host).
				Time("other_started", prev.At).
				Msg("another relay on this store read this endpoint otherwise from its configuration file: give every relay the same file")
		}
	}
}

// endpointPrint identifies what a file gives an endpoint: a hash of its
// document, so that the store keeps none of its secrets.
func endpointPrint(e config.Endpoint) string {
	doc, err := json.Marshal(e.Raw())
	if err != nil {
		return ""
	}
	return bodyHash(doc)
}
