package receiver

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/replay"
)

// Export formats of GET /_sidehook/requests/export.
const (
	FormatNDJSON = "ndjson"
	FormatHAR    = "har"
	FormatCurl   = "curl"
)

// handleExport streams every capture matching the filter, oldest first,
// as NDJSON (one capture JSON per line, the API's shape), a HAR 1.2 log, or
// a shell script of curl commands. base= sets the URL the HAR entries and
// curl commands point at (default: this receiver, by the host the export
// was asked of). A failure is never a
// shorter export: before the first byte it is an error answer, after it
// an aborted stream.
func handleExport(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f, err := parseFilter(q, s.now(), "format", "base")
		if err != nil {
			s.writeError(w, r, badRequest(err.Error()))
			return
		}
		base := strings.TrimRight(q.Get("base"), "/")
		if base == "" {
			base = requestBase(r, s.URL())
		} else if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			s.writeError(w, r, badRequest("base: want an http:// or https:// URL"))
			return
		}
		format := q.Get("format")
		if format == "" {
			format = FormatNDJSON
		}
		var ex exporter
		switch format {
		case FormatNDJSON:
			w.Header().Set("Content-Type", "application/x-ndjson")
			ex = &ndjsonExporter{}
		case FormatHAR:
			w.Header().Set("Content-Type", "application/json")
			ex = &harExporter{base: base, version: s.cfg.Version}
		case FormatCurl:
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			ex = &curlExporter{base: base}
		default:
			s.writeError(w, r, badRequest("format: want ndjson, har or curl"))
			return
		}
		out := &sentWriter{w: w}
		bw := bufio.NewWriterSize(out, 32<<10)
		err = ex.begin(bw)
		if err == nil {
			var werr error
			err = s.each(r.Context(), f, func(c *Capture) bool {
				rc := redacted(*c)
				if werr = ex.write(bw, &rc); werr != nil {
					werr = fmt.Errorf("export capture %s: %w", c.ID, werr)
				}
				return werr == nil
			})
			if err == nil {
				err = werr
			}
		}
		if err == nil {
			err = ex.end(bw)
		}
		if err == nil {
			err = bw.Flush()
		}
		switch {
		case err == nil:
		case out.err != nil || r.Context().Err() != nil:
			// The client went away: nobody is left to tell.
			s.log.Debug().Err(err).Msg("export: client gone")
		case out.n == 0:
			// Nothing has reached the client: the status can still say
			// the export failed.
			s.writeError(w, r, storeError(err))
		default:
			// The 200 and part of the export are sent. A body that just
			// stopped would read as a complete, shorter export; aborting
			// ends the chunked body without its last chunk (a reset
			// stream in HTTP/2), which every client reports as an error.
			s.log.Error().Err(err).Int64("sent_bytes", out.n).Msg("export cut short")
			panic(http.ErrAbortHandler)
		}
	})
}

// requestBase is the URL r was sent to, its scheme and Host, or fallback
// when it has no Host (HTTP/1.0). It reaches this receiver from where r
// came from, which its listen address may not: a port mapped by Docker, a
// Handler mounted on another server (no listen address at all).
func requestBase(r *http.Request, fallback string) string {
	if r.Host == "" {
		return fallback
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// sentWriter counts what reached the response, so a failure knows
// whether the status is still unsent, and keeps the response's own write
// error, which means the client has gone.
type sentWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (s *sentWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.n += int64(n)
	if err != nil && s.err == nil {
		s.err = err
	}
	return n, err
}

type exporter interface {
	begin(w io.Writer) error
	write(w io.Writer, c *Capture) error
	end(w io.Writer) error
}

type ndjsonExporter struct{}

func (ndjsonExporter) begin(io.Writer) error { return nil }
func (ndjsonExporter) end(io.Writer) error   { return nil }
func (ndjsonExporter) write(w io.Writer, c *Capture) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/): the fields
// every reader requires are always present.
type harNV struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type harPostData struct {
	MimeType string  `json:"mimeType"`
	Params   []harNV `json:"params"`
	Text     string  `json:"text"`
	// Encoding "base64" marks a binary body (as HAR's content.encoding).
	Encoding string `json:"encoding,omitempty"`
}

type harRequest struct {
	Method      string       `json:"method"`
	URL         string       `json:"url"`
	HTTPVersion string       `json:"httpVersion"`
	Cookies     []harNV      `json:"cookies"`
	Headers     []harNV      `json:"headers"`
	QueryString []harNV      `json:"queryString"`
	PostData    *harPostData `json:"postData,omitempty"`
	HeadersSize int          `json:"headersSize"`
	BodySize    int64        `json:"bodySize"`
}

type harContent struct {
	Size     int    `json:"size"`
	MimeType string `json:"mimeType"`
	Text     string `json:"text,omitempty"`
	Encoding string `json:"encoding,omitempty"`
	Comment  string `json:"comment,omitempty"`
}

type harResponse struct {
	Status      int        `json:"status"`
	StatusText  string     `json:"statusText"`
	HTTPVersion string     `json:"httpVersion"`
	Cookies     []harNV    `json:"cookies"`
	Headers     []harNV    `json:"headers"`
	Content     harContent `json:"content"`
	RedirectURL string     `json:"redirectURL"`
	HeadersSize int        `json:"headersSize"`
	BodySize    int64      `json:"bodySize"`
}

type harTimings struct {
	Send    float64 `json:"send"`
	Wait    float64 `json:"wait"`
	Receive float64 `json:"receive"`
}

type harEntry struct {
	StartedDateTime string      `json:"startedDateTime"`
	Time            float64     `json:"time"`
	Request         harRequest  `json:"request"`
	Response        harResponse `json:"response"`
	Cache           struct{}    `json:"cache"`
	Timings         harTimings  `json:"timings"`
	Comment         string      `json:"comment,omitempty"`
}

type harExporter struct {
	base    string
	version string
	n       int
}

func (h *harExporter) begin(w io.Writer) error {
	creator, err := json.Marshal(map[string]string{"name": "sidehook", "version": h.version})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, `{"log":{"version":"1.2","creator":%s,"entries":[`, creator)
	return err
}

