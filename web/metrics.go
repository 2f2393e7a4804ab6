package web

import (
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pop3playground/pop3playground/sessions"
)

// registerMetrics puts the web side's metrics on reg: terminals (bridges)
// open and failed, visitors, and lesson completions.
func (s *Server) registerMetrics(reg prometheus.Registerer) {
	s.bridgeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pop3pg_bridge_errors_total",
		Help: "WebSocket terminals that failed, by reason: limit (too many for one visitor), handshake (refused WebSocket, e.g. a foreign Origin), connect (the POP3 listener unreachable).",
	}, []string{"reason"})
	for _, reason := range []string{"limit", "handshake", "connect"} {
		s.bridgeErrors.WithLabelValues(reason)
	}
	s.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pop3pg_http_refused_total",
		Help: "Requests refused by a limit, by what was refused (visitor, terminal, stream, request, connection, admin, view) and why.",
	}, []string{"what", "reason"})
	reg.MustRegister(
		s.bridgeErrors, s.refusals,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pop3pg_bridges_open",
			Help: "Browser terminals connected to the POP3 listener now.",
		}, func() float64 { return float64(s.OpenBridges()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pop3pg_visitors",
			Help: "Web visitors held, each with a sandbox.",
		}, func() float64 { return float64(s.cfg.Visitors.Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pop3pg_bulletins",
			Help: "Bulletins on the board.",
		}, func() float64 { return float64(s.cfg.Visitors.World().Bulletins.Len()) }),
	)
	for _, l := range s.cfg.Visitors.Lessons {
		id := l.ID
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "pop3pg_lesson_completions_total",
			Help:        "Lessons finished by visitors.",
			ConstLabels: prometheus.Labels{"lesson": id},
		}, func() float64 { return float64(s.cfg.Visitors.Completions(id)) }))
	}
}

// refused counts a request a limit turned away; err names the reason.
func (s *Server) refused(what string, err error) {
	if s.refusals == nil {
		return
	}
	reason := "other"
	switch {
	case errors.Is(err, errNoCookie):
		return // not a limit
	case errors.Is(err, sessions.ErrFull):
		reason = "full"
	case errors.Is(err, sessions.ErrIPTooMany):
		reason = "per-address"
	case errors.Is(err, sessions.ErrTooFast):
		reason = "rate"
	case errors.Is(err, sessions.ErrStore):
		reason = "store"
	case errors.Is(err, errDescriptors):
		reason = "descriptors"
	case errors.Is(err, errIPConns):
		reason = "per-address"
	case errors.Is(err, errAuthLimited):
		reason = "auth-failures"
	}
	s.refusals.WithLabelValues(what, reason).Inc()
}

func (s *Server) bridgeError(reason string) {
	if s.bridgeErrors != nil {
		s.bridgeErrors.WithLabelValues(reason).Inc()
	}
}

// handleMetrics serves /metrics to a scraper that sends the admin token
// (Authorization: Bearer TOKEN) or to a signed-in organiser.
func (s *Server) handleMetrics() http.Handler {
	h := promhttp.HandlerFor(s.cfg.Metrics, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok, err := s.checkAdmin(r)
		if err != nil {
			// Refused unchecked: saying 401 would tell a guesser each
			// guess was checked and wrong.
			w.Header().Set("Retry-After", "60")
			http.Error(w, "too many wrong admin tokens from your address: wait a minute", http.StatusTooManyRequests)
			return
		}
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="pop3playground"`)
			http.Error(w, "metrics need the admin token: Authorization: Bearer TOKEN", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
