package store

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The write-ahead log: segments named sidehook.wal.NNNNNNNN in the data dir,
// each a sequence of records
//
//	length  uint32 LE   payload bytes
//	crc     uint32 LE   CRC-32C of the segment number (uint64 LE), the
//	                    length bytes and the payload
//	payload
//
// and the payload of a record is
//
//	seq      uint64 LE   one more than the previous record's
//	naborts  uvarint, then naborts × (seq uint64 LE, req uint32 LE)
//	nreqs    uvarint, then per request: nops uvarint, then per op:
//	         kind byte, key (uvarint length + bytes),
//	         value (uvarint length + bytes) unless a delete,
//	         expiry uint64 LE (Unix seconds) if kind is opSetExpiring
//
// A record is one group commit. An abort (seq, req) says that request req of
// record seq failed after its record was written, and must not be replayed;
// req abortAll covers the whole record.
//
// A segment ends at the end of the file, at a run of zeros (length 0: space
// preallocated and never written), or at the first record that does not
// check out: torn by a crash, or left from the segment's previous life.
// Retired segments are recycled (see walState.newSegment): overwriting
// blocks already written makes fdatasync write data alone, with no journal
// commit for new or unwritten extents, and the segment number in the
// checksum makes the old records invalid.
const (
	walPrefix    = "sidehook.wal."
	walSegDigits = 8
	walSpare     = walPrefix + "spare" // a retired segment kept for reuse

	walHeaderSize = 8
	// walMaxRecord bounds the length a reader believes: a damaged length
	// must not make it allocate gigabytes.
	walMaxRecord = 1 << 30

	abortAll = math.MaxUint32
)

const (
	opSet byte = iota + 1
	opDelete
	opSetExpiring
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// walOp is an op as logged: the TTL is already an absolute expiry, so that
// replaying it later expires it at the same moment.
type walOp struct {
	kind       byte
	key, value []byte
	expiresAt  uint64 // Unix seconds; 0 = never
}

type walAbort struct {
	seq uint64
	req uint32
}

type walRecord struct {
	seq    uint64
	aborts []walAbort
	reqs   [][]walOp
}

// expiresAt turns a TTL into the absolute expiry Badger's WithTTL would
// give it at now.
func expiresAt(now time.Time, ttl time.Duration) uint64 {
	if ttl <= 0 {
		return 0
	}
	return uint64(now.Add(ttl).Unix())
}

// appendRecord appends the record (room for its header, and its payload) to
// buf; segment.append fills in the header. The requests are those of batch
// at the indexes in reqs.
func appendRecord(buf []byte, seq uint64, aborts []walAbort, batch []*request, reqs []int, now time.Time) []byte {
	buf = append(buf, make([]byte, walHeaderSize)...)
	buf = binary.LittleEndian.AppendUint64(buf, seq)
	buf = binary.AppendUvarint(buf, uint64(len(aborts)))
	for _, a := range aborts {
		buf = binary.LittleEndian.AppendUint64(buf, a.seq)
		buf = binary.LittleEndian.AppendUint32(buf, a.req)
	}
	buf = binary.AppendUvarint(buf, uint64(len(reqs)))
	for _, i := range reqs {
		ops := batch[i].ops
		buf = binary.AppendUvarint(buf, uint64(len(ops)))
		for _, op := range ops {
			kind := opSet
			switch {
			case op.Delete:
				kind = opDelete
			case op.TTL > 0:
				kind = opSetExpiring
			}
			buf = append(buf, kind)
			buf = binary.AppendUvarint(buf, uint64(len(op.Key)))
			buf = append(buf, op.Key...)
			if kind == opDelete {
				continue
			}
			buf = binary.AppendUvarint(buf, uint64(len(op.Value)))
			buf = append(buf, op.Value...)
			if kind == opSetExpiring {
				buf = binary.LittleEndian.AppendUint64(buf, expiresAt(now, op.TTL))
			}
		}
	}
	return buf
}

// frame fills in the header of rec, a record with room for its header, for
// segment num.
func frame(rec []byte, num uint64) {
	binary.LittleEndian.PutUint32(rec[0:4], uint32(len(rec)-walHeaderSize))
	binary.LittleEndian.PutUint32(rec[4:8], checksum(num, rec[0:4], rec[walHeaderSize:]))
}

func checksum(num uint64, length, payload []byte) uint32 {
	crc := crc32.Update(0, castagnoli, binary.LittleEndian.AppendUint64(nil, num))
	crc = crc32.Update(crc, castagnoli, length)
	return crc32.Update(crc, castagnoli, payload)
}

// decodeRecord parses a payload whose checksum matched. Keys and values
// alias p.
func decodeRecord(p []byte) (walRecord, error) {
	d := decoder{p: p}
	var r walRecord
	r.seq = d.u64()
	n := d.count(12)
	for range n {
		r.aborts = append(r.aborts, walAbort{seq: d.u64(), req: d.u32()})
	}
	nreqs := d.count(1)
	for range nreqs {
		nops := d.count(2)
		ops := make([]walOp, 0, nops)
		for range nops {
			op := walOp{kind: d.byte()}
			op.key = d.bytes()
			switch op.kind {
			case opSet:
				op.value = d.bytes()
			case opSetExpiring:
				op.value = d.bytes()
				op.expiresAt = d.u64()
			case opDelete:
			default:
				if d.err == nil {
					d.err = fmt.Errorf("unknown op kind %d", op.kind)
				}
			}
			if d.err == nil && len(op.key) == 0 {
				d.err = errors.New("empty key")
			}
			ops = append(ops, op)
		}
		r.reqs = append(r.reqs, ops)
	}
	if d.err == nil && len(d.p) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.p))
	}
	if d.err != nil {
		return walRecord{}, fmt.Errorf("decode wal record: %w", d.err)
	}
	return r, nil
}