func (h *harExporter) end(w io.Writer) error {
	_, err := io.WriteString(w, "]}}\n")
	return err
}

func (h *harExporter) write(w io.Writer, c *Capture) error {
	e := harEntry{
		StartedDateTime: c.ReceivedAt.UTC().Format(timeLayout),
		Request: harRequest{
			Method:      c.Method,
			URL:         requestURL(h.base, c),
			HTTPVersion: "HTTP/1.1",
			Cookies:     []harNV{},
			Headers:     []harNV{},
			QueryString: []harNV{},
			HeadersSize: -1,
			BodySize:    int64(len(c.Body)),
		},
		Response: harResponse{
			Status:      c.Response.Status,
			StatusText:  http.StatusText(c.Response.Status),
			HTTPVersion: "HTTP/1.1",
			Cookies:     []harNV{},
			Headers:     []harNV{},
			Content:     harContent{MimeType: firstHeader(c.Response.Headers, "content-type"), Text: c.Response.Body},
			HeadersSize: -1,
			BodySize:    -1,
		},
		// The receiver knows when the request arrived and when its answer
		// was due: all of it is the wait for the answer.
		Time:    float64(c.Response.DurationMS),
		Timings: harTimings{Send: 0, Wait: float64(c.Response.DurationMS), Receive: 0},
		Comment: c.ID,
	}
	if c.Response.Fault == "" {
		rb, err := event.DecodeBody(c.Response.Body, c.Response.BodyEncoding)
		if err != nil {
			return fmt.Errorf("capture %s: response body: %w", c.ID, err)
		}
		e.Response.Content.Size = len(rb)
		e.Response.BodySize = int64(len(rb))
		if n, err := strconv.ParseInt(firstHeader(c.Response.Headers, "content-length"), 10, 64); err == nil {
			e.Response.BodySize = n
			e.Response.Content.Size = int(n)
		}
		if c.Response.BodyEncoding == EncodingBase64 {
			e.Response.Content.Encoding = EncodingBase64
		}
		if c.Response.BodyTruncated {
			e.Response.Content.Comment = "body cut to its first " + strconv.Itoa(MaxResponseBody) + " bytes"
		}
	}
	for _, name := range sortedHeaderNames(c.Response.Headers) {
		for _, v := range c.Response.Headers[name] {
			e.Response.Headers = append(e.Response.Headers, harNV{Name: name, Value: v})
		}
	}
	if c.Response.Fault != "" {
		e.Response.StatusText = "fault: " + c.Response.Fault
	}
	for _, name := range sortedHeaderNames(c.Headers) {
		if name == "host" {
			// The url names where the entry is sent (base), which the
			// captured Host may not be; a reader that sends both would
			// send two.
			continue
		}
		for _, v := range c.Headers[name] {
			e.Request.Headers = append(e.Request.Headers, harNV{Name: name, Value: v})
		}
	}
	if q, err := url.ParseQuery(c.Query); err == nil {
		for _, k := range sortedKeysOf(q) {
			for _, v := range q[k] {
				e.Request.QueryString = append(e.Request.QueryString, harNV{Name: k, Value: v})
			}
		}
	}
	if len(c.Body) > 0 {
		text, enc := c.BodyText()
		pd := &harPostData{MimeType: firstHeader(c.Headers, "content-type"), Params: []harNV{}, Text: text}
		if enc == EncodingBase64 {
			pd.Encoding = EncodingBase64
		}
		e.Request.PostData = pd
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if h.n > 0 {
		if _, err := io.WriteString(w, ","); err != nil {
			return err
		}
	}
	h.n++
	_, err = w.Write(b)
	return err
}

// curlExporter writes one runnable curl command per capture, preceded by a
// comment naming it.
type curlExporter struct{ base string }

func (curlExporter) begin(w io.Writer) error {
	_, err := io.WriteString(w, "#!/bin/sh\n# sidehook capture export: one curl command per capture, oldest first.\n")
	return err
}
func (curlExporter) end(io.Writer) error { return nil }

func (e curlExporter) write(w io.Writer, c *Capture) error {
	_, err := io.WriteString(w, "\n# "+c.ID+"\n"+CurlCommand(e.base, c)+"\n")
	return err
}

// skippedCurlHeaders are left to curl: it computes them, and a stale one
// would break the request.
var skippedCurlHeaders = map[string]bool{
	"host": true, "content-length": true, "connection": true,
	"transfer-encoding": true, "keep-alive": true, "te": true,
	"trailer": true, "upgrade": true, "proxy-connection": true,
}

// curlInlineMax is the largest body CurlCommand passes as an argument of
// curl's. The kernel refuses a single argument over 128 KiB
// (MAX_ARG_STRLEN: "Argument list too long"), and bodies up to 1 MiB are
// captured: a larger body goes through printf, a shell builtin (no exec,
// so no such limit), into curl's standard input.
const curlInlineMax = 64 << 10

// CurlCommand renders a capture as one POSIX shell command that resends it
// to base + path + query, once: --globoff keeps the [] and {} of a path or
// query from being read as curl's URL ranges. The headers are as given (an
// export's are redacted: its credentials no longer verify, POST
// /_sidehook/requests/{id}/replay re-signs); an empty value is sent empty,
// and the content-type or expect curl would add to a body on its own is
// suppressed when the capture had none. The body goes byte for byte: quoted as an argument
// when it is small text; through printf %s on standard input when it is
// large or begins with "@" (which curl reads as a file name); through printf
// with octal escapes when it is not UTF-8 or holds a NUL.
func CurlCommand(base string, c *Capture) string {
	var b strings.Builder
	body := c.Body
	binary := len(body) > 0 && (!utf8.Valid(body) || bytes.IndexByte(body, 0) >= 0)
	stdin := binary || len(body) > curlInlineMax || len(body) > 0 && body[0] == '@'
	switch {
	case binary:
		b.Grow(4*len(body) + 256)
		b.WriteString("printf '")
		for _, ch := range body {
			b.WriteByte('\\')
			b.WriteByte('0' + ch>>6)
			b.WriteByte('0' + ch>>3&7)
			b.WriteByte('0' + ch&7)
		}
		b.WriteString("' | ")
	case stdin:
		b.WriteString("printf %s " + shellQuote(string(body)) + " | ")
	}
	b.WriteString("curl -sS --globoff")
	if c.Method == http.MethodHead {
		b.WriteString(" --head")
	} else {
		b.WriteString(" -X " + shellQuote(c.Method))
	}
	b.WriteString(" " + shellQuote(requestURL(base, c)))
	for _, name := range sortedHeaderNames(c.Headers) {
		if skippedCurlHeaders[name] {
			continue
		}
		for _, v := range c.Headers[name] {
			if v == "" {
				// "name:" would tell curl to drop the header.
				b.WriteString(" -H " + shellQuote(name+";"))
				continue
			}
			b.WriteString(" -H " + shellQuote(name+": "+v))
		}
	}
	if len(body) > 0 {
		// With a body curl adds a form content-type, and for a large one
		// (over 1 KiB in older curls, 1 MiB in newer) an expect, unless
		// told not to.
		if _, ok := c.Headers["content-type"]; !ok {
			b.WriteString(" -H 'content-type:'")
		}
		if _, ok := c.Headers["expect"]; !ok && len(body) > 1<<10 {
			b.WriteString(" -H 'expect:'")
		}
		if stdin {
			b.WriteString(" --data-binary @-")
		} else {
			b.WriteString(" --data-binary " + shellQuote(string(body)))
		}
	}
	return b.String()
}

// shellQuote wraps s in single quotes, the one quoting where nothing but
// the quote itself is special.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// requestURL is where c was sent, on base: its path as sent, and query.
func requestURL(base string, c *Capture) string {
	u := base + replay.SentPath(c.Path)
	if c.Query != "" {
		u += "?" + c.Query
	}
	return u
}

func sortedHeaderNames(h map[string][]string) []string {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func sortedKeysOf(q url.Values) []string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func firstHeader(h map[string][]string, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}
