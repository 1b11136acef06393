package web

import (
	"net/http"

	"github.com/sidehook/sidehook/internal/httpjson"
)

// routes is the whole surface of the dashboard.
func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /_sidehook/ui", http.HandlerFunc(redirectToUI))
	mux.Handle("GET /_sidehook/ui/{$}", s.requireAuth(s.handleIndex(), s.denyPage))
	// Scripts and styles are the binary's own files and carry no data, so
	// they are served to anyone: the login page needs its stylesheet.
	mux.Handle("GET /_sidehook/ui/", s.handleAssets())
	mux.Handle("GET /_sidehook/ws", s.requireAuth(s.handleWS(), s.denyAPI))
	// What a server hands on that none of these serves, in the
	// {"error","reason"} shape rather than the mux's plain text: 405 with
	// Allow where the path is served with other methods, else 404.
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := httpjson.NoRoute(w, r, mux, "the dashboard serves no "+r.Method+" "+r.URL.Path, "/"); err != nil {
			s.writeError(w, r, err)
		}
	}))
	return s.secureHeaders(mux)
}

func redirectToUI(w http.ResponseWriter, r *http.Request) {
	u := *r.URL
	u.Path = UIPath
	http.Redirect(w, r, u.RequestURI(), http.StatusMovedPermanently)
}