// decoder reads the payload's fields; the first error sticks and makes
// every later read return zero.
type decoder struct {
	p   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = io.ErrUnexpectedEOF
	}
	d.p = nil
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.p) < 1 {
		d.fail()
		return 0
	}
	b := d.p[0]
	d.p = d.p[1:]
	return b
}

func (d *decoder) u32() uint32 {
	if d.err != nil || len(d.p) < 4 {
		d.fail()
		return 0
	}
	v := binary.LittleEndian.Uint32(d.p)
	d.p = d.p[4:]
	return v
}

func (d *decoder) u64() uint64 {
	if d.err != nil || len(d.p) < 8 {
		d.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(d.p)
	d.p = d.p[8:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.p)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.p = d.p[n:]
	return v
}

// count reads a count of items that take at least min bytes each, and
// refuses one the rest of the payload cannot hold, so that a bad count
// cannot make the decoder allocate.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.p)/min) {
		d.err = fmt.Errorf("count %d exceeds the record", n)
		d.p = nil
		return 0
	}
	return int(n)
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.p)) {
		d.fail()
		return nil
	}
	b := d.p[:n:n]
	d.p = d.p[n:]
	return b
}

func segmentName(num uint64) string {
	return fmt.Sprintf("%s%0*d", walPrefix, walSegDigits, num)
}

// listSegments returns the numbers of the WAL segments in dir, ascending.
func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list wal segments: %w", err)
	}
	var nums []uint64
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), walPrefix)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		if n, err := strconv.ParseUint(rest, 10, 64); err == nil {
			nums = append(nums, n)
		}
	}
	slices.Sort(nums)
	return nums, nil
}

// segmentEnd says how reading a segment ended.
type segmentEnd struct {
	off     int64  // end of the last intact record
	damaged bool   // stopped at a record that does not check out, not at zeros or EOF
	why     string // for the log when damaged
}

// readSegment calls fn for each intact record of segment num, in order,
// until the first record that does not check out, a run of zeros or the end
// of the file. The record (and the slices in it) stays valid after fn
// returns.
func readSegment(dir string, num uint64, fn func(walRecord) error) (segmentEnd, error) {
	path := filepath.Join(dir, segmentName(num))
	var end segmentEnd
	f, err := os.Open(path)
	if err != nil {
		return end, fmt.Errorf("read wal: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return end, fmt.Errorf("read wal: %w", err)
	}
	br := bufio.NewReaderSize(f, 1<<20)
	var hdr [walHeaderSize]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return end, nil
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				end.damaged, end.why = true, "torn header"
				return end, nil
			}
			return end, fmt.Errorf("read wal %s: %w", path, err)
		}
		n := int64(binary.LittleEndian.Uint32(hdr[0:4]))
		if n == 0 {
			// Preallocated space never written. (A record is never empty.)
			return end, nil
		}
		if n > walMaxRecord || end.off+walHeaderSize+n > fi.Size() {
			end.damaged, end.why = true, fmt.Sprintf("record length %d past the end", n)
			return end, nil
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(br, payload); err != nil {
			return end, fmt.Errorf("read wal %s: %w", path, err)
		}
		if checksum(num, hdr[0:4], payload) != binary.LittleEndian.Uint32(hdr[4:8]) {
			end.damaged, end.why = true, "checksum mismatch (torn, or from the segment's previous use)"
			return end, nil
		}
		rec, err := decodeRecord(payload)
		if err != nil {
			// The checksum matched, so this is no torn write.
			return end, fmt.Errorf("wal %s at offset %d: %w", path, end.off, err)
		}
		if err := fn(rec); err != nil {
			return end, err
		}
		end.off += walHeaderSize + n
	}
}

