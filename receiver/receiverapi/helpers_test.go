package receiverapi_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sidehook/sidehook/receiver/receiverapi"
	"github.com/sidehook/sidehook/receiver/receivertest"
)

// client is a client of rcv's admin API through hc (nil: New's default).
func client(tb testing.TB, rcv *receivertest.Server, hc *http.Client) *receiverapi.Client {
	tb.Helper()
	c, err := receiverapi.New(rcv.URL, "", hc)
	if err != nil {
		tb.Fatal(err)
	}
	return c
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
