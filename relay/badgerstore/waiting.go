package badgerstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sidehook/sidehook/internal/store"
	"github.com/sidehook/sidehook/relay"
)

// Waiting counts, kept durable so that a start reads a few keys rather
// than the whole due index (a million entries took 1.5 s to count).
//
// Every write that adds or removes due-index entries carries, in the same
// atomic write, a delta record under a new sequence number: how many
// entries each endpoint gained or lost. Whether an op adds or removes an
// entry is read before the write (Exists), under a lock striped by key
// that every due-index write takes across its write, so no other write of
// that key can come between the read and the write. Deletions of absent
// keys and sets of present ones count nothing: the counts are the number
// of entries, whatever the paths that wrote them.
//
// A fold adds the delta records up to a bound into one count per endpoint
// and deletes them, in one write, and records the bound. The bound is below
// every sequence number still being written, so a delta never commits
// below the bound after a fold passed it. Waiting adds the counts and the
// deltas above the bound: a fold every second or every foldAfter deltas
// keeps that short, and Close folds everything.
//
// Keys:
//
//	qn/{org}/{endpoint}  count of the endpoint's due-index entries (varint)
//	qc/{seq}             a write's deltas: 8 big-endian bytes of sequence;
//	                     value: per endpoint, uvarint length, "org/endpoint", varint
//	qs                   the sequence through which deltas are folded into qn/
//
// A store written before the counts existed has no qs: Open counts its
// due index once.
const (
	pfxCount      = "qn/"
	pfxCountDelta = "qc/"
	keyFolded     = "qs"

	countStripes = 4096
	foldEvery    = time.Second
	foldAfter    = 4096 // deltas written since the last fold that trigger one
	foldBatch    = 4096 // deltas one fold write deletes
)

// counts is the in-memory side of the waiting counts.
type counts struct {
	stripes [countStripes]sync.Mutex // by due-index key, across a write

	mu       sync.Mutex
	last     uint64              // the last sequence number given out
	inflight map[uint64]struct{} // sequence numbers being written

	pending atomic.Int64  // deltas written since the last fold
	kick    chan struct{} // cap 1: a fold is due

	foldMu sync.Mutex // one fold at a time, and none during Waiting's reads
	folded uint64     // qs: deltas up to it are in qn/

	stop context.CancelFunc
	done chan struct{}
}

func countKey(ep string) []byte { return []byte(pfxCount + ep) }

func deltaKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(pfxCountDelta), seq)
}

func parseDeltaKey(k []byte) (uint64, bool) {
	if len(k) != len(pfxCountDelta)+8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[len(pfxCountDelta):]), true
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

func splitEndpoint(ep string) (relay.EndpointRef, bool) {
	org, id, ok := bytes.Cut([]byte(ep), []byte("/"))
	return relay.EndpointRef{Org: string(org), Endpoint: string(id)}, ok
}

func appendDeltas(b []byte, deltas map[string]int64) []byte {
	eps := make([]string, 0, len(deltas))
	for ep, d := range deltas {
		if d != 0 {
			eps = append(eps, ep)
		}
	}
	slices.Sort(eps)
	for _, ep := range eps {
		b = binary.AppendUvarint(b, uint64(len(ep)))
		b = append(b, ep...)
		b = binary.AppendVarint(b, deltas[ep])
	}
	return b
}

// addDeltas adds a delta record's deltas to sums.
func addDeltas(v []byte, sums map[string]int64) error {
	for len(v) > 0 {
		n, k := binary.Uvarint(v)
		if k <= 0 || n > uint64(len(v)-k) {
			return errors.New("count delta: bad length")
		}
		ep := string(v[k : k+int(n)])
		v = v[k+int(n):]
		d, k := binary.Varint(v)
		if k <= 0 {
			return errors.New("count delta: bad delta")
		}
		v = v[k:]
		sums[ep] += d
	}
	return nil
}

