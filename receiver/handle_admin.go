package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/internal/httpjson"
	"github.com/sidehook/sidehook/replay"
	"github.com/sidehook/sidehook/web"
)

func handleHealthz(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.st.Err(); err != nil {
			// Healthz needs no token: the reason names the kind of failure,
			// never the store's own error (its directory, Badger's words).
			status, reason := "failed", "the store takes no more captures until the receiver is restarted"
			if errors.Is(err, ErrDiskFull) {
				status, reason = "disk full", "the store's disk is full: captures are refused until space is freed"
			}
			// An error answer like any other ({"error","reason"}, so a
			// client that reads errors reads this one), with the status a
			// probe reads beside it. Written here rather than by
			// writeError: a failed store is not a failed request, and a
			// probe polling it must not log an error line per poll.
			httpjson.Write(w, http.StatusServiceUnavailable, map[string]string{"status": status, "error": codeUnavailable, "reason": reason})
			return
		}
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// adminCatchAll is the admin mux's pattern for what no route serves.
const adminCatchAll = AdminPrefix

// handleAdminNotFound answers what no admin route serves: 405 with Allow
// where the path is served with other methods, else 404 (httpjson.NoRoute).
func handleAdminNotFound(s *Server, admin *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		notFound := "no admin route " + r.Method + " " + r.URL.Path
		if hint := ruleByPathHint(r); hint != "" {
			notFound += ": " + hint
		}
		if err := httpjson.NoRoute(w, r, admin, notFound, adminCatchAll); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// ruleByPathHint says how the API names one rule to a request that names
// it in the path, as WireMock's /__admin/mappings/{id} does: by ?id=. ""
// for any other path.
func ruleByPathHint(r *http.Request) string {
	id, ok := strings.CutPrefix(r.URL.Path, AdminPrefix+"rules/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return ""
	}
	byID := AdminPrefix + "rules?id=" + url.QueryEscape(id)
	switch r.Method {
	case http.MethodDelete:
		return "delete one rule with DELETE " + byID
	case http.MethodGet, http.MethodHead:
		return "GET " + AdminPrefix + "rules lists every rule with its id"
	}
	return "rules are added with POST " + AdminPrefix + "rules and deleted with DELETE " + byID
}

// listResponse is GET /_sidehook/requests's answer; Next is null on the
// last page.
type listResponse struct {
	Requests []Capture `json:"requests"`
	Next     *string   `json:"next"`
}

func handleList(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f, err := parseFilter(q, s.now(), "limit", "cursor")
		if err != nil {
			s.writeError(w, r, badRequest(err.Error()))
			return
		}
		limit, err := ParseLimit(q.Get("limit"))
		if err != nil {
			s.writeError(w, r, badRequest(err.Error()))
			return
		}
		caps, next, err := s.List(r.Context(), f, limit, q.Get("cursor"))
		if err != nil {
			s.writeError(w, r, storeError(err))
			return
		}
		if caps == nil {
			caps = []Capture{}
		}
		ans := listResponse{Requests: redactAll(caps)}
		if next != "" {
			ans.Next = &next
		}
		httpjson.Write(w, http.StatusOK, ans)
	})
}

// storeError maps an error of a store read to its answer.
func storeError(err error) error {
	switch {
	case errors.Is(err, errCursor):
		return badRequest(err.Error())
	case errors.Is(err, context.Canceled):
		return &httpjson.Error{Status: http.StatusServiceUnavailable, Code: codeUnavailable, Reason: "request canceled", Err: err}
	}
	return err
}

func handleCount(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := parseFilter(r.URL.Query(), s.now())
		if err != nil {
			s.writeError(w, r, badRequest(err.Error()))
			return
		}
		n, err := s.Count(r.Context(), f)
		if err != nil {
			s.writeError(w, r, storeError(err))
			return
		}
		httpjson.Write(w, http.StatusOK, map[string]int{"count": n})
	})
}

