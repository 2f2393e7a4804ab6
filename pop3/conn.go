package pop3

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/pop3playground/pop3playground/pop3/limit"
)

// state is where a session is in the RFC 1939 §3 state machine.
type state int

const (
	stateAuthorization state = iota
	stateTransaction
	stateUpdate
)

func (s state) String() string {
	switch s {
	case stateAuthorization:
		return "AUTHORIZATION"
	case stateTransaction:
		return "TRANSACTION"
	default:
		return "UPDATE"
	}
}

// A connError means the connection cannot carry another reply: the client
// went away, a read timed out, or a reply was cut off half-way.
type connError struct{ err error }

func (e *connError) Error() string { return e.err.Error() }
func (e *connError) Unwrap() error { return e.err }

var (
	errLineTooLong = errors.New("line too long")
	errLineFlood   = errors.New("line too long, without end")
	errShutdown    = errors.New("server shutting down")
)

// conn is one POP3 session. It owns all of its state; nothing of it lives on
// the Server.
type conn struct {
	srv  *Server
	raw  net.Conn // as accepted: deadlines and Close go here
	in   countReader
	out  outWriter
	br   *bufio.Reader
	bw   *bufio.Writer
	info ConnInfo
	ip   string
	rem  string // info.RemoteAddr as a string, made once (remote)
	key  string // what MaxConnsPerIP counts this session under
	ctx  context.Context
	// proxy is the policy of a proxied listener (ServeProxied); nil on a
	// public one.
	proxy *proxyPolicy

	timestamp string // the APOP timestamp of the greeting

	state  state
	verb   string    // of the command being served, for events
	said   said      // what the next reply says, for its event
	before [4]string // room for info.Before
	user   string    // the name given by USER, then the logged-in user
	md     Maildrop
	count  int    // messages in the maildrop, fixed at login (RFC 1939 §5)
	size   int64  // their octets
	marks  marks  // for deletion
	note   string // from a Noter maildrop
	dw     dotWriter
	lb     []byte // the status line being built (status, send)
	lbuf   [256]byte

	// meet, on a port that tests clients, says how to meet this
	// connection before its login: prelude.
	meet    func(*ConnInfo) Prelude
	prelude Prelude
	// early: the next command's octets had arrived before the reply to
	// the one being served; pipelining: a CAPA reply listed PIPELINING.
	early, pipelining bool

	errors       int // lines in a row that were not commands
	authFailures int
	closing      bool
	probe        bool // a PROXY header with the LOCAL command: a proxy's health check

	// For the summary logged when the session ends.
	start     time.Time
	commands  int
	retrieved int
	removed   int
	end       string
}

func newConn(s *Server, rw net.Conn, proxy *proxyPolicy) *conn {
	c := &conn{srv: s, raw: rw, start: time.Now(), ctx: context.Background(), proxy: proxy}
	c.lb = c.lbuf[:0]
	c.info = ConnInfo{ID: s.IDBase + s.nextID.Add(1), RemoteAddr: rw.RemoteAddr(), LocalAddr: rw.LocalAddr()}
	c.ip = addrIP(rw.RemoteAddr())
	c.in.r = rw
	c.out = outWriter{w: rw, total: &s.bytesSent}
	if s.Trace != nil {
		c.out.trace = c.traceServer
	}
	c.br = readerPool.Get().(*bufio.Reader)
	c.br.Reset(&c.in)
	return c
}

func addrIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	return limit.Host(a.String())
}

// remote is the client's address as text.
func (c *conn) remote() string {
	if c.rem == "" {
		c.rem = c.info.RemoteAddr.String()
	}
	return c.rem
}

// interrupt wakes a session blocked waiting for a command (Shutdown).
func (c *conn) interrupt() { c.raw.SetReadDeadline(time.Now()) }

func (c *conn) serve() {
	defer c.releaseReader()
	defer c.srv.trackConn(c, false)
	defer c.lingeringClose()
	defer c.releaseWriter()
	defer func() {
		if r := recover(); r != nil {
			c.srv.Logger.Error("pop3: panic serving a session", "conn", c.info.ID, "panic", r, "stack", string(debug.Stack()))
			c.end = "internal error"
		}
		c.finish()
	}()

	c.raw.SetWriteDeadline(time.Now().Add(c.srv.WriteTimeout))
	if !c.handshake() || !c.admit() {
		return
	}
	defer func() { c.srv.release(c.key) }()
	_, isTLS := c.raw.(*tls.Conn)
	proxied := c.proxy != nil

	if c.meet != nil {
		c.prelude = c.meet(&c.info)
		c.holdGreeting(c.prelude.Delay)
	}
	c.timestamp = newTimestamp(c.srv.Hostname)
	greeting := "+OK " + c.srv.Greeting + " " + c.timestamp
	c.writeLine(greeting)
	c.emit(Event{Kind: EventConnected, Remote: c.remote()})
	c.said = said{kind: KindGreeting}
	c.emitReply(greeting)
	if !isTLS && !proxied {
		// A client may not choose its own address or TLVs.
		if err := c.flush(); err != nil {
			c.end = "write failed: " + err.Error()
			return
		}
		if !c.proxyResult(c.refuseProxyHeader()) {
			return
		}
	}
	for !c.closing {
		if !c.hasPipelinedLine() {
			if err := c.flush(); err != nil {
				c.end = "write failed: " + err.Error()
				return
			}
			c.releaseWriter()
		}
		line, err := c.readLine(c.srv.MaxLineLength)
		c.raw.SetWriteDeadline(time.Now().Add(c.srv.WriteTimeout))
		switch {
		case err == nil:
			c.noteUnwaited(line)
			c.commands++
			c.result(c.dispatch(line))
		case errors.Is(err, errLineTooLong):
			c.result(errorf(KindLineTooLong, "line too long: a command line is at most %d octets (RFC 2449 §4)", c.srv.MaxLineLength))
		default:
			c.readFailed(err)
		}
	}
	c.flush()
}

