package relay

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routes is the relay's whole HTTP surface (SPEC §4).
func (r *Relay) routes() http.Handler {
	mux := http.NewServeMux()
	key := r.requireKey

	// Ingest.
	mux.Handle("POST /v1/events", key(r.handleIngest()))
	mux.Handle("POST /in/{org}", r.handleInbound())
	mux.Handle("GET /in/{org}", r.handleInboundGet())

	// Management.
	mux.Handle("GET /v1/events", key(r.handleListEvents()))
	mux.Handle("GET /v1/events/{id}", key(r.handleGetEvent()))
	mux.Handle("GET /v1/deliveries", key(r.handleListDeliveries()))
	mux.Handle("GET /v1/deliveries/{id}", key(r.handleGetDelivery()))
	mux.Handle("POST /v1/deliveries/{id}/retry", key(r.handleRetry()))
	mux.Handle("POST /v1/replay", key(r.handleReplay()))
	mux.Handle("GET /v1/endpoints", key(r.handleListEndpoints()))
	mux.Handle("POST /v1/endpoints", key(r.handleCreateEndpoint()))
	mux.Handle("GET /v1/endpoints/{id}", key(r.handleGetEndpoint()))
	mux.Handle("PUT /v1/endpoints/{id}", key(r.handlePutEndpoint()))
	mux.Handle("DELETE /v1/endpoints/{id}", key(r.handleDeleteEndpoint()))
	mux.Handle("POST /v1/endpoints/{id}/test", key(r.handleTest()))
	mux.Handle("POST /v1/tokens", key(r.handleToken()))
	mux.Handle("POST /v1/custom-values", key(r.handleCustomValues()))
	mux.Handle("POST /v1/render", key(r.handleRender()))

	// Dashboard (SPEC §6): the page and its websocket check access
	// themselves (a browser cannot send a header on a page load or a
	// websocket handshake); its actions are guarded the same way.
	dash := r.newDashboard()
	mux.Handle("/_sidehook/ui", dash)
	mux.Handle("/_sidehook/ui/", dash)
	mux.Handle("/_sidehook/ws", dash)
	mux.Handle("POST /_sidehook/replay", r.requireDashboard(r.handleDashboardReplay()))
	mux.Handle("POST /_sidehook/deliveries/{id}/retry", r.requireDashboard(r.handleDashboardRetry()))

	// Operations.
	mux.Handle("GET /.well-known/jwks.json", r.handleJWKS())
	mux.Handle("GET /healthz", r.handleHealthz())
	mux.Handle("GET /readyz", r.handleReadyz())
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.metrics.reg, promhttp.HandlerOpts{}))

	// Everything else, in the same {"error","reason"} shape: a known path
	// with another method is 405, anything else 404.
	mux.Handle("/", r.handle(func(w http.ResponseWriter, req *http.Request) error {
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
			probe := req.Clone(req.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "/" {
				return apiErrorf(http.StatusMethodNotAllowed, "method_not_allowed", "%s is not allowed on %s", req.Method, req.URL.Path)
			}
		}
		return apiErrorf(http.StatusNotFound, "not_found", "no route %s %s", req.Method, req.URL.Path)
	}))
	return mux
}
