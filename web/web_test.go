package web_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/pop3/pop3test"
	"github.com/pop3playground/pop3playground/sessions"
	"github.com/pop3playground/pop3playground/static"
	"github.com/pop3playground/pop3playground/web"
)

var testWorld = sync.OnceValue(func() *sessions.World {
	w, err := sessions.DefaultWorld()
	if err != nil {
		panic(err)
	}
	return w
})

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

type env struct {
	pop3     *pop3.Server
	pop3Addr string // the public listener, for direct clients
	// bridgeAddr is the listener the bridge dials: PROXY headers required.
	bridgeAddr string
	visitors   *sessions.Visitors
	web        *web.Server
	http       *httptest.Server
}

type option func(*pop3.Server, *web.Config)

// newEnv runs the whole playground on loopback: a POP3 server trusting
// loopback PROXY headers, and the web server bridging to it.
func newEnv(t testing.TB, opts ...option) *env {
	t.Helper()
	return newEnvWorld(t, testWorld(), opts...)
}

// freshWorld is a world of its own, for a test that posts bulletins.
func freshWorld(t testing.TB) *sessions.World {
	w, err := sessions.DefaultWorld()
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func newEnvWorld(t testing.TB, world *sessions.World, opts ...option) *env {
	t.Helper()
	e := &env{visitors: sessions.NewVisitors(world)}
	lessons, err := sessions.BuiltinLessons()
	if err != nil {
		t.Fatal(err)
	}
	e.visitors.Lessons = sessions.WithoutMail(lessons) // withMail adds it back
	e.pop3 = pop3.NewServer(&sessions.Backend{World: world, Visitors: e.visitors})
	e.pop3.Observer = e.visitors
	e.pop3.AuthFailureDelay = time.Millisecond
	e.pop3.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cert, err := pop3.SelfSignedCertificate("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	e.pop3.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lb, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.pop3Addr, e.bridgeAddr = l.Addr().String(), lb.Addr().String()
	_, publicPort, _ := net.SplitHostPort(e.pop3Addr)
	cfg := web.Config{
		POP3Addr:   e.bridgeAddr,
		PublicPort: publicPort,
		PublicHost: "pop.example.org",
		Visitors:   e.visitors,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, o := range opts {
		o(e.pop3, &cfg)
	}
	served := make(chan struct{})
	go func() { e.pop3.Serve(l); close(served) }()
	go e.pop3.ServeProxied(lb, loopback)
	e.web = web.New(cfg)
	e.http = httptest.NewServer(e.web)
	t.Cleanup(func() {
		e.web.CloseStreams() // else Close waits for the browser to hang up
		e.http.Close()
		e.web.Close()
		e.pop3.Close()
		<-served
	})
	return e
}

// browser is one visitor: a cookie jar that has loaded the page.
type browser struct {
	t      testing.TB
	e      *env
	client *http.Client
	page   string
	tab    string // the page's name for itself, sent as /ws?tab=
}

func (e *env) visit(t testing.TB) *browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, e: e, client: &http.Client{Jar: jar}}
	resp, err := b.client.Get(e.http.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /: %s\n%s", resp.Status, body)
	}
	b.page = string(body)
	b.session() // as the page's script does: this makes the visitor
	return b
}

func (b *browser) session() map[string]any {
	b.t.Helper()
	resp, err := b.client.Get(b.e.http.URL + "/api/session")
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != http.StatusOK {
		b.t.Fatalf("GET /api/session: %s, %v", resp.Status, err)
	}
	return m
}

func (b *browser) reset() {
	b.t.Helper()
	req, _ := http.NewRequest("POST", b.e.http.URL+"/reset", nil)
	req.Header.Set("Origin", b.e.http.URL)
	req.Header.Set("Accept", "application/json")
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("POST /reset: %s", resp.Status)
	}
}

// term is a terminal: a WebSocket to /ws read as POP3 lines.
type term struct {
	t        testing.TB
	ws       *websocket.Conn
	nc       net.Conn
	r        *bufio.Reader
	greeting string
}

