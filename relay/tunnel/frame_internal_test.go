package tunnel

import (
	"math"
	"testing"
)

// TestMaxDeliveryFrame: what a ready announces holds a body of max_body
// as base64 beside the headers' room, and the in-memory store's
// unbounded max_body announces the most an int64 says, not a negative.
func TestMaxDeliveryFrame(t *testing.T) {
	tests := []struct {
		maxBody, want int64
	}{
		{3, 4 + deliveryOverhead},
		{1 << 20, 1398104 + deliveryOverhead},
		{63 << 20, 88080384 + deliveryOverhead},
		{math.MaxInt64, math.MaxInt64},
		{math.MaxInt64 / 4 * 3, math.MaxInt64},
	}
	for _, tt := range tests {
		if got := maxDeliveryFrame(tt.maxBody); got != tt.want {
			t.Errorf("maxDeliveryFrame(%d): got %d, want %d", tt.maxBody, got, tt.want)
		}
	}
}
