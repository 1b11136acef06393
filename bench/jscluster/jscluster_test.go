package jscluster

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestStartReplicatedStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	urls := c.URLs()
	if len(urls) != 3 {
		t.Fatalf("URLs() = %v, want three", urls)
	}
	for _, u := range urls {
		if !strings.HasPrefix(u, "nats://127.0.0.1:") {
			t.Errorf("URL %q: want nats://127.0.0.1:PORT", u)
		}
	}
	nc, err := nats.Connect(strings.Join(urls, ","))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3})
	if err != nil {
		t.Fatalf("a stream with three replicas: %v", err)
	}
	if _, err := js.Publish(ctx, "t.1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 || len(info.Cluster.Replicas) != 2 {
		t.Errorf("stream holds %d messages with %d followers, want 1 and 2", info.State.Msgs, len(info.Cluster.Replicas))
	}
	c.Close()
	c.Close() // safe twice
	if nc.FlushTimeout(time.Second) == nil {
		t.Error("a connection still flushes after Close")
	}
}

func TestStartBadOptions(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"NoDir", Options{}, "no data directory"},
		{"NegativeNodes", Options{Nodes: -1, Dir: t.TempDir()}, "want at least one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Start(context.Background(), tt.o)
			if err == nil {
				c.Close()
				t.Fatal("started, want an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestStartCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c, err := Start(ctx, Options{Dir: t.TempDir()})
	if err == nil {
		c.Close()
		t.Fatal("started on a cancelled context, want an error")
	}
}
