package badgerstore

import (
	"bytes"
	"context"

	"github.com/sidehook/sidehook/internal/store"
	"github.com/sidehook/sidehook/relay"
)

// The waiting counts are a scan of the due indexes, keys only: about a
// second per million entries here. Counts kept durable in every write
// (a delta per write, read-before-write under striped locks, folds) cost
// 12.5% of the relay's CPU per event under load, to spare a start that
// second; WaitingSnapshot spares it instead by letting the relay count
// while it serves.

// Keys of the durable counts an older version kept; Open deletes them.
var obsoleteCountPrefixes = []string{"qn/", "qc/", "qs"}

// Waiting counts the entries of every due index.
func (s *Store) Waiting(ctx context.Context) (map[relay.EndpointRef]int64, error) {
	count, err := s.WaitingSnapshot(ctx)
	if err != nil {
		return nil, err
	}
	return count(ctx)
}

// WaitingSnapshot fixes the snapshot of the due indexes that count
// counts: a write that returns after WaitingSnapshot is not in the
// counts. count must be called once; it releases the snapshot, which
// holds Close until then.
func (s *Store) WaitingSnapshot(ctx context.Context) (count func(context.Context) (map[relay.EndpointRef]int64, error), err error) {
	if err := s.check("waiting"); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sn, err := s.db.Snapshot()
	if err != nil {
		return nil, s.wrap("waiting", err)
	}
	return func(ctx context.Context) (map[relay.EndpointRef]int64, error) {
		defer sn.Close()
		out := make(map[relay.EndpointRef]int64)
		// Keys are in endpoint order: count runs, and convert an
		// endpoint's name once rather than once per entry.
		var cur []byte
		var n int64
		flush := func() {
			if n == 0 {
				return
			}
			if ref, ok := splitEndpoint(cur); ok {
				out[ref] += n
			}
			n = 0
		}
		err := sn.Scan(ctx, store.ScanOptions{Prefix: []byte(pfxQueue), KeysOnly: true}, func(k, _ []byte) error {
			ep, ok := queueEndpoint(k)
			if !ok {
				return nil
			}
			if !bytes.Equal(ep, cur) {
				flush()
				cur = append(cur[:0], ep...)
			}
			n++
			return nil
		})
		if err != nil {
			return nil, s.wrap("waiting", err)
		}
		flush()
		return out, nil
	}, nil
}

// queueEndpoint returns "org/endpoint" of a due-index key, or false for
// any other key.
func queueEndpoint(k []byte) ([]byte, bool) {
	if !bytes.HasPrefix(k, []byte(pfxQueue)) {
		return nil, false
	}
	rest := k[len(pfxQueue):]
	i := bytes.IndexByte(rest, '/')
	if i < 0 {
		return nil, false
	}
	j := bytes.IndexByte(rest[i+1:], '/')
	if j < 0 {
		return nil, false
	}
	return rest[:i+1+j], true
}

func splitEndpoint(ep []byte) (relay.EndpointRef, bool) {
	org, id, ok := bytes.Cut(ep, []byte("/"))
	return relay.EndpointRef{Org: string(org), Endpoint: string(id)}, ok
}

// dropObsoleteCounts deletes the durable counts of an older version.
func (s *Store) dropObsoleteCounts(ctx context.Context) error {
	for _, p := range obsoleteCountPrefixes {
		if err := s.db.DeletePrefix(context.WithoutCancel(ctx), []byte(p)); err != nil {
			return err
		}
	}
	return nil
}
