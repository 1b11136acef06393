package tunnel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/internal/httpjson"
	"github.com/sidehook/sidehook/internal/units"
	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/replay"
	"github.com/sidehook/sidehook/web"
)

// The inspector holds the last inspectKeep forwarded requests, whole (a
// replay sends the exact bytes), within inspectBytes of bodies; older ones
// are forgotten.
const (
	inspectKeep  = 500
	inspectBytes = 64 << 20
)

// PrefixForward starts the id of a request the inspector shows.
const PrefixForward = "fwd_"

// maxReplayRequest bounds a replay request's JSON (an edited body).
const maxReplayRequest = 8 << 20

// inspector is the client's local dashboard: every request forwarded to
// the local app, with the app's answer, and a replay of the same bytes.
// It serves the dashboard of package web in the receiver's role, so its
// items are shaped as captures (SPEC §5) with the app's whole answer in
// "response".
type inspector struct {
	c   *Client
	log zerolog.Logger
	hub *web.Hub
	srv *http.Server
	ln  net.Listener

	mu sync.Mutex
	// records are in id order, oldest first, at most inspectKeep. An id
	// is a ULID of when the forward began, so id order is that order and
	// an id is its own cursor, as a capture's is on the receiver.
	records []*inspected
	byID    map[string]*inspected
	size    int // bytes of the records' bodies and answers

	closeOnce sync.Once
	served    chan struct{}
}

// inspected is one forwarded request and the local app's answer.
type inspected struct {
	ID         string
	ReceivedAt time.Time
	Method     string
	Path       string // the path of the tunnel endpoint
	Query      string
	Target     string // the URL it was forwarded to
	Header     http.Header
	Body       []byte
	DeliveryID string
	Attempt    int
	ReplayOf   string
	Answer     forwarded
}

func newInspector(c *Client, log zerolog.Logger) *inspector {
	return &inspector{
		c:      c,
		log:    log.With().Str("component", "inspector").Logger(),
		hub:    web.NewHub(web.HubOptions{Logger: log}),
		byID:   make(map[string]*inspected),
		served: make(chan struct{}),
	}
}

// checkInspectAddr refuses an inspector address that is not HOST:PORT
// with a loopback HOST: the inspector shows signed requests and replays
// them, so it has no business beyond this machine.
func checkInspectAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		// net's "missing port in address" misleads for "4040", a port
		// without its host.
		example := "127.0.0.1:4040"
		if _, err := strconv.Atoi(addr); err == nil {
			example = "127.0.0.1:" + addr
		}
		return fmt.Errorf("inspector address %q: want a loopback HOST:PORT, such as %s", addr, example)
	}
	// Checked here, not left to the listen in Run: a port out of range is
	// a mistake in the command (exit 2), not a failure of the run.
	if _, ok := units.ParsePort(port); !ok {
		return fmt.Errorf("inspector address %q: the port must be a number from 0 to 65535", addr)
	}
	if !isLoopbackHost(host) {
		return fmt.Errorf("inspector address %q: only a loopback address (127.0.0.1, [::1], localhost) may serve the inspector", addr)
	}
	return nil
}

// start listens on addr, which NewClient has checked.
func (in *inspector) start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("inspector: %w", err)
	}
	in.ln = ln
	in.srv = &http.Server{Handler: in.routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(in.served)
		if err := in.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			in.log.Error().Err(err).Msg("inspector stopped")
		}
	}()
	return nil
}

func (in *inspector) url() string { return "http://" + in.ln.Addr().String() + web.UIPath }

func (in *inspector) close() {
	in.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = in.hub.Shutdown(ctx)
		_ = in.srv.Shutdown(ctx)
		_ = in.srv.Close()
		<-in.served
	})
}

