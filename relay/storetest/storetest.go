// Package storetest is the conformance suite of relay.Store: every
// implementation runs it from its own tests, and passing it is what "is a
// relay.Store" means beyond the method set.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Factory{
//			New: func(t *testing.T) relay.Store {
//				s, err := mystore.Open(...) // fresh and empty
//				if err != nil {
//					t.Fatal(err)
//				}
//				t.Cleanup(func() { s.Close() })
//				return s
//			},
//			Reopen: ..., // optional: for a durable store
//		})
//	}
//
// New returns a fresh, empty store for one subtest and registers its own
// cleanup. Reopen, when set, closes s and returns a store over the same
// data (a restart of the process); the suite then also checks that what
// was written survives it. Without Reopen those checks are not run.
//
// The suite tests the contract written on relay.Store, nothing else: it
// uses its own ids (not time-ordered, so that no listing may rely on id
// order), times with nanoseconds in a zone other than UTC, and asserts
// Take's next only where the contract fixes it (Take returned fewer than
// n). Where it reads between the lines of the contract it says so in the
// failure message.
package storetest

import (
	"testing"

	"github.com/sidehook/sidehook/relay"
)

// Factory makes the stores the suite runs against.
type Factory struct {
	// New returns a fresh, empty store; it registers the store's Close
	// with t.Cleanup.
	New func(t *testing.T) relay.Store
	// Reopen closes s and returns a store over the same data; nil for a
	// store that keeps nothing across Close.
	Reopen func(t *testing.T, s relay.Store) relay.Store
}

// Run runs every test of the suite as a subtest of t.
func Run(t *testing.T, f Factory) {
	if f.New == nil {
		t.Fatal("storetest: Factory.New is nil")
	}
	tests := []struct {
		name string
		fn   func(*testing.T, Factory)
	}{
		{"AcceptRoundTrip", testAcceptRoundTrip},
		{"AttemptsRoundTrip", testAttemptsRoundTrip},
		{"AcceptFinal", testAcceptFinal},
		{"NotFound", testNotFound},
		{"Duplicate", testDuplicate},
		{"DuplicateConcurrent", testDuplicateConcurrent},
		{"Isolation", testIsolation},
		{"LargeBody", testLargeBody},
		{"BodyLimit", testBodyLimit},
		{"TakeDueOrder", testTakeDueOrder},
		{"TakeNext", testTakeNext},
		{"TakeLimit", testTakeLimit},
		{"TakeLeasedOnce", testTakeLeasedOnce},
		{"TakeOutOfOrder", testTakeOutOfOrder},
		{"TakeBelowEverything", testTakeBelowEverything},
		{"Release", testRelease},
		{"Ordered", testOrdered},
		{"RecordFailed", testRecordFailed},
		{"RecordFinal", testRecordFinal},
		{"RecordDisable", testRecordDisable},
		{"Requeue", testRequeue},
		{"RequeueLeased", testRequeueLeased},
		{"Expedite", testExpedite},
		{"ExpediteOrdered", testExpediteOrdered},
		{"ExpediteTypes", testExpediteTypes},
		{"Waiting", testWaiting},
		{"ListEvents", testListEvents},
		{"ListEventsFilters", testListEventsFilters},
		{"ListDeliveries", testListDeliveries},
		{"ListDeliveriesFilters", testListDeliveriesFilters},
		{"ListDelivering", testListDelivering},
		{"BadCursor", testBadCursor},
		{"ConcurrentWriters", testConcurrentWriters},
		{"Purge", testPurge},
		{"Endpoints", testEndpoints},
		{"DeleteEndpoint", testDeleteEndpoint},
		{"EndWaiting", testEndWaiting},
		{"EndWaitingOrdered", testEndWaitingOrdered},
		{"Tokens", testTokens},
		{"SigningKeys", testSigningKeys},
		{"CreateSigningKeyConcurrent", testCreateSigningKeyConcurrent},
		{"Close", testClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, f) })
	}
	if f.Reopen != nil {
		t.Run("Reopen", func(t *testing.T) { testReopen(t, f) })
	}
}
