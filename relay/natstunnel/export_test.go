package natstunnel

// Offered reports whether s answers the other relays for (org, name): the
// test of "the last client going unsubscribes".
func (s *Server) Offered(org, name string) bool { return s.offered(org, name) }
