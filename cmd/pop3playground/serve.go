package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/pop3/limit"
	"github.com/pop3playground/pop3playground/sessions"
	"github.com/pop3playground/pop3playground/web"
)

// A playground is what the binary serves, built from the config: the
// visitors and their sandboxes, the POP3 server, mail in, and the web side,
// on their listeners.
type playground struct {
	cfg      *config
	logger   *slog.Logger
	world    *sessions.World
	visitors *sessions.Visitors
	delivery *sessions.Delivery
	pop3     *pop3.Server
	registry *prometheus.Registry
	trace    io.Closer

	ln listeners

	store    *sessions.RedisStore // nil without --store
	smtp     *smtp.Server         // nil without --smtp-addr
	smtpGate *smtpGate
	http     *http.Server // nil without --http-addr
	web      *web.Server
}

// listeners are the playground's TCP listeners, nil where turned off.
type listeners struct {
	pop3, pop3s, pop3Proxy   net.Listener
	smtp, smtpProxy          net.Listener
	labPOP3, labSMTP         net.Listener // the client lab's ports
	http, bridge, bridgeSMTP net.Listener // the bridge's own, on loopback
	all                      []net.Listener
}

func newPlayground(cfg *config, world *sessions.World, lessons []*sessions.Lesson, logger *slog.Logger) (*playground, error) {
	p := &playground{cfg: cfg, logger: logger, world: world}
	p.visitors = newVisitors(cfg, world, lessons)
	if cfg.store != "" {
		store, err := sessions.NewRedisStore(cfg.store)
		if err != nil {
			return nil, err
		}
		p.store, p.visitors.Store, p.visitors.Logger = store, store, logger
	}
	p.delivery = newDelivery(cfg, p.visitors)
	backend := &sessions.Backend{World: world, Visitors: p.visitors}
	p.pop3 = newPOP3Server(cfg, backend, logger)
	if p.store != nil {
		p.pop3.IDBase = replicaBase(p.store, logger)
	}
	var pop3m *pop3Metrics
	p.registry, pop3m = newMetrics(p.pop3, backend, p.visitors, p.delivery)
	p.pop3.Observer = observers{p.visitors, pop3m}
	p.pop3.LogUser = p.visitors.LogName
	var err error
	if p.pop3.TLSConfig, err = tlsConfig(cfg); err != nil {
		return nil, err
	}
	if cfg.trace != "" {
		f, err := openRotating(cfg.trace, int64(cfg.traceMaxBytes))
		if err != nil {
			return nil, err
		}
		p.pop3.Trace, p.trace = f, f
	}
	return p, nil
}

func (p *playground) closeTrace() {
	if p.trace != nil {
		p.trace.Close()
	}
}

func newVisitors(cfg *config, world *sessions.World, lessons []*sessions.Lesson) *sessions.Visitors {
	vs := sessions.NewVisitors(world)
	vs.Lessons = lessons
	if cfg.smtpAddr == "" {
		vs.Lessons = sessions.WithoutMail(lessons) // it needs the SMTP listener
	}
	vs.TTL = cfg.visitorTTL
	vs.UnusedTTL = cfg.unusedTTL
	vs.Rate = limit.RateLimiter{Rate: cfg.visitorRate, Burst: cfg.visitorBurst}
	vs.Max = cfg.maxVisitors
	vs.MaxPerIP = cfg.maxVisitorsPerIP
	vs.HopKey = deriveKey(cfg.adminToken, "pop3playground received hop")
	return vs
}

func newDelivery(cfg *config, vs *sessions.Visitors) *sessions.Delivery {
	d := sessions.NewDelivery(vs, mailDomain(cfg))
	d.MaxStored = int64(cfg.smtpMaxStored)
	d.PerAddress = limit.RateLimiter{Rate: cfg.smtpRate, Burst: cfg.smtpBurst}
	d.PerVisitor = limit.RateLimiter{Rate: cfg.smtpVisitorRate, Burst: cfg.smtpVisitorBurst}
	d.MaxDelivered = cfg.smtpMaxDelivered
	return d
}

