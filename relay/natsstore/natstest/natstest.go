// Package natstest starts embedded NATS JetStream servers for tests: one
// node, or a three-node cluster, on loopback ports, each shut down when
// the test ends. Only tests import it, so the sidehook binary never links
// the NATS server.
package natstest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options are an embedded JetStream server's options on a loopback port
// (-1: any free one) with its data under dir.
func Options(port int, dir string) *server.Options {
	return &server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true}
}

// Run starts a server and waits until it takes connections. It is shut
// down when the test ends; stopping it sooner is fine (Shutdown is safe
// twice).
func Run(tb testing.TB, o *server.Options) *server.Server {
	tb.Helper()
	s, err := server.NewServer(o)
	if err != nil {
		tb.Fatalf("nats server: %v", err)
	}
	go s.Start()
	tb.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	// Generous: with the whole suite running under -race on two cores, a
	// cluster node once took over 10 s to take connections.
	if !s.ReadyForConnections(30 * time.Second) {
		tb.Fatal("nats server not ready within 30s")
	}
	return s
}

// Cluster runs a three-node JetStream cluster on loopback ports and waits
// for its meta leader, so streams with three replicas can be made at once.
func Cluster(tb testing.TB) []*server.Server {
	tb.Helper()
	ports := FreePorts(tb, 3)
	routes := make([]string, len(ports))
	for i, p := range ports {
		routes[i] = "nats-route://127.0.0.1:" + strconv.Itoa(p)
	}
	nodes := make([]*server.Server, 0, len(ports))
	for i, p := range ports {
		o := Options(-1, tb.TempDir())
		o.ServerName = fmt.Sprintf("n%d", i+1)
		o.Cluster = server.ClusterOpts{Name: "sidehook-test", Host: "127.0.0.1", Port: p}
		o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		nodes = append(nodes, Run(tb, o))
	}
	deadline := time.Now().Add(30 * time.Second)
	for !hasLeader(nodes) {
		if time.Now().After(deadline) {
			tb.Fatal("no JetStream meta leader within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nodes
}

func hasLeader(nodes []*server.Server) bool {
	for _, s := range nodes {
		if s.JetStreamIsLeader() {
			return true
		}
	}
	return false
}

// FreePorts finds n free loopback ports for servers that must know each
// other's ports before any of them starts (a cluster's routes). It picks
// them below the kernel's ephemeral range: a port the kernel hands out to
// a ":0" listener or an outgoing connection could go to another test
// between this check and the server binding it, which then never gets
// ready; go test runs packages side by side.
func FreePorts(tb testing.TB, n int) []int {
	tb.Helper()
	lo, hi := portRange()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries == 1000 {
			tb.Fatalf("no %d free loopback ports in %d-%d", n, lo, hi-1)
		}
		p := lo + rand.IntN(hi-lo)
		if slices.Contains(ports, p) {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue // taken
		}
		l.Close()
		ports = append(ports, p)
	}
	return ports
}

// portRange is where FreePorts picks ports: from 10000 up to Linux's
// ephemeral range (ip_local_port_range; 32768 by default, and elsewhere).
func portRange() (lo, hi int) {
	lo, hi = 10000, 32768
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	if f := strings.Fields(string(b)); len(f) == 2 {
		if first, err := strconv.Atoi(f[0]); err == nil && first > lo+1000 {
			hi = first
		}
	}
	return lo, hi
}