// withCounts returns ops with the delta record of their due-index changes,
// and what to call once the write has ended (whatever its outcome). It
// holds the stripes of the due-index keys in ops until then.
func (s *Store) withCounts(ops []store.Op) (out []store.Op, done func(), err error) {
	var keys [][]byte
	for _, op := range ops {
		if _, ok := queueEndpoint(op.Key); ok {
			keys = append(keys, op.Key)
		}
	}
	if len(keys) == 0 {
		return ops, func() {}, nil
	}
	unlock := s.counts.lock(keys)
	live, err := s.db.Exists(keys)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	deltas := make(map[string]int64, 1)
	after := make(map[string]bool, len(keys)) // a key's state after the ops before
	i := 0
	for _, op := range ops {
		ep, ok := queueEndpoint(op.Key)
		if !ok {
			continue
		}
		was, seen := after[string(op.Key)]
		if !seen {
			was = live[i]
		}
		i++
		now := !op.Delete
		after[string(op.Key)] = now
		switch {
		case now && !was:
			deltas[string(ep)]++
		case was && !now:
			deltas[string(ep)]--
		}
	}
	rec := appendDeltas(nil, deltas)
	if len(rec) == 0 {
		return ops, unlock, nil
	}
	seq := s.counts.begin()
	out = append(slices.Clip(ops), store.Set(deltaKey(seq), rec))
	return out, func() {
		s.counts.end(seq)
		unlock()
	}, nil
}

// lock takes the stripes of keys in order, and returns their unlock.
func (c *counts) lock(keys [][]byte) func() {
	idx := make([]int, 0, len(keys))
	for _, k := range keys {
		h := fnv.New32a()
		h.Write(k)
		idx = append(idx, int(h.Sum32()%countStripes))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		c.stripes[i].Lock()
	}
	return func() {
		for _, i := range idx {
			c.stripes[i].Unlock()
		}
	}
}

func (c *counts) begin() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last++
	c.inflight[c.last] = struct{}{}
	return c.last
}

