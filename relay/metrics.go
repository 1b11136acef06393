package relay

import (
	"net/http"
	"runtime/debug"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/sidehook/sidehook/internal/event"
)

// metrics live in a registry of their own, so two relays in one process
// (tests, `sidehook dev`) never collide.
type metrics struct {
	reg        *prometheus.Registry
	ingested   *prometheus.CounterVec
	deliveries *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	ingest     *ingestMetrics
	depthMu    sync.Mutex
	depth      func() map[[2]string]int64
	dir        *directory // the endpoints' enabled state, read at scrape time; nil in tests of other series

	typesMu sync.Mutex
	types   map[string]map[string]bool // organisation → custom types with a series
}

// maxTypeLabels bounds the custom event types one organisation's ingest
// counter names. Ingest accepts any type name, so without a bound a
// producer could grow /metrics, and the Prometheus scraping it, without
// limit; the types past it count under otherTypes. The built-in types
// always have their own series.
const maxTypeLabels = 100

// otherTypes is the type label of the custom types past maxTypeLabels; no
// event type is named so (they begin with a letter).
const otherTypes = "_other"

// countIngested counts one accepted event of typ.
func (m *metrics) countIngested(org, typ string) {
	m.ingested.WithLabelValues(org, m.typeLabel(org, typ)).Inc()
}

func (m *metrics) typeLabel(org, typ string) string {
	if event.Type(typ).IsBuiltin() {
		return typ
	}
	m.typesMu.Lock()
	defer m.typesMu.Unlock()
	seen := m.types[org]
	switch {
	case seen[typ]:
		return typ
	case len(seen) >= maxTypeLabels:
		return otherTypes
	}
	if seen == nil {
		if m.types == nil {
			m.types = make(map[string]map[string]bool)
		}
		seen = make(map[string]bool)
		m.types[org] = seen
	}
	seen[typ] = true
	return typ
}

// forgetEndpoint drops the series of an endpoint that no longer exists:
// endpoints come and go through the API, and each left its counters and
// histogram behind until the relay restarted.
func (m *metrics) forgetEndpoint(org, ep string) {
	l := prometheus.Labels{"organisation": org, "endpoint": ep}
	m.deliveries.DeletePartialMatch(l)
	m.latency.DeletePartialMatch(l)
}

func (m *metrics) setDepth(f func() map[[2]string]int64) {
	m.depthMu.Lock()
	defer m.depthMu.Unlock()
	m.depth = f
}

// enabled reports each endpoint: 1 enabled, 0 disabled (in the file, through
// the API, or by a 410 at run time).
func (m *metrics) enabled() map[[2]string]int64 {
	if m.dir == nil {
		return nil
	}
	out := make(map[[2]string]int64)
	for _, o := range m.dir.list {
		for _, e := range o.endpoints() {
			v := int64(0)
			if e.enabled() {
				v = 1
			}
			out[[2]string{o.id, e.cfg.ID}] = v
		}
	}
	return out
}

func (m *metrics) depths() map[[2]string]int64 {
	m.depthMu.Lock()
	f := m.depth
	m.depthMu.Unlock()
	if f == nil {
		return nil
	}
	return f()
}

// newMetrics registers the relay's series; the queue-depth gauge reads
// the function given to setDepth at scrape time, the enabled gauge dir's
// endpoints, the subscriber drops h, the store gauge health.
func newMetrics(h *hub, dir *directory, health func() error) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		dir: dir,
		ingested: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidehook_relay_events_ingested_total",
			Help: "Events accepted (answered 202), by organisation and event type (an organisation's custom types past the first 100 as _other).",
		}, []string{"organisation", "type"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidehook_relay_deliveries_total",
			Help: "Delivery attempts by outcome: delivered, failed (will retry) or dead.",
		}, []string{"organisation", "endpoint", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sidehook_relay_attempt_duration_seconds",
			Help:    "Latency of delivery attempts, from sending the request to reading the answer.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 15},
		}, []string{"organisation", "endpoint"}),
	}
	m.ingest = newIngestMetrics(m.reg)
	m.reg.MustRegister(buildInfo(debug.ReadBuildInfo()))
	m.reg.MustRegister(m.ingested, m.deliveries, m.latency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		depthCollector{desc: prometheus.NewDesc("sidehook_relay_queue_depth",
			"Deliveries waiting (pending or failed) per endpoint.", []string{"organisation", "endpoint"}, nil), depth: m.depths},
		depthCollector{desc: prometheus.NewDesc("sidehook_relay_endpoint_enabled",
			"1 while the endpoint is sent its events, 0 while disabled (enabled: false, or by a 410 answer): a disabled endpoint's events are not queued for it.",
			[]string{"organisation", "endpoint"}, nil), depth: m.enabled},
		// What /readyz says, for an alert: the queue depths keep their
		// last values while the store takes no writes.
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sidehook_relay_store_up",
			Help: "1 while the store takes writes, 0 while it cannot (a full disk, a lost JetStream quorum): ingest answers 503 meanwhile.",
		}, func() float64 {
			if health() != nil {
				return 0
			}
			return 1
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sidehook_relay_subscriber_dropped_total",
			Help: "Changes a slow subscriber (the dashboard's feed, a waiter) did not receive.",
		}, func() float64 { return float64(h.dropped()) }))
	return m
}

// depthCollector reads a gauge per endpoint at scrape time: the
// dispatcher's counters, the endpoints' enabled state.
type depthCollector struct {
	desc  *prometheus.Desc
	depth func() map[[2]string]int64
}

func (c depthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c depthCollector) Collect(ch chan<- prometheus.Metric) {
	for k, v := range c.depth() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(v), k[0], k[1])
	}
}

// orgLabel is the label that says which organisation a series is about.
const orgLabel = "organisation"

// handler is GET /metrics: every series for whoever sees the whole relay,
// only the series labelled with their organisation for an API key (the
// process's own series say nothing about a tenant, so they are left out).
func (m *metrics) handler(a *access, rs responder) http.Handler {
	all := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return rs.handle(func(w http.ResponseWriter, req *http.Request) error {
		o, ok := a.who(req)
		if !ok {
			return a.refuse()
		}
		if o == nil {
			all.ServeHTTP(w, req)
			return nil
		}
		promhttp.HandlerFor(orgGatherer{m.reg, o.id}, promhttp.HandlerOpts{}).ServeHTTP(w, req)
		return nil
	})
}

// orgGatherer keeps the series of one organisation.
type orgGatherer struct {
	g   prometheus.Gatherer
	org string
}

func (g orgGatherer) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := g.g.Gather()
	out := mfs[:0]
	for _, mf := range mfs {
		kept := mf.Metric[:0]
		for _, mt := range mf.Metric {
			for _, l := range mt.GetLabel() {
				if l.GetName() == orgLabel && l.GetValue() == g.org {
					kept = append(kept, mt)
					break
				}
			}
		}
		if len(kept) > 0 {
			mf.Metric = kept
			out = append(out, mf)
		}
	}
	return out, err
}