// holdGreeting waits d before the greeting, noting a client that sends
// something meanwhile (Prelude.Delay).
func (c *conn) holdGreeting(d time.Duration) {
	if d <= 0 {
		return
	}
	end := time.Now().Add(d)
	c.info.GreetingHeld = d
	c.raw.SetReadDeadline(end)
	if _, err := c.br.Peek(1); err == nil {
		c.info.SpokeFirst = true
		time.Sleep(time.Until(end))
	}
	c.raw.SetReadDeadline(time.Time{})
}

// noteUnwaited records a command that came before the reply to the one
// before it while PIPELINING was not advertised (ConnInfo.Unwaited), and
// whether the next one has come already.
func (c *conn) noteUnwaited(line string) {
	if c.early && !c.pipelining && len(c.info.Unwaited) < MaxBefore {
		verb, _, _ := strings.Cut(line, " ")
		c.info.Unwaited = append(c.info.Unwaited, strings.ToUpper(verb))
	}
	c.early = c.br.Buffered() > 0
}

// handshake finishes the TLS handshake of an implicit-TLS listener's
// connection; it reports whether the session goes on.
func (c *conn) handshake() bool {
	tc, ok := c.raw.(*tls.Conn)
	if !ok {
		return true
	}
	hctx, cancel := context.WithTimeout(c.ctx, tlsHandshakeTimeout)
	err := tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		c.end = "TLS handshake failed: " + err.Error()
		return false
	}
	st := tc.ConnectionState()
	c.info.TLS = &st
	return true
}

// admit counts the connection against the server's limits. Every
// connection counts from accept. On a proxied listener it counts per
// address once its PROXY header names the client, and is greeted only
// then, so that a refusal is the first thing the client hears. It
// reports whether the session goes on; if so, c.key is counted and the
// caller releases it.
func (c *conn) admit() bool {
	proxied := c.proxy != nil
	if proxied && !c.proxy.trusts(c.raw.RemoteAddr()) {
		c.proxyResult(errProxyUntrusted)
		return false
	}
	counted, ok, why := c.srv.admit(limit.AddrKey(c.ip), !proxied)
	if !c.refuse(ok, why) {
		return false
	}
	c.key = counted
	if !proxied {
		return true
	}
	ip, err := c.readProxyHeader()
	if !c.proxyResult(err) || !c.refuse(c.srv.claim(limit.AddrKey(ip))) {
		c.srv.release(c.key)
		return false
	}
	c.key = limit.AddrKey(ip)
	return true
}

// refuse ends a session a limit refused, with words; it reports ok.
func (c *conn) refuse(ok bool, why string) bool {
	if !ok {
		c.writeLine("-ERR [SYS/TEMP] " + why + "; try again later")
		c.flush()
		c.end = "refused: " + why
	}
	return ok
}

// proxyResult ends the session if looking for a PROXY header failed, and
// reports whether it goes on.
func (c *conn) proxyResult(err error) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, errProxyUntrusted):
		c.srv.refused[RefusedProxy].Add(1)
		c.writeLine(fmt.Sprintf("-ERR [SYS/PERM] this port is for proxies that send a PROXY header, and %s is not a trusted one: POP3 clients connect to the POP3 port", c.ip))
		c.end = "refused: " + err.Error()
	case errors.Is(err, errProxyHere):
		c.srv.refused[RefusedProxy].Add(1)
		c.writeLine("-ERR [SYS/PERM] PROXY header refused: this port serves POP3 clients directly; a proxy in front of the server connects to its PROXY port")
		c.end = "refused: " + err.Error()
	case errors.Is(err, errNoProxy):
		c.srv.refused[RefusedProxy].Add(1)
		c.writeLine("-ERR [SYS/PERM] this port is for proxies and expects a PROXY protocol header first: POP3 clients connect to the POP3 port")
		c.end = "refused: " + err.Error()
	case errors.Is(err, errBadProxy):
		c.srv.refused[RefusedProxy].Add(1)
		c.writeLine("-ERR [SYS/PERM] " + err.Error())
		c.end = err.Error()
	default:
		c.readFailed(err)
	}
	c.flush()
	return false
}

