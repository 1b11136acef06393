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
