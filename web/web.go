// Package web is the playground's HTTP side: the page, the WebSocket bridge
// to the POP3 listener, the visitor's session API, static assets and health.
// It knows the POP3 server only by its address (DESIGN: "the bridge dials
// the POP3 listener over TCP").
package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pop3playground/pop3playground/sessions"
	"github.com/pop3playground/pop3playground/static"
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
}

// New returns the playground's HTTP handler.
func New(cfg Config) *Server {
	if cfg.MaxBridges == 0 {
		cfg.MaxBridges = DefaultMaxBridges
	}
	if cfg.BridgeRate == 0 {
		cfg.BridgeRate = DefaultBridgeRate
	}
	if cfg.BridgeBurst == 0 {
		cfg.BridgeBurst = DefaultBridgeBurst
	}
	if cfg.MaxMessage == 0 {
		cfg.MaxMessage = DefaultMaxMessage
	}
	if cfg.PingInterval == 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PublicPort == "" {
		if _, port, err := net.SplitHostPort(cfg.POP3Addr); err == nil {
			cfg.PublicPort = port
		}
	}
	if cfg.PublicHost == "" {
		cfg.PublicHost = "localhost"
	}
	if cfg.Reserve == 0 {
		cfg.Reserve = DefaultReserve
	}
	if cfg.MaxConnsPerIP == 0 {
		cfg.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if cfg.BodyTimeout == 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	s := &Server{
		cfg:         cfg,
		cancels:     make(map[*bridge]context.CancelFunc),
		streams:     make(map[*sessions.Visitor]int),
		streamsDone: make(chan struct{}),
		cookieKey:   cfg.CookieKey,
		authLimit:   newAuthLimiter(),
	}
	s.budget.max, s.budget.reserve = int64(cfg.MaxConns), int64(min(cfg.Reserve, cfg.MaxConns/2))
	if len(s.cookieKey) == 0 {
		s.cookieKey = make([]byte, 32)
		rand.Read(s.cookieKey)
	}
	for _, h := range append([]string{cfg.PublicHost}, append(cfg.Hosts, cfg.OriginPatterns...)...) {
		if h = strings.ToLower(hostOnly(h)); h != "" {
			s.hosts = append(s.hosts, h)
		}
	}

	r := chi.NewRouter()
	r.Use(middleware.Recoverer, s.guard, securityHeaders, http.NewCrossOriginProtection().Handler)
	r.Get("/", s.handlePage)
	r.Get("/ws", s.handleBridge)
	r.Get("/api/session", s.handleSession)
	r.Get("/events", s.handleEvents)
	r.Post("/reset", s.handleReset)
	r.Get("/api/lessons", s.handleLessons)
	r.Post("/api/lessons/{id}/restart", s.handleRestartLesson)
	r.Post("/api/lessons/{id}/start", s.handleStartLesson)
	r.Post("/api/lessons/{id}/rewind", s.handleRewindLesson)
	r.Post("/api/lessons/restore", s.handleRestoreLessons)
	r.Post("/api/name", s.handleName)
	r.Post("/api/help", s.handleHelp)
	r.Post("/api/view", s.handleView)
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	r.Get("/readyz", s.handleReady)
	if cfg.Metrics != nil {
		s.registerMetrics(cfg.Metrics)
		r.Method(http.MethodGet, "/metrics", s.handleMetrics())
	}
	s.adminRoutes(r)
	r.Handle("/static/*", static.Handler())
	r.Handle("/favicon.ico", static.Favicon())
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "404 page not found: the playground is at /", http.StatusNotFound)
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
	})
	s.router = r
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

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

// The visitor cookie is the visitor's token (32 hex digits) followed by a
// MAC of it (32 hex digits) under the server's cookie key. A bare GET /
// only mints one: no visitor exists until a browser comes back with it
// (DESIGN §10). The MAC means the server made every token it accepts, so
// a client cannot choose its own.
const cookieLen = 64

// cookieValue is the cookie that carries token.
func (s *Server) cookieValue(token string) string {
	m := hmac.New(sha256.New, s.cookieKey)
	m.Write([]byte(token))
	return token + hex.EncodeToString(m.Sum(nil)[:16])
}

// cookieToken returns the token of the request's visitor cookie, if the
// server made it.
func (s *Server) cookieToken(r *http.Request) (string, bool) {
	c, err := r.Cookie(CookieName)
	if err != nil || len(c.Value) != cookieLen {
		return "", false
	}
	tok := c.Value[:cookieLen/2]
	return tok, hmac.Equal([]byte(c.Value), []byte(s.cookieValue(tok)))
}

// sessionOr401 is the request's visitor; without one it answers 401 in
// words and returns nil.
func (s *Server) sessionOr401(w http.ResponseWriter, r *http.Request) *sessions.Visitor {
	v := s.visitor(r)
	if v == nil {
		jsonError(w, http.StatusUnauthorized, errNoCookie.Error())
	}
	return v
}

