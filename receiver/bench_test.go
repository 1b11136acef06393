package receiver_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/receiver"
)

// benchBody is a ~1 KB webhook payload.
var benchBody = []byte(`{"type":"inboundMessage","conversationId":"97847","communicationActionId":"ca_0001",` +
	`"outboundChannelAddress":"447700900123","inboundChannelAddress":"447700900999","customerUID":"ACC-10023",` +
	`"dateCreated":"2026-11-25 10:00:00.000","body":"` + strings.Repeat("lorem ipsum ", 70) + `"}`)

// benchLoad posts benchBody with a fresh HS256 JWT per request from 32
// goroutines over keep-alive connections.
func benchLoad(b *testing.B, url string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
	b.Cleanup(client.CloseIdleConnections)
	key := auth.SigningKey{Alg: auth.HS256, Secret: []byte(testSecret)}
	sum := auth.BodyHash(benchBody)
	b.SetBytes(int64(len(benchBody)))
	// RunParallel starts parallelism × GOMAXPROCS goroutines: 32 in all.
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tok, err := auth.SignAttempt(key, auth.AttemptClaims{Subject: testOrg, Audience: "crm", SHA256: sum, IssuedAt: time.Now()})
			if err != nil {
				b.Error(err)
				return
			}
			req, _ := http.NewRequest("POST", url, bytes.NewReader(benchBody))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("got %d, want 200", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkCapture is the receiver's hot path: verify an HS256 JWT, store
// the capture durably (a real store in a temp dir, fsync per group commit),
// answer. Compare with BenchmarkBareHandler, the limit on this machine.
func BenchmarkCapture(b *testing.B) {
	srv := start(b, receiver.Config{Verify: auth.VerifyConfig{JWTSecret: []byte(testSecret)}})
	benchLoad(b, srv.URL()+"/webhooks")
	b.StopTimer()
	caps, _ := srv.Count(b.Context(), receiver.Filter{Verdict: auth.StatusValid})
	if caps < b.N {
		b.Errorf("captured %d of %d", caps, b.N)
	}
}

// BenchmarkBareHandler is a net/http handler that reads the body and
// answers 200: the same load against nothing but the HTTP stack.
func BenchmarkBareHandler(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(200)
		fmt.Fprint(w, `{"ok":true}`)
	}))
	b.Cleanup(srv.Close)
	benchLoad(b, srv.URL+"/webhooks")
}

// BenchmarkCaptureHandler is the capture path without the network: each
// call verifies its own HS256 JWT and stores the capture durably, so its
// ns/op and allocs/op are the receiver's own cost per webhook. Tokens are
// made before the timer starts.
func BenchmarkCaptureHandler(b *testing.B) {
	srv := start(b, receiver.Config{Verify: auth.VerifyConfig{JWTSecret: []byte(testSecret)}})
	h := srv.Handler()
	key := auth.SigningKey{Alg: auth.HS256, Secret: []byte(testSecret)}
	sum := auth.BodyHash(benchBody)
	toks := make([]string, b.N)
	for i := range toks {
		tok, err := auth.SignAttempt(key, auth.AttemptClaims{Subject: testOrg, Audience: "crm", SHA256: sum, IssuedAt: time.Now()})
		if err != nil {
			b.Fatal(err)
		}
		toks[i] = tok
	}
	var next atomic.Int64
	b.SetBytes(int64(len(benchBody)))
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("POST", "/webhooks", bytes.NewReader(benchBody))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+toks[next.Add(1)-1])
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != 200 {
				b.Errorf("got %d, want 200: %s", rec.Code, rec.Body)
				return
			}
		}
	})
}
