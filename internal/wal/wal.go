// Package wal is an append-only write-ahead log: records framed with their
// length and a CRC-32C, appended to preallocated segment files, made
// durable by one fdatasync, replayed in order after a crash and trimmed once
// their contents are durable elsewhere.
//
// A segment is a file named by its number (%016x.wal), and a sequence of
// frames
//
//	length  uint32 LE  payload bytes, 1 or more
//	crc     uint32 LE  CRC-32C of the segment number (uint64 LE), the
//	                   length bytes and the payload
//	payload
//
// A segment ends at the end of the file, at a length of 0 (preallocated
// space never written, or the zeros Append writes ahead of its records), or
// at the first frame that does not check out: torn by a crash, or left from
// the file's previous life. An fdatasync writes the data alone only into
// blocks already written: Append writes zeros a chunk ahead of its records
// (zeroAhead), and trimmed segments are recycled as the next new one (one
// spare is kept). The segment number in the checksum makes a recycled
// segment's old frames invalid: numbers are never reused, the spare
// (%016x.spare) keeping its old one.
package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	segExt   = ".wal"
	spareExt = ".spare" // a trimmed segment kept for reuse, under its old number

	// HeaderSize is the framing each record costs.
	HeaderSize = 8
	// maxRecord bounds the length a reader believes: a damaged length must
	// not make it allocate gigabytes.
	maxRecord = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Log is a write-ahead log in one directory. Its methods are not safe for
// concurrent use: one writer owns it.
type Log struct {
	dir     string
	segSize int64

	segs  []uint64 // segments on disk, oldest first; the last is cur's when cur is open
	next  uint64   // the next new segment's number: above every number ever used here
	cur   *os.File // nil until the first Append after Open or Rotate
	off   int64    // write offset in cur
	spare uint64   // the number of the trimmed segment waiting to be recycled, or 0
	buf   []byte

	zeroed int64  // cur's bytes from 0 written since it was opened, records and zeros: zeroAhead
	zeros  []byte // zeroChunk of them, made at the first use
	slow   bool   // the last sync took slowSync or more
}

// New returns a log of segments of segmentSize bytes in dir; it does no I/O.
func New(dir string, segmentSize int64) *Log {
	return &Log{dir: dir, segSize: segmentSize}
}

// Open creates the directory if needed and lists its segments. Replay then
// reads them; Append writes to a new segment after them.
func (l *Log) Open() error {
	if err := os.MkdirAll(l.dir, 0o700); err != nil {
		return fmt.Errorf("wal: open: %w", err)
	}
	if err := syncDir(filepath.Dir(filepath.Clean(l.dir))); err != nil {
		return fmt.Errorf("wal: open: %w", err)
	}
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("wal: open: %w", err)
	}
	l.next = 1
	for _, e := range entries {
		name := e.Name()
		if n, ok := segNumber(name, spareExt); ok && n > 0 {
			l.spare = n
			l.next = max(l.next, n+1)
		}
		if n, ok := segNumber(name, segExt); ok && n > 0 {
			l.segs = append(l.segs, n)
			l.next = max(l.next, n+1)
		}
	}
	slices.Sort(l.segs)
	return nil
}

func segNumber(name, ext string) (uint64, bool) {
	hex, ok := strings.CutSuffix(name, ext)
	if !ok || len(hex) != 16 {
		return 0, false
	}
	n, err := strconv.ParseUint(hex, 16, 64)
	return n, err == nil
}

func (l *Log) path(n uint64) string { return filepath.Join(l.dir, fmt.Sprintf("%016x%s", n, segExt)) }

func (l *Log) sparePath(n uint64) string {
	return filepath.Join(l.dir, fmt.Sprintf("%016x%s", n, spareExt))
}

