package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/pires/go-proxyproto"
	"github.com/pop3playground/pop3playground/pop3/limit"
	"github.com/pop3playground/pop3playground/sessions"
)

// The SMTP listeners' edge, under go-smtp (which has no limits, PROXY
// listeners or drain of its own): as for POP3 (DESIGN §2), a public
// listener greets at once and refuses a PROXY header with words, and a
// proxied one (the bridge's, or --smtp-proxy-addr) requires one from a
// trusted peer before the greeting. An smtpGate bounds both together,
// overall and per client address, counting the client a header names.

// proxyHeaderTimeout bounds reading the header a proxied listener needs.
const proxyHeaderTimeout = 5 * time.Second

// An smtpGate admits the SMTP listeners' connections and drains them at
// shutdown.
type smtpGate struct {
	max, perIP int // 0: no limit
	count      limit.Counter

	mu       sync.Mutex
	conns    map[*smtpConn]struct{}
	draining atomic.Bool
}

func newSMTPGate(max, perIP int) *smtpGate {
	return &smtpGate{max: max, perIP: perIP, conns: make(map[*smtpConn]struct{})}
}

// admit counts a connection overall; refused, it returns the words why.
func (g *smtpGate) admit() (ok bool, why string) {
	if g.draining.Load() {
		return false, "421 4.3.2 the server is shutting down: try again in a minute"
	}
	if !g.count.Admit(g.max) {
		return false, "421 4.7.0 the server is full: try again later"
	}
	return true, ""
}

// claim counts an admitted connection under its client's address key.
func (g *smtpGate) claim(key string) (ok bool, why string) {
	if !g.count.Claim(key, g.perIP) {
		return false, "421 4.7.0 too many connections from your address: try again later"
	}
	return true, ""
}

// release undoes admit, and claim of key if not "".
func (g *smtpGate) release(key string) { g.count.Release(key) }

// open makes the connection go-smtp serves.
func (g *smtpGate) open(c net.Conn, r *bufio.Reader, remote net.Addr, key string, public bool) *smtpConn {
	sc := &smtpConn{Conn: c, r: r, remote: remote, gate: g, key: key, public: public, opened: time.Now(), watch: newReplyWatch()}
	g.mu.Lock()
	g.conns[sc] = struct{}{}
	g.mu.Unlock()
	if g.draining.Load() {
		sc.wake()
	}
	return sc
}

// drain refuses new connections and ends every session waiting for a
// command with 421 4.3.2; a DATA in progress may finish first.
func (g *smtpGate) drain() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.draining.Store(true)
	for c := range g.conns {
		c.wake()
	}
}

// refuse tells a connection why it is not served, and closes it.
func refuseSMTP(c net.Conn, why string) {
	c.SetWriteDeadline(time.Now().Add(time.Second))
	io.WriteString(c, why+"\r\n")
	c.Close()
}

// publicSMTP is a public SMTP listener: counted by the socket's address.
// The client lab's SMTP port is one too, with lab set: it holds the
// greeting back and meets each connection as the lab says.
type publicSMTP struct {
	net.Listener
	gate *smtpGate
	lab  *sessions.Visitors
}

func (l *publicSMTP) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if ok, why := l.gate.admit(); !ok {
			refuseSMTP(c, why)
			continue
		}
		key := limit.AddrKey(limit.Host(c.RemoteAddr().String()))
		if ok, why := l.gate.claim(key); !ok {
			l.gate.release("")
			refuseSMTP(c, why)
			continue
		}
		sc := l.gate.open(c, bufio.NewReaderSize(c, 4096), c.RemoteAddr(), key, true)
		if l.lab == nil {
			return sc, nil
		}
		sc.hold = l.lab.LabDelay
		meet := l.lab.LabSMTP(sc.remote)
		if meet.Refuse != "" {
			go refuseLab(sc, meet.Refuse)
			continue
		}
		if meet.Shape != nil {
			sc.ShapeReplies(meet.Shape)
		}
		return sc, nil
	}
}

// refuseLab answers a lab connection with its scenario's refusal for a
// greeting (421), when the greeting would have come, and closes it.
func refuseLab(sc *smtpConn, reply string) {
	sc.holdGreeting()
	sc.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	io.WriteString(sc.Conn, reply+"\r\n")
	sc.Close()
}

