package pop3

import (
	"bufio"
	"bytes"
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
	"sync"
	"sync/atomic"
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

// maxDiscard is how much of one overlong line is skipped before the
// connection is closed instead.
const maxDiscard = 64 << 10

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

	state state
	verb  string // of the command being served, for events
	said  said   // what the next reply says, for its event
	user  string // the name given by USER, then the logged-in user
	md    Maildrop
	count int    // messages in the maildrop, fixed at login (RFC 1939 §5)
	size  int64  // their octets
	marks marks  // for deletion
	note  string // from a Noter maildrop
	dw    dotWriter
	lb    []byte // the status line being built (status, send)
	lbuf  [256]byte

	errors       int // lines in a row that were not commands
	authFailures int
	closing      bool

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
	c.info = ConnInfo{ID: s.nextID.Add(1), RemoteAddr: rw.RemoteAddr(), LocalAddr: rw.LocalAddr()}
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

// readerPool holds the sessions' read buffers, from accept to close: a
// server that serves thousands of short sessions a second reuses them.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

func (c *conn) releaseReader() {
	c.br.Reset(nil)
	readerPool.Put(c.br)
	c.br = nil
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
	if tc, ok := c.raw.(*tls.Conn); ok {
		hctx, cancel := context.WithTimeout(c.ctx, tlsHandshakeTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			c.end = "TLS handshake failed: " + err.Error()
			return
		}
		st := tc.ConnectionState()
		c.info.TLS = &st
	}

	// Every connection counts from accept. On a proxied listener it
	// counts per address once its PROXY header names the client, and is
	// greeted only then, so that a refusal is the first thing the client
	// hears.
	_, isTLS := c.raw.(*tls.Conn)
	proxied := c.proxy != nil
	if proxied && !c.proxy.trusts(c.raw.RemoteAddr()) {
		c.proxyResult(errProxyUntrusted)
		return
	}
	counted, ok, why := c.srv.admit(limit.AddrKey(c.ip), !proxied)
	if !c.refuse(ok, why) {
		return
	}
	c.key = counted
	defer func() { c.srv.release(c.key) }()
	if proxied {
		ip, err := c.readProxyHeader()
		if !c.proxyResult(err) {
			return
		}
		if !c.refuse(c.srv.claim(limit.AddrKey(ip))) {
			return
		}
		c.key = limit.AddrKey(ip)
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

// lingeringClose sends FIN, then reads and discards what the client still
// sends for a moment before closing: closing a socket with unread input
// makes the kernel send RST, which can destroy the last reply before the
// client reads it.
func (c *conn) lingeringClose() {
	nc := c.raw
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	if tcp, ok := nc.(*net.TCPConn); ok && !c.srv.inShutdown.Load() {
		if tcp.CloseWrite() == nil {
			tcp.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			io.CopyN(io.Discard, tcp, 256<<10)
		}
	}
	c.raw.Close()
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

// hasPipelinedLine reports whether a whole command line is already buffered,
// so that replies to pipelined commands go out in one write (RFC 2449 §6.6).
func (c *conn) hasPipelinedLine() bool {
	n := c.br.Buffered()
	if n == 0 {
		return false
	}
	b, _ := c.br.Peek(n)
	return bytes.IndexByte(b, '\n') >= 0
}

func (c *conn) flush() error {
	if c.bw != nil {
		if err := c.bw.Flush(); err != nil {
			return err
		}
	}
	return c.out.err
}

// writerPool holds the sessions' write buffers: a session holds one only
// while it has replies to write, not while it waits for its client, so an
// idle session costs no write buffer. At 64 KiB most messages go out with
// their status line and terminating dot in one system call.
var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

// writer is the session's write buffer, taken from the pool if needed.
func (c *conn) writer() *bufio.Writer {
	if c.bw == nil {
		c.bw = writerPool.Get().(*bufio.Writer)
		c.bw.Reset(&c.out)
	}
	return c.bw
}

// releaseWriter gives the write buffer back once it is flushed.
func (c *conn) releaseWriter() {
	if c.bw != nil && c.bw.Buffered() == 0 {
		c.bw.Reset(nil)
		writerPool.Put(c.bw)
		c.bw = nil
	}
}

// readLine reads one line of at most limit octets, line end included, and
// returns it without the line end. A bare LF ends a line too (nc without -C).
func (c *conn) readLine(limit int) (string, error) {
	var deadline time.Time
	if c.srv.IdleTimeout > 0 {
		deadline = time.Now().Add(c.srv.IdleTimeout)
	}
	if login := c.loginDeadline(); !login.IsZero() && (deadline.IsZero() || login.Before(deadline)) {
		deadline = login
	}
	c.raw.SetReadDeadline(deadline)
	// Shutdown sets the flag, then the deadline: checking after setting
	// ours means one of the two always stops the read.
	if c.srv.inShutdown.Load() {
		return "", errShutdown
	}
	line, err := c.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		n := len(line)
		for err == bufio.ErrBufferFull && n < maxDiscard {
			line, err = c.br.ReadSlice('\n')
			n += len(line)
		}
		switch {
		case err == bufio.ErrBufferFull:
			c.traceClient(fmt.Sprintf("(%d octets without a line end)", n))
			return "", errLineFlood
		case err != nil:
			return "", err
		}
		c.traceClient(fmt.Sprintf("(line of %d octets)", n))
		return "", errLineTooLong
	}
	if err != nil {
		return "", err
	}
	if len(line) > limit {
		c.traceClient(fmt.Sprintf("(line of %d octets)", len(line)))
		return "", errLineTooLong
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	c.in.lines++
	return lineString(line), nil
}

// lineString is string(b), without an allocation for the commands that
// sessions send bare most often.
func lineString(b []byte) string {
	switch string(b) { // compiled without converting b
	case "STAT":
		return "STAT"
	case "LIST":
		return "LIST"
	case "UIDL":
		return "UIDL"
	case "NOOP":
		return "NOOP"
	case "RSET":
		return "RSET"
	case "QUIT":
		return "QUIT"
	case "CAPA":
		return "CAPA"
	}
	return string(b)
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

// result sends the -ERR reply for a command's error, in one place for all
// commands; nil means the command already replied +OK.
func (c *conn) result(err error) {
	if err == nil {
		c.errors = 0
		return
	}
	var ce *connError
	if errors.As(err, &ce) {
		c.readFailed(ce.err)
		return
	}
	var re *replyError
	if !errors.As(err, &re) {
		c.srv.Logger.Error("pop3: command failed", "conn", c.info.ID, "user", c.logUser(c.user), "err", err)
		re = errorf(KindSysTemp, "the server failed to do that; try again later").(*replyError)
	}
	if re.kind.junk() {
		c.errors++
	} else {
		c.errors = 0
	}
	switch {
	case re.close:
		c.closing = true
		c.end = re.text
	case c.srv.MaxErrors > 0 && c.errors >= c.srv.MaxErrors:
		text := re.text + fmt.Sprintf("; that is %d lines in a row that were not commands, closing the connection", c.errors)
		if n := c.marks.n; n > 0 {
			text += fmt.Sprintf(" without QUIT: the %s marked for deletion stay", plural(n, "message"))
		}
		re = &replyError{kind: re.kind, code: re.code, text: text}
		c.closing = true
		c.end = "too many errors"
	}
	c.sayErr(re)
}

// sayErr writes a -ERR reply, its response code from its kind, and
// reports it.
func (c *conn) sayErr(err error) {
	re := err.(*replyError)
	c.said = said{kind: re.kind}
	if re.code != "" {
		c.reply("-ERR [" + re.code + "] " + re.text)
	} else {
		c.reply("-ERR " + re.text)
	}
}

// logUser is how the log names user (Server.LogUser).
func (c *conn) logUser(user string) string {
	if c.srv.LogUser == nil || user == "" {
		return user
	}
	return c.srv.LogUser(user)
}

func (c *conn) writeLine(s string) {
	w := c.writer()
	w.WriteString(s)
	w.WriteString("\r\n")
}

// reply writes a status line and reports it to the Observer.
func (c *conn) reply(s string) {
	c.writeLine(s)
	c.emitReply(s)
}

// status starts a status line in the session's line buffer, for send.
func (c *conn) status(start string) []byte { return append(c.lb[:0], start...) }

// send writes a +OK status line built from status, and reports it.
// Replies on the paths every session takes are built this way, without
// fmt.
func (c *conn) send(b []byte) {
	c.lb = b[:0]
	w := c.writer()
	w.Write(b)
	w.WriteString("\r\n")
	c.emitOK(b)
}

// ok writes a single-line positive reply.
func (c *conn) ok(format string, args ...any) {
	line := "+OK"
	if format != "" {
		line += " " + fmt.Sprintf(format, args...)
	}
	c.reply(line)
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
	if !c.srv.Logger.Enabled(c.ctx, slog.LevelInfo) {
		return
	}
	c.srv.Logger.LogAttrs(c.ctx, slog.LevelInfo, "pop3 session",
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

// countReader counts the octets and lines read from the client.
type countReader struct {
	r     io.Reader
	n     int64
	lines int
}

func (r *countReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	return n, err
}

// outWriter counts the octets written to the client, remembers the first
// write error and passes what it writes to the trace.
type outWriter struct {
	w       io.Writer
	n       int64
	total   *atomic.Int64 // the server's
	err     error
	trace   func([]byte)
	partial []byte // the traced line so far
}

func (w *outWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.w.Write(p)
	w.n += int64(n)
	w.total.Add(int64(n))
	if w.trace != nil {
		w.trace(p[:n])
	}
	if err != nil {
		w.err = err
	}
	return n, err
}
