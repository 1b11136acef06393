package web

import "net/http"

// routes is the whole surface of the dashboard.
func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /_sidehook/ui", http.HandlerFunc(redirectToUI))
	mux.Handle("GET /_sidehook/ui/{$}", s.requireAuth(s.handleIndex(), s.denyPage))
	// Scripts and styles are the binary's own files and carry no data, so
	// they are served to anyone: the login page needs its stylesheet.
	mux.Handle("GET /_sidehook/ui/", s.handleAssets())
	mux.Handle("GET /_sidehook/ws", s.requireAuth(s.handleWS(), denyPlain))
	return s.secureHeaders(mux)
}

func redirectToUI(w http.ResponseWriter, r *http.Request) {
	u := *r.URL
	u.Path = UIPath
	http.Redirect(w, r, u.RequestURI(), http.StatusMovedPermanently)
}
