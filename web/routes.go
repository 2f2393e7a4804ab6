package web

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/pop3playground/pop3playground/sessions"
	"github.com/pop3playground/pop3playground/static"
)

// requestTimeout bounds a request that is not a stream: its context ends
// then, and chi answers 504 if the handler had not.
const requestTimeout = 30 * time.Second

// routes is the playground's HTTP surface: one middleware stack, then the
// streams (no timeout: they last as long as the page), then each
// resource, mounted at its prefix.
//
//	/              the page                      session.go
//	/ws            the bridge (WebSocket)        bridge.go
//	/events        the event stream (SSE)        events.go
//	/api/lab/...   the client lab                labAPI (lab.go)
//	/api/serverlab the server lab (a stream)     serverlab.go
//	/api/...       the visitor's own API         visitorAPI (session.go, view.go, lessons.go)
//	/admin/...     the organiser's pages         adminPages (admin.go)
//	/static/...    scripts, styles, icons        static
//	/healthz, /readyz, /metrics
func (s *Server) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(middleware.RequestID, s.accessLog, middleware.Recoverer, s.guard, securityHeaders, http.NewCrossOriginProtection().Handler)
	r.Get("/ws", s.handleBridge)
	r.Get("/events", s.handleEvents)
	r.With(s.withVisitor).Post("/api/serverlab", s.handleServerLab) // streams its results
	r.Handle("/static/*", static.Handler())
	r.Handle("/favicon.ico", static.Favicon())
	r.Group(func(r chi.Router) {
		r.Use(middleware.Timeout(requestTimeout))
		r.Get("/", s.handlePage)
		r.Post("/reset", s.handleReset)
		r.Mount("/api/lab", labAPI{s}.Routes())
		r.Mount("/api", visitorAPI{s}.Routes())
		r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write([]byte("ok\n"))
		})
		r.Get("/readyz", s.handleReady)
		if s.cfg.Metrics != nil {
			r.Method(http.MethodGet, "/metrics", s.handleMetrics())
		}
	})
	if s.cfg.AdminToken != "" {
		r.Mount("/admin", adminPages{s}.Routes())
	}
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "404 page not found: the playground is at /", http.StatusNotFound)
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
	})
	return r
}

// Routes is the router, for tools that list the routes (chi.Walk).
func (s *Server) Routes() chi.Routes { return s.router }

// visitorAPI is the visitor's own API: their session, name, raised hand,
// the mail view and the lessons.
type visitorAPI struct{ *Server }

func (a visitorAPI) Routes() chi.Router {
	r := chi.NewRouter()
	r.Get("/session", a.handleSession) // makes the visitor
	r.Group(func(r chi.Router) {
		r.Use(a.withVisitor)
		r.Post("/name", a.handleName)
		r.Post("/help", a.handleHelp)
		r.Post("/view", a.handleView)
		r.Get("/lessons", a.handleLessons)
		r.Post("/lessons/restore", a.handleRestoreLessons)
		r.Post("/lessons/{id}/start", a.handleStartLesson)
		r.Post("/lessons/{id}/restart", a.handleRestartLesson)
		r.Post("/lessons/{id}/rewind", a.handleRewindLesson)
	})
	return r
}

type visitorKey struct{}

// withVisitor finds the request's visitor for the handlers after it, or
// answers 401 for them all: the one place a request without a session is
// refused.
func (s *Server) withVisitor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := s.visitor(r)
		if v == nil {
			jsonError(w, http.StatusUnauthorized, errNoCookie.Error())
			return
		}
		next.ServeHTTP(w, withVisitorValue(r, v))
	})
}

// withVisitorValue is r carrying v for visitorOf, and tells the access
// log who it was.
func withVisitorValue(r *http.Request, v *sessions.Visitor) *http.Request {
	if who, ok := r.Context().Value(loggedKey{}).(*loggedVisitor); ok {
		who.v = v
	}
	return r.WithContext(context.WithValue(r.Context(), visitorKey{}, v))
}

// loggedVisitor is where a request's visitor is noted for its access
// log line, once a handler has found it (by cookie or lab login).
type loggedVisitor struct{ v *sessions.Visitor }

type loggedKey struct{}

// visitorOf is the visitor withVisitor found.
func visitorOf(r *http.Request) *sessions.Visitor {
	return r.Context().Value(visitorKey{}).(*sessions.Visitor)
}

// accessLog logs each request once answered: its id, method, path (no
// query), status, size, duration and the visitor's pseudonym; never a
// token, a cookie or an address.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		w.Header().Set("X-Request-Id", middleware.GetReqID(r.Context()))
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		found := &loggedVisitor{}
		next.ServeHTTP(ww, r.WithContext(context.WithValue(r.Context(), loggedKey{}, found)))
		if !s.cfg.Logger.Enabled(r.Context(), slog.LevelInfo) {
			return
		}
		who := ""
		if found.v == nil {
			found.v = s.visitor(r)
		}
		if found.v != nil {
			who = found.v.Name()
		}
		s.cfg.Logger.LogAttrs(r.Context(), slog.LevelInfo, "http",
			slog.String("id", middleware.GetReqID(r.Context())), slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.Int("status", ww.Status()), slog.Int("bytes", ww.BytesWritten()),
			slog.Duration("duration", time.Since(start).Round(time.Microsecond)), slog.String("visitor", who))
	})
}
