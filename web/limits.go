package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pop3playground/pop3playground/pop3/limit"
	"github.com/pop3playground/pop3playground/sessions"
)

// Limits of the HTTP side that a stranger could otherwise push: open
// connections (each a file descriptor), request bodies, hosts, and guesses
// at the admin token (DESIGN §12).

var (
	// errDescriptors: the connection budget is spent.
	errDescriptors = errors.New("out of connections")
	// errAuthLimited: too many failed attempts at the admin token.
	errAuthLimited = errors.New("too many failed attempts at the admin token")
)

// connBudget counts the descriptors the web side holds: accepted HTTP
// connections (WebSockets and event streams among them) and the bridges'
// connections to the POP3 listener. Above max-reserve only the essential
// requests are served; at max a new connection gets a 503 and is closed.
type connBudget struct {
	max, reserve int64
	open         atomic.Int64

	// idle are the connections waiting for a request (new or kept
	// alive), by when they started waiting: at the limit the oldest is
	// closed to make room, so idle connections cannot lock anyone out.
	mu   sync.Mutex
	idle map[*budgetConn]time.Time
}

// evictIdle closes the connection idle longest, if any.
func (b *connBudget) evictIdle() bool {
	b.mu.Lock()
	var oldest *budgetConn
	var since time.Time
	for c, t := range b.idle {
		if oldest == nil || t.Before(since) {
			oldest, since = c, t
		}
	}
	delete(b.idle, oldest)
	b.mu.Unlock()
	if oldest == nil {
		return false
	}
	oldest.Close()
	return true
}

// ConnState tells the budget which connections wait for a request; set
// it as http.Server.ConnState with Listener.
func (s *Server) ConnState(c net.Conn, st http.ConnState) {
	bc, ok := c.(*budgetConn)
	if !ok {
		return
	}
	b := &s.budget
	b.mu.Lock()
	defer b.mu.Unlock()
	switch st {
	case http.StateNew, http.StateIdle:
		if b.idle == nil {
			b.idle = make(map[*budgetConn]time.Time)
		}
		b.idle[bc] = time.Now()
	default:
		delete(b.idle, bc)
	}
}

// DefaultReserve is how many connections are kept for health checks,
// metrics and the admin page when everything else is full.
const DefaultReserve = 32

// full reports whether ordinary work must be refused.
func (b *connBudget) full() bool {
	return b != nil && b.max > 0 && b.open.Load() >= b.max-b.reserve
}

// acquire takes one connection for ordinary work, if the budget allows.
func (b *connBudget) acquire() bool {
	if b == nil || b.max <= 0 {
		return true
	}
	if b.open.Add(1) > b.max-b.reserve {
		b.open.Add(-1)
		return false
	}
	return true
}

func (b *connBudget) release() {
	if b != nil && b.max > 0 {
		b.open.Add(-1)
	}
}

// DefaultMaxConnsPerIP bounds the HTTP connections from one address: a
// classroom of 200 behind one NAT, each with a page, a terminal and an
// event stream, and some to spare.
const DefaultMaxConnsPerIP = 800

// Listener wraps the HTTP listener so that every connection it accepts is
// counted against Config.MaxConns until closed. At MaxConns the connection
// idle longest is closed to make room; if none is idle, the new one is
// answered 503 and closed at once, before any request is read. The process
// never reaches its descriptor limit, so accept never fails. Set
// ConnState on the http.Server too.
func (s *Server) Listener(l net.Listener) net.Listener {
	if s.budget.max <= 0 && s.cfg.MaxConnsPerIP <= 0 {
		return l
	}
	return &budgetListener{Listener: l, b: &s.budget, s: s}
}

type budgetListener struct {
	net.Listener
	b *connBudget
	s *Server

	perKey limit.Counter // connections per client address (Claim only)
}

// admitAddr counts a connection from addr against Config.MaxConnsPerIP
// (not for trusted proxies, whose connections are many clients'); it
// returns the key to release, or false.
func (l *budgetListener) admitAddr(addr net.Addr) (string, bool) {
	max := l.s.cfg.MaxConnsPerIP
	ap, err := netip.ParseAddrPort(addr.String())
	if max <= 0 || err != nil || l.s.trusted(ap.Addr().Unmap()) {
		return "", true
	}
	key := limit.AddrKey(ap.Addr().Unmap().String())
	if !l.perKey.Claim(key, max) {
		return "", false
	}
	return key, true
}