func (in *inspector) routes() http.Handler {
	mux := http.NewServeMux()
	dash := web.NewHandler(web.Config{Role: web.RoleInspector, Hub: in.hub, Recent: in.recent, Logger: in.log})
	// GET only, as on the relay and the receiver: the mux answers another
	// method 405.
	mux.Handle("GET /_sidehook/ui", dash)
	mux.Handle("GET /_sidehook/ui/", dash)
	mux.Handle("GET /_sidehook/ws", dash)
	mux.Handle("GET /_sidehook/requests", http.HandlerFunc(in.handleList))
	mux.Handle("GET /_sidehook/requests/{id}", http.HandlerFunc(in.handleGet))
	mux.Handle("POST /_sidehook/requests/{id}/replay", sameOrigin(http.HandlerFunc(in.handleReplay)))
	mux.Handle("GET /{$}", http.RedirectHandler(web.UIPath, http.StatusSeeOther))
	// Everything else in the {"error","reason"} shape, as on the relay and
	// the receiver: 405 with Allow where the path is served with other
	// methods, else 404.
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e := httpjson.NoRoute(w, r, mux, "no inspector route "+r.Method+" "+r.URL.Path, "/"); e != nil {
			writeError(w, e.Status, e.Code, e.Reason)
		}
	}))
	return loopbackHost(mux)
}

// add records one forward and shows it on the dashboard.
func (in *inspector) add(m *Message, fw forwarded, replayOf string) *inspected {
	replayOf, attempt := whatItIs(m, replayOf)
	r := &inspected{ID: event.NewID(PrefixForward, fw.start), ReceivedAt: fw.start.UTC(), Method: m.Method, Path: m.Path, Query: m.Query,
		Target: fw.url, Header: m.Headers, Body: m.Body, DeliveryID: m.DeliveryID, Attempt: attempt, ReplayOf: replayOf, Answer: fw}
	in.mu.Lock()
	// Almost always at the end: only a forward that began before one
	// still in flight, and ended after it, goes further back.
	i := len(in.records)
	for i > 0 && in.records[i-1].ID > r.ID {
		i--
	}
	in.records = slices.Insert(in.records, i, r)
	in.byID[r.ID] = r
	in.size += r.size()
	// The oldest other record goes, never r: it was just shown, even
	// alone over the budget, and even when it began before every record
	// kept (a slow forward), where it sits first.
	for len(in.records) > 1 && (len(in.records) > inspectKeep || in.size > inspectBytes) {
		j := 0
		if in.records[0] == r {
			j = 1
		}
		old := in.records[j]
		in.records = slices.Delete(in.records, j, j+1)
		delete(in.byID, old.ID)
		in.size -= old.size()
	}
	in.mu.Unlock()
	if in.hub.Subscribers() > 0 {
		it, err := r.item()
		if err != nil {
			in.log.Warn().Err(err).Msg("request not shown on the inspector")
		} else {
			in.hub.Publish(it)
		}
	}
	return r
}

func (r *inspected) size() int { return len(r.Body) + len(r.Answer.body) }

func (in *inspector) get(id string) *inspected {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.byID[id]
}

// newest returns up to n records, newest first.
func (in *inspector) newest(n int) []*inspected {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]*inspected, 0, min(n, len(in.records)))
	for i := len(in.records) - 1; i >= 0 && len(out) < n; i-- {
		out = append(out, in.records[i])
	}
	return out
}

// page returns up to n records older than cursor (an id, which need not
// be kept any more; "" for the newest), newest first, and the cursor of
// the next page: the last id returned when older records remain, else "".
func (in *inspector) page(cursor string, n int) ([]*inspected, string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	end := len(in.records)
	if cursor != "" {
		end, _ = slices.BinarySearchFunc(in.records, cursor, func(r *inspected, id string) int { return strings.Compare(r.ID, id) })
	}
	start := max(end-n, 0)
	out := make([]*inspected, 0, end-start)
	for i := end - 1; i >= start; i-- {
		out = append(out, in.records[i])
	}
	next := ""
	if start > 0 {
		next = in.records[start].ID
	}
	return out, next
}

