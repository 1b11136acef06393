package receiver

import (
	"crypto/subtle"
	"net/http"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/internal/httpjson"
)

// Error codes of the receiver's {"error","reason"} answers (SPEC §5).
const (
	codeInvalidToken = "invalid_token"
	codeBadRequest   = "bad_request"
	codeNotFound     = "not_found"
	codeUnauthorized = "unauthorized"
	codeTimeout      = "timeout"
	codeUnavailable  = "unavailable"
	codeBusy         = "busy"
	codeInternal     = "internal"
	codeReplayFailed = "replay_failed"
)

func badRequest(reason string) *httpjson.Error {
	return &httpjson.Error{Status: http.StatusBadRequest, Code: codeBadRequest, Reason: reason}
}

// writeError answers err with the receiver's logger.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	httpjson.WriteError(w, r, s.log, err)
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
			s.writeError(w, r, &httpjson.Error{Status: http.StatusUnauthorized, Code: codeUnauthorized, Reason: "admin token required"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// adminOK reports whether r carries the admin token, compared in constant
// time.
func (s *Server) adminOK(r *http.Request) bool {
	got, ok := auth.Bearer(r.Header.Get("Authorization"))
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.AdminToken)) == 1
}
