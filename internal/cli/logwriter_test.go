package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestBatchWriter(t *testing.T) {
	t.Run("InfoWaitsThenFlushes", func(t *testing.T) {
		out := &syncBuffer{}
		w := newBatchWriter(out)
		w.WriteLevel(zerolog.InfoLevel, []byte("a\n"))
		w.WriteLevel(zerolog.InfoLevel, []byte("b\n"))
		if got := out.String(); got != "" {
			t.Fatalf("got %q written at once, want info lines batched", got)
		}
		deadline := time.Now().Add(5 * time.Second)
		for out.String() != "a\nb\n" {
			if time.Now().After(deadline) {
				t.Fatalf("got %q, want both lines within %v", out.String(), logFlushDelay)
			}
			time.Sleep(time.Millisecond)
		}
	})
	t.Run("WarningAtOnceAfterBuffered", func(t *testing.T) {
		out := &syncBuffer{}
		w := newBatchWriter(out)
		w.WriteLevel(zerolog.InfoLevel, []byte("a\n"))
		w.WriteLevel(zerolog.ErrorLevel, []byte("oops\n"))
		if got := out.String(); got != "a\noops\n" {
			t.Fatalf("got %q, want the buffered line then the error, at once", got)
		}
	})
	t.Run("FullBufferWritten", func(t *testing.T) {
		out := &syncBuffer{}
		w := newBatchWriter(out)
		line := strings.Repeat("x", 1023) + "\n"
		for range logBatchBytes / len(line) {
			w.WriteLevel(zerolog.DebugLevel, []byte(line))
		}
		if got := len(out.String()); got != logBatchBytes {
			t.Fatalf("got %d bytes written, want the full %d", got, logBatchBytes)
		}
	})
	t.Run("FlushEmpties", func(t *testing.T) {
		out := &syncBuffer{}
		w := newBatchWriter(out)
		w.Write([]byte("a\n"))
		if err := w.Flush(); err != nil || out.String() != "a\n" {
			t.Fatalf("got %q, %v; want the line after Flush", out.String(), err)
		}
	})
}
