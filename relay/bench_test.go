package relay_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
)

// body1K is a ~1 KB Webio-style payload.
var body1K = []byte(`{"type":"inboundMessage","conversationId":"97847","communicationActionId":"3391827","outboundChannelAddress":"447700900123","inboundChannelAddress":"447860064712","customerUID":"ACC-10023","dateCreated":"2026-11-25 09:14:03.512","body":"` + strings.Repeat("x", 760) + `"}`)

func benchClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	return &http.Client{Transport: t}
}

func postLoop(b *testing.B, client *http.Client, url string, header http.Header, want int) {
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", url, bytes.NewReader(body1K))
			req.Header = header.Clone()
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				b.Errorf("status %d, want %d", resp.StatusCode, want)
				return
			}
		}
	})
}

// BenchmarkDirect posts straight to a sink: the limit the relay is
// compared with.
func BenchmarkDirect(b *testing.B) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	defer sink.Close()
	b.SetParallelism(16) // 32 connections on 2 cores
	b.ResetTimer()
	postLoop(b, benchClient(), sink.URL, http.Header{"Content-Type": {"application/json"}}, 200)
}

// BenchmarkIngest measures durable ingest (202 after fsync, group
// committed) with one subscribed endpoint, and waits for every delivery to
// arrive: events/s is the end-to-end throughput.
func BenchmarkIngest(b *testing.B) {
	var arrived atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		arrived.Add(1)
	}))
	defer sink.Close()
	cfg := orgConfig(b, config.RawEndpoint{ID: "crm", URL: sink.URL, Auth: []string{}, MaxInFlight: new(32)})
	r := startRelay(b, cfg, relay.Options{})
	h := http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + apiKey}}
	b.SetParallelism(16)
	b.ResetTimer()
	start := time.Now()
	postLoop(b, benchClient(), r.URL()+"/v1/events", h, 202)
	for arrived.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "delivered/s")
}

// BenchmarkLatency paces single events and reports ingest-to-arrival
// latency percentiles.
func BenchmarkLatency(b *testing.B) {
	arrivedAt := make(chan time.Time, 1)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		arrivedAt <- time.Now()
	}))
	defer sink.Close()
	r := startRelay(b, orgConfig(b, config.RawEndpoint{ID: "crm", URL: sink.URL, Auth: []string{}}), relay.Options{})
	client := benchClient()
	var lat, ack []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequest("POST", r.URL()+"/v1/events", bytes.NewReader(body1K))
		req.Header.Set("Authorization", "Bearer "+apiKey)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		ack = append(ack, time.Since(start))
		lat = append(lat, (<-arrivedAt).Sub(start))
		time.Sleep(20 * time.Millisecond) // 50 events/s
	}
	b.StopTimer()
	if len(lat) >= 10 {
		sortDurations(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		sortDurations(ack)
		b.ReportMetric(float64(ack[len(ack)/2].Microseconds())/1000, "ack-p50-ms")
	}
}

func sortDurations(d []time.Duration) {
	for i := 1; i < len(d); i++ {
		for j := i; j > 0 && d[j] < d[j-1]; j-- {
			d[j], d[j-1] = d[j-1], d[j]
		}
	}
}