func newPOP3Server(cfg *config, be pop3.Backend, logger *slog.Logger) *pop3.Server {
	srv := pop3.NewServer(be)
	srv.Hostname = cfg.hostname
	srv.Greeting = "POP3 Playground ready"
	srv.Implementation = "POP3-Playground"
	srv.Logger = logger
	srv.IdleTimeout = cfg.idleTimeout
	srv.MaxConns = cfg.maxConns
	srv.MaxConnsPerIP = cfg.maxConnsPerIP
	srv.MaxLineLength = cfg.maxLineLength
	srv.MaxErrors = cfg.maxErrors
	srv.MaxAuthFailures = cfg.maxAuthFailures
	srv.AuthFailureDelay = cfg.authFailureDelay
	srv.LoginTimeout = cfg.loginTimeout
	return srv
}

// replicaBase numbers this replica's connections apart from the other
// replicas' (pop3.Server.IDBase): a number the store gives, or, if it
// does not answer at start, a random one.
func replicaBase(store *sessions.RedisStore, logger *slog.Logger) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	n, err := store.Replica(ctx)
	if err != nil {
		var b [3]byte
		rand.Read(b[:])
		n = 1<<23 | uint64(b[0])<<16 | uint64(b[1])<<8 | uint64(b[2])
		logger.Warn("the store did not answer at start: this replica numbers its connections from a random base", "err", err)
	}
	return n << 40
}

// listen opens every listener the config asks for, or none.
func (p *playground) listen() error {
	cfg, ln := p.cfg, &p.ln
	web, smtpOn := cfg.httpAddr != "", cfg.smtpAddr != ""
	for _, x := range []struct {
		l          *net.Listener
		what, addr string
		on         bool
	}{
		{&ln.pop3, "POP3", cfg.pop3Addr, true},
		{&ln.smtp, "SMTP", cfg.smtpAddr, smtpOn},
		{&ln.pop3Proxy, "POP3 PROXY", cfg.pop3ProxyAddr, cfg.pop3ProxyAddr != ""},
		{&ln.smtpProxy, "SMTP PROXY", cfg.smtpProxyAddr, cfg.smtpProxyAddr != "" && smtpOn},
		{&ln.pop3s, "POP3S", cfg.pop3sAddr, cfg.pop3sAddr != ""},
		{&ln.labPOP3, "client lab's POP3", cfg.labPOP3Addr, cfg.labPOP3Addr != ""},
		{&ln.labSMTP, "client lab's SMTP", cfg.labSMTPAddr, cfg.labSMTPAddr != "" && smtpOn},
		{&ln.http, "HTTP", cfg.httpAddr, web},
		// The bridge's own listeners: on loopback, a port the system
		// picks, PROXY headers required (DESIGN §2).
		{&ln.bridge, "bridge's POP3", loopbackAddr(), web},
		{&ln.bridgeSMTP, "bridge's SMTP", loopbackAddr(), web && smtpOn},
	} {
		if !x.on {
			continue
		}
		l, err := net.Listen("tcp", x.addr)
		if err != nil {
			for _, o := range ln.all {
				o.Close()
			}
			return fmt.Errorf("%s listener: %w", x.what, err)
		}
		*x.l = l
		ln.all = append(ln.all, l)
	}
	return nil
}

