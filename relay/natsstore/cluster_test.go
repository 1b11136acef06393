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
	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/natsstore/natstest"
)

// acceptRetrying accepts like a producer that retries until answered: a
// nil error or ErrDuplicate both mean the event is stored.
func acceptRetrying(t *testing.T, s *Store, ev *relay.Event, ds []*relay.Delivery) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := s.Accept(context.Background(), ev, ds)
		if err == nil || errors.Is(err, relay.ErrDuplicate) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("accept %s: still failing: %v", ev.ID, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestClusterLosesANode runs a three-node JetStream cluster with replicas
// 3, stops the stream's leader mid-test, and checks that nothing
// acknowledged is lost: every event accepted before and after is read
// back, and every delivery is attempted exactly once.
func TestClusterLosesANode(t *testing.T) {
	nodes := natstest.Cluster(t)
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.ClientURL()
	}
	cfg := Config{Servers: urls, Replicas: 3, Prefix: "rep", AckWait: 2 * time.Second}
	s := openStore(t, cfg)
	ctx := context.Background()
	const before, after = 40, 40
	ref := relay.EndpointRef{Org: "acme", Endpoint: "a"}
	var accepted []string
	for i := range before {
		ev, ds := mkEvent("acme", fmt.Sprintf("c%03d", i), t0.Add(time.Duration(i)*time.Millisecond), false, "a")
		acceptRetrying(t, s, ev, ds)
		accepted = append(accepted, ev.ID)
	}
	// Half the deliveries are attempted before the loss.
	got, _ := take(t, s, ref, t0.Add(time.Hour), before/2)
	attempts := map[string]int{}
	for _, d := range got {
		attempts[d.ID]++
		if err := s.Record(ctx, attempt(d, relay.StatusDelivered, t0.Add(time.Hour), nil), ""); err != nil {
			t.Fatal(err)
		}
	}

	var leader *server.Server
	waitFor(t, 10*time.Second, "a stream leader", func() bool {
		for _, n := range nodes {
			if n.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, "rep") {
				leader = n
				return true
			}
		}
		return false
	})
	leader.Shutdown()
	leader.WaitForShutdown()

	for i := range after {
		ev, ds := mkEvent("acme", fmt.Sprintf("c%03d", before+i), t0.Add(time.Duration(before+i)*time.Millisecond), false, "a")
		acceptRetrying(t, s, ev, ds)
		accepted = append(accepted, ev.ID)
	}
	for _, id := range accepted {
		if _, err := s.Event(ctx, "acme", id); err != nil {
			t.Fatalf("event %s acknowledged, then lost: %v", id, err)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(attempts) < len(accepted) {
		if time.Now().After(deadline) {
			t.Fatalf("delivered %d of %d after the loss of a node", len(attempts), len(accepted))
		}
		ds, _, err := s.Take(ctx, ref, t0.Add(time.Hour), 20)
		if err != nil {
			time.Sleep(100 * time.Millisecond) // a leader election in progress
			continue
		}
		for _, d := range ds {
			attempts[d.ID]++
			if err := s.Record(ctx, attempt(d, relay.StatusDelivered, t0.Add(time.Hour), nil), ""); err != nil {
				t.Fatalf("record after the loss: %v", err)
			}
		}
	}
	for id, n := range attempts {
		if n != 1 {
			t.Fatalf("delivery %s attempted %d times, want once", id, n)
		}
	}
}

// TestOpenTogether opens three stores at once on a fresh three-node
// cluster with replicas 3, as relays started together do: each asks to
// create the same stream and bucket, and every one must open.
func TestOpenTogether(t *testing.T) {
	nodes := natstest.Cluster(t)
	errs := make(chan error, len(nodes))
	for _, n := range nodes {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			s, err := Open(ctx, Config{Servers: []string{n.ClientURL()}, Replicas: 3, AckWait: 2 * time.Second})
			if err == nil {
				t.Cleanup(func() { s.Close() })
			}
			errs <- err
		}()
	}
	for range nodes {
		if err := <-errs; err != nil {
			t.Errorf("open: %v", err)
		}
	}
}

// TestReplicasNeverLowered: a store asking for fewer replicas than the
// stream has is refused with what to set; one asking for as many opens.
func TestReplicasNeverLowered(t *testing.T) {
	nodes := natstest.Cluster(t)
	url := []string{nodes[0].ClientURL()}
	openStore(t, Config{Servers: url, Replicas: 3})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Open(ctx, Config{Servers: url, Replicas: 1})
	if err == nil {
		s.Close()
		t.Fatal("a store with replicas 1 opened beside one with 3")
	}
	want := "stream sidehook has 3 replicas and this relay asks for 1: set store.replicas to 3"
	if !strings.Contains(err.Error(), want) || !errors.Is(err, ErrMisconfigured) {
		t.Errorf("error %q, want ErrMisconfigured saying %q", err, want)
	}
	openStore(t, Config{Servers: url, Replicas: 3})
}