func (in *inspector) recent(_ context.Context, n int) ([]web.Item, error) {
	recs := in.newest(n)
	items := make([]web.Item, 0, len(recs))
	for _, r := range recs {
		it, err := r.item()
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	return items, nil
}

// InspectedView is a forwarded request as the inspector's API returns it:
// shaped as a capture of SPEC §5, so the dashboard shows it, with the
// local app's answer in Response.
type InspectedView struct {
	ID           string              `json:"id"`
	ReceivedAt   time.Time           `json:"received_at"`
	Method       string              `json:"method"`
	Path         string              `json:"path"`
	Query        string              `json:"query"`
	URL          string              `json:"url"`
	Headers      map[string][]string `json:"headers"`
	Body         string              `json:"body"`
	BodyEncoding string              `json:"body_encoding"`
	BodyPreview  bool                `json:"body_preview,omitempty"`
	BodySize     int                 `json:"body_size"`
	Event        string              `json:"event"`
	WebhookID    string              `json:"webhook_id"`
	DeliveryID   string              `json:"delivery_id"`
	Attempt      int                 `json:"attempt,omitempty"` // a delivery's; not a replay's or a test's
	ReplayOf     string              `json:"replay_of,omitempty"`
	Verdict      struct {
		Status string `json:"status"`
	} `json:"verdict"`
	Response AnswerView `json:"response"`
}

// AnswerView is the local app's answer to a forward.
type AnswerView struct {
	Status       int                 `json:"status"`
	Headers      map[string][]string `json:"headers,omitempty"`
	Body         string              `json:"body"`
	BodyEncoding string              `json:"body_encoding"`
	Truncated    bool                `json:"truncated,omitempty"`
	DurationMS   float64             `json:"duration_ms"`
	Error        string              `json:"error,omitempty"`
}

// view is r as the API and the dashboard show it, credentials redacted;
// preview cuts the body for the dashboard.
func (r *inspected) view(preview bool) InspectedView {
	v := InspectedView{ID: r.ID, ReceivedAt: r.ReceivedAt, Method: r.Method, Path: orSlash(r.Path), Query: r.Query, URL: r.Target,
		Headers: lowerKeys(r.Header), BodySize: len(r.Body), Event: r.Header.Get(hdrEvent), WebhookID: r.Header.Get("webhook-id"),
		DeliveryID: r.DeliveryID, Attempt: r.Attempt, ReplayOf: r.ReplayOf}
	if preview {
		v.Body, v.BodyEncoding, v.BodyPreview = web.ItemBody(r.Body)
	} else {
		v.Body, v.BodyEncoding = event.EncodeBody(r.Body)
	}
	// The inspector verifies nothing: the local app does, as in production.
	v.Verdict.Status = "unverified"
	a := r.Answer
	v.Response = AnswerView{Status: a.status, Headers: lowerKeys(a.header), Truncated: a.truncated, DurationMS: units.Millis(a.duration)}
	// Credentials stay in the inspector's memory (a replay needs them);
	// what is shown, on the dashboard and by the API, has them redacted,
	// as from the receiver.
	v.Headers = web.RedactHeaders(v.Headers)
	v.Response.Headers = web.RedactHeaders(v.Response.Headers)
	v.Response.Body, v.Response.BodyEncoding = event.EncodeBody(a.body)
	if a.err != nil {
		v.Response.Error = a.err.Error()
	}
	return v
}

// item is r as a dashboard row; its status is the app's answer ("200",
// or "error" when none came).
func (r *inspected) item() (web.Item, error) {
	v := r.view(true)
	data, err := json.Marshal(v)
	if err != nil {
		return web.Item{}, fmt.Errorf("encode %s for the inspector: %w", r.ID, err)
	}
	status := "error"
	if r.Answer.status != 0 {
		status = fmt.Sprint(r.Answer.status)
	}
	return web.Item{Kind: web.KindCapture, ID: r.ID, Time: r.ReceivedAt, Event: v.Event, Method: r.Method, Path: v.Path, Status: status, Data: data}, nil
}

// listResponse is GET /_sidehook/requests's answer, the receiver's page:
// Next is null on the last page.
type listResponse struct {
	Requests []InspectedView `json:"requests"`
	Next     *string         `json:"next"`
}

// handleList answers a page of the records, newest first: limit of them
// (receiver.ParseLimit) older than cursor, the previous page's next. Its
// parameters, answer and errors are the receiver's list's, which the
// dashboard calls the same way.
func (in *inspector) handleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	// A misspelt parameter (or a receiver's filter, which the inspector
	// does not have) is refused, not silently ignored.
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if k != "limit" && k != "cursor" {
			writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("unknown query parameter %q: want one of limit, cursor", k))
			return
		}
	}
	limit, err := receiver.ParseLimit(q.Get("limit"))
	if err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, err.Error())
		return
	}
	cursor := q.Get("cursor")
	if cursor != "" {
		if _, err := event.ParseID(PrefixForward, cursor); err != nil {
			writeError(w, http.StatusBadRequest, codeBadRequest, "cursor: not a cursor from this API")
			return
		}
	}
	recs, next := in.page(cursor, limit)
	ans := listResponse{Requests: make([]InspectedView, 0, len(recs))}
	for _, rec := range recs {
		ans.Requests = append(ans.Requests, rec.view(false))
	}
	if next != "" {
		ans.Next = &next
	}
	writeJSON(w, http.StatusOK, ans)
}