// serve starts serving on every listener; the channel tells of a listener
// that stopped for another reason than shutdown.
func (p *playground) serve() <-chan error {
	cfg, ln, srv := p.cfg, &p.ln, p.pop3
	errc := make(chan error, 8)
	go func() { errc <- srv.Serve(ln.pop3) }()
	if ln.bridge != nil {
		go func() { errc <- srv.ServeProxied(ln.bridge, loopbackNets) }()
	}
	if ln.pop3Proxy != nil {
		go func() { errc <- srv.ServeProxied(ln.pop3Proxy, cfg.trustedProxies) }()
	}
	if ln.pop3s != nil {
		go func() { errc <- srv.ServeTLS(ln.pop3s) }()
	}
	if ln.labPOP3 != nil {
		go func() { errc <- srv.ServePrelude(ln.labPOP3, p.visitors.LabPrelude) }()
	}
	if ln.smtp != nil {
		p.smtp = newSMTPServer(cfg, p.delivery, srv.TLSConfig, p.logger)
		p.smtpGate = newSMTPGate(cfg.smtpMaxConns, cfg.smtpMaxConnsIP)
		serveSMTP := func(l net.Listener) {
			if err := p.smtp.Serve(l); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
				errc <- err
			}
		}
		go serveSMTP(&publicSMTP{Listener: ln.smtp, gate: p.smtpGate})
		if ln.labSMTP != nil {
			go serveSMTP(&publicSMTP{Listener: ln.labSMTP, gate: p.smtpGate, lab: p.visitors})
		}
		if ln.bridgeSMTP != nil {
			go serveSMTP(newProxiedSMTP(ln.bridgeSMTP, p.smtpGate, loopbackNets))
		}
		if ln.smtpProxy != nil {
			go serveSMTP(newProxiedSMTP(ln.smtpProxy, p.smtpGate, cfg.trustedProxies))
		}
	}
	if ln.http != nil {
		p.web = p.newWeb()
		p.http = &http.Server{
			Handler:           p.web,
			ConnState:         p.web.ConnState,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          slog.NewLogLogger(p.logger.Handler(), slog.LevelWarn),
		}
		p.http.RegisterOnShutdown(p.web.CloseStreams)
		go func() {
			if err := p.http.Serve(p.web.Listener(ln.http)); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	return errc
}

func (p *playground) newWeb() *web.Server {
	cfg, ln, srv := p.cfg, &p.ln, p.pop3
	return web.New(web.Config{
		POP3Addr:       ln.bridge.Addr().String(),
		PublicHost:     publicHost(cfg),
		PublicPort:     portOf(cfg.pop3Addr, ln.pop3.Addr()),
		Visitors:       p.visitors,
		TrustedProxies: cfg.trustedProxies,
		OriginPatterns: splitList(cfg.origins),
		MaxBridges:     cfg.maxTerminals,
		Logger:         p.logger,
		AdminToken:     cfg.adminToken,
		CookieKey:      cookieKey(cfg.adminToken),
		MailDomain:     smtpDomain(cfg),
		SMTPAddr:       addrOf(ln.bridgeSMTP),
		SMTPPort:       smtpPort(cfg, ln.smtp),
		LabPort:        listenerPort(cfg.labPOP3Addr, ln.labPOP3),
		LabSMTPPort:    listenerPort(cfg.labSMTPAddr, ln.labSMTP),
		Hosts:          []string{hostOf(cfg.httpAddr)},
		AnyHost:        anyHost(cfg),
		MaxConns:       cfg.httpConns,
		MaxConnsPerIP:  httpConnsPerIP(cfg.maxVisitorsPerIP),
		LabTargets:     labTargets(cfg),
		Metrics:        p.registry,
		POP3Conns:      srv.ActiveConns,
		Ready: func() error {
			if !srv.Listening() {
				return errors.New("the POP3 listener is not serving")
			}
			if p.store != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				if err := p.store.Ping(ctx); err != nil {
					return fmt.Errorf("the store (--store) is not answering: %v", err)
				}
			}
			return nil
		},
	})
}

// labTargets are the servers the page's server lab may check: the
// organiser's list, or, on a start that serves the page on loopback
// only (someone's own machine), localhost's unprivileged ports.
func labTargets(cfg *config) []web.LabTarget {
	if cfg.labTargets != "" {
		t, _ := web.ParseLabTargets(cfg.labTargets) // checked in validate
		return t
	}
	host := strings.Trim(hostOf(cfg.httpAddr), "[]")
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		return []web.LabTarget{{Host: "localhost", Lo: 1024, Hi: 65535}, {Host: "127.0.0.1", Lo: 1024, Hi: 65535}, {Host: "::1", Lo: 1024, Hi: 65535}}
	}
	return nil
}

// banner prints where everything listens, and warns of what a stranger
// could use.
func (p *playground) banner(w io.Writer) {
	cfg, ln := p.cfg, &p.ln
	printBanner(w, cfg, p.world, ln.pop3.Addr(), ln.pop3s, ln.http)
	if ln.smtp != nil {
		fmt.Fprintf(w, "SMTP on %s delivers to personal addresses NAME.ID@%s (STARTTLS available)\n", ln.smtp.Addr(), mailDomain(cfg))
	}
	if ln.labPOP3 != nil {
		fmt.Fprintf(w, "Client lab: POP3 on %s", ln.labPOP3.Addr())
		if ln.labSMTP != nil {
			fmt.Fprintf(w, ", SMTP on %s", ln.labSMTP.Addr())
		}
		fmt.Fprintf(w, " (they greet after a second, and play each student's scenario)\n")
	}
	for _, x := range []struct {
		what string
		l    net.Listener
	}{{"POP3", ln.pop3Proxy}, {"SMTP", ln.smtpProxy}} {
		if x.l != nil {
			fmt.Fprintf(w, "%s for proxies on %s (a PROXY header first, from %s)\n", x.what, x.l.Addr(), &cfg.trustedProxies)
		}
	}
	if ln.http != nil && anyHost(cfg) {
		p.logger.Warn("web: --http-addr listens on every interface and no --public-host is set: any Host name is answered, so DNS rebinding is not guarded against; set --public-host to the name people use")
	}
}

