package relay

import (
	"net/http"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ingestMetrics count every answer of the ingest routes by status, the
// refusals (401, 413, 429, 503) as much as the 202s, and time them: the
// events counter only sees what was accepted.
type ingestMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newIngestMetrics(reg prometheus.Registerer) *ingestMetrics {
	im := &ingestMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidehook_relay_ingest_requests_total",
			Help: "Ingest requests by route and HTTP status answered.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sidehook_relay_ingest_duration_seconds",
			Help:    "Time to answer an ingest request, durable write included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "code"}),
	}
	reg.MustRegister(im.requests, im.latency)
	return im
}

// instrument counts and times h's answers under route, whatever writes
// them (the handler, the key check in front of it, an error).
func (im *ingestMetrics) instrument(route string, h http.Handler) http.Handler {
	l := prometheus.Labels{"route": route}
	return promhttp.InstrumentHandlerDuration(im.latency.MustCurryWith(l),
		promhttp.InstrumentHandlerCounter(im.requests.MustCurryWith(l), h))
}

// buildInfo is sidehook_build_info{version,revision} = 1, from the build
// information Go stamps into the binary ("dev" and "" without it, as in a
// test binary).
func buildInfo(bi *debug.BuildInfo, ok bool) prometheus.Collector {
	version, revision := "dev", ""
	if ok && bi != nil {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			version = v
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "sidehook_build_info",
		Help:        "The running build: module version and VCS revision; always 1.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision},
	})
	g.Set(1)
	return g
}
