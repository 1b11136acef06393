// Package e2e tests several relays sharing one NATS JetStream: in-process
// relays on natsstore (cross-relay wakes, a NATS outage) and relay
// processes on a three-node cluster (a relay killed and a NATS node
// stopped under load). It has no code of its own, only tests.
package e2e
