package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	netsmtp "net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/pires/go-proxyproto"

	"github.com/pop3playground/pop3playground/sessions"
)

// smtpEnv is the SMTP edge as the binary wires it: a public listener and
// a proxied one (the bridge's) behind one gate, delivering to visitors.
type smtpEnv struct {
	public, proxied string
	lab             string // the client lab's SMTP port
	visitors        *sessions.Visitors
	srv             *smtp.Server
	gate            *smtpGate
}

func startSMTP(t *testing.T, perIP int) *smtpEnv {
	t.Helper()
	w, err := sessions.DefaultWorld()
	if err != nil {
		t.Fatal(err)
	}
	e := &smtpEnv{visitors: sessions.NewVisitors(w), gate: newSMTPGate(50, perIP)}
	d := sessions.NewDelivery(e.visitors, "play.example")
	e.srv = newSMTPServer(&config{mailDomain: "play.example", smtpMaxSize: 1 << 20}, d, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	lp, lb, ll := listenLoopback(t), listenLoopback(t), listenLoopback(t)
	e.public, e.proxied, e.lab = lp.Addr().String(), lb.Addr().String(), ll.Addr().String()
	e.visitors.LabDelay = 200 * time.Millisecond
	go e.srv.Serve(&publicSMTP{Listener: lp, gate: e.gate})
	go e.srv.Serve(&publicSMTP{Listener: ll, gate: e.gate, lab: e.visitors})
	go e.srv.Serve(newProxiedSMTP(lb, e.gate, loopbackNets))
	t.Cleanup(func() { e.srv.Close() })
	return e
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// smtpClient is a line-level SMTP client.
type smtpClient struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

// dialSMTP connects, sends first (a PROXY header, say), and reads the
// first reply line.
func dialSMTP(t *testing.T, addr string, first []byte) (*smtpClient, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if len(first) > 0 {
		conn.Write(first)
	}
	c := &smtpClient{t: t, conn: conn, r: bufio.NewReader(conn)}
	return c, c.line()
}

func (c *smtpClient) line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	if err != nil {
		return "(closed: " + err.Error() + ")"
	}
	return strings.TrimRight(l, "\r\n")
}

// reply reads a whole reply, multi-line or not, and returns its last line.
func (c *smtpClient) reply() string {
	c.t.Helper()
	for {
		l := c.line()
		if len(l) < 4 || l[3] != '-' {
			return l
		}
	}
}

func (c *smtpClient) do(raw, want string) {
	c.t.Helper()
	io.WriteString(c.conn, raw)
	if got := c.reply(); !strings.HasPrefix(got, want) {
		c.t.Fatalf("after %q: %q, want %q", raw, got, want)
	}
}

func header(t *testing.T, src string) []byte {
	t.Helper()
	h := proxyproto.HeaderProxyFromAddrs(2, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)),
		net.TCPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:25")))
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A loopback client is greeted at once (a listener waiting for a PROXY
// header, 300 ms before, misses the deadline on every try), and a header
// sent there is refused with words.
func TestSMTPPublicListenerGreetsAtOnce(t *testing.T) {
	e := startSMTP(t, 10)
	greeted := false
	for try := 0; try < 3 && !greeted; try++ {
		conn, err := net.Dial("tcp", e.public)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		l, err := bufio.NewReader(conn).ReadString('\n')
		greeted = err == nil && strings.HasPrefix(l, "220 ")
		conn.Close()
	}
	if !greeted {
		t.Fatal("no 220 within 250 ms, three times: the public SMTP listener waits before greeting")
	}
	c, greeting := dialSMTP(t, e.public, header(t, "203.0.113.7:1"))
	if !strings.HasPrefix(greeting, "220 ") {
		t.Fatalf("greeting %q", greeting)
	}
	if got := c.line(); !strings.HasPrefix(got, "554 5.7.0 PROXY header refused: this port serves SMTP clients directly") {
		t.Errorf("a PROXY header on the public listener: %q", got)
	}
}

// The bridge's listener counts each terminal under the browser's address
// from its PROXY header: one address cannot take every slot, and another
// address still gets in.
func TestSMTPProxiedListenerCountsTheRealClient(t *testing.T) {
	e := startSMTP(t, 2)
	for i := range 2 {
		if _, g := dialSMTP(t, e.proxied, header(t, "203.0.113.7:1")); !strings.HasPrefix(g, "220 ") {
			t.Fatalf("terminal %d: %q", i+1, g)
		}
	}
	if _, g := dialSMTP(t, e.proxied, header(t, "203.0.113.7:2")); !strings.HasPrefix(g, "421 4.7.0 too many connections from your address") {
		t.Errorf("a third terminal from one address: %q, want 421 first", g)
	}
	if _, g := dialSMTP(t, e.proxied, header(t, "198.51.100.9:1")); !strings.HasPrefix(g, "220 ") {
		t.Errorf("another address: %q", g)
	}
	// Nothing but a header is served there.
	if _, g := dialSMTP(t, e.proxied, []byte("HELO me\r\n")); !strings.HasPrefix(g, "554 5.7.0 this port is for proxies and expects a PROXY protocol header first") {
		t.Errorf("no header on the proxied listener: %q", g)
	}
}

// A student typing into nc without -C ends DATA with "." and Enter; a
// client that sent CRLF before never ends it with a bare-LF dot line.
func TestSMTPBareLFClientFinishesAMessage(t *testing.T) {
	e := startSMTP(t, 10)
	v, err := e.visitors.New("192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	to := "guest." + v.ID + "@play.example"
	c, _ := dialSMTP(t, e.public, nil)
	c.do("HELO nc\n", "250 ")
	c.do("MAIL FROM:<student@example.org>\n", "250 ")
	c.do("RCPT TO:<"+to+">\n", "250 ")
	c.do("DATA\n", "354 ")
	c.do("Subject: typed by hand\n\n..a stuffed dot\nbye\n.\n", "250 ")
	c.do("QUIT\n", "221 ")
	if got := lastMessage(t, v); !strings.HasSuffix(got, "Subject: typed by hand\r\n\r\n.a stuffed dot\r\nbye\r\n") {
		t.Errorf("stored %q: want CRLF line ends and the dot unstuffed", got)
	}

	// Mixed input: <LF>.<LF> is not the end of the data.
	c, _ = dialSMTP(t, e.public, nil)
	c.do("HELO nc\r\nMAIL FROM:<student@example.org>\r\nRCPT TO:<"+to+">\r\nDATA\r\n", "250 ")
	c.reply()
	c.reply()
	if got := c.reply(); !strings.HasPrefix(got, "354 ") {
		t.Fatalf("DATA: %q", got)
	}
	io.WriteString(c.conn, "Subject: mixed\r\n\r\nsmuggled?\n.\nMAIL FROM:<x@example.org>\n")
	c.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if l, err := c.r.ReadString('\n'); err == nil {
		t.Errorf("after <LF>.<LF> in CRLF input the server answered %q: the data must go on", l)
	}
	c.conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c.conn, "\r\n.\r\n")
	if got := c.reply(); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("the data's end: %q", got)
	}
	// The bare LFs are line ends in what is stored: the "." line is text.
	if got := lastMessage(t, v); !strings.HasSuffix(got, "Subject: mixed\r\n\r\nsmuggled?\r\n.\r\nMAIL FROM:<x@example.org>\r\n\r\n") {
		t.Errorf("stored %q", got)
	}
}

// lastMessage is the newest message in v's guest maildrop.
func lastMessage(t *testing.T, v *sessions.Visitor) string {
	t.Helper()
	md, err := v.Sandbox.Open("guest")
	if err != nil {
		t.Fatal(err)
	}
	defer md.Close()
	n, _ := md.Stat()
	r, err := md.Open(n - 1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	return string(b)
}

// On shutdown a session waiting for a command is told 421 4.3.2 at once;
// one in DATA finishes its message, then is told the same.
func TestSMTPDrain(t *testing.T) {
	e := startSMTP(t, 10)
	v, err := e.visitors.New("192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	idle, _ := dialSMTP(t, e.public, nil)
	idle.do("EHLO idle\r\n", "250 ")
	busy, _ := dialSMTP(t, e.proxied, header(t, "203.0.113.7:1"))
	busy.do("HELO busy\r\n", "250 ")
	busy.do("MAIL FROM:<a@example.org>\r\n", "250 ")
	busy.do("RCPT TO:<guest."+v.ID+"@play.example>\r\n", "250 ")
	busy.do("DATA\r\n", "354 ")
	io.WriteString(busy.conn, "Subject: half\r\n\r\nthe first half\r\n")

	shut := make(chan error, 1)
	go func() {
		e.gate.drain()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- e.srv.Shutdown(ctx)
	}()
	if got := idle.line(); !strings.HasPrefix(got, "421 4.3.2 the server is shutting down") {
		t.Errorf("an idle session on shutdown: %q", got)
	}
	busy.do("the second half\r\n.\r\n", "250 ")
	if got := busy.line(); !strings.HasPrefix(got, "421 4.3.2") {
		t.Errorf("after its message: %q", got)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if c, err := net.Dial("tcp", e.public); err == nil {
		c.Close()
		t.Error("the listener still accepts after shutdown")
	}
}

func TestLFRewriter(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"HELO a\nMAIL FROM:<>\n", "HELO a\r\nMAIL FROM:<>\r\n"},
		{"HELO a\r\nx\n.\n", "HELO a\r\nx\n.\n"},                             // a CR: off for good
		{"HELO a\nSTARTTLS\n\x16\x03\n", "HELO a\r\nSTARTTLS\r\n\x16\x03\n"}, // TLS follows
		{"BDAT 3 LAST\na\nb", "BDAT 3 LAST\r\na\nb"},
	} {
		var w lfRewriter
		var got []byte
		for i := 0; i < len(tc.in); i += 3 { // in pieces, as reads come
			p := []byte(tc.in[i:min(i+3, len(tc.in))])
			if !w.active() {
				got = append(got, p...)
				continue
			}
			fits, rest := w.rewrite(p)
			got = append(append(got, fits...), rest...)
		}
		if string(got) != tc.want {
			t.Errorf("rewrite(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestContainsFold(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"STARTTLS\r\n", true}, {"ehlo a\r\nstartTLS\r\n", true}, {"START", false}, {"", false}, {"xSTARTTLx", false},
	} {
		if got := containsFold([]byte(tc.in), "STARTTLS"); got != tc.want {
			t.Errorf("containsFold(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// The client lab sees a bare LF from an SMTP client through the edge: the
// lines are made CRLF for go-smtp, and the card still says the client
// sent LF alone; a client that sends CRLF is not flagged.
func TestSMTPLabSeesBareLF(t *testing.T) {
	e := startSMTP(t, 10)
	for _, tc := range []struct {
		eol  string
		want string
	}{{"\n", sessions.LabFail}, {"\r\n", sessions.LabPass}} {
		v, err := e.visitors.New("192.0.2.1")
		if err != nil {
			t.Fatal(err)
		}
		v.Lab.Choose("smtp-plain")
		c, _ := dialSMTP(t, e.public, nil)
		c.do("HELO nc"+tc.eol, "250 ")
		c.do("MAIL FROM:<student@example.org>"+tc.eol, "250 ")
		c.do("RCPT TO:<lab."+v.ID+"@play.example>"+tc.eol, "250 ")
		c.do("DATA"+tc.eol, "354 ")
		c.do(strings.ReplaceAll("Subject: by nc\n\nhello\n.\n", "\n", tc.eol), "250 ")
		for _, ch := range v.Lab.Card().Checks {
			if ch.ID == "smtp-crlf" && ch.Status != tc.want {
				t.Errorf("line ends %q: smtp-crlf %s (%s), want %s", tc.eol, ch.Status, ch.Seen, tc.want)
			}
		}
	}
}

// The lab's awkward SMTP scenarios reach a real client through the edge:
// Go's net/smtp gets its replies slowly, or in pieces, and still delivers
// the test message as given.
func TestSMTPLabAwkwardReplies(t *testing.T) {
	e := startSMTP(t, 10)
	for _, sc := range []string{"smtp-split", "smtp-slow"} {
		t.Run(sc, func(t *testing.T) {
			v, err := e.visitors.New("192.0.2.1")
			if err != nil {
				t.Fatal(err)
			}
			v.Lab.Choose(sc)
			msg := "From: s@example.org\r\nDate: Sun, 6 Dec 2026 12:00:00 +0000\r\nSubject: lab\r\n\r\n" + sessions.LabSMTPBody
			start := time.Now()
			if err := netsmtp.SendMail(e.public, nil, "s@example.org", []string{"lab." + v.ID + "@play.example"}, []byte(msg)); err != nil {
				t.Fatalf("net/smtp: %v", err)
			}
			if sc == "smtp-slow" && time.Since(start) < 9*time.Second {
				t.Errorf("the slow replies took %v in all", time.Since(start))
			}
			for _, ch := range v.Lab.Card().Checks {
				if (ch.ID == "smtp-body" || ch.ID == "smtp-headers" || ch.ID == "smtp-crlf") && ch.Status != sessions.LabPass {
					t.Errorf("%s: %s (%s)", ch.ID, ch.Status, ch.Seen)
				}
			}
		})
	}
}