// proxiedSMTP is a proxied SMTP listener: each connection's PROXY header is
// read in a goroutine of its own, so that a slow proxy never holds up the
// others, and Accept hands over the connections that passed.
type proxiedSMTP struct {
	net.Listener
	gate    *smtpGate
	trusted []netip.Prefix

	start sync.Once
	ready chan net.Conn
	done  chan struct{}
	err   error // why the accept loop ended, once done is closed
}

func newProxiedSMTP(l net.Listener, gate *smtpGate, trusted []netip.Prefix) *proxiedSMTP {
	return &proxiedSMTP{Listener: l, gate: gate, trusted: trusted, ready: make(chan net.Conn), done: make(chan struct{})}
}

func (l *proxiedSMTP) Accept() (net.Conn, error) {
	l.start.Do(func() { go l.acceptLoop() })
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		return nil, l.err
	}
}

func (l *proxiedSMTP) acceptLoop() {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			l.err = err
			close(l.done)
			return
		}
		delay = 0
		go l.handshake(c)
	}
}

func (l *proxiedSMTP) trusts(a net.Addr) bool { return limit.Networks(l.trusted).ContainsAddr(a) }

// handshake reads the PROXY header and counts the client it names.
func (l *proxiedSMTP) handshake(c net.Conn) {
	if !l.trusts(c.RemoteAddr()) {
		refuseSMTP(c, "554 5.7.0 this port is for proxies that send a PROXY header, and you are not a trusted one: SMTP clients connect to the SMTP port")
		return
	}
	if ok, why := l.gate.admit(); !ok {
		refuseSMTP(c, why)
		return
	}
	c.SetReadDeadline(time.Now().Add(proxyHeaderTimeout))
	br := bufio.NewReaderSize(c, 4096)
	h, err := proxyproto.Read(br)
	if err != nil {
		l.gate.release("")
		if errors.Is(err, proxyproto.ErrNoProxyProtocol) || isTimeout(err) {
			refuseSMTP(c, "554 5.7.0 this port is for proxies and expects a PROXY protocol header first: SMTP clients connect to the SMTP port")
		} else {
			refuseSMTP(c, "554 5.7.0 bad PROXY header: "+err.Error())
		}
		return
	}
	c.SetReadDeadline(time.Time{})
	remote := c.RemoteAddr()
	if src, _, ok := h.TCPAddrs(); ok && h.Command.IsProxy() {
		remote = src
	}
	key := limit.AddrKey(limit.Host(remote.String()))
	if ok, why := l.gate.claim(key); !ok {
		l.gate.release("")
		refuseSMTP(c, why)
		return
	}
	sc := l.gate.open(c, br, remote, key, false)
	select {
	case l.ready <- sc:
	case <-l.done:
		sc.Close()
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// An smtpConn is one connection as go-smtp sees it: the client's address
// from the PROXY header if there was one; a bare-LF client's lines made
// CRLF; ended with 421 4.3.2 between commands when the server drains.
type smtpConn struct {
	net.Conn
	r      *bufio.Reader // what the client sent, past any PROXY header
	remote net.Addr
	gate   *smtpGate
	key    string
	public bool // refuse a PROXY header as the first octets

	started bool // the first octets were looked at
	lf      lfRewriter
	pending []byte // rewritten octets not yet read

	inData atomic.Bool // the session is reading a message (DATA)
	bareLF atomic.Bool // the client ended a line with LF alone
	lastCR bool        // the last octet read was CR

	shapeMu sync.Mutex
	shaped  io.Writer   // the replies' way out, once the lab shapes them
	tls     atomic.Bool // STARTTLS done: nothing may be written beside TLS
	once    sync.Once

	// For the client lab (smtpwatch.go): on a lab port the greeting is
	// held back hold after opened.
	opened     time.Time
	hold       time.Duration
	greeted    bool
	spokeFirst atomic.Bool
	watch      replyWatch
}

func (c *smtpConn) RemoteAddr() net.Addr { return c.remote }

// wake interrupts a read waiting for a command, for drain.
func (c *smtpConn) wake() {
	if !c.inData.Load() {
		c.Conn.SetReadDeadline(time.Now())
	}
}

func (c *smtpConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	if !c.started {
		c.started = true
		if c.public && c.startsWithProxyHeader() {
			c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			io.WriteString(c.Conn, "554 5.7.0 PROXY header refused: this port serves SMTP clients directly; a proxy in front of the server connects to its PROXY port\r\n")
			return 0, io.EOF
		}
	}
	for {
		if c.gate.draining.Load() && !c.inData.Load() {
			if !c.tls.Load() {
				c.once.Do(func() {
					c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
					io.WriteString(c.Conn, "421 4.3.2 the server is shutting down: send again in a minute\r\n")
				})
				return 0, io.EOF // go-smtp ends the session without a word more
			}
			// Inside TLS only go-smtp can write: it answers the timeout
			// with its own 421.
			c.Conn.SetReadDeadline(time.Now())
		}
		n, err := c.r.Read(p)
		if n == 0 && isTimeout(err) && c.gate.draining.Load() {
			if c.inData.Load() {
				// Woken just as DATA began: the message may finish.
				c.Conn.SetReadDeadline(time.Now().Add(smtpReadTimeout))
				continue
			}
			if !c.tls.Load() {
				continue // the 421 above
			}
		}
		if n > 0 && !c.inData.Load() && !c.tls.Load() && containsFold(p[:n], "STARTTLS") {
			c.tls.Store(true) // soon: a drain must not write beside TLS
		}
		if n > 0 && !c.tls.Load() {
			c.noteBareLF(p[:n])
			c.watch.client(p[:n])
		}
		if n > 0 && c.lf.active() {
			var out []byte
			out, c.pending = c.lf.rewrite(p[:n])
			n = copy(p, out)
		}
		return n, err
	}
}

// ShapeReplies makes the session's later replies go out through shape
// (the client lab's awkward scenarios, sessions.ReplyShaper).
func (c *smtpConn) ShapeReplies(shape func(io.Writer) io.Writer) {
	c.shapeMu.Lock()
	defer c.shapeMu.Unlock()
	c.shaped = shape(c.Conn)
}

func (c *smtpConn) Write(p []byte) (int, error) {
	if !c.greeted {
		c.greeted = true
		if c.hold > 0 {
			c.holdGreeting()
		}
	}
	if !c.tls.Load() {
		c.watch.server(p)
	}
	c.shapeMu.Lock()
	w := c.shaped
	c.shapeMu.Unlock()
	if w == nil {
		return c.Conn.Write(p)
	}
	return w.Write(p)
}

// containsFold reports whether b holds s, an upper-case ASCII word, in
// any case, without copying b.
func containsFold(b []byte, s string) bool {
	for i := 0; i+len(s) <= len(b); i++ {
		if b[i]|0x20 == s[0]|0x20 && bytes.EqualFold(b[i:i+len(s)], []byte(s)) {
			return true
		}
	}
	return false
}

// startsWithProxyHeader looks at the first octets the client sent.
func (c *smtpConn) startsWithProxyHeader() bool {
	if _, err := c.r.Peek(1); err != nil {
		return false
	}
	buf, _ := c.r.Peek(c.r.Buffered())
	return bytes.HasPrefix(buf, proxyproto.SIGV1) || bytes.HasPrefix(buf, proxyproto.SIGV2)
}

func (c *smtpConn) Close() error {
	c.gate.mu.Lock()
	_, open := c.gate.conns[c]
	delete(c.gate.conns, c)
	c.gate.mu.Unlock()
	if open {
		c.gate.release(c.key)
	}
	return c.Conn.Close()
}

// gatedBackend tells each connection when its session is in DATA, so
// that drain lets a message finish, and when it has started TLS.
type gatedBackend struct{ smtp.Backend }

func (b gatedBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	s, err := b.Backend.NewSession(c)
	if err != nil {
		return nil, err
	}
	nc := c.Conn()
	if tc, ok := nc.(interface{ NetConn() net.Conn }); ok {
		nc = tc.NetConn()
	}
	sc, ok := nc.(*smtpConn)
	if !ok {
		return s, nil
	}
	if _, isTLS := c.TLSConnectionState(); isTLS {
		sc.tls.Store(true)
	}
	return &markedSession{Session: s, c: sc}, nil
}

type markedSession struct {
	smtp.Session
	c *smtpConn
}

func (m *markedSession) Data(r io.Reader) error {
	m.c.inData.Store(true)
	defer m.c.inData.Store(false)
	return m.Session.Data(r)
}
