package web_test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/pop3/pop3test"
	"github.com/pop3playground/pop3playground/web"
)

// rawGet sends one request on a new connection and returns the status
// line, leaving the connection open (an event stream stays active).
func rawGet(t *testing.T, addr, path string, headers ...string) (net.Conn, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\n"
	for _, h := range headers {
		req += h + "\r\n"
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	status, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	c.SetDeadline(time.Time{})
	return c, strings.TrimSpace(status)
}

// With the web side's connections near their limit, ordinary requests
// get a polite 503 while health, readiness and metrics still answer from
// the reserve, and idle connections make room instead of locking anyone
// out.
func TestConnectionBudgetKeepsAReserve(t *testing.T) {
	e := newEnv(t)
	cfg := web.Config{
		POP3Addr: e.bridgeAddr, Visitors: e.visitors, MaxConns: 12, Reserve: 4,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	ws := web.New(cfg)
	srv := httptest.NewUnstartedServer(ws)
	srv.Listener = ws.Listener(srv.Listener)
	srv.Config.ConnState = ws.ConnState
	srv.Start()
	t.Cleanup(func() { ws.CloseStreams(); srv.Close(); ws.Close() })
	addr := srv.Listener.Addr().String()

	b := &browser{t: t, e: &env{http: srv, visitors: e.visitors}, client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
	jar := cookieFor(t, srv.URL, b)
	// Event streams are ordinary work: they fill the budget up to the
	// reserve, then are refused with words. (Filled twice: a connection
	// still closing when the first fill ended frees its place after.)
	streams := 0
	fill := func() {
		for range 12 {
			_, status := rawGet(t, addr, "/events", "Cookie: "+jar)
			switch {
			case strings.Contains(status, " 200 "):
				streams++
			case strings.Contains(status, " 503 "):
				return
			default:
				t.Fatalf("GET /events: %s", status)
			}
		}
		t.Fatal("the event streams were never refused")
	}
	fill()
	time.Sleep(100 * time.Millisecond)
	fill()
	// 12 less the reserve of 4 is 8 connections for ordinary work: 7
	// streams and the one refused.
	if streams != 7 {
		t.Fatalf("%d streams before the refusal, want 7", streams)
	}
	for path, want := range map[string]string{"/healthz": " 200 ", "/readyz": " 200 ", "/": " 503 ", "/api/session": " 503 "} {
		c, status := rawGet(t, addr, path, "Connection: close")
		c.Close()
		if !strings.Contains(status, want) {
			t.Errorf("GET %s with the budget spent: %q, want %q", path, status, want)
		}
	}
	// Idle connections up to the limit, and more: the oldest idle one is
	// closed to make room, so health still answers.
	var idle []net.Conn
	for range 8 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	time.Sleep(50 * time.Millisecond) // let the server accept them
	c, status := rawGet(t, addr, "/healthz", "Connection: close")
	c.Close()
	if !strings.Contains(status, " 200 ") {
		t.Errorf("GET /healthz with idle connections at the limit: %q", status)
	}
	evicted := 0
	for _, c := range idle {
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err == io.EOF {
			evicted++
		}
	}
	if evicted == 0 {
		t.Error("no idle connection was closed to make room")
	}
}

// cookieFor loads the page through b's client and returns the Cookie
// header value of the visitor it made.
func cookieFor(t *testing.T, base string, b *browser) string {
	t.Helper()
	resp, err := b.client.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == web.CookieName {
			// The page's script makes the visitor, as a browser does.
			req, _ := http.NewRequest("GET", base+"/api/session", nil)
			req.Header.Set("Cookie", c.Name+"="+c.Value)
			resp, err := b.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return c.Name + "=" + c.Value
		}
	}
	t.Fatal("no visitor cookie")
	return ""
}

// A bare GET / makes no visitor, however many come: the caps are for
// browsers that come back.
func TestCookielessRequestsMakeNoVisitor(t *testing.T) {
	e := newEnv(t, func(*pop3.Server, *web.Config) {})
	var wg sync.WaitGroup
	for i := range 500 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", e.http.URL+"/", nil)
			req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.%d.%d", i/250, i%250))
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if n := e.visitors.Len(); n != 0 {
		t.Errorf("500 cookie-less GET / made %d visitors", n)
	}
	// A cookie the server did not make is no visitor either.
	req, _ := http.NewRequest("GET", e.http.URL+"/api/session", nil)
	req.Header.Set("Cookie", web.CookieName+"="+strings.Repeat("ab", 32))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || e.visitors.Len() != 0 {
		t.Errorf("a forged cookie: %s, %d visitors", resp.Status, e.visitors.Len())
	}
}

// Where state can change, the Host must be this playground's: a page on
// another name resolving to us (DNS rebinding) cannot open the bridge.
func TestForeignHostIsRefused(t *testing.T) {
	e := newEnv(t)
	b := e.visit(t)
	for _, tc := range []struct {
		method, path, host string
		want               int
	}{
		{"POST", "/reset", "rebind.example", http.StatusMisdirectedRequest},
		{"GET", "/ws", "rebind.example", http.StatusMisdirectedRequest},
		{"GET", "/", "rebind.example", http.StatusOK}, // reading is harmless
		{"POST", "/reset", "pop.example.org", http.StatusOK},
		{"POST", "/reset", "localhost:8080", http.StatusOK},
		{"POST", "/reset", "127.0.0.1", http.StatusOK},
	} {
		req, _ := http.NewRequest(tc.method, e.http.URL+tc.path, nil)
		for _, c := range b.client.Jar.Cookies(req.URL) {
			req.AddCookie(c)
		}
		req.Host = tc.host
		req.Header.Set("Accept", "application/json")
		if tc.path == "/ws" {
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s with Host %s: %s, want %d", tc.method, tc.path, tc.host, resp.Status, tc.want)
		}
	}
}

// Every way of presenting the admin token shares one failed-attempt
// limiter; past it even the right token is refused unchecked, while an
// organiser already signed in keeps working. Failures are logged without
// the value tried.
func TestAdminGuessingIsLimited(t *testing.T) {
	var logged pop3test.SyncBuffer
	e := newEnv(t, withAdmin(prometheus.NewRegistry()), func(_ *pop3.Server, c *web.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logged, nil))
	})
	signedIn, code := e.organiser(t, adminToken)
	if code != http.StatusOK {
		t.Fatalf("sign-in: %d", code)
	}
	var retryAfter string
	get := func(path, header, value string) int {
		req, _ := http.NewRequest("GET", e.http.URL+path, nil)
		req.Header.Set(header, value)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		retryAfter = resp.Header.Get("Retry-After")
		return resp.StatusCode
	}
	for i := range 10 {
		switch i % 3 {
		case 0:
			if _, code := e.organiser(t, "guess-by-form"); code != http.StatusForbidden {
				t.Fatalf("wrong token %d by form: %d", i, code)
			}
		case 1:
			if code := get("/metrics", "Authorization", "Bearer guess-by-bearer"); code != http.StatusUnauthorized {
				t.Fatalf("wrong token %d as bearer: %d", i, code)
			}
		case 2:
			if code := get("/admin/api/state", "Cookie", web.AdminCookie+"=guess-by-cookie"); code != http.StatusUnauthorized {
				t.Fatalf("wrong cookie %d: %d", i, code)
			}
		}
	}
	if _, code := e.organiser(t, adminToken); code != http.StatusTooManyRequests {
		t.Errorf("the right token after 10 wrong ones from one address: %d, want 429", code)
	}
	if code := get("/metrics", "Authorization", "Bearer "+adminToken); code != http.StatusTooManyRequests || retryAfter == "" {
		t.Errorf("a bearer after 10 wrong ones: %d, Retry-After %q; want 429 with Retry-After, as /admin/api/state", code, retryAfter)
	}
	signedIn.state() // the organiser signed in before is not locked out
	if strings.Contains(logged.String(), "guess-by") {
		t.Error("a tried value was logged")
	}
	if n := strings.Count(logged.String(), "wrong admin token"); n != 10 {
		t.Errorf("%d failures logged, want 10", n)
	}
}

