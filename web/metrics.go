package web

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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
	reg.MustRegister(
		s.bridgeErrors,
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
		if !s.isAdmin(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="pop3playground"`)
			http.Error(w, "metrics need the admin token: Authorization: Bearer TOKEN", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
