package receiver

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/internal/pubsub"
)

// metrics are the receiver's Prometheus metrics, in a registry of its own:
// two receivers in one process (tests, sidehook dev) never collide.
type metrics struct {
	reg       *prometheus.Registry
	captures  *prometheus.CounterVec
	responses *prometheus.CounterVec
	latency   prometheus.Histogram
	// byVerdict holds the three verdict counters resolved once, keeping the
	// label lookup off the capture path.
	byVerdict map[string]prometheus.Counter
}

func newMetrics(bc *pubsub.Hub[Capture], bodies *bodyBudget) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		captures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidehook_receiver_captures_total",
			Help: "Requests captured, by verdict (valid, invalid, unverified).",
		}, []string{"verdict"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidehook_receiver_responses_total",
			Help: "Captured requests answered, by HTTP status (0 for a fault).",
		}, []string{"status"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sidehook_receiver_capture_duration_seconds",
			Help:    "Time from reading a request to its capture being durable.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1},
		}),
		byVerdict: make(map[string]prometheus.Counter),
	}
	for _, v := range []string{auth.StatusValid, auth.StatusInvalid, auth.StatusUnverified} {
		m.byVerdict[v] = m.captures.WithLabelValues(v)
	}
	m.reg.MustRegister(m.captures, m.responses, m.latency,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sidehook_receiver_subscriber_dropped_total",
			Help: "Captures a slow subscriber (dashboard, waiter) did not receive.",
		}, func() float64 { return float64(bc.Dropped()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sidehook_receiver_body_bytes_in_flight",
			Help: "Bytes of request bodies being read, bounded by the receiver's budget.",
		}, func() float64 { return float64(bodies.used.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sidehook_receiver_subscribers",
			Help: "Live capture subscriptions.",
		}, func() float64 { return float64(bc.Subscribers()) }),
	)
	return m
}

func (m *metrics) observe(c *Capture, d time.Duration) {
	if ctr, ok := m.byVerdict[c.Verdict.Status]; ok {
		ctr.Inc()
	} else {
		m.captures.WithLabelValues(c.Verdict.Status).Inc()
	}
	m.responses.WithLabelValues(strconv.Itoa(c.Response.Status)).Inc()
	m.latency.Observe(d.Seconds())
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
