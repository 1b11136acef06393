package natstunnel

// Offered reports whether s answers the other relays for (org, name) and
// event type evt ("" for none): the test of "the last client going
// unsubscribes".
func (s *Server) Offered(org, name, evt string) bool { return s.offered(org, name, evt) }