func (in *inspector) handleGet(w http.ResponseWriter, r *http.Request) {
	rec := in.get(r.PathValue("id"))
	if rec == nil {
		in.notFound(w, r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, rec.view(false))
}

// handleReplay sends a recorded request to the local app again: the same
// method, headers and bytes (no new signature is needed: it is the same
// request) plus sidehook-replay-of naming the record, to the --forward URL
// or "to" (the target URL; with no path, the endpoint's is appended, as to
// --forward), with "body" replacing the bytes when given. The answer is the
// new record.
func (in *inspector) handleReplay(w http.ResponseWriter, r *http.Request) {
	rec := in.get(r.PathValue("id"))
	if rec == nil {
		in.notFound(w, r.PathValue("id"))
		return
	}
	var req struct {
		To   string  `json:"to"`
		Body *string `json:"body"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, maxReplayRequest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "invalid_json", "replay request: "+err.Error())
		return
	}
	body := rec.Body
	if req.Body != nil {
		body = []byte(*req.Body)
	}
	// A replay says so (SPEC §3), naming the record it repeats.
	h := rec.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set(replay.HeaderReplayOf, rec.ID)
	m := &Message{Method: rec.Method, Path: rec.Path, Query: rec.Query, Headers: h, Body: body, DeliveryID: rec.DeliveryID, Attempt: rec.Attempt}
	ctx, cancel := context.WithTimeout(r.Context(), DefaultForwardTimeout)
	defer cancel()
	fw := in.c.forwardRequest(ctx, forwardReq{method: m.Method, path: m.Path, query: m.Query, header: m.Headers, body: m.Body, to: req.To})
	if fw.url == "" && fw.err != nil {
		writeError(w, http.StatusBadRequest, "invalid_target", fw.err.Error())
		return
	}
	nr := in.add(m, fw, rec.ID)
	// A replay "to" another URL says where it went: the recorded path
	// is not where it was sent. fw.url is set: a bad target was refused.
	to := ""
	if req.To != "" {
		to = fw.url
	}
	in.c.printForward(m, fw, nr.ID, rec.ID, to)
	writeJSON(w, http.StatusOK, nr.view(false))
}

// notFound answers for a record the inspector does not have: an id from
// an older line may have gone to make room.
func (in *inspector) notFound(w http.ResponseWriter, id string) {
	writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no forwarded request %q (the inspector keeps the last %d)", id, inspectKeep))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// codeBadRequest is the error code of a request the inspector cannot use,
// the receiver's.
const codeBadRequest = "bad_request"

func writeError(w http.ResponseWriter, status int, code, reason string) {
	writeJSON(w, status, map[string]string{"error": code, "reason": reason})
}

// loopbackHost answers only requests addressed to a loopback name, so a
// web page cannot reach the inspector by rebinding its own DNS name to
// 127.0.0.1.
func loopbackHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if !isLoopbackHost(strings.Trim(host, "[]")) {
			writeError(w, http.StatusForbidden, "forbidden_host", fmt.Sprintf("the inspector answers only on localhost, not %q", r.Host))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sameOrigin refuses a state-changing call a browser makes for another
// site, and any body but JSON (which a form cannot send).
func sameOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
			writeError(w, http.StatusForbidden, "cross_site", "cross-site requests are refused")
			return
		}
		if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host {
			writeError(w, http.StatusForbidden, "cross_site", fmt.Sprintf("origin %q is not this inspector", o))
			return
		}
		if ct := r.Header.Get("Content-Type"); r.ContentLength != 0 && !strings.HasPrefix(ct, "application/json") {
			writeError(w, http.StatusUnsupportedMediaType, "json_only", "send the replay request as application/json")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func lowerKeys(h http.Header) map[string][]string {
	if h == nil {
		return nil
	}
	out := make(map[string][]string, len(h))
	for k, vs := range h {
		out[strings.ToLower(k)] = vs
	}
	return out
}

func orSlash(p string) string {
	if p == "" {
		return "/"
	}
	return p
}