func (b *browser) dial(origin string) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	u := "ws" + strings.TrimPrefix(b.e.http.URL, "http") + "/ws"
	if b.tab != "" {
		u += "?tab=" + url.QueryEscape(b.tab)
	}
	return websocket.Dial(ctx, u,
		&websocket.DialOptions{HTTPClient: b.client, HTTPHeader: h})
}

// terminal opens a bridge and reads the greeting.
func (b *browser) terminal() *term {
	b.t.Helper()
	ws, _, err := b.dial(b.e.http.URL)
	if err != nil {
		b.t.Fatalf("WebSocket: %v", err)
	}
	nc := websocket.NetConn(context.Background(), ws, websocket.MessageBinary)
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	tm := &term{t: b.t, ws: ws, nc: nc, r: bufio.NewReader(nc)}
	b.t.Cleanup(func() { ws.CloseNow() })
	if tm.greeting = tm.line(); !strings.HasPrefix(tm.greeting, "+OK POP3") {
		g := tm.greeting
		b.t.Fatalf("greeting %q", g)
	}
	return tm
}

func (tm *term) line() string {
	tm.t.Helper()
	l, err := tm.r.ReadString('\n')
	if err != nil {
		tm.t.Fatalf("reading from the bridge: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

func (tm *term) cmd(line, want string) string {
	tm.t.Helper()
	if _, err := io.WriteString(tm.nc, line+"\r\n"); err != nil {
		tm.t.Fatal(err)
	}
	got := tm.line()
	if !strings.HasPrefix(got, want) {
		tm.t.Fatalf("%s: got %q, want %q", line, got, want)
	}
	return got
}

// body reads a multi-line reply's lines up to its "." line.
func (tm *term) body() []string {
	tm.t.Helper()
	var lines []string
	for l := tm.line(); l != "."; l = tm.line() {
		lines = append(lines, l)
	}
	return lines
}

func (tm *term) login() {
	tm.t.Helper()
	tm.cmd("USER guest", "+OK")
	tm.cmd("PASS visitor", "+OK")
}

// closeStatus waits for the server to close the WebSocket.
func (tm *term) closeStatus() (websocket.StatusCode, string) {
	tm.t.Helper()
	_, err := io.Copy(io.Discard, tm.r)
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		return websocket.CloseStatus(err), ""
	}
	return ce.Code, ce.Reason
}

func TestPage(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.http.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	h := resp.Header
	if !strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self'") ||
		!strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
		h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("security headers: %v", h)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == web.CookieName {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Secure || len(cookie.Value) != 64 {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax, 128 bits and a MAC", cookie)
	}
	// A bare GET / makes no visitor: the page's script does, through
	// /api/session; until then the page shows the login's shape.
	if n := e.visitors.Len(); n != 0 {
		t.Fatalf("GET / made %d visitors", n)
	}
	if !strings.Contains(string(body), `data-personal="login">guest.…<`) {
		t.Error("the page does not show the personal login's placeholder")
	}
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(e.http.URL)
	jar.SetCookies(u, []*http.Cookie{cookie})
	c := &http.Client{Jar: jar}
	resp, err = c.Get(e.http.URL + "/api/session")
	if err != nil {
		t.Fatal(err)
	}
	var info map[string]any
	json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	v := e.visitors.Get(cookie.Value[:32])
	if v == nil || info["id"] != v.ID || info["login"] != "guest."+v.ID {
		t.Fatalf("/api/session %v made visitor %v", info, v)
	}
	resp, err = c.Get(e.http.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	for _, want := range []string{
		`data-testid="personal-login"`,
		"guest." + v.ID,
		"pop.example.org",
		`data-dialed="` + e.bridgeAddr + `"`,
		`src="` + static.URL("app.js") + `"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// A JSON data block (the protocol tables) is data, not script: the
	// CSP's script-src does not apply to it.
	for _, m := range regexp.MustCompile(`<script(\s[^>]*)?>[^<]`).FindAllStringSubmatch(page, -1) {
		if !strings.Contains(m[1], `type="application/json"`) {
			t.Errorf("the page has inline script: %s", m[0])
		}
	}
	if strings.Contains(page, " on") && regexp.MustCompile(`\son[a-z]+=`).MatchString(page) {
		t.Error("the page has an inline event handler")
	}
	if !strings.Contains(page, `"verb":"RETR","body":"always"`) || !strings.Contains(page, `"5.7.1":`) {
		t.Error("the page lacks the protocol tables its script reads")
	}

	// Coming back with the cookie keeps the visitor.
	b := e.visit(t)
	first := b.session()["login"]
	b.visit()
	if got := b.session()["login"]; got != first {
		t.Errorf("second visit changed the login from %v to %v", first, got)
	}
}

func (b *browser) visit() {
	resp, err := b.client.Get(b.e.http.URL + "/")
	if err != nil {
		b.t.Fatal(err)
	}
	resp.Body.Close()
}

func TestSessionAPI(t *testing.T) {
	e := newEnv(t)
	resp, _ := http.Get(e.http.URL + "/api/session")
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a cookie: %s, want 401", resp.Status)
	}
	b := e.visit(t)
	s := b.session()
	_, port, _ := net.SplitHostPort(e.pop3Addr)
	if !regexp.MustCompile(`^guest\.[a-z2-7]{10}$`).MatchString(s["login"].(string)) ||
		s["password"] != "visitor" || s["host"] != "pop.example.org" || fmt.Sprint(s["port"]) != port {
		t.Errorf("session %v", s)
	}
	if _, ok := s["sandbox_age_seconds"]; !ok {
		t.Errorf("no sandbox age in %v", s)
	}
}

// The heart of it: what one visitor deletes, only that visitor sees gone.
func TestVisitorsAreIsolated(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.visit(t), e.visit(t)

	a := alice.terminal()
	a.login()
	a.cmd("DELE 1", "+OK")
	a.cmd("QUIT", "+OK")
	if code, reason := a.closeStatus(); code != web.CloseForeignHost {
		t.Errorf("after QUIT the WebSocket closed with %d %q, want %d", code, reason, web.CloseForeignHost)
	}

	b := bob.terminal()
	b.login()
	b.cmd("STAT", "+OK 7 ")

	a = alice.terminal()
	a.login()
	a.cmd("STAT", "+OK 6 ")
	a.cmd("QUIT", "+OK")

	alice.reset()
	a = alice.terminal()
	a.login()
	a.cmd("STAT", "+OK 7 ")
}

func TestPersonalLoginReachesTheSameSandbox(t *testing.T) {
	e := newEnv(t)
	alice := e.visit(t)
	login := alice.session()["login"].(string)

	a := alice.terminal()
	a.login()
	a.cmd("DELE 2", "+OK")

	conn, err := net.Dial("tcp", e.pop3Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	say := func(cmd string) string {
		if cmd != "" {
			io.WriteString(conn, cmd+"\r\n")
		}
		l, _ := r.ReadString('\n')
		return strings.TrimSpace(l)
	}
	say("")
	say("USER " + login)
	if got := say("PASS visitor"); !strings.HasPrefix(got, "-ERR [IN-USE]") {
		t.Errorf("while the browser holds the lock: %q, want [IN-USE]", got)
	}
	a.cmd("QUIT", "+OK")
	say("USER " + login)
	if got := say("PASS visitor"); !strings.HasPrefix(got, "+OK "+login+"'s maildrop has 6 messages") {
		t.Errorf("personal login after the browser's QUIT: %q", got)
	}
}

func TestWrongOriginIsRefused(t *testing.T) {
	e := newEnv(t)
	b := e.visit(t)
	_, resp, err := b.dial("https://evil.example")
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site WebSocket: %v, %v; want 403", resp, err)
	}
	if e.web.OpenBridges() != 0 {
		t.Error("a refused WebSocket opened a bridge")
	}
}

func TestAllowedOtherOrigin(t *testing.T) {
	e := newEnv(t, func(_ *pop3.Server, c *web.Config) { c.OriginPatterns = []string{"playground.example.org"} })
	b := e.visit(t)
	ws, _, err := b.dial("https://playground.example.org")
	if err != nil {
		t.Fatalf("an origin in OriginPatterns was refused: %v", err)
	}
	ws.CloseNow()
}

// refusedWith dials a terminal and returns the close code and reason the
// page would show: refusals reach the page as words, not an HTTP status
// a browser's WebSocket cannot read.
func (b *browser) refusedWith() (websocket.StatusCode, string) {
	b.t.Helper()
	ws, _, err := b.dial(b.e.http.URL)
	if err != nil {
		b.t.Fatalf("dial: %v", err)
	}
	defer ws.CloseNow()
	_, _, err = ws.Read(context.Background())
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		b.t.Fatalf("read: %v, want a close", err)
	}
	return ce.Code, ce.Reason
}

func TestBridgeNeedsASession(t *testing.T) {
	e := newEnv(t)
	b := &browser{t: t, e: e, client: &http.Client{}}
	if code, why := b.refusedWith(); code != web.CloseNoSession || !strings.Contains(why, "load the page") {
		t.Fatalf("no cookie: %d %q; want %d and words", code, why, web.CloseNoSession)
	}
}

func TestBridgesPerVisitorAreCapped(t *testing.T) {
	e := newEnv(t, func(_ *pop3.Server, c *web.Config) { c.MaxBridges = 2 })
	b := e.visit(t)
	t1, t2 := b.terminal(), b.terminal()
	if code, why := b.refusedWith(); code != web.CloseRefused || why != "you already have 2 terminals open: close one (or a tab) first" {
		t.Fatalf("third terminal: %d %q", code, why)
	}
	// Two tabs show the lock.
	t1.login()
	t2.cmd("USER guest", "+OK")
	t2.cmd("PASS visitor", "-ERR [IN-USE]")
	t1.ws.Close(websocket.StatusNormalClosure, "")
	// The bridge is gone, and the POP3 server has seen its session end
	// and let go of the lock (a dropped connection releases it).
	v := e.visitors.All()[0]
	pop3test.WaitFor(t, func() bool { return v.Bridges() == 1 && !v.Sandbox.InUse() })
	t3 := b.terminal()
	t3.login()
}

// A bridge pointed at the public listener by mistake is refused in words
// the page shows: the public listener never honours a PROXY header.
func TestProxyHeaderOnThePublicListenerIsRefused(t *testing.T) {
	e := newEnv(t, func(_ *pop3.Server, c *web.Config) { c.POP3Addr = net.JoinHostPort("127.0.0.1", c.PublicPort) })
	b := e.visit(t)
	ws, _, err := b.dial(e.http.URL)
	if err != nil {
		t.Fatal(err)
	}
	tm := &term{t: t, ws: ws, nc: websocket.NetConn(context.Background(), ws, websocket.MessageBinary)}
	tm.r = bufio.NewReader(tm.nc)
	tm.nc.SetDeadline(time.Now().Add(10 * time.Second))
	tm.line() // the greeting comes before the header is looked at
	if got := tm.line(); !strings.HasPrefix(got, "-ERR [SYS/PERM] PROXY header refused: this port serves POP3 clients directly") {
		t.Errorf("got %q, want the refusal", got)
	}
}

func TestUnreachablePOP3(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()
	e := newEnv(t, func(_ *pop3.Server, c *web.Config) { c.POP3Addr = closed })
	b := e.visit(t)
	ws, _, err := b.dial(e.http.URL)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = ws.Read(context.Background())
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != web.CloseConnectFailed || ce.Reason != "Connection refused" {
		t.Errorf("got %v, want close %d \"Connection refused\"", err, web.CloseConnectFailed)
	}
}

func TestOversizedMessageClosesTheBridge(t *testing.T) {
	e := newEnv(t, func(_ *pop3.Server, c *web.Config) { c.MaxMessage = 1024 })
	b := e.visit(t)
	tm := b.terminal()
	tm.ws.Write(context.Background(), websocket.MessageBinary, make([]byte, 4096))
	if code, _ := tm.closeStatus(); code != websocket.StatusMessageTooBig {
		t.Errorf("close status %d, want %d", code, websocket.StatusMessageTooBig)
	}
	pop3test.WaitFor(t, func() bool { return e.pop3.ActiveConns() == 0 && e.web.OpenBridges() == 0 })
}

func TestPipelinedPaste(t *testing.T) {
	e := newEnv(t)
	tm := e.visit(t).terminal()
	io.WriteString(tm.nc, "USER guest\r\nPASS visitor\r\nSTAT\r\nNOOP\r\n")
	for _, want := range []string{"+OK", "+OK guest's maildrop", "+OK 7 ", "+OK"} {
		if got := tm.line(); !strings.HasPrefix(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

func TestResetNeedsSameOrigin(t *testing.T) {
	e := newEnv(t)
	b := e.visit(t)
	a := b.terminal()
	a.login()
	a.cmd("DELE 1", "+OK")
	a.cmd("QUIT", "+OK")
	req, _ := http.NewRequest("POST", e.http.URL+"/reset", nil)
	req.Header.Set("Origin", "https://evil.example")
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin POST /reset: %s, want 403", resp.Status)
	}
	a = b.terminal()
	a.login()
	a.cmd("STAT", "+OK 6 ") // still deleted

	// A plain form post from the page is sent back to it.
	b.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, _ = http.NewRequest("POST", e.http.URL+"/reset", nil)
	req.Header.Set("Origin", e.http.URL)
	resp, _ = b.client.Do(req)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Errorf("form reset: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
}

func TestFullPlayground(t *testing.T) {
	e := newEnv(t)
	e.visitors.Max = 1
	e.visit(t)
	resp, err := http.Get(e.http.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(string(body), "The playground is full") {
		t.Errorf("second visitor: %s %q", resp.Status, body)
	}
}

func TestStaticAssets(t *testing.T) {
	e := newEnv(t)
	u := e.http.URL + static.URL("terminal.js")
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("hashed asset: %s %v", resp.Status, resp.Header)
	}
	// Unversioned (an ES module import): revalidated by ETag.
	req, _ := http.NewRequest("GET", e.http.URL+"/static/terminal.js", nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %s, want 304", resp.Status)
	}
	for _, p := range []string{"/static/nope.js", "/static/../go.mod", "/nope"} {
		resp, _ = http.Get(e.http.URL + p)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s, want 404", p, resp.Status)
		}
	}
	resp, _ = http.Get(e.http.URL + "/healthz")
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz: %s", resp.Status)
	}
}

// Nothing leaks: after many terminals opened and closed every way, the
// goroutines, descriptors, locks and bridges are as before.
func TestNoLeaksAfterManyBridges(t *testing.T) {
	e := newEnv(t)
	b := e.visit(t)
	warm := b.terminal()
	warm.login()
	warm.cmd("QUIT", "+OK")
	warm.closeStatus()
	settle(t, e)
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)

	for i := range 200 {
		// A dropped session holds the lock until the server notices.
		pop3test.WaitFor(t, func() bool { return e.pop3.ActiveConns() == 0 })
		tm := b.terminal()
		switch i % 4 {
		case 0: // the browser goes away mid-session
			tm.login()
			tm.ws.CloseNow()
		case 1: // a clean QUIT
			tm.login()
			tm.cmd("DELE 1", "+OK")
			tm.cmd("RSET", "+OK")
			tm.cmd("QUIT", "+OK")
			tm.closeStatus()
		case 2: // the browser closes politely before logging in
			tm.ws.Close(websocket.StatusNormalClosure, "")
		case 3: // the server ends it after errors
			for range 3 {
				io.WriteString(tm.nc, "BOGUS\r\n")
			}
			tm.ws.CloseNow()
		}
	}
	settle(t, e)
	if v := e.visitors.All()[0]; v.Bridges() != 0 || v.Sandbox.InUse() {
		t.Errorf("visitor holds %d bridges, lock held %v", v.Bridges(), v.Sandbox.InUse())
	}
	pop3test.WaitFor(t, func() bool { return runtime.NumGoroutine() <= goroutines+2 })
	if n := openFDs(t); n > fds+2 {
		t.Errorf("open descriptors: %d before, %d after 200 bridges", fds, n)
	}
	tm := b.terminal()
	tm.login()
	tm.cmd("STAT", "+OK 7 ")
}

func settle(t *testing.T, e *env) {
	t.Helper()
	pop3test.WaitFor(t, func() bool { return e.pop3.ActiveConns() == 0 && e.web.OpenBridges() == 0 })
	e.http.CloseClientConnections()
	http.DefaultClient.CloseIdleConnections()
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd here")
	}
	return len(ents)
}
