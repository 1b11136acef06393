package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sidehook/sidehook/fixtures"
	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/internal/httpjson"
)

// Headers the receiver reads.
const (
	headerEvent     = "sidehook-event"
	headerWebhookID = "webhook-id"
)

// reply is what the receiver is going to answer.
type reply struct {
	status int
	header map[string]string
	body   []byte
	json   bool
	rule   string
	fault  string
	delay  time.Duration
	// closeConn ends the connection after the answer.
	closeConn bool
	// use is what the answering rule's counters gave this request, given
	// back if the capture is not stored.
	use ruleUse
}

// handleCapture is the capture path: read, verify, decide the answer,
// store the capture (one durable write), publish it, answer. The capture is
// committed before the first byte of the answer, so a client that got an
// answer can always find its capture.
func handleCapture(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.enterAnswer() {
			// Close has cut every connection: this one too.
			return
		}
		defer s.answering.Done()
		start := time.Now()
		rb := s.readBody(w, r)
		defer rb.release()
		body, tooLarge, size, readErr := rb.body, rb.tooLarge, rb.size, rb.err
		// To the microsecond, as received_at is stored and shown: the
		// capture a waiter gets from the feed and the one it reads back
		// then match the same since filter.
		now := s.now().Truncate(time.Microsecond)
		// The path is kept as sent: decoded, "/a%2Fb" would read as
		// another path, and a replay would go there.
		c := Capture{
			ID:            event.NewID(event.PrefixCapture, now),
			ReceivedAt:    now,
			Method:        r.Method,
			Path:          r.URL.EscapedPath(),
			Query:         r.URL.RawQuery,
			RemoteAddr:    r.RemoteAddr,
			Headers:       requestHeaders(r),
			Body:          body,
			BodyTruncated: tooLarge || rb.busy,
			BodySize:      size,
			WebhookID:     webhookIDOf(r.Header),
			Event:         deriveEvent(r, body),
		}

		var rep reply
		switch {
		case tooLarge:
			c.Verdict = Verdict{Status: VerdictUnverified}
			if s.verifier.Enabled() {
				c.Verdict.Reason = "body over the size limit: not verified"
			}
			rep = errorReply(http.StatusRequestEntityTooLarge, httpjson.CodeTooLarge,
				"body is over the limit of "+strconv.FormatInt(s.cfg.MaxBody, 10)+" bytes")
			rep.closeConn = true
		case rb.busy:
			c.Verdict = Verdict{Status: VerdictUnverified, Reason: "body not read: the receiver was busy"}
			rep = errorReply(http.StatusServiceUnavailable, codeBusy, "over "+strconv.FormatInt(s.bodies.max, 10)+
				" bytes of request bodies are being received at once; retry later")
			rep.header = map[string]string{"Retry-After": "1"}
			rep.closeConn = true
		case isTimeout(readErr):
			c.Verdict = Verdict{Status: VerdictUnverified, Reason: "body not read: not verified"}
			rep = errorReply(http.StatusRequestTimeout, codeTimeout, "body not received within "+s.cfg.ReadTimeout.String())
			rep.closeConn = true
		case readErr != nil:
			c.Verdict = Verdict{Status: VerdictUnverified, Reason: "body not read: not verified"}
			rep = errorReply(http.StatusBadRequest, codeBadRequest, "read body: "+readErr.Error())
		default:
			c.Verdict = verdictOf(s.verifier.Verify(r.Context(), r, body))
			rep = s.decide(r, &c)
		}
		c.Response = rep.captured(start, r.Method == http.MethodHead)

		err := s.st.Append(r.Context(), &c)
		if errors.Is(err, ErrTooLarge) {
			// No retry stores this body: keep the request without it, as
			// one over MaxBody is, and answer 413 instead of the rule's
			// answer, which goes back to the rule.
			s.rules.release(rep.use)
			rep = errorReply(http.StatusRequestEntityTooLarge, httpjson.CodeTooLarge,
				"the request is larger than the receiver's store can hold; its body ("+strconv.FormatInt(size, 10)+" bytes) was not kept")
			c.Body, c.BodyTruncated = nil, true
			c.Response = rep.captured(start, r.Method == http.MethodHead)
			err = s.st.Append(r.Context(), &c)
		}
		if err != nil {
			// The request is refused, not captured: its sender retries, and
			// the retry is owed the rule's answer this one did not get.
			s.rules.release(rep.use)
			fail := &httpjson.Error{Status: http.StatusServiceUnavailable, Code: codeUnavailable, Reason: "capture not stored", Err: err}
			switch {
			case errors.Is(err, ErrDiskFull):
				fail.Reason += ": disk full"
			case errors.Is(err, ErrTooLarge):
				// Even without its body: a retry would be refused too.
				fail.Status, fail.Code = http.StatusRequestEntityTooLarge, httpjson.CodeTooLarge
				fail.Reason = "the request (its headers) is larger than the receiver's store can hold; not captured"
			}
			s.metrics.responses.WithLabelValues(strconv.Itoa(fail.Status)).Inc()
			s.writeError(w, r, fail)
			return
		}
		// The body is in the store now; the budget was for reading it.
		rb.release()
		s.metrics.observe(&c, time.Since(start))
		s.bc.Publish(c)
		// One line per capture, as stripe listen prints one per event; the
		// logger adds the time.
		if e := s.log.Info(); e.Enabled() {
			e.Str("method", c.Method).Str("path", c.Path).Str("event", c.Event).
				Str("verdict", c.Verdict.Status).Int("status", c.Response.Status).Str("id", c.ID).Msg("captured")
		}
		if sent := s.respond(w, r, rep); sent != sentWhole {
			s.markCut(r, &c, sent, start)
		}
	})
}

