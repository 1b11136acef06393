// Package jscluster runs a NATS JetStream cluster inside the calling
// process, on loopback ports, for benchmarks that need one without
// installing nats-server: loadgen scale points sidehook relays at it.
package jscluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options describe a cluster.
type Options struct {
	// Nodes is the number of servers; 3 when zero (a stream with three
	// replicas needs three).
	Nodes int
	// Dir holds each node's JetStream data, in a subdirectory per node.
	Dir string
	// Name is the cluster's name; "sidehook-bench" when empty.
	Name string
}

// Cluster is a running cluster. Close shuts every node down.
type Cluster struct {
	nodes []*server.Server
	once  sync.Once
}

// Start starts the nodes and returns once each takes client connections
// and the cluster has a JetStream meta leader, so a replicated stream can
// be made at once. On an error (or ctx ending first) the nodes already
// started are shut down.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	n := o.Nodes
	if n == 0 {
		n = 3
	}
	if n < 1 {
		return nil, fmt.Errorf("jscluster: %d nodes: want at least one", n)
	}
	if o.Dir == "" {
		return nil, errors.New("jscluster: no data directory")
	}
	name := o.Name
	if name == "" {
		name = "sidehook-bench"
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("jscluster: %w", err)
	}
	ports, err := freePorts(n)
	if err != nil {
		return nil, err
	}
	routes := make([]string, n)
	for i, p := range ports {
		routes[i] = "nats-route://127.0.0.1:" + strconv.Itoa(p)
	}
	c := &Cluster{}
	for i, p := range ports {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   filepath.Join(o.Dir, fmt.Sprintf("n%d", i+1)),
			NoLog:      true,
			NoSigs:     true,
		}
		if n > 1 {
			opts.Cluster = server.ClusterOpts{Name: name, Host: "127.0.0.1", Port: p}
			opts.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		}
		s, err := server.NewServer(opts)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("jscluster: node %d: %w", i+1, err)
		}
		go s.Start()
		c.nodes = append(c.nodes, s)
	}
	if err := c.waitReady(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// waitReady polls, because the NATS server offers no notification of a
// meta leader; its ReadyForConnections itself polls too.
func (c *Cluster) waitReady(ctx context.Context) error {
	for i, s := range c.nodes {
		for !s.ReadyForConnections(100 * time.Millisecond) {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("jscluster: node %d not taking connections: %w", i+1, err)
			}
		}
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !c.hasLeader() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("jscluster: no JetStream meta leader: %w", ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

func (c *Cluster) hasLeader() bool {
	if len(c.nodes) == 1 {
		return c.nodes[0].JetStreamEnabled()
	}
	for _, s := range c.nodes {
		if s.JetStreamIsLeader() {
			return true
		}
	}
	return false
}

// URLs are the nodes' client URLs (nats://127.0.0.1:PORT).
func (c *Cluster) URLs() []string {
	urls := make([]string, len(c.nodes))
	for i, s := range c.nodes {
		urls[i] = s.ClientURL()
	}
	return urls
}

// Close shuts every node down and waits for it. It is safe to call twice.
func (c *Cluster) Close() {
	c.once.Do(func() {
		for _, s := range c.nodes {
			s.Shutdown()
		}
		for _, s := range c.nodes {
			s.WaitForShutdown()
		}
	})
}

// freePorts finds n free loopback ports for the routes, closed again
// before use: every node must know every route before any starts, so the
// ports cannot be the server's own pick. Another process may take one in
// between; on loopback in a benchmark run it does not.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("jscluster: free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
