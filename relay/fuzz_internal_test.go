package relay

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseList: a listing's query string comes from API clients. It is
// read or refused with a 400 that names the parameter, and what is read
// stays within the listing's bounds.
func FuzzParseList(f *testing.F) {
	for _, s := range []string{"", "limit=10", "limit=0", "limit=-1", "limit=99999999999999999999", "limit=1001",
		"cursor=n1.abc&since=5m&until=2026-01-01T00:00:00Z", "type=payment", "status=failed", "sinc=5m",
		"since=yesterday", "until=253402300800", "limit=%zz", "limit=+5", "limit=5&limit=x", "since=%20"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		req := &http.Request{URL: &url.URL{RawQuery: raw}}
		p, err := parseList(req, "type")
		q := req.URL.Query()
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Code != "invalid_query" {
				t.Fatalf("%q: got %#v, want a 400 invalid_query", raw, err)
			}
			named := false
			for k := range q {
				named = named || strings.Contains(ae.Reason, strconv.Quote(k)) || slices.Contains(listQuery, k) && strings.HasPrefix(ae.Reason, k)
			}
			if !named {
				t.Fatalf("%q: reason %q names no parameter of the query", raw, ae.Reason)
			}
			return
		}
		for k := range q {
			if k != "type" && !slices.Contains(listQuery, k) {
				t.Fatalf("%q: unknown parameter %q accepted", raw, k)
			}
		}
		if p.limit < 1 || p.limit > maxLimit {
			t.Fatalf("%q: limit %d outside 1 to %d", raw, p.limit, maxLimit)
		}
		if q.Get("limit") == "" && p.limit != defaultLimit {
			t.Fatalf("%q: limit %d without limit=, want %d", raw, p.limit, defaultLimit)
		}
		if p.cursor != q.Get("cursor") {
			t.Fatalf("%q: cursor %q, want %q", raw, p.cursor, q.Get("cursor"))
		}
	})
}

// FuzzDeliveryFilter: a filter comes from a query string or a replay's
// JSON body. It is read or refused with a 400, and a filter that is not
// empty as written is not empty as read: POST /v1/replay asks for
// "all": true only when the filter is empty, so a field the parser drops
// would replay every delivery unasked.
func FuzzDeliveryFilter(f *testing.F) {
	f.Add("", "", "", "", "", "")
	f.Add("failed", "crm", "payment", "5m", "2026-01-01T00:00:00Z", "dlv_1")
	f.Add("FAILED", "", "", "yesterday", "", "")
	f.Add("", "", "", "-5m", "253402300800", "")
	f.Add("delivering", "", "", "1700000000", "3d", "")
	f.Add("", "", "", " ", "\t", "") // replayed every delivery without "all": true
	f.Fuzz(func(t *testing.T, status, endpoint, typ, since, until, ids string) {
		fl := &deliveryFilter{Status: status, Endpoint: endpoint, Type: typ, Since: since, Until: until}
		if ids != "" {
			fl.IDs = strings.Split(ids, ",")
		}
		if err := fl.parse(); err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Code != "invalid_filter" || ae.Reason == "" {
				t.Fatalf("got %#v, want a 400 invalid_filter", err)
			}
			return
		}
		switch fl.Status {
		case "", StatusPending, StatusDelivering, StatusDelivered, StatusFailed, StatusDead:
		default:
			t.Fatalf("status %q accepted", fl.Status)
		}
		narrows := fl.Status != "" || fl.Endpoint != "" || fl.Type != "" || !fl.since.IsZero() || !fl.until.IsZero() || len(fl.IDs) > 0
		if !fl.empty() && !narrows {
			t.Fatalf("filter %+v is not empty as written but selects every delivery as read", fl)
		}
		if fl.empty() && narrows {
			t.Fatalf("filter %+v is empty but narrows", fl)
		}
	})
}