// visitor returns the visitor of the request's cookie, or nil.
func (s *Server) visitor(r *http.Request) *sessions.Visitor {
	tok, ok := s.cookieToken(r)
	if !ok {
		return nil
	}
	return s.cfg.Visitors.Get(tok)
}

// errNoCookie: the request has no visitor cookie the server made.
var errNoCookie = errors.New("no playground session: load the page first")

// visitorOrCreate returns the visitor of the request's cookie, making it
// now if the cookie is one the server set and the limits allow another.
func (s *Server) visitorOrCreate(r *http.Request) (*sessions.Visitor, error) {
	tok, ok := s.cookieToken(r)
	if !ok {
		return nil, errNoCookie
	}
	v, err := s.cfg.Visitors.Create(tok, s.clientAddr(r).Addr().String())
	if err != nil {
		s.refused("visitor", err)
	}
	return v, err
}

// refusal says why a visitor could not be made, for the page and the
// status line.
func refusal(err error) (code int, why string) {
	switch {
	case errors.Is(err, errNoCookie):
		return http.StatusUnauthorized, "No playground session: load the page first."
	case errors.Is(err, sessions.ErrIPTooMany):
		return http.StatusServiceUnavailable, "Too many playground sessions come from your network address. Sessions of people who left are freed regularly."
	case errors.Is(err, sessions.ErrTooFast):
		return http.StatusServiceUnavailable, "Many people from your network address arrived at once. Please wait a few seconds and reload the page."
	default:
		return http.StatusServiceUnavailable, "The playground holds as many visitors as its organiser allowed. Sandboxes of people who left are freed regularly."
	}
}

func fullPage(w http.ResponseWriter, r *http.Request, why string) {
	templates.Full(why).Render(r.Context(), w)
}

// refuseJSON answers a script whose visitor could not be made.
func refuseJSON(w http.ResponseWriter, err error) {
	code, why := refusal(err)
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "30")
	}
	jsonError(w, code, why) // writeJSON sets Cache-Control: no-store
}

// refuseVisitor answers a request whose visitor could not be made: JSON
// for scripts, the "full" page for browsers, plain text otherwise.
func (s *Server) refuseVisitor(w http.ResponseWriter, r *http.Request, err error) {
	if wantsJSON(r) {
		refuseJSON(w, err)
		return
	}
	code, why := refusal(err)
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "30")
	}
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case r.URL.Path == "/" || strings.Contains(r.Header.Get("Accept"), "text/html"):
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(code)
		fullPage(w, r, why)
	default:
		http.Error(w, why, code)
	}
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

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// secure reports whether the browser reached us over HTTPS.
func (s *Server) secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && s.trusted(ap.Addr().Unmap()) && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// handlePage serves the playground. A browser without a visitor cookie
// gets a new one and the page, and nothing else is made: its script asks
// /api/session, which makes the visitor and their sandbox. A browser that
// comes back with the cookie is a visitor now.
func (s *Server) handlePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	var v *sessions.Visitor
	if _, ok := s.cookieToken(r); ok {
		var err error
		if v, err = s.visitorOrCreate(r); err != nil {
			s.refuseVisitor(w, r, err)
			return
		}
	} else {
		// Refuse at once if the visitor could not be made anyway.
		if err := s.cfg.Visitors.Admits(s.clientAddr(r).Addr().String()); err != nil {
			s.refused("visitor", err)
			s.refuseVisitor(w, r, err)
			return
		}
		http.SetCookie(w, &http.Cookie{
			Name:     CookieName,
			Value:    s.cookieValue(sessions.NewToken()),
			Path:     "/",
			HttpOnly: true,
			Secure:   s.secure(r),
			SameSite: http.SameSiteLaxMode,
		})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	teaching := templates.Teaching{Lessons: s.cfg.Visitors.Lessons}
	c := s.connection(nil)
	if v != nil {
		teaching.Progress = v.Progress()
		teaching.Current = s.cfg.Visitors.CurrentLesson(v)
		c = s.connection(v)
	}
	templates.Playground(c, teaching).Render(r.Context(), w)
}

func (s *Server) connection(v *sessions.Visitor) templates.Connection {
	world := s.cfg.Visitors.World()
	account, password, _ := world.FirstLogin()
	var names []string
	for _, a := range world.Accounts() {
		names = append(names, a.Name)
	}
	c := templates.Connection{
		Account:  account,
		Password: password,
		Host:     s.cfg.PublicHost,
		Port:     s.cfg.PublicPort,
		Dialed:   s.cfg.POP3Addr,
		SMTPPort: s.cfg.SMTPPort,
		SMTPDial: s.cfg.SMTPAddr,
		Accounts: names,
	}
	if v != nil {
		c.Login, c.ID = v.PersonalLogin(account), v.ID
	}
	return c
}

