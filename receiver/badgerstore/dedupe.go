package badgerstore

import (
	"crypto/sha256"
	"sync"

	"github.com/bits-and-blooms/bloom/v3"
)

// widSum is a webhook-id's SHA-256: its key in the store's index and in
// memory. A webhook-id can be longer than a Badger key may be (64 KB);
// its hash always fits. Two webhook-ids share a sum only by a SHA-256
// collision.
type widSum [sha256.Size]byte

func sumOf(wid string) widSum { return sha256.Sum256([]byte(wid)) }

// dedupe decides duplicate_of: the first capture of each webhook-id. A
// bounded in-memory map answers most lookups, and concurrent appends with
// the same new webhook-id share one lookup, so exactly one of them is the
// first. A miss would cost one store Get, which is most of the cost of a
// webhook-id never seen before, the common case: a Bloom filter of every
// webhook-id the store may hold answers "not there" without it.
//
// The map and its eviction ring hold no pointers (keys are hashes, ids are
// inline), so the garbage collector never scans them: with strings, a
// channel and an entry per webhook-id, a full map was some 200,000 objects
// for every collection to mark.
type dedupe struct {
	mu     sync.Mutex
	ready  *sync.Cond // broadcast whenever a claim resolves, or the map is cleared
	max    int
	m      map[widKey]dedupeEntry
	ring   []widKey // insertion order, for eviction
	filled int      // entries of ring in use
	next   int
	claims uint64 // claims made, to tell a claim from a later one for the same key
	lookup func(widSum) (string, bool)

	// known holds the sum of every webhook-id claimed by this process
	// (added when claimed, before its write, so a failed write only leaves
	// a false positive) and, once complete, of every one stored before it
	// started. It is never cleared: after a reset its stale entries only
	// cost a Get each, whereas clearing it could race with a claim in
	// flight.
	known    *bloom.BloomFilter
	complete bool
}

// Sizing of the known filter: about 1.2 MiB. Past knownIDs webhook-ids the
// false positives rise, and each costs one store Get, as without the filter.
const (
	knownIDs           = 1_000_000
	knownFalsePositive = 0.01
)

// widKey is a webhook-id in the map: the first 16 bytes of its sum.
type widKey [16]byte

func keyOf(sum widSum) widKey { return widKey(sum[:len(widKey{})]) }

// maxInlineID bounds the capture ids the map holds (ours are 30 bytes);
// the answer for a longer one, only ever read from a foreign store, is not
// kept.
const maxInlineID = 32

type dedupeEntry struct {
	claim   uint64 // the claim that made it
	pending bool   // its claim is still looking the first capture up
	n       uint8
	first   [maxInlineID]byte
}

func (e *dedupeEntry) firstID() string { return string(e.first[:e.n]) }

func newDedupe(max int, lookup func(widSum) (string, bool)) *dedupe {
	d := &dedupe{
		max: max, m: make(map[widKey]dedupeEntry), ring: make([]widKey, max), lookup: lookup,
		known: bloom.NewWithEstimates(knownIDs, knownFalsePositive),
	}
	d.ready = sync.NewCond(&d.mu)
	return d
}

// addKnown adds stored webhook-ids' sums to the filter.
func (d *dedupe) addKnown(sums []widSum) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range sums {
		d.known.Add(s[:])
	}
}

// markComplete says the filter holds every stored webhook-id: from now on
// a webhook-id it does not know is not looked up.
func (d *dedupe) markComplete() {
	d.mu.Lock()
	d.complete = true
	d.mu.Unlock()
}

// first returns the id of the first capture of the webhook-id whose sum is
// sum; mine reports that it is id itself (the caller then writes the index
// entry). forget undoes a claim whose capture could not be stored.
func (d *dedupe) first(sum widSum, id string) (first string, mine bool) {
	k := keyOf(sum)
	d.mu.Lock()
	for {
		e, ok := d.m[k]
		if !ok {
			break
		}
		if !e.pending {
			d.mu.Unlock()
			first = e.firstID()
			return first, first == id
		}
		d.ready.Wait() // another append with this webhook-id is looking it up
	}
	if d.filled == d.max {
		delete(d.m, d.ring[d.next])
	} else {
		d.filled++
	}
	d.ring[d.next] = k
	d.next = (d.next + 1) % d.max
	d.claims++
	claim := d.claims
	d.m[k] = dedupeEntry{claim: claim, pending: true}
	mayBeStored := d.known.TestOrAdd(sum[:]) || !d.complete
	d.mu.Unlock()

	first = id
	if mayBeStored {
		if prev, ok := d.lookup(sum); ok {
			first = prev
		}
	}

	d.mu.Lock()
	if e, ok := d.m[k]; ok && e.claim == claim { // not evicted or cleared meanwhile
		if len(first) <= maxInlineID {
			e.pending, e.n = false, uint8(copy(e.first[:], first))
			d.m[k] = e
		} else {
			delete(d.m, k)
		}
	}
	d.ready.Broadcast()
	d.mu.Unlock()
	return first, first == id
}

// forget drops the entry of sum if it names id (its capture was not
// stored).
func (d *dedupe) forget(sum widSum, id string) {
	k := keyOf(sum)
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.m[k]; ok && !e.pending && e.firstID() == id {
		delete(d.m, k)
	}
}

// clear forgets the cached answers (the captures were deleted); the filter
// stays, see known.
func (d *dedupe) clear() {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.m)
	d.filled, d.next = 0, 0
	d.ready.Broadcast() // waiters find no entry and claim the webhook-id themselves
}