// enterAnswer counts a capture handler in, unless Close has already cut
// the connections.
func (s *Server) enterAnswer() bool {
	s.holdMu.Lock()
	defer s.holdMu.Unlock()
	select {
	case <-s.cut:
		return false
	default:
	}
	s.answering.Add(1)
	return true
}

// sent is how much of an answer reached the connection.
type sent int

const (
	sentWhole   sent = iota // all of it, or a fault as asked
	sentNothing             // Close cut the connection before the answer
	sentPart                // Close cut the connection during the answer
)

// Errors a capture's response records when Close cut its connection.
const (
	errCutBefore = "connection cut at shutdown, the grace over, before the answer was sent: the client got no answer"
	errCutDuring = "connection cut at shutdown, the grace over, while the answer was sent: the client got at most part of it"
)

// markCut rewrites the stored capture c to say that Close cut its
// connection before (sentNothing) or during (sentPart) its answer: it was
// stored recording an answer the client did not get.
func (s *Server) markCut(r *http.Request, c *Capture, how sent, start time.Time) {
	cr := c.Response
	if how == sentNothing {
		cr = CaptureResponse{Rule: cr.Rule, Error: errCutBefore}
	} else {
		cr.Error = errCutDuring
	}
	cr.DurationMS = time.Since(start).Milliseconds()
	if err := s.st.SetResponse(context.WithoutCancel(r.Context()), c.ID, cr); err != nil {
		if !errors.Is(err, ErrNotFound) {
			s.log.Warn().Err(err).Str("id", c.ID).Msg("capture still records the answer its cut connection did not send")
		}
		return
	}
	// The dashboards list the answer published before the cut: published
	// again, the capture replaces that row (the page upserts by id).
	c.Response = cr
	s.bc.Publish(*c)
}

// decide picks the answer of a request whose body was read: 503 when its
// jwt could not be checked for want of the JWKS (the sender should retry),
// 401 when it failed verification (before any rule: a rule never makes a
// forged request look accepted), else the first matching rule, else custom
// values for a GET with fields, else 200 {"id"}. A rule that says no
// answer of its own delays, or adds headers to, the one without it.
func (s *Server) decide(r *http.Request, c *Capture) reply {
	if c.Verdict.keysUnavailable() {
		rep := errorReply(http.StatusServiceUnavailable, codeUnavailable, c.Verdict.Scheme+": "+c.Verdict.Reason+": the token could not be checked; try again")
		rep.header = map[string]string{"Retry-After": "1"}
		return rep
	}
	if c.Verdict.Status == auth.StatusInvalid {
		reason := c.Verdict.Reason
		if c.Verdict.Scheme != "" {
			reason = c.Verdict.Scheme + ": " + reason
		}
		return errorReply(http.StatusUnauthorized, codeInvalidToken, reason)
	}
	if a, ok := s.rules.match(ruleInput{method: r.Method, path: c.Path, event: c.Event, header: r.Header, host: r.Host, webhookID: c.WebhookID}); ok {
		if !a.own {
			rep := s.defaultReply(r, c)
			rep.header, rep.rule, rep.delay, rep.use = a.headers, a.rule, a.delay, a.use
			return rep
		}
		body := []byte(a.body)
		if a.status == http.StatusNoContent || a.status == http.StatusNotModified {
			// net/http sends no body with these: the capture records the
			// answer the client got, not the rule's body.
			body = nil
		}
		return reply{status: a.status, header: a.headers, body: body, rule: a.rule, fault: a.fault, delay: a.delay, use: a.use}
	}
	return s.defaultReply(r, c)
}

