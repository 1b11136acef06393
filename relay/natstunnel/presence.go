package natstunnel

import (
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sidehook/sidehook/relay"
)

// maxPresenceTTL bounds how long another relay's word is kept, whatever
// it asks for.
const maxPresenceTTL = 5 * time.Minute

// presence is what one relay says of its tunnels: the list, and how long
// to believe it (0: forget this relay now; it is closing).
type presence struct {
	Relay   string             `json:"relay"`
	TTLMS   int64              `json:"ttl_ms"`
	Tunnels []relay.TunnelInfo `json:"tunnels"`
}

// announce tells the other relays this relay's tunnels.
func (s *Server) announce() {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return
	}
	s.publish(&presence{Relay: s.id, TTLMS: 3 * s.every.Milliseconds(), Tunnels: s.local.Tunnels("")})
}

// publish sends p, keeping as many tunnels as fit in one message (the
// list is a view; a relay with thousands of clients shows the first).
func (s *Server) publish(p *presence) {
	data, err := json.Marshal(p)
	for err == nil && int64(len(data)) > s.nc.MaxPayload() && len(p.Tunnels) > 0 {
		p.Tunnels = p.Tunnels[:len(p.Tunnels)/2]
		data, err = json.Marshal(p)
	}
	if err == nil {
		err = s.nc.Publish(s.subj.presence(), data)
	}
	if err != nil {
		s.log.Debug().Err(err).Msg("tell the other relays this relay's tunnels")
	}
}

func (s *Server) onPresence(m *nats.Msg) {
	var p presence
	if err := json.Unmarshal(m.Data, &p); err != nil || p.Relay == "" || p.Relay == s.id {
		return
	}
	ttl := min(time.Duration(p.TTLMS)*time.Millisecond, maxPresenceTTL)
	s.mu.Lock()
	defer s.mu.Unlock()
	if ttl <= 0 || len(p.Tunnels) == 0 {
		delete(s.peers, p.Relay)
		return
	}
	s.peers[p.Relay] = peer{tunnels: p.Tunnels, expires: time.Now().Add(ttl)}
}

// prune forgets relays that have said nothing for their TTL (they died).
func (s *Server) prune() {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, p := range s.peers {
		if now.After(p.expires) {
			delete(s.peers, id)
		}
	}
}

// Tunnels lists the clients of org ("" for every org) connected to this
// relay and, as they last said, to the other relays, each with the ID of
// the relay holding it. The others' entries are up to PresenceEvery old
// (their in_flight too); a relay that died leaves the list 3 ×
// PresenceEvery after its last word.
func (s *Server) Tunnels(org string) []relay.TunnelInfo {
	out := s.local.Tunnels(org)
	for i := range out {
		out[i].Relay = s.id
	}
	now := time.Now()
	s.mu.Lock()
	for id, p := range s.peers {
		if now.After(p.expires) {
			continue
		}
		for _, t := range p.tunnels {
			if org == "" || t.Org == org {
				// By who said it, whatever the entry says.
				t.Relay = id
				out = append(out, t)
			}
		}
	}
	s.mu.Unlock()
	relay.SortTunnels(out)
	return out
}
