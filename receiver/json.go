package receiver

import (
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"strings"

	"github.com/rs/zerolog"
)

// Error codes of the {"error","reason"} answers.
const (
	codeInvalidToken = "invalid_token"
	codeBodyTooLarge = "body_too_large"
	codeBadRequest   = "bad_request"
	codeNotFound     = "not_found"
	codeUnauthorized = "unauthorized"
	codeTimeout      = "timeout"
	codeUnavailable  = "unavailable"
	codeBusy         = "busy"
	codeInternal     = "internal"
	codeReplayFailed = "replay_failed"
)

// apiError is an answer that is an error: the client text (Code, Reason)
// and the internal cause, which is logged and never sent.
type apiError struct {
	Status int
	Code   string
	Reason string
	Err    error
}

func (e *apiError) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Reason + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Reason
}

func (e *apiError) Unwrap() error { return e.Err }

func badRequest(reason string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: codeBadRequest, Reason: reason}
}

// errorBody is the shape of every error answer.
type errorBody struct {
	Error  string `json:"error"`
	Reason string `json:"reason"`
}

// writeJSON answers v as JSON with the status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"internal","reason":"encode answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// writeError answers err in the {"error","reason"} shape; anything that is
// not an *apiError is a 500 whose cause is logged, not sent.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{Status: http.StatusInternalServerError, Code: codeInternal, Reason: "internal error", Err: err}
	}
	if ae.Status >= 500 {
		s.log.Error().Err(err).Str("method", r.Method).Str("path", r.URL.Path).Msg("request failed")
	}
	writeJSON(w, ae.Status, errorBody{Error: ae.Code, Reason: ae.Reason})
}

// decodeJSON reads a JSON request body into v, refusing unknown fields and
// bodies over 1 MiB.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return badRequest("empty body: want a JSON object")
		}
		return badRequest("invalid JSON: " + err.Error())
	}
	return nil
}

// requireAdmin checks the admin token, when one is set, as a Bearer token
// compared in constant time.
func (s *Server) requireAdmin(next http.Handler) http.Handler {
	if s.cfg.AdminToken == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.adminOK(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sidehook"`)
			s.writeError(w, r, &apiError{Status: http.StatusUnauthorized, Code: codeUnauthorized, Reason: "admin token required"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func bearer(h string) (string, bool) {
	const prefix = "bearer "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	return strings.TrimSpace(h[len(prefix):]), true
}

// newStdLogger routes net/http's own error log (TLS noise, broken
// connections) to zerolog at debug level: it is about clients, not us.
func newStdLogger(l zerolog.Logger) *log.Logger {
	return log.New(stdWriter{l}, "", 0)
}

type stdWriter struct{ l zerolog.Logger }

func (w stdWriter) Write(p []byte) (int, error) {
	w.l.Debug().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}