// TestReadsOnAFollower uses a store connected to a follower of the
// stream, whose own copy lags the leader's by a moment: a read just after
// a write must still see it. Each event is read back as soon as it is
// accepted, so is each new token, and an ordered endpoint's deliveries are taken one after
// another, each recorded before the next Take: a stale head lock (freed
// by the Record, still held in the follower's copy) would hold the
// endpoint for the lock's whole AckWait.
func TestReadsOnAFollower(t *testing.T) {
	nodes := natstest.Cluster(t)
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.ClientURL()
	}
	openStore(t, Config{Servers: urls, Replicas: 3, Prefix: "fol", AckWait: time.Minute}) // makes the stream
	// A node that leads neither the stream nor the bucket's.
	var follower *server.Server
	waitFor(t, 10*time.Second, "the stream's and the bucket's leaders", func() bool {
		var stream, bucket bool
		follower = nil
		for _, n := range nodes {
			s := n.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, "fol")
			b := n.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, "KV_fol_ctl")
			stream, bucket = stream || s, bucket || b
			if !s && !b {
				follower = n
			}
		}
		return stream && bucket && follower != nil
	})
	s := openStore(t, Config{Servers: []string{follower.ClientURL()}, Replicas: 3, Prefix: "fol", AckWait: time.Minute})
	ctx := context.Background()
	ref := relay.EndpointRef{Org: "acme", Endpoint: "seq"}
	const n = 150
	for i := range n {
		ev, ds := mkEvent("acme", fmt.Sprintf("f%03d", i), t0.Add(time.Duration(i)*time.Millisecond), true, "seq")
		if _, err := s.Accept(ctx, ev, ds); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Event(ctx, "acme", ev.ID); err != nil {
			t.Fatalf("event %s read just after its accept: %v", ev.ID, err)
		}
	}
	for i := range n {
		tok := fmt.Sprintf("token-%03d", i)
		if err := s.PutToken(ctx, "acme", tok); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Token(ctx, "acme"); err != nil || got != tok {
			t.Fatalf("token read just after it was put: %q, %v; want %q", got, err, tok)
		}
	}
	now := t0.Add(time.Hour)
	for i := range n {
		got, next := take(t, s, ref, now, 1)
		if len(got) != 1 {
			t.Fatalf("take %d: %d deliveries, next %v: the head lock looks held", i, len(got), next)
		}
		if want := fmt.Sprintf("f%03d_seq", i); got[0].ID != want {
			t.Fatalf("take %d: %s, want %s", i, got[0].ID, want)
		}
		if err := s.Record(ctx, attempt(got[0], relay.StatusDelivered, now, nil), ""); err != nil {
			t.Fatal(err)
		}
	}
}

// A relay asking for three replicas of a two-node cluster waits, in case
// the third node is on its way, until its start's time is up. It waited
// in silence: the wait is logged at once, and its end says what to set.
func TestThreeReplicasOfTwoNodes(t *testing.T) {
	ports := natstest.FreePorts(t, 2)
	routes := make([]string, len(ports))
	for i, p := range ports {
		routes[i] = "nats-route://127.0.0.1:" + strconv.Itoa(p)
	}
	var nodes []*server.Server
	for i, p := range ports {
		o := natstest.Options(-1, t.TempDir())
		o.ServerName = fmt.Sprintf("n%d", i+1)
		o.Cluster = server.ClusterOpts{Name: "sidehook-two", Host: "127.0.0.1", Port: p}
		o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		nodes = append(nodes, natstest.Run(t, o))
	}
	waitFor(t, 30*time.Second, "a JetStream meta leader", func() bool {
		return nodes[0].JetStreamIsLeader() || nodes[1].JetStreamIsLeader()
	})
	var log logBuf
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := Open(ctx, Config{Servers: []string{nodes[0].ClientURL()}, Replicas: 3, Logger: zerolog.New(&log)})
	if err == nil {
		s.Close()
		t.Fatal("three replicas opened on two nodes")
	}
	if want := "has not that many JetStream nodes up: start them, or set store.replicas to 1"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to say %q", err, want)
	}
	if n := log.lines("warn", "waiting for them"); n != 1 {
		t.Errorf("%d warnings of the wait, want 1; log:\n%s", n, log.b.String())
	}
}
