package receiver

// FeedDashboard runs the dashboard's feed on sub, as Start runs it on a
// subscription of its own, until sub ends; the channel is closed then. A
// test gives it a subscription of its making (one slot, say) to see what
// browsers are told when the feed falls behind.
func FeedDashboard(s *Server, sub *Subscription) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.feedDashboard(sub)
	}()
	return done
}
