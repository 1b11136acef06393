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
		ok, sent := s.admin(r)
		if ok {
			next.ServeHTTP(w, r)
			return
		}
		reason := "admin token required: send Authorization: Bearer <token>"
		if sent {
			reason = "invalid admin token"
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="sidehook"`)
		s.writeError(w, r, &httpjson.Error{Status: http.StatusUnauthorized, Code: codeUnauthorized, Reason: reason})
	})
}

// adminOK reports whether r carries the admin token.
func (s *Server) adminOK(r *http.Request) bool {
	ok, _ := s.admin(r)
	return ok
}

// admin reports whether r carries the admin token, compared in constant
// time, and whether it carried a Bearer token at all.
func (s *Server) admin(r *http.Request) (ok, sent bool) {
	got, sent := auth.Bearer(r.Header.Get("Authorization"))
	return sent && subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.AdminToken)) == 1, sent
}
