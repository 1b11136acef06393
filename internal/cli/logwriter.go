package cli

import (
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// logFlushDelay bounds how long an info or debug line waits in the buffer.
const logFlushDelay = 50 * time.Millisecond

// logBatchBytes is the most the buffer holds before it is written out.
const logBatchBytes = 32 << 10

// batchWriter gathers log lines and writes them out together: the relay
// logs a line per delivery attempt, and one write(2) per line cost a
// quarter of its throughput on a 2-core machine (an A/B of the relay's
// load phase with --log-level info against warn). Warnings and errors
// are written at once, after whatever is buffered, and nothing waits
// longer than logFlushDelay.
type batchWriter struct {
	out io.Writer

	mu    sync.Mutex
	buf   []byte
	timer *time.Timer
}

func newBatchWriter(out io.Writer) *batchWriter { return &batchWriter{out: out} }

// Write buffers p (zerolog hands whole lines).
func (w *batchWriter) Write(p []byte) (int, error) {
	return w.WriteLevel(zerolog.InfoLevel, p)
}

// WriteLevel is zerolog.LevelWriter: a warning or worse is not delayed.
func (w *batchWriter) WriteLevel(level zerolog.Level, p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if level >= zerolog.WarnLevel || len(w.buf) >= logBatchBytes {
		return len(p), w.flushLocked()
	}
	if w.timer == nil {
		w.timer = time.AfterFunc(logFlushDelay, func() { _ = w.Flush() })
	}
	return len(p), nil
}

// Flush writes out what is buffered.
func (w *batchWriter) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked()
}

func (w *batchWriter) flushLocked() error {
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.out.Write(w.buf)
	w.buf = w.buf[:0]
	return err
}