// segment is the open WAL segment the writer appends to.
type segment struct {
	num uint64
	f   *os.File
	off int64 // end of the last record
	// syncSlow is set while this segment's syncs take slowSync or more.
	syncSlow bool
}

// createSegment creates segment num, preallocates size bytes (so that
// appends neither change the file size, which fdatasync would then have to
// write, nor run out of space) and syncs the directory, so that the segment
// exists after a crash before any record in it is acknowledged.
func createSegment(dir string, num uint64, size int64) (*segment, error) {
	path := filepath.Join(dir, segmentName(num))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create wal segment: %w", err)
	}
	if size > 0 {
		preallocate(f, size)
	}
	if err := errors.Join(fdatasync(f), fsyncFile(dir)); err != nil {
		f.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("create wal segment: %w", err)
	}
	return &segment{num: num, f: f}, nil
}

// append writes rec at the end of the segment with one write and syncs it.
// On failure it cuts the segment back to where it was, so that nothing of
// rec can be replayed; when even that fails it returns broken, and the
// segment must not be appended to again.
func (sg *segment) append(rec []byte) (broken bool, err error) {
	frame(rec, sg.num)
	_, err = sg.f.WriteAt(rec, sg.off)
	if err == nil {
		err = sg.sync()
	}
	if err == nil {
		sg.off += int64(len(rec))
		return false, nil
	}
	// Truncating frees space, so it works on a full disk too. It also drops
	// the preallocation: later appends extend the file.
	if terr := errors.Join(sg.f.Truncate(sg.off), fdatasync(sg.f)); terr != nil {
		return true, fmt.Errorf("wal append: %w (and cutting it back: %v)", err, terr)
	}
	return false, fmt.Errorf("wal append: %w", err)
}

// slowSync is the sync time from which a segment's appends go back to
// syncing through the scheduler: a P held in the kernel that long (a
// saturated or failing disk) would cost the rest of the process more than
// the scheduling latency it saves.
const slowSync = 20 * time.Millisecond

// sync makes the appended records durable, keeping the writer's P while
// syncs are fast (see fdatasyncKeepP).
func (sg *segment) sync() error {
	start := time.Now()
	var err error
	if sg.syncSlow {
		err = fdatasync(sg.f)
	} else {
		err = fdatasyncKeepP(sg.f)
	}
	sg.syncSlow = time.Since(start) >= slowSync
	return err
}

func (sg *segment) close() error { return sg.f.Close() }

// openSegment makes segment num out of the spare, a retired segment whose
// blocks are already written, or else creates it.
func openSegment(dir string, num uint64, size int64) (*segment, error) {
	path := filepath.Join(dir, segmentName(num))
	err := os.Rename(filepath.Join(dir, walSpare), path)
	if errors.Is(err, fs.ErrNotExist) {
		return createSegment(dir, num, size)
	}
	if err != nil {
		return nil, fmt.Errorf("reuse wal segment: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err == nil {
		// The new name must be durable before a record in it is
		// acknowledged.
		err = fsyncFile(dir)
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("reuse wal segment: %w", err)
	}
	return &segment{num: num, f: f}, nil
}

// retireSegments removes the segments numbered below num, whose records
// are in Badger's synced files: they are deleted oldest first (so that what
// a crash leaves is always a suffix of the log), except the newest, which
// becomes the spare if there is none. Then it syncs the directory.
func retireSegments(dir string, below uint64) error {
	nums, err := listSegments(dir)
	if err != nil {
		return err
	}
	var old []uint64
	for _, n := range nums {
		if n < below {
			old = append(old, n)
		}
	}
	if len(old) == 0 {
		return nil
	}
	newest := old[len(old)-1]
	for _, n := range old[:len(old)-1] {
		if err := os.Remove(filepath.Join(dir, segmentName(n))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove wal segment: %w", err)
		}
	}
	keep := filepath.Join(dir, walSpare)
	if _, err := os.Stat(keep); err == nil {
		keep = ""
	}
	if keep != "" {
		err = os.Rename(filepath.Join(dir, segmentName(newest)), keep)
	} else {
		err = os.Remove(filepath.Join(dir, segmentName(newest)))
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("retire wal segment: %w", err)
	}
	return fsyncFile(dir)
}