// newTimestamp returns a greeting timestamp for APOP (RFC 1939 §7), in the
// syntax of a msg-id, unique for every connection.
func newTimestamp(host string) string {
	var r [8]byte
	rand.Read(r[:])
	b := make([]byte, 0, 64+len(host))
	b = append(b, '<')
	b = hex.AppendEncode(b, r[:])
	b = append(b, '.')
	b = strconv.AppendInt(b, time.Now().Unix(), 10)
	b = append(b, '@')
	n := len(b)
	for i := 0; i < len(host); i++ {
		if c := host[i]; c > ' ' && c < 0x7f && c != '<' && c != '>' && c != '@' {
			b = append(b, c)
		}
	}
	if len(b) == n {
		b = append(b, "localhost"...)
	}
	return string(append(b, '>'))
}

// loginDeadline is when a session still in AUTHORIZATION is closed, or
// zero.
func (c *conn) loginDeadline() time.Time {
	if c.srv.LoginTimeout <= 0 || c.state != stateAuthorization {
		return time.Time{}
	}
	return c.start.Add(c.srv.LoginTimeout)
}

// loginOverdue reports whether the session has run out of time to log in.
func (c *conn) loginOverdue() bool {
	d := c.loginDeadline()
	return !d.IsZero() && !time.Now().Before(d)
}

// readFailed ends the session after a failed read, with a last word where
// the client can still hear it.
func (c *conn) readFailed(err error) {
	c.closing = true
	var ne net.Error
	switch {
	case errors.Is(err, errShutdown) || c.srv.inShutdown.Load() && errors.As(err, &ne) && ne.Timeout():
		c.sayErr(errorf(KindShutdown, "the server is shutting down; connect again in a moment"))
		c.end = "server shutdown"
	case errors.As(err, &ne) && ne.Timeout() && c.loginOverdue():
		c.srv.refused[RefusedLoginTimeout].Add(1)
		c.sayErr(errorf(KindLoginTime, "no login within %v of connecting, closing the connection; connect again and log in with USER and PASS", c.srv.LoginTimeout))
		c.end = "login timeout"
	case errors.As(err, &ne) && ne.Timeout():
		c.sayErr(errorf(KindAutologout, "autologout: no command for %v, closing the connection (RFC 1939 §3)", c.srv.IdleTimeout))
		c.end = "autologout"
	case errors.Is(err, errLineFlood):
		c.sayErr(errorf(KindLineFlood, "line too long and without end; closing the connection"))
		c.end = "line flood"
	case errors.Is(err, io.EOF):
		c.end = "client closed the connection"
	default:
		c.end = "read failed: " + err.Error()
	}
}

// logUser is how the log names user (Server.LogUser).
func (c *conn) logUser(user string) string {
	if c.srv.LogUser == nil || user == "" {
		return user
	}
	return c.srv.LogUser(user)
}

// finish releases the maildrop without deleting anything (a session that
// did not QUIT never reaches UPDATE, RFC 1939 §6) and logs the summary.
func (c *conn) finish() {
	if c.md != nil {
		if err := c.md.Close(); err != nil {
			c.srv.Logger.Error("pop3: releasing maildrop", "conn", c.info.ID, "user", c.logUser(c.user), "err", err)
		}
		c.md = nil
		c.emit(Event{Kind: EventLockReleased, User: c.user})
	}
	c.emit(Event{Kind: EventClosed, Reason: c.end})
	user := c.user
	if c.state == stateAuthorization {
		user = ""
	}
	// A proxy's health check (every few seconds, from every proxy) is
	// logged only when debugging, unless it sent a command.
	level := slog.LevelInfo
	if c.probe && c.commands == 0 {
		level = slog.LevelDebug
	}
	if !c.srv.Logger.Enabled(c.ctx, level) {
		return
	}
	c.srv.Logger.LogAttrs(c.ctx, level, "pop3 session",
		slog.Uint64("conn", c.info.ID), slog.String("remote", c.remote()), slog.String("user", c.logUser(user)),
		slog.Bool("tls", c.info.TLS != nil), slog.Int("commands", c.commands), slog.Int("retrieved", c.retrieved),
		slog.Int("deleted", c.removed), slog.Int64("bytes_in", c.in.n), slog.Int64("bytes_out", c.out.n),
		slog.Duration("duration", time.Since(c.start).Round(time.Millisecond)), slog.String("end", c.end))
}

// startTLS switches the connection to TLS after "+OK" to STLS.
func (c *conn) startTLS() error {
	// RFC 2595 §4, and CVE-2011-0411: whatever the client sent after STLS
	// came before the handshake, in plaintext; it must not be executed.
	c.br.Reset(&c.in)
	tc := tls.Server(c.raw, c.srv.TLSConfig)
	ctx, cancel := context.WithTimeout(c.ctx, tlsHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	st := tc.ConnectionState()
	c.info.TLS = &st
	c.in.r = tc
	c.out.w = tc
	c.br.Reset(&c.in)
	c.user = "" // RFC 2595 §4: forget what was said before
	return nil
}
