// Package web is the playground's HTTP side: the page, the WebSocket bridge
// to the POP3 listener, the visitor's session API, static assets and health.
// It knows the POP3 server only by its address (DESIGN: "the bridge dials
// the POP3 listener over TCP").
package web

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pop3playground/pop3playground/pop3/limit"
	"github.com/pop3playground/pop3playground/sessions"
	"github.com/pop3playground/pop3playground/templates"
)

// CookieName is the visitor session cookie.
const CookieName = "pop3pg_session"

// Config is what the web side needs to know.
type Config struct {
	// POP3Addr is where the bridge dials: our own POP3 listener for the
	// bridge, which requires the PROXY v2 header the bridge sends
	// (pop3.Server.ServeProxied). It comes from configuration, never from
	// the browser.
	POP3Addr string
	// PublicHost and PublicPort are what the page tells people to use
	// from other clients (the public listener); PublicPort defaults to
	// POP3Addr's port.
	PublicHost string
	PublicPort string
	Visitors   *sessions.Visitors
	// TrustedProxies may set X-Forwarded-For and X-Forwarded-Proto (a
	// reverse proxy in front of the page).
	TrustedProxies []netip.Prefix
	// OriginPatterns are other origins allowed to open the WebSocket
	// (host patterns as in path.Match); the page's own is always allowed.
	OriginPatterns []string
	// MaxBridges bounds the terminals one visitor has open at once.
	MaxBridges int
	// BridgeRate bounds what a browser sends through a bridge, in octets
	// per second, with bursts of BridgeBurst; MaxMessage bounds one
	// WebSocket message.
	BridgeRate  int
	BridgeBurst int
	MaxMessage  int64
	// PingInterval is how often the bridge pings the browser to keep
	// proxies from closing an idle WebSocket.
	PingInterval time.Duration
	Logger       *slog.Logger

	// AdminToken opens /admin (and /metrics to a bearer of it); empty
	// turns the admin page off.
	AdminToken string
	// Metrics, if set, is served at /metrics; the web side adds its own.
	Metrics *prometheus.Registry
	// Ready says whether the playground can serve (/readyz): nil when it
	// can, else why not.
	Ready func() error
	// POP3Conns counts the POP3 sessions open, for the admin page.
	POP3Conns func() int

	// MaxConns bounds the descriptors the web side holds: HTTP
	// connections (through Listener) and the bridges' connections to the
	// POP3 listener; Reserve of them are kept for /healthz, /readyz,
	// /metrics and /admin. Zero means no limit.
	MaxConns int
	Reserve  int
	// MaxConnsPerIP bounds the HTTP connections (through Listener) from
	// one address, IPv6 by /64; trusted proxies are not counted. Zero
	// means DefaultMaxConnsPerIP; negative, no limit.
	MaxConnsPerIP int
	// BodyTimeout bounds reading a request's body.
	BodyTimeout time.Duration
	// Hosts are the host names (patterns as in path.Match) the playground
	// answers to where state can change; address literals, localhost and
	// PublicHost always are. Others get 421 (DNS rebinding), unless
	// AnyHost is set.
	Hosts []string
	// AnyHost turns the Host check off: for an instance listening on
	// every interface with no public host name configured, where the
	// names people use are not known.
	AnyHost bool
	// CookieKey signs the visitor cookie; random if empty (cookies then
	// do not survive a restart).
	CookieKey []byte
	// MailDomain, if set, is the domain of the personal addresses the
	// SMTP listener delivers to (NAME.ID@MailDomain); the page shows them.
	MailDomain string
	// SMTPAddr, if set, is the bridge's second fixed target: our own
	// SMTP listener for the bridge (a PROXY header required), for the
	// page's SMTP terminal (/ws?target=smtp); SMTPPort is the public SMTP
	// port the page shows.
	SMTPAddr string
	SMTPPort string
	// LabPort and LabSMTPPort are the client lab's own POP3 and SMTP
	// ports (they greet late, and play a scenario from the greeting on);
	// "" where off: the lab then points clients at the public ports.
	LabPort, LabSMTPPort string
	// LabTargets are the POP3 servers the page's server lab may check:
	// none unless the organiser lists them.
	LabTargets []LabTarget
}

// Defaults for Config's zero fields.
const (
	DefaultMaxBridges   = 4
	DefaultBridgeRate   = 16 << 10
	DefaultBridgeBurst  = 64 << 10
	DefaultMaxMessage   = 64 << 10
	DefaultPingInterval = 30 * time.Second
)

