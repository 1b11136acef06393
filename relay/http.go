package relay

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/internal/httpjson"
)

// apiError is an error a client sees: Code and Reason go out, Err (the
// internal cause) is logged only.
type apiError = httpjson.Error

func apiErrorf(status int, code, format string, args ...any) *apiError {
	return httpjson.Errorf(status, code, format, args...)
}

// storeError turns a store that cannot write or answer now into the 503
// of SPEC §4: nothing was acknowledged, the client may retry.
func storeError(err error) *apiError {
	reason := "the relay's store is unavailable now; retry later"
	if errors.Is(err, ErrDiskFull) {
		reason = "the relay's disk is full; retry later"
	}
	return &apiError{Status: http.StatusServiceUnavailable, Code: "store_unavailable", Reason: reason, Err: err, RetryAfter: 1}
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

// codeUnauthorized is the code of a 401 for a missing or wrong Bearer
// credential (an API key, the admin token).
const codeUnauthorized = "unauthorized"

// bearerChallenge is the WWW-Authenticate of those 401s (RFC 9110
// §11.6.1, RFC 6750 §3).
const bearerChallenge = `Bearer realm="sidehook"`

// unauthorized is the 401 of a missing or wrong Bearer credential;
// writeError adds its challenge.
func unauthorized(reason string) *apiError {
	return &apiError{Status: http.StatusUnauthorized, Code: codeUnauthorized, Reason: reason}
}

// writeError is the one place errors are written: {"error","reason"}. A
// 429 or 503 always tells the client when to come back; a 401 for a
// Bearer credential says how to authenticate.
func (rs responder) writeError(w http.ResponseWriter, req *http.Request, err error) {
	var ae *apiError
	// A store that cannot answer now (a lost NATS connection, a full disk)
	// is a 503 to retry on any route, not only where a handler said so.
	if !errors.As(err, &ae) && (errors.Is(err, ErrUnavailable) || errors.Is(err, ErrDiskFull)) {
		err = storeError(err)
	}
	// A record the store can never hold is no 503 either: retrying the
	// same request cannot succeed.
	if !errors.As(err, &ae) && errors.Is(err, ErrTooLarge) {
		err = &apiError{Status: http.StatusRequestEntityTooLarge, Code: httpjson.CodeTooLarge,
			Reason: "the request is larger than the relay's store can hold", Err: err}
	}
	if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized && ae.Code == codeUnauthorized {
		w.Header().Set("WWW-Authenticate", bearerChallenge)
	}
	if errors.As(err, &ae) && ae.RetryAfter == 0 &&
		(ae.Status == http.StatusServiceUnavailable || ae.Status == http.StatusTooManyRequests) {
		retry := *ae
		retry.RetryAfter = 1
		err = &retry
	}
	log := rs.log
	// On a relay of several organisations, whose request failed (whose
	// custom-value endpoint is down) is the first thing to know: the API
	// key's organisation, or the one of /in/{org} (a 5xx there comes after
	// it was found).
	if o := orgFrom(req.Context()); o != nil {
		log = log.With().Str(logOrg, o.id).Logger()
	} else if id := req.PathValue("org"); id != "" {
		log = log.With().Str(logOrg, id).Logger()
	}
	httpjson.WriteError(w, req, log, err)
}

func writeJSON(w http.ResponseWriter, status int, v any) { httpjson.Write(w, status, v) }

// decodeJSON reads one JSON object into v; unknown fields are errors so a
// typo does not silently do nothing. An empty body leaves v as is: every
// management body is optional or checked by its handler.
func decodeJSON(w http.ResponseWriter, req *http.Request, v any) error {
	return httpjson.Decode(w, req, v, true)
}

// maxSyncWork bounds how long one call may wait on endpoints: the largest
// endpoint timeout, so a single request always fits.
const maxSyncWork = 10 * time.Minute

// syncWork lets the calls that wait on endpoints one request after another
// (connection tests, replays to a URL, custom-value requests) answer past
// the server's WriteTimeout, which would otherwise close the connection
// with no answer once they took longer, and bounds their waiting so that
// they always answer.
type syncWork struct {
	// write is the server's WriteTimeout: the answer's own allowance.
	write time.Duration
	// max bounds one call's waiting: it starts no request that could end
	// past it, and says which did not run.
	max time.Duration
}

// begin moves w's write deadline past the waiting a call plans (the sum
// of its requests' timeouts, at most max) and returns fits, which says
// whether a request with timeout d may still start.
func (s *syncWork) begin(w http.ResponseWriter, planned time.Duration) (fits func(d time.Duration) bool) {
	start := time.Now()
	// ErrNotSupported (a writer without deadlines, as under a server the
	// relay's Handler is mounted on) leaves nothing to move.
	_ = http.NewResponseController(w).SetWriteDeadline(start.Add(min(planned, s.max) + s.write))
	return func(d time.Duration) bool { return time.Since(start)+d <= s.max }
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
			return unauthorized("missing API key: send Authorization: Bearer <key>")
		}
		if o == nil {
			return unauthorized("invalid API key")
		}
		next.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), orgKey, o)))
		return nil
	}
}

// keyOrg returns the organisation whose API key req carries as a Bearer
// token; sent reports whether it carried one at all.
func (d *directory) keyOrg(req *http.Request) (o *orgState, sent bool) {
	key, ok := auth.Bearer(req.Header.Get("Authorization"))
	if !ok {
		return nil, false
	}
	sum := sha256.Sum256([]byte(key))
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