// sessionInfo is the JSON of GET /api/session.
type sessionInfo struct {
	Login         string    `json:"login"`
	ID            string    `json:"id"`
	Account       string    `json:"account"`
	Password      string    `json:"password"`
	Host          string    `json:"host"`
	Port          int       `json:"port"`
	Accounts      []string  `json:"accounts"`
	Created       time.Time `json:"created"`
	SandboxFresh  time.Time `json:"sandbox_fresh"`
	SandboxAgeSec int64     `json:"sandbox_age_seconds"`
	Bridges       int       `json:"bridges"`
	// Handle and Pseudonym name the visitor on the organiser's page;
	// DisplayName is the name they gave it.
	Handle      string `json:"handle"`
	Pseudonym   string `json:"pseudonym"`
	DisplayName string `json:"display_name"`
	// Address is the personal mail address, when mail in is on.
	Address string `json:"address,omitempty"`
	// Help is the visitor's raised hand, if any.
	Help *sessions.Hand `json:"help,omitempty"`
}

func (s *Server) info(v *sessions.Visitor) sessionInfo {
	c := s.connection(v)
	port, _ := strconv.Atoi(c.Port)
	fresh := v.Sandbox.Fresh()
	si := sessionInfo{
		Login: c.Login, ID: c.ID, Account: c.Account, Password: c.Password,
		Host: c.Host, Port: port, Accounts: c.Accounts,
		Created: v.Created.UTC().Truncate(time.Second), SandboxFresh: fresh.UTC().Truncate(time.Second),
		SandboxAgeSec: int64(time.Since(fresh).Seconds()), Bridges: v.Bridges(),
		Handle: v.Handle, Pseudonym: v.Name(), DisplayName: v.DisplayName(),
	}
	if s.cfg.MailDomain != "" {
		si.Address = c.Login + "@" + s.cfg.MailDomain
	}
	if h, ok := v.Hand(); ok {
		si.Help = &h
	}
	return si
}

// handleSession describes the visitor's session, making it first if the
// page's cookie has none yet.
func (s *Server) handleSession(w http.ResponseWriter, r *http.Request) {
	v, err := s.visitorOrCreate(r)
	if err != nil {
		refuseJSON(w, err) // an API: JSON whatever the Accept header says
		return
	}
	writeJSON(w, http.StatusOK, s.info(v))
}

// handleReset gives the visitor a pristine sandbox. A form post is sent
// back to the page; a script asking for JSON gets the new session info.
func (s *Server) handleReset(w http.ResponseWriter, r *http.Request) {
	v := s.visitor(r)
	if v == nil {
		if wantsJSON(r) {
			jsonError(w, http.StatusUnauthorized, errNoCookie.Error())
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s.cfg.Visitors.Reset(v)
	s.cfg.Logger.Info("web: sandbox reset", "visitor", v.Name())
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, s.info(v))
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// lessonInfo is a lesson in GET /api/lessons.
type lessonInfo struct {
	ID      string   `json:"id"`
	Title   string   `json:"title"`
	Summary string   `json:"summary"`
	Steps   []string `json:"steps"`
	Done    int      `json:"done"`
	Current bool     `json:"current"` // the lesson the visitor is doing
}

// handleLessons lists the lessons and the visitor's progress in them.
func (s *Server) handleLessons(w http.ResponseWriter, r *http.Request) {
	v := s.sessionOr401(w, r)
	if v == nil {
		return
	}
	progress := v.Progress()
	current := s.cfg.Visitors.CurrentLesson(v)
	list := []lessonInfo{}
	for _, l := range s.cfg.Visitors.Lessons {
		li := lessonInfo{ID: l.ID, Title: l.Title, Summary: l.Summary, Done: progress[l.ID], Current: l.ID == current}
		for _, st := range l.Steps {
			li.Steps = append(li.Steps, st.Title)
		}
		list = append(list, li)
	}
	writeJSON(w, http.StatusOK, list)
}

// handleRestartLesson starts one lesson over for the visitor; the page
// hears of it on the event stream.
func (s *Server) handleRestartLesson(w http.ResponseWriter, r *http.Request) {
	s.withLesson(w, r, func(v *sessions.Visitor, l *sessions.Lesson) error { v.RestartLesson(l); return nil })
}

// handleStartLesson records that the visitor is doing this lesson now
// (they opened it): from now on only its steps tick.
func (s *Server) handleStartLesson(w http.ResponseWriter, r *http.Request) {
	s.withLesson(w, r, func(v *sessions.Visitor, l *sessions.Lesson) error { s.cfg.Visitors.StartLesson(v, l); return nil })
}

// handleRewindLesson takes the visitor back to before step N (form field
// "step", from 1): a step whose session has closed is done again from the
// step that opened it.
func (s *Server) handleRewindLesson(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<10)
	step, err := strconv.Atoi(r.PostFormValue("step"))
	if err != nil {
		jsonError(w, http.StatusBadRequest, "want step=N, the step to start again from")
		return
	}
	s.withLesson(w, r, func(v *sessions.Visitor, l *sessions.Lesson) error { return s.cfg.Visitors.RewindLesson(v, l, step) })
}

// withLesson runs do on the request's visitor and the lesson its {id}
// names, and answers the lesson's progress after it.
func (s *Server) withLesson(w http.ResponseWriter, r *http.Request, do func(*sessions.Visitor, *sessions.Lesson) error) {
	v := s.sessionOr401(w, r)
	if v == nil {
		return
	}
	id := chi.URLParam(r, "id")
	for _, l := range s.cfg.Visitors.Lessons {
		if l.ID == id {
			if err := do(v, l); err != nil {
				jsonError(w, http.StatusBadRequest, err.Error())
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"lesson": l.ID, "done": v.Progress()[l.ID], "steps": len(l.Steps)})
			return
		}
	}
	jsonError(w, http.StatusNotFound, "no lesson "+strconv.Quote(id))
}