// close stops everything at once, after a listener failed.
func (p *playground) close() {
	p.pop3.Close()
	if p.smtp != nil {
		p.smtp.Close()
	}
	if p.http != nil {
		p.http.Close()
		p.web.Close()
	}
}

// shutdown lets sessions finish, within --shutdown-timeout.
func (p *playground) shutdown() {
	p.logger.Info("shutting down: letting sessions finish", "timeout", p.cfg.shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), p.cfg.shutdownTimeout)
	defer cancel()
	smtpDone := make(chan struct{})
	go func() {
		defer close(smtpDone)
		if p.smtp == nil {
			return
		}
		// Sessions waiting for a command are told 421 4.3.2 at once; a
		// message under way may finish. Its client retries the rest.
		p.smtpGate.drain()
		if err := p.smtp.Shutdown(sctx); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			p.logger.Warn("shutdown: closed SMTP sessions still running", "err", err)
			p.smtp.Close()
		}
	}()
	if p.http != nil {
		// Stop taking new visitors and terminals; open terminals stay
		// bridged while their POP3 sessions drain.
		p.http.Shutdown(sctx)
	}
	if err := p.pop3.Shutdown(sctx); err != nil {
		p.logger.Warn("shutdown: closed sessions still running", "err", err)
	}
	if p.web != nil {
		p.web.Close()
	}
	<-smtpDone
}

// loopbackNets are the networks of the bridge's own listeners' peers.
var loopbackNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// loopbackAddr is where the bridge's listeners listen: IPv4 loopback if
// the machine has it, else IPv6's.
func loopbackAddr() string {
	if l, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		l.Close()
		return "127.0.0.1:0"
	}
	return "[::1]:0"
}

// addrOf is a listener's address, or "" for none.
func addrOf(l net.Listener) string {
	if l == nil {
		return ""
	}
	return l.Addr().String()
}

// httpConnsPerIP bounds the web connections from one address: four for
// each visitor an address may have (the page, a terminal, an event
// stream, one to spare); none without a per-address visitor limit.
func httpConnsPerIP(visitorsPerIP int) int {
	if visitorsPerIP <= 0 {
		return -1
	}
	return 4 * visitorsPerIP
}

// anyHost reports whether the web side should answer any Host: it
// listens on every interface and no public host name or origin is
// configured, so the names people use are unknown (a Docker container).
// Then DNS rebinding is not guarded against, and the start-up log says so.
func anyHost(cfg *config) bool {
	h := hostOf(cfg.httpAddr)
	all := h == "" || net.ParseIP(h) != nil && net.ParseIP(h).IsUnspecified()
	return all && cfg.publicHost == "" && cfg.origins == ""
}

// cookieKey signs visitor cookies: derived from the admin token, so that
// with --admin-token set a visitor's cookie survives a restart.
func cookieKey(adminToken string) []byte {
	return deriveKey(adminToken, "pop3playground visitor cookie")
}

// deriveKey is a key for purpose from the admin token: replicas and
// restarts with the same --admin-token agree on it.
func deriveKey(adminToken, purpose string) []byte {
	m := hmac.New(sha256.New, []byte(adminToken))
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return h
}

// publicHost is the host name the page shows.
func publicHost(cfg *config) string {
	if cfg.publicHost != "" {
		return cfg.publicHost
	}
	if h, _, err := net.SplitHostPort(cfg.httpAddr); err == nil && h != "" && !net.ParseIP(h).IsUnspecified() {
		return h
	}
	return "localhost"
}

// portOf is the POP3 port to show: the configured one, or the one the
// listener got (for port 0).
func portOf(configured string, a net.Addr) string {
	if _, p, err := net.SplitHostPort(configured); err == nil && p != "0" && p != "" {
		return p
	}
	_, p, _ := net.SplitHostPort(a.String())
	return p
}

// listenerPort is the port of l, which may be off (nil): "".
func listenerPort(configured string, l net.Listener) string {
	if l == nil {
		return ""
	}
	return portOf(configured, l.Addr())
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
