package natsstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/natsstore/natstest"
)

// A relay whose NATS server is up but whose cluster has lost its quorum
// (two of three nodes down, or the server cut off from the others) takes
// no writes: every ingest is a 503. Its Health says so, for /readyz, as
// a load balancer needs to send producers elsewhere; it said ready while
// the connection stood. Health comes back with the quorum.
func TestHealthWithoutQuorum(t *testing.T) {
	nodes, start := quorumCluster(t)
	// Connected to n3 alone, as a relay beside it.
	s := openStore(t, Config{Servers: []string{nodes[2].ClientURL()}, Replicas: 3, Prefix: "quorum", AckWait: time.Second})
	if err := s.Health(); err != nil {
		t.Fatalf("health with the whole cluster: %v", err)
	}
	for _, n := range nodes[:2] {
		n.Shutdown()
		n.WaitForShutdown()
	}
	waitFor(t, 20*time.Second, "Health to report the lost quorum", func() bool {
		return errors.Is(s.Health(), relay.ErrUnavailable)
	})
	if !s.nc.IsConnected() {
		t.Fatal("the store lost its connection to n3: the test wants it connected")
	}
	start(0)
	start(1)
	waitFor(t, 60*time.Second, "Health to recover with the quorum", func() bool { return s.Health() == nil })
}

// A cluster that loses one node and later another lost its quorum just
// the same; but by then the survivor knows the streams have no leader and
// answers a write at once, "no response from stream", not after a
// timeout. Health took that for a lost race, not for JetStream down:
// /readyz said ready while every ingest was a 503.
func TestHealthWithoutQuorumNodeByNode(t *testing.T) {
	nodes, _ := quorumCluster(t)
	s := openStore(t, Config{Servers: []string{nodes[2].ClientURL()}, Replicas: 3, Prefix: "quorum", AckWait: time.Second})
	nodes[0].Shutdown()
	nodes[0].WaitForShutdown()
	waitFor(t, 30*time.Second, "a write with two nodes of three", func() bool { return s.refreshAckWait() == nil })
	// The node lost next leads the control bucket, so n3, the store's,
	// is left a follower without a leader.
	ctl := "KV_quorum_ctl"
	waitFor(t, 30*time.Second, "n2 to lead the control bucket", func() bool {
		if nodes[1].JetStreamIsStreamLeader(globalAccount, ctl) {
			return true
		}
		if nodes[2].JetStreamIsStreamLeader(globalAccount, ctl) {
			_ = nodes[2].JetStreamStepdownStream(globalAccount, ctl) // not yet elected: asked again
		}
		return false
	})
	nodes[1].Shutdown()
	nodes[1].WaitForShutdown()
	waitFor(t, 30*time.Second, "Health to report the lost quorum", func() bool {
		return errors.Is(s.Health(), relay.ErrUnavailable)
	})
}

// globalAccount is the account of a server configured with none.
const globalAccount = "$G"

// quorumCluster starts a three-node cluster on fixed ports, so that start
// can start a node that was shut down again, and waits for its meta
// leader.
func quorumCluster(t *testing.T) ([]*server.Server, func(int) *server.Server) {
	t.Helper()
	ports := natstest.FreePorts(t, 6)
	routes := make([]string, 3)
	for i := range 3 {
		routes[i] = "nats-route://127.0.0.1:" + strconv.Itoa(ports[3+i])
	}
	opts := make([]*server.Options, 3)
	for i := range 3 {
		o := natstest.Options(ports[i], t.TempDir())
		o.ServerName = fmt.Sprintf("n%d", i+1)
		o.Cluster = server.ClusterOpts{Name: "sidehook-quorum", Host: "127.0.0.1", Port: ports[3+i]}
		o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		opts[i] = o
	}
	start := func(i int) *server.Server {
		o := *opts[i]
		return natstest.Run(t, &o)
	}
	nodes := []*server.Server{start(0), start(1), start(2)}
	waitFor(t, 30*time.Second, "a JetStream meta leader", func() bool {
		for _, n := range nodes {
			if n.JetStreamIsLeader() {
				return true
			}
		}
		return false
	})
	return nodes, start
}

// A relay started while its NATS cluster has no JetStream meta leader
// (most nodes down, or the cluster still forming) gets no answer: its
// error says that, not that the account may lack JetStream rights.
func TestOpenWithoutMetaLeader(t *testing.T) {
	ports := natstest.FreePorts(t, 3)
	routes := make([]string, 3)
	for i, p := range ports {
		routes[i] = "nats-route://127.0.0.1:" + strconv.Itoa(p)
	}
	o := natstest.Options(-1, t.TempDir())
	o.ServerName = "n1"
	o.Cluster = server.ClusterOpts{Name: "sidehook-alone", Host: "127.0.0.1", Port: ports[0]}
	o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
	alone := natstest.Run(t, o) // n2 and n3 never start
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	s, err := Open(ctx, Config{Servers: []string{alone.ClientURL()}, Replicas: 3})
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded without a meta leader")
	}
	if msg := err.Error(); strings.Contains(msg, "rights") || !strings.Contains(msg, "meta leader") {
		t.Errorf("error %q: want it to say JetStream has no meta leader, not to suspect the account's rights", msg)
	}
}