func (l *budgetListener) releaseAddr(key string) {
	if key != "" {
		l.perKey.Unclaim(key)
	}
}

// overload is the whole reply to a connection past the budget.
var overload = plain503("The playground is out of connections: try again in a minute")

// plain503 is a whole HTTP 503 response with this text.
func plain503(text string) string {
	return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Retry-After: 30\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(len(text)) + "\r\n\r\n" + text
}

func (l *budgetListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key, ok := l.admitAddr(c.RemoteAddr())
		if !ok {
			l.s.refused("connection", errIPConns)
			refuseConn(c, overloadAddr)
			continue
		}
		if l.b.open.Add(1) > l.b.max && l.b.max > 0 && !l.b.evictIdle() {
			l.b.open.Add(-1)
			l.releaseAddr(key)
			l.s.refused("connection", errDescriptors)
			refuseConn(c, overload)
			continue
		}
		return &budgetConn{Conn: c, b: l.b, release: func() { l.releaseAddr(key) }}, nil
	}
}

// refuseConn answers a connection it cannot take with a whole HTTP
// response, and closes it.
func refuseConn(c net.Conn, reply string) {
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write([]byte(reply))
	c.Close()
}

// overloadAddr is the whole reply to a connection past MaxConnsPerIP.
var overloadAddr = plain503("Too many connections from your address: close some, then try again")

var errIPConns = errors.New("too many connections from one address")

type budgetConn struct {
	net.Conn
	b       *connBudget
	release func()
	once    sync.Once
}

func (c *budgetConn) Close() error {
	c.once.Do(func() {
		c.release()
		c.b.open.Add(-1)
		c.b.mu.Lock()
		delete(c.b.idle, c)
		c.b.mu.Unlock()
	})
	return c.Conn.Close()
}

// essential reports whether a request is one the reserve keeps for: the
// health checks, metrics and the organiser's page.
func essential(r *http.Request) bool {
	p := r.URL.Path
	return p == "/healthz" || p == "/readyz" || p == "/metrics" || p == "/admin" || strings.HasPrefix(p, "/admin/")
}

// DefaultBodyTimeout bounds reading a request body: a client trickling a
// body keeps a connection for no longer than this.
const DefaultBodyTimeout = 10 * time.Second

// guard is the first middleware: it refuses ordinary requests when the
// connection budget is spent, requests with a foreign Host where state
// could change, and gives request bodies a read deadline.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.budget.full() && !essential(r) {
			s.refused("request", errDescriptors)
			w.Header().Set("Retry-After", "30")
			w.Header().Set("Connection", "close")
			if strings.Contains(r.Header.Get("Accept"), "text/html") {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				w.WriteHeader(http.StatusServiceUnavailable)
				fullPage(w, r, "The playground is out of connections right now. Please try again in a minute.")
				return
			}
			http.Error(w, "the playground is out of connections right now: try again in a minute", http.StatusServiceUnavailable)
			return
		}
		if changesState(r) && !s.cfg.AnyHost && !s.hostOK(r.Host) {
			s.refused("request", errForeignHost)
			http.Error(w, "421 misdirected request: this playground does not serve the host "+limit.Host(r.Host)+
				" (its organiser can add it with --public-host or --origins)", http.StatusMisdirectedRequest)
			return
		}
		if r.ContentLength != 0 && r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout))
		}
		next.ServeHTTP(w, r)
	})
}

var errForeignHost = errors.New("foreign Host")

// changesState reports whether a request could change state or open a
// terminal: everything but plain GET and HEAD, and the WebSocket.
func changesState(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return true
	}
	return r.URL.Path == "/ws" || strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// hostOK reports whether the Host header names this instance: an address
