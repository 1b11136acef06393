package store_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidehook/sidehook/internal/store"
)

// benchConfigs are the store as tests run it (no reserve), as sidehook
// runs it (the default reserve: a statfs per group), and without the
// release of mapped pages (release.go).
var benchConfigs = []struct {
	name string
	opts func(dir string) store.Options
}{
	{"tuned", func(dir string) store.Options {
		return store.Options{Dir: dir, GCInterval: -1, Reserve: -1}
	}},
	{"tuned-reserve", func(dir string) store.Options {
		return store.Options{Dir: dir, GCInterval: -1}
	}},
	{"tuned-no-release", func(dir string) store.Options {
		return store.WithoutRelease(store.Options{Dir: dir, GCInterval: -1, Reserve: -1})
	}},
}

// BenchmarkWriteParallel measures acknowledged (synced) 1 KB writes from
// many goroutines, and how many writes share a sync.
func BenchmarkWriteParallel(b *testing.B) {
	val := bytes.Repeat([]byte("b"), 1024)
	for _, c := range benchConfigs {
		b.Run(c.name, func(b *testing.B) {
			s, err := store.Open(c.opts(b.TempDir()))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var n atomic.Uint64
			b.SetParallelism(32) // 64 goroutines on 2 cores
			b.SetBytes(int64(len(val)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					k := fmt.Appendf(nil, "bench/%012d", n.Add(1))
					if err := s.Write(context.Background(), store.Set(k, val)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			st := s.Stats()
			b.ReportMetric(float64(st.Writes)/b.Elapsed().Seconds(), "writes/s")
			b.ReportMetric(float64(st.Syncs)/float64(st.Writes), "syncs/write")
		})
	}
}

// BenchmarkWriteSerial measures the latency of one acknowledged 1 KB write
// at a time: what a lone request waits for its fsync.
func BenchmarkWriteSerial(b *testing.B) {
	val := bytes.Repeat([]byte("s"), 1024)
	s, err := store.Open(store.Options{Dir: b.TempDir(), GCInterval: -1, Reserve: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	lat := make([]time.Duration, 0, b.N)
	b.SetBytes(int64(len(val)))
	i := 0
	for b.Loop() {
		i++
		k := fmt.Appendf(nil, "serial/%012d", i)
		t0 := time.Now()
		if err := s.Write(context.Background(), store.Set(k, val)); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-us")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-us")
}

// BenchmarkPeakRSS writes 150,000 1 KB values from 64 goroutines into a
// fresh store and reports the process's peak resident set (VmHWM). Run one
// configuration per process, as the high-water mark is process-wide:
//
//	go test -run '^$' -bench 'PeakRSS/tuned$' -benchtime 1x ./internal/store
func BenchmarkPeakRSS(b *testing.B) {
	const total, writers = 150_000, 64
	// Incompressible, like the payloads a receiver captures.
	val := make([]byte, 1024)
	_, _ = rand.NewChaCha8([32]byte{}).Read(val)
	for _, c := range benchConfigs {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				runtime.GC()
				debug.FreeOSMemory()
				resetPeakRSS(b)
				dir := b.TempDir()
				stopSampling := sampleRSS(b)
				b.StartTimer()
				s, err := store.Open(c.opts(dir))
				if err != nil {
					b.Fatal(err)
				}
				var next atomic.Int64
				var wg sync.WaitGroup
				for range writers {
					wg.Go(func() {
						for {
							i := next.Add(1)
							if i > total {
								return
							}
							if err := s.Write(context.Background(), store.Set(fmt.Appendf(nil, "rss/%09d", i), val)); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				rss, err := procStatus("VmRSS:")
				if err != nil {
					b.Fatal(err)
				}
				st := s.Stats()
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
				anon, file := stopSampling()
				b.ReportMetric(float64(anon)/(1<<20), "peak-anon-MiB")
				b.ReportMetric(float64(file)/(1<<20), "peak-file-MiB")
				b.ReportMetric(float64(peakRSS(b))/(1<<20), "peak-RSS-MiB")
				b.ReportMetric(float64(rss)/(1<<20), "end-RSS-MiB")
				b.ReportMetric(float64(st.Syncs)/float64(st.Writes), "syncs/write")
				b.ReportMetric(float64(dirBytes(b, dir))/(1<<20), "disk-MiB")
			}
		})
	}
}

// dirBytes is the space the closed store's files take.
func dirBytes(tb testing.TB, dir string) int64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var n int64
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			tb.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

// resetPeakRSS resets VmHWM to the current RSS (Linux 4.0+).
func resetPeakRSS(tb testing.TB) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		tb.Skipf("cannot reset peak RSS: %v", err)
	}
}

// peakRSS is the peak resident set: anonymous memory plus the pages of
// Badger's mmapped files (page cache the kernel can reclaim).
func peakRSS(tb testing.TB) int64 {
	v, err := procStatus("VmHWM:")
	if err != nil {
		tb.Skip(err)
	}
	return v
}

// sampleRSS polls RssAnon (heap, stacks, Badger's skiplists and caches:
// memory the kernel cannot reclaim) and RssFile (mapped pages of Badger's
// files) every 10ms; the returned func stops it and returns the highest
// values seen.
func sampleRSS(tb testing.TB) func() (anon, file int64) {
	if _, err := procStatus("RssAnon:"); err != nil {
		tb.Skip(err)
	}
	var peak, peakFile atomic.Int64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			if v, err := procStatus("RssAnon:"); err == nil && v > peak.Load() {
				peak.Store(v)
			}
			if v, err := procStatus("RssFile:"); err == nil && v > peakFile.Load() {
				peakFile.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() (int64, int64) {
		close(done)
		<-stopped
		return peak.Load(), peakFile.Load()
	}
}

func procStatus(field string) (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse %s %q: %w", field, v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", field)
}
