package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// In memory Badger has no value log: every value lives in the LSM tree,
// where Badger refuses values of 1 MiB and more (and panicked on them before
// we checked). So an in-memory store splits a larger value into chunks of
// memChunkSize under reserved keys: the key itself holds the value's length
// and is marked chunkedMeta, chunk i lives under chunkKey(key, i), and every
// chunk carries the key's expiry. Get and Scan reassemble the value from the
// same snapshot, so a reader never sees chunks of two writes. Writes read
// the key first, to delete the chunks of a longer value it replaces.
const (
	// reservedPrefix starts the store's own keys; Write refuses user keys
	// with it, and Scan skips them.
	reservedPrefix = "!sidehook!"
	chunkPrefix    = reservedPrefix + "chunk!"
	memChunkSize   = 256 << 10
	chunkedMeta    = byte(1) // Badger UserMeta of a chunked value's key
)

// chunkKey is key's i-th chunk. Every chunk key of key is len(key)+5 bytes
// after the prefix, so chunks of different keys cannot collide.
func chunkKey(key []byte, i int) []byte {
	k := make([]byte, 0, len(chunkPrefix)+len(key)+5)
	k = append(k, chunkPrefix...)
	k = append(k, key...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint32(k, uint32(i))
}

func chunks(n int) int { return (n + memChunkSize - 1) / memChunkSize }

// chunkCount is how many chunks key's current value has (0 when it is not
// chunked or does not exist), as txn sees it.
func chunkCount(txn *badger.Txn, key []byte) (int, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil || item.UserMeta() != chunkedMeta {
		return 0, err
	}
	n, err := chunkedLen(item)
	return chunks(n), err
}

func chunkedLen(item *badger.Item) (int, error) {
	var n uint64
	err := item.Value(func(v []byte) error {
		var k int
		if n, k = binary.Uvarint(v); k <= 0 || n > MaxInMemoryValue {
			return fmt.Errorf("chunked value %q: bad length header", item.Key())
		}
		return nil
	})
	return int(n), err
}

// addOpsChunked is addOps for an in-memory store.
func addOpsChunked(txn *badger.Txn, ops []Op, now time.Time) error {
	for _, op := range ops {
		old, err := chunkCount(txn, op.Key)
		if err != nil {
			return err
		}
		exp := expiresAt(now, op.TTL)
		n := 0
		switch {
		case op.Delete:
			err = txn.Delete(op.Key)
		case len(op.Value) <= memChunkSize:
			e := badger.NewEntry(op.Key, op.Value)
			e.ExpiresAt = exp
			err = txn.SetEntry(e)
		default:
			n = chunks(len(op.Value))
			e := badger.NewEntry(op.Key, binary.AppendUvarint(nil, uint64(len(op.Value)))).WithMeta(chunkedMeta)
			e.ExpiresAt = exp
			err = txn.SetEntry(e)
			for i := 0; i < n && err == nil; i++ {
				ce := badger.NewEntry(chunkKey(op.Key, i), op.Value[i*memChunkSize:min((i+1)*memChunkSize, len(op.Value))])
				ce.ExpiresAt = exp
				err = txn.SetEntry(ce)
			}
		}
		for i := n; i < old && err == nil; i++ {
			err = txn.Delete(chunkKey(op.Key, i))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// itemValue calls fn with item's value, reassembled if it is chunked. The
// value is valid only during fn.
func itemValue(txn *badger.Txn, item *badger.Item, fn func([]byte) error) error {
	if item.UserMeta() != chunkedMeta {
		return item.Value(fn)
	}
	n, err := chunkedLen(item)
	if err != nil {
		return err
	}
	val := make([]byte, 0, n)
	for i := range chunks(n) {
		c, err := txn.Get(chunkKey(item.Key(), i))
		if err != nil {
			return fmt.Errorf("chunk %d of %q: %w", i, item.Key(), err)
		}
		if err := c.Value(func(v []byte) error { val = append(val, v...); return nil }); err != nil {
			return err
		}
	}
	if len(val) != n {
		return fmt.Errorf("chunked value %q: got %d bytes, want %d", item.Key(), len(val), n)
	}
	return fn(val)
}

func isReserved(key []byte) bool { return bytes.HasPrefix(key, []byte(reservedPrefix)) }