// defaultReply is the answer without a rule: the values asked for by a
// custom-value GET, else 200 {"id"}.
func (s *Server) defaultReply(r *http.Request, c *Capture) reply {
	if isCustomValueGET(r) {
		q := r.URL.Query()
		vals := s.values.Lookup(q.Get("customerUID"), q.Get("channelId"), fixtures.RequestedFields(q))
		b, err := json.Marshal(vals)
		if err != nil {
			return errorReply(http.StatusInternalServerError, codeInternal, "encode values")
		}
		return reply{status: http.StatusOK, body: b, json: true}
	}
	return reply{status: http.StatusOK, body: []byte(`{"id":"` + c.ID + `"}`), json: true}
}

// headers are the reply's headers, lower-case, as sent and as the
// capture records them.
func (rep reply) headers() map[string][]string {
	h := make(map[string][]string, len(rep.header)+3)
	for k, v := range rep.header {
		h[strings.ToLower(k)] = []string{v}
	}
	if rep.json && h["content-type"] == nil {
		h["content-type"] = []string{"application/json"}
	}
	if len(rep.body) > 0 && h["content-type"] == nil {
		// What net/http would sniff and send anyway, set here so the
		// capture records the content-type the client got.
		h["content-type"] = []string{http.DetectContentType(rep.body)}
	}
	if len(rep.body) > 0 || rep.status >= 200 && rep.status != http.StatusNoContent && rep.status != http.StatusNotModified {
		h["content-length"] = []string{strconv.Itoa(len(rep.body))}
	}
	if rep.closeConn {
		// The body was not read: the connection cannot carry another
		// request.
		h["connection"] = []string{"close"}
	}
	return h
}

// captured is what a capture records of rep, an answer decided start
// after the request arrived; to a HEAD (head) net/http sends its headers,
// content-length included, without the body.
func (rep reply) captured(start time.Time, head bool) CaptureResponse {
	cr := CaptureResponse{Status: rep.status, Rule: rep.rule, Fault: rep.fault}
	if rep.fault != "" {
		cr.Status = 0
	} else {
		cr.Headers = rep.headers()
		sent := rep.body
		if head {
			sent = nil
		}
		if len(sent) > MaxResponseBody {
			sent, cr.BodyTruncated = sent[:MaxResponseBody], true
		}
		cr.Body, cr.BodyEncoding = event.EncodeBody(sent)
	}
	cr.DurationMS = (time.Since(start) + rep.delay).Milliseconds()
	return cr
}

func errorReply(status int, code, reason string) reply {
	b, _ := json.Marshal(httpjson.Body{Error: code, Reason: reason})
	return reply{status: status, body: b, json: true}
}

// respond sends the reply after its delay, or injects its fault, and says
// whether Close cut the connection before or during the answer. When
// Close begins, a delay still running is cut short and the reply sent at
// once: its capture, stored before the delay, already records this reply,
// and a delay that outlived the shutdown grace would leave the client an
// empty 200 or a cut connection instead.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, rep reply) sent {
	if rep.delay > 0 {
		t := time.NewTimer(rep.delay)
		select {
		case <-t.C:
		case <-s.stopping:
			t.Stop()
		case <-r.Context().Done():
			// The client has gone: nobody is left to answer.
			t.Stop()
			return sentWhole
		}
	}
	if rep.fault != "" {
		s.fault(w, rep.fault)
		return sentWhole
	}
	select {
	case <-s.cut:
		// The grace ran out while the capture was being stored.
		return sentNothing
	default:
	}
	h := w.Header()
	for k, v := range rep.headers() {
		h[http.CanonicalHeaderKey(k)] = v
	}
	w.WriteHeader(rep.status)
	var err error
	if len(rep.body) > 0 {
		_, err = w.Write(rep.body)
	}
	if err == nil {
		// Flushed here, not after the handler, to learn whether it went.
		if err = http.NewResponseController(w).Flush(); errors.Is(err, http.ErrNotSupported) {
			err = nil
		}
	}
	if err != nil {
		select {
		case <-s.cut:
			return sentPart
		default:
		}
	}
	return sentWhole
}

