package relay

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/rs/zerolog"
)

// apiError is an error a client sees: Code and Reason go out, Err (the
// internal cause) is logged only.
type apiError struct {
	Status int
	Code   string
	Reason string
	Err    error
}

func (e *apiError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Reason, e.Err)
	}
	return e.Code + ": " + e.Reason
}

func (e *apiError) Unwrap() error { return e.Err }

func apiErrorf(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Reason: fmt.Sprintf(format, args...)}
}

// storeError turns a failed write into the 503 of SPEC §4: nothing was
// acknowledged, the client may retry.
func storeError(err error) *apiError {
	reason := "the relay could not store the request; retry later"
	if errors.Is(err, ErrDiskFull) {
		reason = "the relay's disk is full; retry later"
	}
	return &apiError{Status: http.StatusServiceUnavailable, Code: "store_unavailable", Reason: reason, Err: err}
}

// apiHandler is a handler that returns its error; ServeHTTP writes it.
type apiHandler func(w http.ResponseWriter, req *http.Request) error

// responder turns a part's apiHandlers into http.Handlers that write
// errors in the one shape, logging through the part's logger.
type responder struct {
	log zerolog.Logger
}

func (rs responder) handle(h apiHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if err := h(w, req); err != nil {
			rs.writeError(w, req, err)
		}
	})
}

// writeError is the one place errors are written: {"error","reason"}.
func (rs responder) writeError(w http.ResponseWriter, req *http.Request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{Status: http.StatusInternalServerError, Code: "internal", Reason: "internal error", Err: err}
	}
	switch {
	case ae.Status >= 500 && errors.Is(req.Context().Err(), context.Canceled):
		// The client went away; what it asked for is not in doubt.
		rs.log.Debug().Err(err).Str("method", req.Method).Str("path", req.URL.Path).Msg("request failed after the client left")
	case ae.Status >= 500:
		rs.log.Error().Err(err).Str("method", req.Method).Str("path", req.URL.Path).Msg("request failed")
	}
	if ae.Status == http.StatusServiceUnavailable || ae.Status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, ae.Status, map[string]string{"error": ae.Code, "reason": ae.Reason})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"internal","reason":"encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// maxJSONRequest bounds management API request bodies.
const maxJSONRequest = 1 << 20

// decodeJSON reads one JSON object into v; unknown fields are errors so a
// typo does not silently do nothing. An empty body leaves v as is.
func decodeJSON(w http.ResponseWriter, req *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxJSONRequest))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return apiErrorf(http.StatusRequestEntityTooLarge, "too_large", "request body above %d bytes", mbe.Limit)
		}
		return apiErrorf(http.StatusBadRequest, "invalid_body", "read body: %v", err)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apiErrorf(http.StatusBadRequest, "invalid_json", "%v", err)
	}
	if dec.More() {
		return apiErrorf(http.StatusBadRequest, "invalid_json", "more than one JSON value")
	}
	return nil
}

type ctxKey int

const orgKey ctxKey = 0

// requireKey authenticates an API key (Authorization: Bearer) and puts its
// organisation in the context.
func requireKey(dir *directory, rs responder) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler { return rs.handle(keyed(dir, next)) }
}

func keyed(dir *directory, next http.Handler) apiHandler {
	return func(w http.ResponseWriter, req *http.Request) error {
		o, sent := dir.keyOrg(req)
		if !sent {
			return apiErrorf(http.StatusUnauthorized, "unauthorized", "missing API key: send Authorization: Bearer <key>")
		}
		if o == nil {
			return apiErrorf(http.StatusUnauthorized, "unauthorized", "invalid API key")
		}
		next.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), orgKey, o)))
		return nil
	}
}

// keyOrg returns the organisation whose API key req carries as a Bearer
// token; sent reports whether it carried one at all.
func (d *directory) keyOrg(req *http.Request) (o *orgState, sent bool) {
	key, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(key) == "" {
		return nil, false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(key)))
	for _, org := range d.list {
		// Every organisation is checked even after a match, so the time
		// taken does not say which one holds the key.
		if org.checkKey(sum) && o == nil {
			o = org
		}
	}
	return o, true
}

func orgFrom(ctx context.Context) *orgState {
	o, _ := ctx.Value(orgKey).(*orgState)
	return o
}