// handleView shows a message as a mail client does: the page sends what
// RETR brought (dot-unstuffed) and gets the header decoded, its parts and
// its route. The HTML parts are for a sandboxed iframe only.
func (s *Server) handleView(w http.ResponseWriter, r *http.Request) {
	v := s.sessionOr401(w, r)
	if v == nil {
		return
	}
	release, err := s.views.enter(r.Context(), v)
	if err != nil {
		s.refused("view", err)
		w.Header().Set("Retry-After", "2")
		code := http.StatusServiceUnavailable
		if errors.Is(err, errViewBusy) {
			code = http.StatusTooManyRequests
		}
		jsonError(w, code, err.Error())
		return
	}
	defer release()
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, sessions.MaxViewSize))
	if err != nil {
		jsonError(w, http.StatusRequestEntityTooLarge, "the message is too large to view")
		return
	}
	view, err := s.cfg.Visitors.ViewMessage(raw)
	if err != nil {
		jsonError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	// HTML parts as they are: escaping < > & as \u003c would make an
	// HTML part's JSON six times its size (the response is JSON, nosniff).
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(view)
}

// handleName sets the name the visitor gives the organiser (form field
// "name"), shown beside their pseudonym on the admin page.
func (s *Server) handleName(w http.ResponseWriter, r *http.Request) {
	v := s.sessionOr401(w, r)
	if v == nil {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<10)
	if err := r.ParseForm(); err != nil {
		jsonError(w, http.StatusRequestEntityTooLarge, "a name is at most 40 characters")
		return
	}
	name := v.SetDisplayName(r.PostFormValue("name"))
	writeJSON(w, http.StatusOK, map[string]string{"display_name": name, "pseudonym": v.Name(), "handle": v.Handle})
}

// handleHelp raises the visitor's hand for the organiser (form field
// "note", an optional line), or lowers it ("lower" set). It answers the
// hand as it is now.
func (s *Server) handleHelp(w http.ResponseWriter, r *http.Request) {
	v := s.sessionOr401(w, r)
	if v == nil {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<10)
	if err := r.ParseForm(); err != nil {
		jsonError(w, http.StatusRequestEntityTooLarge, "a note is at most 140 characters")
		return
	}
	if r.PostFormValue("lower") != "" {
		v.LowerHand("you")
		writeJSON(w, http.StatusOK, map[string]any{"raised": false})
		return
	}
	h := v.RaiseHand(r.PostFormValue("note"))
	writeJSON(w, http.StatusOK, map[string]any{"raised": true, "note": h.Note, "since": h.Since})
}

// handleRestoreLessons gives the visitor the progress their browser
// remembers ({"lesson-id": steps done, ...}), where it is ahead of the
// server's: after a restart the server has forgotten it. It answers the
// lessons' progress now.
func (s *Server) handleRestoreLessons(w http.ResponseWriter, r *http.Request) {
	v := s.sessionOr401(w, r)
	if v == nil {
		return
	}
	var saved map[string]int
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&saved); err != nil {
		jsonError(w, http.StatusBadRequest, "want a JSON object of lesson IDs and steps done")
		return
	}
	s.cfg.Visitors.RestoreProgress(v, saved)
	progress := v.Progress()
	out := []map[string]any{}
	for _, l := range s.cfg.Visitors.Lessons {
		out = append(out, map[string]any{"id": l.ID, "done": progress[l.ID], "steps": len(l.Steps)})
	}
	writeJSON(w, http.StatusOK, out)
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
