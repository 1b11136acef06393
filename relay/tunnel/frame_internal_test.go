package tunnel

import (
	"bytes"
	"math"
	"net/http"
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

// TestBodyFrame: a delivery whose body is streamed is, byte for byte, the
// frame Encode makes of it, and its size is that frame's length, on which
// the relay's check of the client's limit relies.
func TestBodyFrame(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 4, 1000, 64 << 10} {
		m := &Message{Type: TypeDelivery, ID: 7, DeliveryID: "dlv_1", Attempt: 2, Method: "POST", Path: "/hooks", Query: "a=1&b=<2>",
			Headers: http.Header{"Content-Type": {"application/json"}, "X-Odd": {`"quoted" & <tagged>`}}, Body: bytes.Repeat([]byte{0xfa, 'x', 0}, n)[:n], TimeoutMS: 5000}
		want, err := Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		f, err := bodyFrame(m)
		if err != nil {
			t.Fatal(err)
		}
		got := f.data
		if f.body != nil {
			var buf bytes.Buffer
			if err := f.stream(&buf); err != nil {
				t.Fatal(err)
			}
			got = buf.Bytes()
		}
		if !bytes.Equal(got, want) {
			t.Errorf("body of %d bytes: streamed\n%s\nwant\n%s", n, got, want)
		}
		if f.size() != len(want) {
			t.Errorf("body of %d bytes: size %d, want %d", n, f.size(), len(want))
		}
	}
}
