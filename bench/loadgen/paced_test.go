package loadgen_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidehook/sidehook/bench/loadgen"
)

func TestPaced(t *testing.T) {
	srv, requests, _ := newServer(t, func(n int64) int { return http.StatusAccepted })
	var n atomic.Int64
	src := loadgen.SourceFunc(func() (loadgen.Request, error) {
		return loadgen.Request{Path: "/", ID: fmt.Sprint(n.Add(1))}, nil
	})
	res, err := loadgen.Paced{Rate: 200, Duration: 100 * time.Millisecond}.Run(context.Background(), srv.URL, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Sent) != 20 || res.OK != 20 || requests.Load() != 20 {
		t.Fatalf("got %d sent, %d ok, server %d; want 20 each", len(res.Sent), res.OK, requests.Load())
	}
	for i, s := range res.Sent {
		if s.ID != fmt.Sprint(i+1) || s.Status != http.StatusAccepted || s.At.IsZero() || s.Latency <= 0 {
			t.Errorf("sent %d got %+v, want id %d, 202, a send time and a latency", i, s, i+1)
		}
		if i > 0 && !s.Scheduled.After(res.Sent[i-1].Scheduled) {
			t.Errorf("sent %d scheduled at %v, not after its predecessor", i, s.Scheduled)
		}
	}
}

func TestPacedKeepsBody(t *testing.T) {
	srv := newJSONServer(t, `{"id":"evt_1"}`)
	src := loadgen.SourceFunc(func() (loadgen.Request, error) { return loadgen.Request{Path: "/"}, nil })
	res, err := loadgen.Paced{Rate: 100, Duration: 30 * time.Millisecond, KeepBody: 4}.Run(context.Background(), srv, src)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Sent {
		if string(s.Body) != `{"id` {
			t.Errorf("body got %q, want the first 4 bytes", s.Body)
		}
	}
}

func TestPacedBadRate(t *testing.T) {
	src := loadgen.SourceFunc(func() (loadgen.Request, error) { return loadgen.Request{}, nil })
	for _, rate := range []float64{0, -1} {
		if _, err := (loadgen.Paced{Rate: rate}).Run(context.Background(), "http://127.0.0.1:1", src); err == nil {
			t.Errorf("rate %v: got nil error, want one", rate)
		}
	}
}

func TestPacedExhausted(t *testing.T) {
	srv, _, _ := newServer(t, ok)
	pool := loadgen.NewPool(webhooks(t, 3), nil)
	res, err := loadgen.Paced{Rate: 500, Duration: 20 * time.Millisecond}.Run(context.Background(), srv.URL, pool)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Exhausted || len(res.Sent) != 3 {
		t.Errorf("got exhausted=%v and %d sent, want true and 3", res.Exhausted, len(res.Sent))
	}
}