// Signing out ends the session on the server: a copy of the cookie no
// longer works.
func TestAdminSignOutRevokesTheCookie(t *testing.T) {
	e := newEnv(t, withAdmin(prometheus.NewRegistry()))
	o, _ := e.organiser(t, adminToken)
	u, _ := url.Parse(e.http.URL + "/admin")
	var copied string
	for _, c := range o.client.Jar.Cookies(u) {
		if c.Name == web.AdminCookie {
			copied = c.Value
		}
	}
	if len(copied) != 32 {
		t.Fatalf("admin cookie %q: want a random 128-bit ID", copied)
	}
	if code, _ := o.post("/admin/logout", nil); code != http.StatusOK {
		t.Fatalf("sign-out: %d", code)
	}
	req, _ := http.NewRequest("GET", e.http.URL+"/admin/api/state", nil)
	req.Header.Set("Cookie", web.AdminCookie+"="+copied)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the cookie after sign-out: %s, want 401", resp.Status)
	}
}

// A request body trickled in is cut off at BodyTimeout.
func TestTrickledBodyIsCutOff(t *testing.T) {
	e := newEnv(t, withAdmin(prometheus.NewRegistry()), func(_ *pop3.Server, c *web.Config) {
		c.BodyTimeout = 300 * time.Millisecond
	})
	c, err := net.Dial("tcp", e.http.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /admin/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ntoken=")
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 {
			if _, err := io.WriteString(c, "x"); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	c.SetReadDeadline(time.Now().Add(4 * time.Second))
	io.Copy(io.Discard, c) // until the server closes
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("a trickled body kept the connection %v", d)
	}
	c.Close()
	<-done
}

// One address holds at most MaxConnsPerIP connections; the next is told
// so in a whole 503 response, and others still get in.
func TestConnectionsPerAddressAreCapped(t *testing.T) {
	e := newEnv(t)
	ws := web.New(web.Config{POP3Addr: e.bridgeAddr, Visitors: e.visitors, MaxConnsPerIP: 3,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv := httptest.NewUnstartedServer(ws)
	srv.Listener = ws.Listener(srv.Listener)
	srv.Config.ConnState = ws.ConnState
	srv.Start()
	t.Cleanup(func() { srv.Close(); ws.Close() })
	for range 3 {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	// The fourth is answered at once, before it sends anything.
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	reply, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(reply), "HTTP/1.1 503 ") || !strings.HasSuffix(string(reply), "Too many connections from your address: close some, then try again") {
		t.Errorf("the fourth connection from one address: %q", reply)
	}
}
