package relay

import (
	"net/http"

	"github.com/sidehook/sidehook/internal/httpguard"
	"github.com/sidehook/sidehook/internal/httpjson"
	"github.com/sidehook/sidehook/internal/openapi"
)

// parts are the relay's pieces that serve HTTP.
type parts struct {
	dir    *directory
	ing    *ingester
	mgr    *manager
	call   *caller
	dash   *dashboard
	tunnel *tunnelRoute
	ops    *ops
	rs     responder
	m      *metrics
	// guard keeps web pages of other sites off the dashboard, its
	// actions and /metrics (DNS rebinding, cross-site POSTs).
	guard  *httpguard.Guard
	access *access
}

// routes is the relay's whole HTTP surface (SPEC §4).
func routes(p parts) http.Handler {
	mux := http.NewServeMux()
	key := requireKey(p.dir, p.rs)
	// Everything else, in the same {"error","reason"} shape: a known path
	// with another method is 405 with the methods it serves in Allow
	// (RFC 9110 §15.5.6), OPTIONS there a 204 with the same Allow; anything
	// else 404.
	other := p.rs.handle(func(w http.ResponseWriter, req *http.Request) error {
		if err := httpjson.NoRoute(w, req, mux, "no route "+req.Method+" "+req.URL.Path, "/"); err != nil {
			return err
		}
		return nil
	})
	// getOnly marks a GET route whose GET does something (calls a
	// customer's system, opens a tunnel): HEAD, which net/http's mux hands
	// to GET routes, is a 405 there instead.
	getOnly := func(h http.Handler) http.Handler { return headRefused{get: h, refuse: other} }

	// Ingest.
	mux.Handle("POST /v1/events", p.m.ingest.instrument("events", key(p.ing.handleIngest())))
	mux.Handle("POST /in/{org}", p.m.ingest.instrument("inbound", p.ing.handleInbound()))
	mux.Handle("GET /in/{org}", getOnly(p.call.handleInboundGet()))

	// Management.
	mux.Handle("GET /v1/events", key(p.mgr.handleListEvents()))
	mux.Handle("GET /v1/events/{id}", key(p.mgr.handleGetEvent()))
	mux.Handle("GET /v1/deliveries", key(p.mgr.handleListDeliveries()))
	mux.Handle("GET /v1/deliveries/{id}", key(p.mgr.handleGetDelivery()))
	mux.Handle("POST /v1/deliveries/{id}/retry", key(p.mgr.handleRetry()))
	mux.Handle("POST /v1/replay", key(p.mgr.handleReplay()))
	mux.Handle("GET /v1/endpoints", key(p.mgr.handleListEndpoints()))
	mux.Handle("POST /v1/endpoints", key(p.mgr.handleCreateEndpoint()))
	mux.Handle("GET /v1/endpoints/{id}", key(p.mgr.handleGetEndpoint()))
	mux.Handle("PUT /v1/endpoints/{id}", key(p.mgr.handlePutEndpoint()))
	mux.Handle("DELETE /v1/endpoints/{id}", key(p.mgr.handleDeleteEndpoint()))
	mux.Handle("POST /v1/endpoints/{id}/test", key(p.call.handleTest()))
	mux.Handle("POST /v1/tokens", key(p.mgr.handleToken()))
	mux.Handle("POST /v1/custom-values", key(p.call.handleCustomValues()))
	mux.Handle("POST /v1/render", key(p.call.handleRender()))
	mux.Handle("GET /v1/tunnel", getOnly(key(p.tunnel.handleTunnel())))
	mux.Handle("GET /v1/tunnels", key(p.tunnel.handleList()))

	// Dashboard (SPEC §6): the page and its websocket check access
	// themselves (a browser cannot send a header on a page load or a
	// websocket handshake); its actions are guarded the same way.
	guard := p.guard.Handler
	page := guard(p.dash.handler())
	mux.Handle("GET /_sidehook/ui", page)
	mux.Handle("GET /_sidehook/ui/", page)
	mux.Handle("GET /_sidehook/ws", page)
	mux.Handle("POST /_sidehook/replay", guard(p.dash.guard(p.dash.handleReplay())))
	mux.Handle("POST /_sidehook/deliveries/{id}/retry", guard(p.dash.guard(p.dash.handleRetry())))
	mux.Handle("GET /_sidehook/tunnels", guard(p.dash.guard(p.tunnel.handleList())))
	mux.Handle("GET /_sidehook/deliveries", guard(p.dash.guard(p.dash.handleOlder())))

	// Operations.
	mux.Handle("GET /.well-known/jwks.json", p.ops.handleJWKS())
	mux.Handle("GET /healthz", p.ops.handleHealthz())
	mux.Handle("GET /readyz", p.ops.handleReadyz())
	mux.Handle("GET /metrics", guard(p.m.handler(p.access, p.rs)))
	mux.Handle("GET /openapi.json", openapi.Handler(openapiDoc))

	mux.Handle("/", other)
	return mux
}

// headRefused serves a GET route and refuses HEAD there.
type headRefused struct{ get, refuse http.Handler }

func (headRefused) RefusesHead() bool { return true }

func (h headRefused) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method == http.MethodHead {
		h.refuse.ServeHTTP(w, req)
		return
	}
	h.get.ServeHTTP(w, req)
}
