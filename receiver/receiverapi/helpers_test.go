package receiverapi_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/receiver/receivertest"
)

// waitCaptures waits for n captures matching f on rcv.
func waitCaptures(tb testing.TB, rcv *receivertest.Server, f receivertest.Filter, n int) []receiver.Capture {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	caps, err := rcv.Wait(ctx, f, n)
	if err != nil {
		tb.Fatal(err)
	}
	return caps
}

// post sends body to url with headers, as a producer would.
func post(tb testing.TB, url, body string, header map[string]string) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}