// fault breaks the connection the way the rule asked. It needs HTTP/1's
// hijacking; on a connection that cannot be hijacked (HTTP/2) the handler
// aborts, which resets the stream.
func (s *Server) fault(w http.ResponseWriter, kind string) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	switch kind {
	case FaultReset:
		// Linger 0 makes close send RST instead of FIN.
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		conn.Close()
	case FaultClose:
		conn.Close()
	case FaultTimeout:
		s.hold(conn)
	}
}

// hold keeps a hijacked connection open, answering nothing, until the
// client closes it or the receiver stops.
func (s *Server) hold(conn net.Conn) {
	// Registering under holdMu, after checking stopping, keeps Add from
	// racing Close's Wait.
	s.holdMu.Lock()
	select {
	case <-s.stopping:
		s.holdMu.Unlock()
		conn.Close()
		return
	default:
	}
	s.holds.Add(1)
	s.holdMu.Unlock()
	// The server's read timeout does not apply to a held connection: it
	// stays until the client or Close ends it.
	conn.SetReadDeadline(time.Time{})
	defer s.holds.Done()
	released := make(chan struct{})
	defer close(released)
	go func() {
		select {
		case <-s.stopping:
		case <-released:
		}
		conn.Close()
	}()
	buf := make([]byte, 512)
	for {
		// Whatever the client sends is ignored; a read error is the
		// client (or Close) ending the connection.
		if _, err := conn.Read(buf); err != nil {
			return
		}
	}
}

// deriveEvent is a capture's event (SPEC §5): the sidehook-event header,
// else the payload's type mapped to an event type, else
// custom_value_request for a GET with fields, else "".
func deriveEvent(r *http.Request, body []byte) string {
	if v := r.Header.Get(headerEvent); v != "" {
		return v
	}
	if t, ok := event.FromPayload(body); ok {
		return string(t)
	}
	if isCustomValueGET(r) {
		return string(event.CustomValueRequest)
	}
	return ""
}

// webhookIDOf is a request's webhook id: its webhook-id header, else its
// svix-id, the name a Svix sender gives it (the verifier reads either).
// Per-webhook-id sequences, duplicate_of and the webhook_id filter all
// read it, so a Svix sender's retries are told apart by message.
func webhookIDOf(h http.Header) string {
	if id := h.Get(headerWebhookID); id != "" {
		return id
	}
	return h.Get(svixID)
}

// isCustomValueGET reports whether r is a custom-value request: a GET
// with a fields parameter, its name read as url.ParseQuery reads it.
func isCustomValueGET(r *http.Request) bool {
	return r.Method == http.MethodGet && r.URL.Query().Has("fields")
}

// requestHeaders are the headers a capture records: r's, lower-case, and
// its Host, which net/http moves out of the header map into r.Host, as
// "host" (SPEC §5 gives every request header; a test asserts on it as on
// any other). A request without one (HTTP/1.0) records none. Whatever
// resends a capture sets the Host of its own target: replay, curl and
// HAR exports leave this one out.
func requestHeaders(r *http.Request) map[string][]string {
	h := lowerHeadersCap(r.Header, 1)
	if r.Host != "" {
		h["host"] = []string{r.Host}
	}
	return h
}

// lowerHeaders copies the header map with lower-case names; the values are
// shared, net/http does not reuse them.
func lowerHeaders(h http.Header) map[string][]string { return lowerHeadersCap(h, 0) }

// lowerHeadersCap is lowerHeaders with room for extra more names.
func lowerHeadersCap(h http.Header, extra int) map[string][]string {
	out := make(map[string][]string, len(h)+extra)
	for k, v := range h {
		lk := lowerName(k)
		if prev, ok := out[lk]; ok {
			out[lk] = append(prev[:len(prev):len(prev)], v...)
		} else {
			out[lk] = v
		}
	}
	return out
}

// lowerName is strings.ToLower without an allocation for the names a
// webhook nearly always carries, as net/http canonicalises them.
func lowerName(k string) string {
	switch k {
	case "Accept":
		return "accept"
	case "Accept-Encoding":
		return "accept-encoding"
	case "Authorization":
		return "authorization"
	case "Content-Length":
		return "content-length"
	case "Content-Type":
		return "content-type"
	case "Sidehook-Attempt":
		return "sidehook-attempt"
	case "Sidehook-Event":
		return "sidehook-event"
	case "User-Agent":
		return "user-agent"
	case "Webhook-Id":
		return "webhook-id"
	case "Webhook-Signature":
		return "webhook-signature"
	case "Webhook-Timestamp":
		return "webhook-timestamp"
	case "X-Webio-Token":
		return "x-webio-token"
	}
	return strings.ToLower(k)
}
