package receiver

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
)

// bodyBudget bounds the bytes of request bodies being read at once, so that
// many slow uploads cannot hold the receiver's memory: a request that would
// go over it is answered 503 without its body being read.
type bodyBudget struct {
	max  int64
	used atomic.Int64
}

// take reserves n bytes, or reports that they would go over the budget.
func (b *bodyBudget) take(n int64) bool {
	if b.used.Add(n) > b.max {
		b.used.Add(-n)
		return false
	}
	return true
}

func (b *bodyBudget) give(n int64) { b.used.Add(-n) }

// errBusy ends the read of a body of unknown length that went over the
// budget.
var errBusy = errors.New("receiver: body budget exhausted")

// readResult is a request body as readBody left it. release gives its
// bytes back to the budget; it is safe to call more than once.
type readResult struct {
	body []byte
	// tooLarge: the body was over MaxBody and was not kept; size is then
	// its declared length, or MaxBody+1 when it had none.
	tooLarge bool
	// busy: the body would have gone over the budget and was not kept.
	busy  bool
	size  int64
	err   error
	b     *bodyBudget
	taken int64
}

func (r *readResult) release() {
	if r.taken > 0 {
		r.b.give(r.taken)
		r.taken = 0
	}
}

// readBody reads the body within MaxBody and the budget: a declared length
// is reserved before the buffer for it is allocated, a body of unknown
// length is reserved as it arrives.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) *readResult {
	max := s.cfg.MaxBody
	res := &readResult{b: s.bodies}
	if r.ContentLength > max {
		res.tooLarge, res.size = true, r.ContentLength
		return res
	}
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return res
	}
	rd := http.MaxBytesReader(w, r.Body, max)
	if r.ContentLength > 0 {
		if !s.bodies.take(r.ContentLength) {
			res.busy, res.size = true, r.ContentLength
			return res
		}
		res.taken = r.ContentLength
		body := make([]byte, r.ContentLength)
		n, err := io.ReadFull(rd, body)
		res.body, res.size, res.err = body[:n], int64(n), err
		return res
	}
	body, err := io.ReadAll(&budgetReader{r: rd, res: res})
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		res.tooLarge, res.size = true, max+1
	case errors.Is(err, errBusy):
		res.busy, res.size = true, int64(len(body))
	default:
		res.body, res.size, res.err = body, int64(len(body)), err
	}
	return res
}

// budgetReader reserves the bytes of a body of unknown length as they are
// read.
type budgetReader struct {
	r   io.Reader
	res *readResult
}

func (br *budgetReader) Read(p []byte) (int, error) {
	n, err := br.r.Read(p)
	if n > 0 {
		if !br.res.b.take(int64(n)) {
			return n, errBusy
		}
		br.res.taken += int64(n)
	}
	return n, err
}

// isTimeout reports whether a body read ended on the server's read
// timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