// Server serves the playground over HTTP.
type Server struct {
	cfg    Config
	router chi.Router

	// bridges are closed by Close; wg waits for them.
	mu      sync.Mutex
	closed  bool
	cancels map[*bridge]context.CancelFunc
	wg      sync.WaitGroup

	streams     map[*sessions.Visitor]int
	streamsDone chan struct{}
	streamsOnce sync.Once

	bridgeErrors *prometheus.CounterVec
	refusals     *prometheus.CounterVec

	cookieKey     []byte
	hosts         []string
	budget        connBudget
	authLimit     *authLimiter
	adminSessions adminSessions
	views         viewGate
	serverLab     serverLabRuns

	// What the page renders of the lessons, made once: they are fixed
	// at start.
	lessonViews []templates.Lesson
}

// New returns the playground's HTTP handler.
func New(cfg Config) *Server {
	orDefault(&cfg.MaxBridges, DefaultMaxBridges)
	orDefault(&cfg.BridgeRate, DefaultBridgeRate)
	orDefault(&cfg.BridgeBurst, DefaultBridgeBurst)
	orDefault(&cfg.MaxMessage, DefaultMaxMessage)
	orDefault(&cfg.PingInterval, DefaultPingInterval)
	orDefault(&cfg.Logger, slog.Default())
	if cfg.PublicPort == "" {
		if _, port, err := net.SplitHostPort(cfg.POP3Addr); err == nil {
			cfg.PublicPort = port
		}
	}
	orDefault(&cfg.PublicHost, "localhost")
	orDefault(&cfg.Reserve, DefaultReserve)
	orDefault(&cfg.MaxConnsPerIP, DefaultMaxConnsPerIP)
	orDefault(&cfg.BodyTimeout, DefaultBodyTimeout)
	s := &Server{
		cfg:         cfg,
		cancels:     make(map[*bridge]context.CancelFunc),
		streams:     make(map[*sessions.Visitor]int),
		streamsDone: make(chan struct{}),
		cookieKey:   cfg.CookieKey,
		authLimit:   newAuthLimiter(),
	}
	if cfg.Visitors != nil && cfg.Visitors.Store != nil {
		// Replicas: an organiser signed in on one is signed in on every
		// one, and guesses at the token count on all of them together.
		s.adminSessions.store, s.authLimit.store = cfg.Visitors.Store, cfg.Visitors.Store
	}
	s.budget.max, s.budget.reserve = int64(cfg.MaxConns), int64(min(cfg.Reserve, cfg.MaxConns/2))
	if len(s.cookieKey) == 0 {
		s.cookieKey = make([]byte, 32)
		rand.Read(s.cookieKey)
	}
	for _, h := range append([]string{cfg.PublicHost}, append(cfg.Hosts, cfg.OriginPatterns...)...) {
		if h = strings.ToLower(limit.Host(h)); h != "" {
			s.hosts = append(s.hosts, h)
		}
	}

	if cfg.Metrics != nil {
		s.registerMetrics(cfg.Metrics)
	}
	s.lessonViews = lessonViews(cfg.Visitors.Lessons)
	s.router = s.routes()
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// orDefault sets *p to def if it is the zero value.
func orDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// Close ends every open bridge and waits for them; the WebSockets are
// hijacked connections that http.Server.Shutdown does not see.
func (s *Server) Close() {
	s.CloseStreams()
	s.mu.Lock()
	s.closed = true
	for _, cancel := range s.cancels {
		cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// csp allows the page's own scripts, styles and WebSocket and nothing else:
// no inline script, no framing.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// clientAddr is the browser's address: the connection's, or the one a
// trusted reverse proxy put last in X-Forwarded-For.
func (s *Server) clientAddr(r *http.Request) netip.AddrPort {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if !s.trusted(ap.Addr()) {
		return ap
	}
	// The rightmost address not of a trusted proxy is the client's.
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		a = a.Unmap()
		if !s.trusted(a) {
			return netip.AddrPortFrom(a, 0)
		}
	}
	return ap
}

// trusted reports whether a is a proxy's whose X-Forwarded-For and
// X-Forwarded-Proto are believed (Config.TrustedProxies).
func (s *Server) trusted(a netip.Addr) bool { return limit.Networks(s.cfg.TrustedProxies).Contains(a) }

// secure reports whether the browser reached us over HTTPS.
func (s *Server) secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && s.trusted(ap.Addr().Unmap()) && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// handleReady says whether the playground can serve: its listeners up and
// its world loaded (Config.Ready).
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
	}
	w.Write([]byte("ready\n"))
}

func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func jsonError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