func (c *counts) end(seq uint64) {
	c.mu.Lock()
	delete(c.inflight, seq)
	c.mu.Unlock()
	if c.pending.Add(1) >= foldAfter {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// bound is the highest sequence number below every one being written:
// every delta at or below it has committed, or never will.
func (c *counts) bound() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.last
	for seq := range c.inflight {
		b = min(b, seq-1)
	}
	return b
}

// openCounts reads where the deltas stand, counts the due index of a store
// written before the counts existed, and starts the folds.
func (s *Store) openCounts(ctx context.Context) error {
	c := &s.counts
	c.inflight = make(map[uint64]struct{})
	c.kick = make(chan struct{}, 1)
	b, err := s.db.Get([]byte(keyFolded))
	switch {
	case errors.Is(err, store.ErrNotFound):
		if err := s.countAll(ctx); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("read the waiting counts: %w", err)
	case len(b) != 8:
		return fmt.Errorf("read the waiting counts: %s is %d bytes, want 8", keyFolded, len(b))
	default:
		c.folded = binary.BigEndian.Uint64(b)
	}
	c.last = c.folded
	err = s.db.Scan(ctx, store.ScanOptions{Prefix: []byte(pfxCountDelta), Reverse: true, Limit: 1, KeysOnly: true}, func(k, _ []byte) error {
		if seq, ok := parseDeltaKey(k); ok {
			c.last = max(c.last, seq)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the waiting counts: %w", err)
	}
	foldCtx, stop := context.WithCancel(context.Background())
	c.stop, c.done = stop, make(chan struct{})
	go s.runFolds(foldCtx)
	return nil
}

// countAll counts every due index and stores the counts, with no delta
// folded yet.
func (s *Store) countAll(ctx context.Context) error {
	start := time.Now()
	sums := make(map[string]int64)
	var n int64
	err := s.db.Scan(ctx, store.ScanOptions{Prefix: []byte(pfxQueue), KeysOnly: true}, func(k, _ []byte) error {
		if ep, ok := queueEndpoint(k); ok {
			sums[string(ep)]++
			n++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("count the due index: %w", err)
	}
	ops := make([]store.Op, 0, len(sums)+1)
	for ep, c := range sums {
		ops = append(ops, store.Set(countKey(ep), binary.AppendVarint(nil, c)))
	}
	ops = append(ops, store.Set([]byte(keyFolded), binary.BigEndian.AppendUint64(nil, 0)))
	if err := s.db.Write(context.WithoutCancel(ctx), ops...); err != nil {
		return fmt.Errorf("store the waiting counts: %w", err)
	}
	if n > 0 {
		s.log.Info().Int64("entries", n).Dur("took", time.Since(start)).Msg("counted the due index once; the counts are kept from now on")
	}
	return nil
}

// runFolds folds every foldEvery and when kicked, and once more when
// stopped, so that a clean stop leaves no delta behind.
func (s *Store) runFolds(ctx context.Context) {
	c := &s.counts
	defer close(c.done)
	t := time.NewTicker(foldEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := s.fold(context.Background()); err != nil {
				s.log.Warn().Err(err).Msg("fold the waiting counts")
			}
			return
		case <-t.C:
		case <-c.kick:
		}
		// A full disk refuses the fold like any write, and Health says so:
		// the deltas wait for the next fold.
		if err := s.fold(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, relay.ErrDiskFull) {
			s.log.Warn().Err(err).Msg("fold the waiting counts")
		}
	}
}

// stopFolds ends runFolds after its last fold; safe if it never started.
func (s *Store) stopFolds() {
	if s.counts.stop != nil {
		s.counts.stop()
		<-s.counts.done
	}
}

// fold adds the deltas up to the bound into the counts, a batch per write.
func (s *Store) fold(ctx context.Context) error {
	c := &s.counts
	c.foldMu.Lock()
	defer c.foldMu.Unlock()
	bound := c.bound()
	for c.folded < bound {
		sums := make(map[string]int64)
		var ops []store.Op
		last := c.folded
		err := s.db.Scan(ctx, store.ScanOptions{Prefix: []byte(pfxCountDelta), After: deltaKey(c.folded), Limit: foldBatch}, func(k, v []byte) error {
			seq, ok := parseDeltaKey(k)
			if !ok {
				return fmt.Errorf("count delta key %q", k)
			}
			if seq > bound {
				return store.ErrStop
			}
			if err := addDeltas(v, sums); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			ops = append(ops, store.Delete(bytes.Clone(k)))
			last = seq
			return nil
		})
		if err != nil {
			return fmt.Errorf("fold the waiting counts: %w", err)
		}
		if len(ops) == 0 {
			return nil // what lies up to the bound never committed
		}
		folded := len(ops)
		for ep, d := range sums {
			if d == 0 {
				continue
			}
			base, err := s.count(ep)
			if err != nil {
				return fmt.Errorf("fold the waiting counts: %w", err)
			}
			if n := base + d; n != 0 {
				ops = append(ops, store.Set(countKey(ep), binary.AppendVarint(nil, n)))
			} else {
				ops = append(ops, store.Delete(countKey(ep)))
			}
		}
		ops = append(ops, store.Set([]byte(keyFolded), binary.BigEndian.AppendUint64(nil, last)))
		if err := s.commit(ctx, "fold the waiting counts", ops...); err != nil {
			return err
		}
		c.folded = last
		c.pending.Add(-int64(folded))
		if folded < foldBatch {
			return nil
		}
	}
	return nil
}

// count reads an endpoint's folded count.
func (s *Store) count(ep string) (int64, error) {
	b, err := s.db.Get(countKey(ep))
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, k := binary.Varint(b)
	if k <= 0 {
		return 0, fmt.Errorf("count of %s: bad varint", ep)
	}
	return n, nil
}

// Waiting counts the entries of every due index: the folded counts plus
// the deltas written since the last fold.
func (s *Store) Waiting(ctx context.Context) (map[relay.EndpointRef]int64, error) {
	if err := s.check("waiting"); err != nil {
		return nil, err
	}
	c := &s.counts
	c.foldMu.Lock()
	defer c.foldMu.Unlock()
	sums := make(map[string]int64)
	err := s.scan(ctx, "waiting", store.ScanOptions{Prefix: []byte(pfxCount)}, func(k, v []byte) error {
		n, i := binary.Varint(v)
		if i <= 0 {
			return fmt.Errorf("count %s: bad varint", k)
		}
		sums[string(k[len(pfxCount):])] += n
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = s.scan(ctx, "waiting", store.ScanOptions{Prefix: []byte(pfxCountDelta), After: deltaKey(c.folded)}, func(k, v []byte) error {
		if err := addDeltas(v, sums); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make(map[relay.EndpointRef]int64, len(sums))
	for ep, n := range sums {
		if ref, ok := splitEndpoint(ep); ok && n != 0 {
			out[ref] = n
		}
	}
	return out, nil
}
