package receivertest

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sidehook/sidehook/receiver"
)

// waitError is the receiver's *WaitTimeoutError in this package's words;
// errors.As finds the receiver's, with the captures that came.
type waitError struct{ *receiver.WaitTimeoutError }

func (e waitError) Error() string {
	return fmt.Sprintf("receivertest: waiting for %s: %v; %s", e.Wanted(), e.Cause, e.Came())
}

func (e waitError) Unwrap() error { return e.WaitTimeoutError }

// storeError is a wait its store failed, said as a timeout says it: what
// was waited for, filter included, then the store's error without the
// receiver's own prefix (one "receivertest:" to a line).
type storeError struct {
	wanted string
	err    error
}

func (e storeError) Error() string {
	return "receivertest: waiting for " + e.wanted + ": " + strings.TrimPrefix(e.err.Error(), "receiver: ")
}

func (e storeError) Unwrap() error { return e.err }

// wait is Wait, its failure a waitError.
func (s *Server) wait(ctx context.Context, f Filter, n int) ([]Capture, error) {
	if n < 1 {
		// The receiver would wait for one: a test asking for none means
		// "none came", which no wait can tell.
		return nil, fmt.Errorf("receivertest: waiting for %d requests: n must be at least 1; Requests(f) checks that none came", n)
	}
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("receivertest: filter: %w", err)
	}
	caps, err := s.Receiver.Wait(ctx, f, n)
	var te *receiver.WaitTimeoutError
	switch {
	case errors.As(err, &te):
		return caps, waitError{te}
	case err != nil:
		// The receiver's words for what a wait waits for, as its
		// timeout says them.
		wanted := (&receiver.WaitTimeoutError{Filter: f, N: n}).Wanted()
		return caps, storeError{wanted: wanted, err: err}
	}
	return caps, nil
}
