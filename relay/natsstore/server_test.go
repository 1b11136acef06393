package natsstore

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
)

// startServer runs an embedded JetStream server on a free loopback port,
// shut down when the test ends. mod adjusts its options.
func startServer(t testing.TB, mod func(*server.Options)) *server.Server {
	t.Helper()
	o := &server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	}
	if mod != nil {
		mod(o)
	}
	return runServer(t, o)
}

func runServer(t testing.TB, o *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// startCluster runs a three-node JetStream cluster on loopback ports.
func startCluster(t testing.TB) []*server.Server {
	t.Helper()
	ports := freePorts(t, 3)
	routes := make([]string, 3)
	for i, p := range ports {
		routes[i] = "nats-route://127.0.0.1:" + strconv.Itoa(p)
	}
	var out []*server.Server
	for i := range 3 {
		o := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoLog:      true,
			NoSigs:     true,
			Cluster:    server.ClusterOpts{Name: "sidehook-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:     server.RoutesFromStr(routes[0] + "," + routes[1] + "," + routes[2]),
		}
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatalf("nats server %d: %v", i+1, err)
		}
		go s.Start()
		t.Cleanup(func() {
			s.Shutdown()
			s.WaitForShutdown()
		})
		out = append(out, s)
	}
	for _, s := range out {
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatal("nats cluster node not ready")
		}
	}
	waitFor(t, 30*time.Second, "a JetStream meta leader", func() bool {
		for _, s := range out {
			if s.JetStreamIsLeader() {
				return true
			}
		}
		return false
	})
	return out
}

// freePorts finds n free loopback ports (closed again before use: the
// cluster's routes must be known before any node starts).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// waitFor polls cond until it holds or the time is up.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openStore opens a store on the servers, closed when the test ends.
func openStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	if cfg.AckWait == 0 {
		cfg.AckWait = 2 * time.Second
	}
	cfg.Logger = zerolog.Nop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newStore(t testing.TB) (*Store, *server.Server) {
	srv := startServer(t, nil)
	return openStore(t, Config{Servers: []string{srv.ClientURL()}}), srv
}
