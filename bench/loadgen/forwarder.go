package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
)

// forwardQueue bounds what a Forwarder holds: a 10 s run at full load
// queues well under it, and past it the producer gets 503, not an
// unbounded heap.
const forwardQueue = 1 << 20

// Forwarder is the relay benchmark's second baseline: the least a relay
// can do. It reads a body, answers 202 at once, and a pool of workers
// posts each body on over keep-alive connections with a webhook-id of its
// own. Nothing is stored, signed or retried: set beside a direct post and
// `sidehook relay`, it shows what two HTTP hops cost on the machine, and
// so what of the relay's cost is its own work.
type Forwarder struct {
	to     string
	queue  chan forwarded
	seq    atomic.Int64
	client *http.Client
}

type forwarded struct {
	id          string
	body        []byte
	contentType string
}

// NewForwarder returns a Forwarder posting to the URL to with workers
// requests in flight; the workers stop when ctx ends.
func NewForwarder(ctx context.Context, to string, workers int) *Forwarder {
	f := &Forwarder{
		to:     to,
		queue:  make(chan forwarded, forwardQueue),
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}},
	}
	for range workers {
		go f.work(ctx)
	}
	return f
}

// ServeHTTP takes one event, as `POST /v1/events` does.
func (f *Forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id := "fwd_" + strconv.FormatInt(f.seq.Add(1), 10)
	select {
	case f.queue <- forwarded{id: id, body: body, contentType: r.Header.Get("Content-Type")}:
	default:
		http.Error(w, "queue full", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, `{"id":%q}`, id)
}

func (f *Forwarder) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-f.queue:
			f.post(ctx, ev)
		}
	}
}

// post sends ev once; a failure is the sink's count to show, not ours.
func (f *Forwarder) post(ctx context.Context, ev forwarded) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.to, bytes.NewReader(ev.body))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", ev.contentType)
	req.Header.Set("webhook-id", ev.id)
	resp, err := f.client.Do(req)
	if err != nil {
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}