// waitResponse is GET /_sidehook/requests/wait's answer, both on success
// (200) and on timeout (408, with Error and Reason set).
type waitResponse struct {
	Error    string    `json:"error,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Count    int       `json:"count"`
	Requests []Capture `json:"requests"`
}

func handleWait(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f, err := parseFilter(q, s.now(), "count", "timeout")
		if err != nil {
			s.writeError(w, r, badRequest(err.Error()))
			return
		}
		n := 1
		if v := q.Get("count"); v != "" {
			n, err = strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxLimit {
				s.writeError(w, r, badRequest("count: want a number from 1 to "+strconv.Itoa(MaxLimit)))
				return
			}
		}
		timeout := DefaultWaitTimeout
		if v := q.Get("timeout"); v != "" {
			timeout, err = time.ParseDuration(v)
			if err != nil || timeout <= 0 || timeout > MaxWaitTimeout {
				s.writeError(w, r, badRequest("timeout: want a duration up to "+MaxWaitTimeout.String()+", such as 5s"))
				return
			}
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		caps, err := s.Wait(ctx, f, n)
		if caps == nil {
			caps = []Capture{}
		}
		caps = redactAll(caps)
		var te *WaitTimeoutError
		switch {
		case errors.As(err, &te):
			reason := "waited " + timeout.String() + " for " + te.Wanted() + ": " + te.Came()
			if !errors.Is(te.Cause, context.DeadlineExceeded) {
				// The receiver closed, or the client left, first.
				reason = "waiting for " + te.Wanted() + ": " + te.Cause.Error() + "; " + te.Came()
			}
			httpjson.Write(w, http.StatusRequestTimeout, waitResponse{
				Error:    codeTimeout,
				Reason:   reason,
				Count:    len(caps),
				Requests: caps,
			})
		case err != nil:
			s.writeError(w, r, storeError(err))
		default:
			httpjson.Write(w, http.StatusOK, waitResponse{Count: len(caps), Requests: caps})
		}
	})
}

func handleGet(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := s.Get(r.Context(), r.PathValue("id"))
		if err != nil {
			s.writeError(w, r, getError(err))
			return
		}
		httpjson.Write(w, http.StatusOK, redacted(c))
	})
}

func getError(err error) error {
	switch {
	case errors.Is(err, event.ErrBadID):
		return badRequest("malformed capture id: want cap_ followed by a ULID")
	case errors.Is(err, ErrNotFound):
		return &httpjson.Error{Status: http.StatusNotFound, Code: codeNotFound, Reason: "no such capture"}
	}
	return storeError(err)
}

// handleDeleteAll deletes every capture; it takes no filter, so one given
// (event=…) is refused rather than read as "everything".
func handleDeleteAll(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkParams(r.URL.Query()); err != nil {
			s.writeError(w, r, badRequest(err.Error()))
			return
		}
		if err := s.DeleteCaptures(r.Context()); err != nil {
			s.writeError(w, r, storeError(err))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func handleReset(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkParams(r.URL.Query()); err != nil {
			s.writeError(w, r, badRequest(err.Error()))
			return
		}
		if err := s.Reset(r.Context()); err != nil {
			s.writeError(w, r, storeError(err))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// handleListRules lists every rule. It takes no parameter: ?id=x,
// ignored, would answer every rule to a test asking for one.
func handleListRules(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkParams(r.URL.Query()); err != nil {
			s.writeError(w, r, badRequest(err.Error()))
			return
		}
		httpjson.Write(w, http.StatusOK, map[string][]Rule{"rules": s.Rules()})
	})
}

// handleAddRules takes one rule (answers {"id"}) or a list ({"ids"}) as a
// JSON body, Content-Type application/json or application/*+json: the
// guard refuses any other 415, YAML types included, as SPEC §6 has
// state-changing calls take JSON bodies only (a YAML list belongs in
// --rules FILE). The body is read by the rules file's one parser, so it is
// validated as strictly as the file.
func handleAddRules(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Refused whole when over the limit: cut there, a YAML list can
		// still parse, as fewer rules or a shortened value.
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, httpjson.MaxRequest))
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.writeError(w, r, httpjson.Errorf(http.StatusRequestEntityTooLarge, httpjson.CodeTooLarge, "rules above %d bytes", mbe.Limit))
			return
		}
		if err != nil {
			s.writeError(w, r, badRequest("read body: "+err.Error()))
			return
		}
		rules, single, err := parseRules(data)
		if err != nil {
			s.writeError(w, r, badRequest(err.Error()))
			return
		}
		if len(rules) == 0 {
			s.writeError(w, r, badRequest("no rule in the body"))
			return
		}
		added, err := s.AddRules(rules...)
		if err != nil {
			s.writeError(w, r, badRequest(err.Error()))
			return
		}
		if single {
			httpjson.Write(w, http.StatusCreated, map[string]string{"id": added[0].ID})
			return
		}
		ids := make([]string, len(added))
		for i, a := range added {
			ids[i] = a.ID
		}
		httpjson.Write(w, http.StatusCreated, map[string][]string{"ids": ids})
	})
}

// handleDeleteRules deletes the rule ?id= names, or every rule without
// id; a misspelt parameter or an empty id is refused, not read as "every
// rule".
func handleDeleteRules(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if err := checkParams(q, "id"); err != nil {
			s.writeError(w, r, badRequest(err.Error()))
			return
		}
		id := q.Get("id")
		if q.Has("id") && id == "" {
			s.writeError(w, r, badRequest("id: empty; leave id out to delete every rule"))
			return
		}
		if !s.DeleteRule(id) {
			s.writeError(w, r, &httpjson.Error{Status: http.StatusNotFound, Code: codeNotFound, Reason: "no rule " + strconv.Quote(id)})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// ReplayRequest is POST /_sidehook/requests/{id}/replay's body (one wire
// type, shared with receiverapi).
type ReplayRequest struct {
	// To is where to send (default: this receiver's URL and the
	// capture's path and query).
	To string `json:"to"`
	// Body, when present, replaces the captured body.
	Body *string `json:"body"`
	// Sign lists the schemes to sign with, using this receiver's own keys.
	// Absent, every scheme the original carried is re-signed; [] sends
	// the replay unsigned.
	Sign []string `json:"sign"`
}

// replayFieldWants says what each field of a ReplayRequest takes, for a
// value of the wrong type.
var replayFieldWants = map[string]string{
	"to":   "want a URL as a string",
	"body": "want the replayed body as a string",
	"sign": `want a list of schemes, such as ["jwt"], or [] to send unsigned`,
}

// UnmarshalJSON reads the wire form strictly (an unknown field is an
// error), saying what a field of the wrong type takes rather than
// encoding/json's "cannot unmarshal bool into Go struct field
// ReplayRequest.sign of type []string".
func (q *ReplayRequest) UnmarshalJSON(b []byte) error {
	type plain ReplayRequest // without this method
	dec := json.NewDecoder(bytes.NewReader(b))
	// The caller's decoder does not pass its own setting down to a
	// type's UnmarshalJSON.
	dec.DisallowUnknownFields()
	var p plain
	if err := dec.Decode(&p); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field, _, _ := strings.Cut(te.Field, ".")
			if want, ok := replayFieldWants[field]; ok {
				return fmt.Errorf("%s: %s", field, want)
			}
		}
		return err
	}
	*q = ReplayRequest(p)
	return nil
}

// ReplayAnswer is the replay endpoint's answer: the target's real answer,
// whatever its status (the endpoint's own status is 200 once the request
// was sent; 502 when it could not be).
type ReplayAnswer struct {
	ID     string   `json:"id"`
	Target string   `json:"target"`
	Method string   `json:"method"`
	Signed []string `json:"signed"`
	// Status, Headers and Body (its first replay.MaxResultBody bytes) are
	// the target's answer; credentials in its headers are redacted.
	Status        int                 `json:"status"`
	Headers       map[string][]string `json:"headers"`
	Body          string              `json:"body"`
	BodyEncoding  string              `json:"body_encoding,omitempty"`
	BodyTruncated bool                `json:"body_truncated,omitempty"`
	DurationMS    int64               `json:"duration_ms"`
}

func handleReplay(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := s.Get(r.Context(), r.PathValue("id"))
		if err != nil {
			s.writeError(w, r, getError(err))
			return
		}
		var req ReplayRequest
		if err := httpjson.Decode(w, r, &req, true); err != nil {
			s.writeError(w, r, err)
			return
		}
		schemes, keys, err := s.replaySigning(&c, req.Sign)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		opts := replay.Options{
			To:        req.To,
			Schemes:   schemes,
			Keys:      keys,
			Now:       s.now,
			UserAgent: "sidehook/" + s.cfg.Version,
		}
		if req.Body != nil {
			opts.Body = []byte(*req.Body)
		}
		// Its listen address, which it can call itself; a Handler
		// mounted elsewhere has none, and is reached by the URL this
		// request came in on.
		base := s.URL()
		if base == "" {
			base = requestBase(r, "")
		}
		item := c.ReplayItem(base)
		item.Header = replayHeaders(&c, schemes)
		if item.WebhookID == "" {
			item.WebhookID = first(c.Headers, svixID)
		}
		out, err := replay.Build(r.Context(), item, opts)
		if err != nil {
			s.writeError(w, r, badRequest(err.Error()))
			return
		}
		ans, err := s.sendReplay(out)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		ans.ID, ans.Signed = c.ID, schemes
		if ans.Signed == nil {
			ans.Signed = []string{}
		}
		httpjson.Write(w, http.StatusOK, ans)
	})
}

// sendReplay sends a built replay and reads the target's answer. A replay
// outlives a dashboard that stops waiting: it is sent once begun.
func (s *Server) sendReplay(req *http.Request) (ReplayAnswer, error) {
	req = req.WithContext(context.WithoutCancel(req.Context()))
	ans := ReplayAnswer{Target: req.URL.String(), Method: req.Method}
	client := replay.NewClient(replay.DefaultTimeout)
	// The client is this replay's alone: its connection, returned idle
	// once the body is closed (deferred below, so it runs first), would
	// never be used again.
	defer client.CloseIdleConnections()
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return ans, &httpjson.Error{Status: http.StatusBadGateway, Code: codeReplayFailed, Reason: "send to " + ans.Target + ": " + err.Error(), Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, replay.MaxResultBody+1))
	ans.DurationMS = time.Since(start).Milliseconds()
	if err != nil {
		return ans, &httpjson.Error{Status: http.StatusBadGateway, Code: codeReplayFailed, Reason: "read the answer of " + ans.Target + ": " + err.Error(), Err: err}
	}
	if len(b) > replay.MaxResultBody {
		b, ans.BodyTruncated = b[:replay.MaxResultBody], true
	}
	ans.Status = resp.StatusCode
	ans.Headers = web.RedactHeaders(lowerHeaders(resp.Header))
	ans.Body, ans.BodyEncoding = event.EncodeBody(b)
	return ans, nil
}

// ReplayItem turns a capture into a replay item aimed at base (a
// receiver's URL) plus the captured path and query.
func (c *Capture) ReplayItem(base string) replay.Item {
	target := ""
	if base != "" {
		target = requestURL(base, c)
	}
	return replay.Item{
		ID:       c.ID,
		Method:   c.Method,
		Target:   target,
		Path:     c.Path,
		RawQuery: c.Query,
		Header:   http.Header(c.Headers),
		Body:     c.Body,
		// Replayed as it is, a request whose body was not kept would go
		// with none: replay.Build refuses it unless a body is given.
		BodyMissing: c.BodyTruncated,
		WebhookID:   c.WebhookID,
		Event:       c.Event,
	}
}
