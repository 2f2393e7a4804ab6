package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/sessions"
)

// pop3Metrics counts what the POP3 server did, from its events.
type pop3Metrics struct {
	conns        prometheus.Counter
	commands     *prometheus.CounterVec
	authFailures prometheus.Counter
	// byVerb holds the commands counter's children for every known verb
	// and "other", err then ok: made once, so that a reply costs a map
	// read and an atomic add, not a label lookup.
	byVerb map[string]*[2]prometheus.Counter
}

// newMetrics makes the registry behind /metrics: the POP3 server's
// counters (as an Observer to chain with the visitors), sandboxes, and the
// process's own.
func newMetrics(srv *pop3.Server, be *sessions.Backend, visitors *sessions.Visitors, d *sessions.Delivery) (*prometheus.Registry, *pop3Metrics) {
	reg := prometheus.NewRegistry()
	m := &pop3Metrics{
		conns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pop3pg_pop3_connections_total",
			Help: "POP3 sessions admitted (direct clients and browser terminals).",
		}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pop3pg_pop3_commands_total",
			Help: "POP3 commands answered, by verb (other for unknown ones) and outcome (ok, err).",
		}, []string{"verb", "outcome"}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pop3pg_pop3_auth_failures_total",
			Help: "Failed logins (USER/PASS, APOP, AUTH) with a wrong name or password.",
		}),
	}
	m.byVerb = make(map[string]*[2]prometheus.Counter)
	verbs := []string{"other"}
	for _, d := range pop3.Reference {
		verbs = append(verbs, d.Verb)
	}
	for _, verb := range verbs {
		m.byVerb[verb] = &[2]prometheus.Counter{m.commands.WithLabelValues(verb, "err"), m.commands.WithLabelValues(verb, "ok")}
	}
	for reason, name := range map[int]string{
		pop3.RefusedFull:         "full",
		pop3.RefusedPerAddress:   "per-address",
		pop3.RefusedProxy:        "proxy",
		pop3.RefusedLoginTimeout: "login-timeout",
	} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "pop3pg_pop3_refused_total",
			Help:        "POP3 connections refused or closed by a limit, by reason: full (--max-conns), per-address (--max-conns-per-ip), proxy (an untrusted or bad PROXY header), login-timeout.",
			ConstLabels: prometheus.Labels{"reason": name},
		}, func() float64 { return float64(srv.Refused(reason)) }))
	}
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "pop3pg_smtp_delivered_total",
			Help: "Messages delivered by SMTP into a maildrop (one per recipient).",
		}, func() float64 { return float64(d.Delivered()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "pop3pg_smtp_refused_total",
			Help: "SMTP recipients and messages refused: not a playground address, a limit, a malformed message.",
		}, func() float64 { return float64(d.Refused()) }),
	)
	reg.MustRegister(
		m.conns, m.commands, m.authFailures,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pop3pg_pop3_connections_open",
			Help: "POP3 sessions open now.",
		}, func() float64 { return float64(srv.ActiveConns()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "pop3pg_pop3_sent_bytes_total",
			Help: "Octets the POP3 server sent to clients.",
		}, func() float64 { return float64(srv.BytesSent()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pop3pg_sandboxes",
			Help: "Sandboxes held: one per web visitor, and one per direct login in progress.",
		}, func() float64 { return float64(int64(visitors.Len()) + be.DirectSandboxes()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg, m
}

// Observe implements pop3.Observer.
func (m *pop3Metrics) Observe(e pop3.Event) {
	switch e.Kind {
	case pop3.EventConnected:
		m.conns.Inc()
	case pop3.EventReply:
		if e.Verb == "" {
			return // the greeting
		}
		c := m.byVerb[e.Verb]
		if c == nil {
			c = m.byVerb["other"] // what a stranger types must not make new series
		}
		if e.OK {
			c[1].Inc()
		} else {
			c[0].Inc()
		}
		if !e.OK && e.Code == "AUTH" {
			m.authFailures.Inc()
		}
	}
}

// observers tells each of its Observers every event.
type observers []pop3.Observer

func (o observers) Observe(e pop3.Event) {
	for _, x := range o {
		x.Observe(e)
	}
}