// literal (DNS rebinding needs a name), localhost, the public host, the
// host it listens on, or one of the allowed origins. A page on another
// name that resolves to us (DNS rebinding) gets 421.
func (s *Server) hostOK(hostport string) bool {
	h := strings.ToLower(strings.TrimSuffix(limit.Host(hostport), "."))
	if h == "" {
		return false
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	for _, p := range s.hosts {
		if ok, _ := path.Match(p, h); ok {
			return true
		}
	}
	return false
}

// authLimiter counts failed attempts at the admin token, however it was
// presented (form, cookie, bearer): per address and overall. A success
// costs nothing, so an organiser with a session is never locked out.
type authLimiter struct {
	perAddr, overall limit.RateLimiter
	// store, with replicas, keeps the counts for all of them; the
	// limiters above stand in while it does not answer.
	store sessions.Store
}

// The admin token's guess limits: ten tries, then one a minute from one
// address; a hundred, then five a second overall.
const (
	guessRate, guessBurst       = 1.0 / 60, 10
	allGuessRate, allGuessBurst = 5, 100
)

func newAuthLimiter() *authLimiter {
	return &authLimiter{
		// Ten tries, then one a minute from one address; a hundred, then
		// five a second overall: guessing a 128-bit token stays hopeless
		// and the log stays readable.
		perAddr: limit.RateLimiter{Rate: guessRate, Burst: guessBurst},
		overall: limit.RateLimiter{Rate: allGuessRate, Burst: allGuessBurst},
	}
}

// limited reports whether an attempt from key must be refused unchecked.
func (a *authLimiter) limited(key string, now time.Time) bool {
	if a.store != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		one, err1 := a.store.Bucket(ctx, "admin-guess:"+key, guessRate, guessBurst, false)
		all, err2 := a.store.Bucket(ctx, "admin-guess", allGuessRate, allGuessBurst, false)
		if err1 == nil && err2 == nil {
			return !one || !all
		}
	}
	return !a.perAddr.Peek(key, now) || !a.overall.Peek("", now)
}

// failed counts a failed attempt.
func (a *authLimiter) failed(key string, now time.Time) {
	a.perAddr.Allow(key, now)
	a.overall.Allow("", now)
	if a.store != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		a.store.Bucket(ctx, "admin-guess:"+key, guessRate, guessBurst, true)
		a.store.Bucket(ctx, "admin-guess", allGuessRate, allGuessBurst, true)
	}
}

// adminSessions are the organisers signed in: random IDs held by the
// server, expiring, deleted at sign-out.
type adminSessions struct {
	mu  sync.Mutex
	ids map[string]time.Time // ID → expiry
	// store, with replicas, holds the sign-ins of all of them; ids is
	// then what this replica has seen.
	store sessions.Store
}

// adminSessionTTL is how long a sign-in lasts.
const adminSessionTTL = 12 * time.Hour

// maxAdminSessions bounds the sessions held; the oldest goes first.
const maxAdminSessions = 64

func (a *adminSessions) create(now time.Time) string {
	var b [16]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ids == nil {
		a.ids = make(map[string]time.Time)
	}
	for k, exp := range a.ids {
		if now.After(exp) {
			delete(a.ids, k)
		}
	}
	if len(a.ids) >= maxAdminSessions {
		var oldest string
		for k, exp := range a.ids {
			if oldest == "" || exp.Before(a.ids[oldest]) {
				oldest = k
			}
		}
		delete(a.ids, oldest)
	}
	a.ids[id] = now.Add(adminSessionTTL)
	if a.store != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		a.store.AdminSession(ctx, id, adminSessionTTL)
	}
	return id
}

func (a *adminSessions) valid(id string, now time.Time) bool {
	a.mu.Lock()
	exp, ok := a.ids[id]
	a.mu.Unlock()
	if a.store == nil || len(id) != 32 {
		return ok && now.Before(exp)
	}
	// With replicas, every request asks the store: a sign-out on one
	// replica ends the session on all of them.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	held, err := a.store.AdminSession(ctx, id, -1)
	if err != nil {
		return ok && now.Before(exp) // the store down: what this replica saw
	}
	return held
}

func (a *adminSessions) remove(id string) {
	a.mu.Lock()
	delete(a.ids, id)
	a.mu.Unlock()
	if a.store != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		a.store.AdminSession(ctx, id, 0)
	}
}
