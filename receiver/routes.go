package receiver

import (
	"net/http"
	"strings"

	"github.com/sidehook/sidehook/internal/openapi"
)

// routes is the receiver's whole HTTP surface. Every path outside
// /_sidehook/ is captured whatever its method; it bypasses the mux, whose
// path cleaning would redirect "//a" or "/a/../b" instead of capturing them
// as sent.
func (s *Server) routes() http.Handler {
	admin := http.NewServeMux()
	guard := s.requireAdmin

	admin.Handle("GET /_sidehook/healthz", handleHealthz(s))
	admin.Handle("GET /_sidehook/metrics", guard(s.metrics.handler()))
	admin.Handle("GET /_sidehook/openapi.json", openapi.Handler(openapiDoc))

	admin.Handle("GET /_sidehook/requests", guard(handleList(s)))
	admin.Handle("DELETE /_sidehook/requests", guard(handleDeleteAll(s)))
	admin.Handle("GET /_sidehook/requests/count", guard(handleCount(s)))
	admin.Handle("GET /_sidehook/requests/wait", guard(handleWait(s)))
	admin.Handle("GET /_sidehook/requests/export", guard(handleExport(s)))
	admin.Handle("GET /_sidehook/requests/{id}", guard(handleGet(s)))
	admin.Handle("POST /_sidehook/requests/{id}/replay", guard(handleReplay(s)))
	admin.Handle("POST /_sidehook/reset", guard(handleReset(s)))

	admin.Handle("GET /_sidehook/rules", guard(handleListRules(s)))
	admin.Handle("POST /_sidehook/rules", guard(handleAddRules(s)))
	admin.Handle("DELETE /_sidehook/rules", guard(handleDeleteRules(s)))

	// The dashboard checks the admin token itself: a browser cannot put
	// it in a header on a page load or a websocket handshake.
	dash := s.newDashboard()
	admin.Handle("GET /_sidehook/ui", dash)
	admin.Handle("GET /_sidehook/ui/", dash)
	admin.Handle("GET /_sidehook/ws", dash)

	admin.Handle(adminCatchAll, guard(handleAdminNotFound(s, admin)))

	// The admin API and the dashboard refuse other sites' pages (DNS
	// rebinding, cross-site POSTs); capture paths take any request, as the
	// system they stand in for would.
	guarded := s.guard.Handler(admin)
	capture := handleCapture(s)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, AdminPrefix) {
			guarded.ServeHTTP(w, r)
			return
		}
		capture.ServeHTTP(w, r)
	})
}