// Replay calls fn with the payload of every intact record, oldest first. A
// segment's records end at its first frame that does not check out; the
// last segment is truncated there, so that its crash tail is gone for good.
// payload is valid only during fn. Replay must come before the first
// Append.
func (l *Log) Replay(fn func(payload []byte) error) error {
	if l.cur != nil {
		return errors.New("wal: replay after append")
	}
	for i, n := range l.segs {
		data, err := os.ReadFile(l.path(n))
		if err != nil {
			return fmt.Errorf("wal: replay: %w", err)
		}
		var off int
		for {
			payload, size, ok := decodeFrame(data[off:], n)
			if !ok {
				break
			}
			if err := fn(payload); err != nil {
				return err
			}
			off += size
		}
		if i == len(l.segs)-1 && off < len(data) && !zeros(data[off:]) {
			if err := truncate(l.path(n), int64(off)); err != nil {
				return fmt.Errorf("wal: replay: truncate the torn tail: %w", err)
			}
		}
	}
	return nil
}

func zeros(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func truncate(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// decodeFrame reads the frame at the start of b, written in segment seg. It
// returns the payload (aliasing b) and the frame's size, or ok false at the
// end of the segment's records.
func decodeFrame(b []byte, seg uint64) (payload []byte, size int, ok bool) {
	if len(b) < HeaderSize {
		return nil, 0, false
	}
	n := binary.LittleEndian.Uint32(b[0:4])
	if n == 0 || n > maxRecord || int64(n) > int64(len(b)-HeaderSize) {
		return nil, 0, false
	}
	payload = b[HeaderSize : HeaderSize+int(n)]
	if binary.LittleEndian.Uint32(b[4:8]) != checksum(seg, b[0:4], payload) {
		return nil, 0, false
	}
	return payload, HeaderSize + int(n), true
}

func checksum(seg uint64, length, payload []byte) uint32 {
	crc := crc32.Update(0, castagnoli, binary.LittleEndian.AppendUint64(nil, seg))
	crc = crc32.Update(crc, castagnoli, length)
	return crc32.Update(crc, castagnoli, payload)
}

// appendFrame appends the frame of payload for segment seg to buf.
func appendFrame(buf []byte, seg uint64, payload []byte) []byte {
	var length [4]byte
	binary.LittleEndian.PutUint32(length[:], uint32(len(payload)))
	buf = append(buf, length[:]...)
	buf = binary.LittleEndian.AppendUint32(buf, checksum(seg, length[:], payload))
	return append(buf, payload...)
}

// Grows reports how many bytes of new disk space appending records of
// payloadBytes in all would take: none while they fit the current
// segment's preallocated space, a segment when they need a new one.
func (l *Log) Grows(records int, payloadBytes int64) int64 {
	n := int64(records)*HeaderSize + payloadBytes
	if l.cur != nil && l.off+n <= l.segSize {
		return 0
	}
	if l.spare != 0 {
		return max(0, n-l.segSize)
	}
	return max(n, l.segSize)
}

// Append writes the records, in order, to the current segment, starting a
// new one first when they do not fit the rest of it (a record larger than
// a segment makes its segment larger). They are durable after Sync.
func (l *Log) Append(payloads ...[]byte) error {
	var n int64
	for _, p := range payloads {
		if len(p) == 0 || len(p) > maxRecord {
			return fmt.Errorf("wal: append: a record of %d bytes (1 to %d)", len(p), maxRecord)
		}
		n += HeaderSize + int64(len(p))
	}
	if l.cur == nil || (l.off > 0 && l.off+n > l.segSize) {
		if err := l.startSegment(); err != nil {
			return fmt.Errorf("wal: append: %w", err)
		}
	}
	seg := l.segs[len(l.segs)-1]
	l.buf = l.buf[:0]
	for _, p := range payloads {
		l.buf = appendFrame(l.buf, seg, p)
	}
	end := l.off + int64(len(l.buf))
	if err := l.zeroAhead(end); err != nil {
		return fmt.Errorf("wal: append: %w", err)
	}
	if _, err := l.cur.WriteAt(l.buf, l.off); err != nil {
		return fmt.Errorf("wal: append: %w", err)
	}
	l.off = end
	return nil
}

// Sync makes every appended record durable: one fdatasync, keeping the
// writer's P while syncs are fast (datasyncKeepP).
func (l *Log) Sync() error {
	if l.cur == nil {
		return nil
	}
	sync := datasyncKeepP
	if l.slow {
		sync = datasync
	}
	start := time.Now()
	err := sync(l.cur)
	l.slow = time.Since(start) >= slowSync
	if err != nil {
		return fmt.Errorf("wal: sync: %w", err)
	}
	return nil
}

// slowSync is the sync time from which Sync goes back to syncing through
// the scheduler: a P held in the kernel that long (a saturated or failing
// disk) would cost the rest of the process more than the wait for a P it
// saves.
const slowSync = 20 * time.Millisecond

// zeroChunk is how far ahead of its records Append writes zeros.
const zeroChunk = 1 << 20

// zeroAhead writes zeros after end, the end of the records being
// appended, up to a chunk, once the records pass what was written ahead:
// blocks preallocated but never written are unwritten extents, and an
// fdatasync after records land in them commits their conversion too (on
// ext4 an inode write: twice the sync's time and CPU time). So one sync
// in a chunk commits it, and the syncs of the records that follow in it
// write their data alone.
func (l *Log) zeroAhead(end int64) error {
	if end <= l.zeroed {
		return nil
	}
	to := min(end+zeroChunk, l.segSize)
	if to > end {
		if l.zeros == nil {
			l.zeros = make([]byte, zeroChunk)
		}
		if _, err := l.cur.WriteAt(l.zeros[:to-end], end); err != nil {
			return err
		}
	}
	l.zeroed = max(end, to)
	return nil
}

// startSegment closes the current segment and opens the next: the spare
// renamed, or a new file preallocated to the segment size, so that an
// fdatasync does not pay for allocating blocks.
func (l *Log) startSegment() error {
	if err := l.closeCur(); err != nil {
		return err
	}
	next := l.next
	path := l.path(next)
	if l.spare != 0 {
		if err := os.Rename(l.sparePath(l.spare), path); err != nil {
			return err
		}
		l.spare = 0
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := preallocate(f, l.segSize); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return err
	}
	// The previous segment was synced by closeCur; the new one's entry and
	// size must be durable before a record in it is acknowledged.
	if err := errors.Join(f.Sync(), syncDir(l.dir)); err != nil {
		_ = f.Close()
		return err
	}
	l.cur, l.off, l.zeroed = f, 0, 0
	l.segs = append(l.segs, next)
	l.next++
	return nil
}

func (l *Log) closeCur() error {
	if l.cur == nil {
		return nil
	}
	err := errors.Join(datasync(l.cur), l.cur.Close())
	l.cur = nil
	return err
}

// Rotate syncs and closes the current segment: the next Append starts a new
// one. It returns the number of the first segment that can hold records
// appended after it, for TrimBefore once everything before is durable
// elsewhere.
func (l *Log) Rotate() (uint64, error) {
	if err := l.closeCur(); err != nil {
		return 0, fmt.Errorf("wal: rotate: %w", err)
	}
	return l.next, nil
}

// TrimBefore removes the segments numbered below seg, oldest first
// (keeping one as the spare to recycle), and syncs the directory. It never
// removes the segment being appended to. It stops at the first segment it
// cannot remove: the segments left must run on without a gap, or a replay
// would apply an old segment's records over the newer ones of a removed
// segment after it.
func (l *Log) TrimBefore(seg uint64) error {
	var err error
	removed := 0
	for i, n := range l.segs {
		if n >= seg || (l.cur != nil && i == len(l.segs)-1) {
			break
		}
		if l.spare == 0 {
			err = os.Rename(l.path(n), l.sparePath(n))
			if err == nil {
				l.spare = n
			}
		} else {
			err = os.Remove(l.path(n))
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			break
		}
		err = nil
		removed++
	}
	l.segs = slices.Delete(l.segs, 0, removed)
	if err := errors.Join(err, syncDir(l.dir)); err != nil {
		return fmt.Errorf("wal: trim: %w", err)
	}
	return nil
}

// Close syncs and closes the current segment. It is safe to call twice.
func (l *Log) Close() error {
	if err := l.closeCur(); err != nil {
		return fmt.Errorf("wal: close: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}
