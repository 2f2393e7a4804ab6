package pop3

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pop3playground/pop3playground/pop3/limit"
)

// Defaults of a Server made by NewServer.
const (
	// RFC 1939 §3: an autologout timer MUST be of at least 10 minutes.
	DefaultIdleTimeout = 10 * time.Minute
	// RFC 2449 §4: a command line is at most 255 octets, CRLF included.
	DefaultMaxLineLength    = 255
	DefaultMaxErrors        = 10
	DefaultMaxAuthFailures  = 3
	DefaultAuthFailureDelay = time.Second
	DefaultWriteTimeout     = time.Minute
	DefaultLoginTimeout     = time.Minute
	// How long a client may take to finish a TLS handshake.
	tlsHandshakeTimeout = 30 * time.Second
	// A SASL response line may be longer than a command (RFC 5034 §4 only
	// bounds the AUTH command with its initial response).
	maxSASLLineLength = 4096
)

// A Server serves POP3 on the listeners given to Serve and ServeTLS.
// Make one with NewServer, set its fields, then serve; fields must not be
// changed while it serves.
type Server struct {
	Backend Backend
	// Hostname is used in the greeting's APOP timestamp.
	Hostname string
	// Greeting is the text of the greeting after "+OK ".
	Greeting string
	// Implementation is announced by CAPA IMPLEMENTATION; empty hides it.
	Implementation string
	// TLSConfig enables STLS and is used by ServeTLS.
	TLSConfig *tls.Config

	// IdleTimeout is the autologout timer: a session that sends no command
	// for this long is closed (RFC 1939 §3). Zero means no timer.
	IdleTimeout time.Duration
	// WriteTimeout bounds one reply's write to a slow reader.
	WriteTimeout time.Duration
	// MaxLineLength bounds a command line, CRLF included.
	MaxLineLength int
	// MaxErrors is how many lines in a row that are not commands (unknown
	// verbs, control characters, overlong lines) close the session. A
	// well-formed command refused (a message number out of range, the
	// wrong state) breaks no streak: a student overshooting is no attack.
	MaxErrors int
	// MaxAuthFailures is how many failed logins close the session.
	MaxAuthFailures int
	// AuthFailureDelay delays the reply to the first failed login; each
	// further failure in the session doubles it.
	AuthFailureDelay time.Duration
	// MaxConns and MaxConnsPerIP bound the sessions served at once, overall
	// and from one client address (IPv6 by /64, limit.AddrKey); zero means no
	// limit. A connection counts from the moment it is accepted; one
	// refused is told so with -ERR [SYS/TEMP] before anything else.
	MaxConns      int
	MaxConnsPerIP int
	// LoginTimeout closes a session that has not logged in this long
	// after it connected, whatever it sends meanwhile. Zero means none.
	LoginTimeout time.Duration
	// IDBase is added to every connection's number (ConnInfo.ID), so
	// that replicas sharing a store number connections apart: each is
	// given a base of its own. Zero numbers them from 1.
	IDBase uint64
	// Observer, if set, is told every session's events.
	Observer Observer

	// Logger receives the one-line summary of every session and errors.
	Logger *slog.Logger
	// LogUser, if set, is how the log names a user: a name that is a
	// credential in part (a personal login) can be logged as a pseudonym.
	LogUser func(user string) string
	// Trace, if set, receives every line exchanged as JSON lines, with
	// passwords and SASL responses masked.
	Trace io.Writer

	traceMu   sync.Mutex
	nextID    atomic.Uint64
	bytesSent atomic.Int64
	refused   [numRefusals]atomic.Int64

	count limit.Counter // sessions admitted, and per client address

	mu         sync.Mutex
	listeners  map[*net.Listener]struct{}
	conns      map[*conn]struct{}
	closed     bool
	inShutdown atomic.Bool
	shutdownCh chan struct{} // closed when Shutdown or Close starts
	connWG     sync.WaitGroup
}

// NewServer returns a Server for be with the default limits.
func NewServer(be Backend) *Server {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return &Server{
		Backend:          be,
		Hostname:         host,
		Greeting:         "POP3 server ready",
		IdleTimeout:      DefaultIdleTimeout,
		WriteTimeout:     DefaultWriteTimeout,
		MaxLineLength:    DefaultMaxLineLength,
		MaxErrors:        DefaultMaxErrors,
		MaxAuthFailures:  DefaultMaxAuthFailures,
		AuthFailureDelay: DefaultAuthFailureDelay,
		LoginTimeout:     DefaultLoginTimeout,
		Logger:           slog.Default(),
	}
}

// ListenAndServe listens on the TCP address addr and serves POP3 on it.
func (s *Server) ListenAndServe(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(l)
}

// ServeTLS serves POP3 over implicit TLS (port 995 style, RFC 8314) on l,
// with s.TLSConfig.
func (s *Server) ServeTLS(l net.Listener) error {
	if s.TLSConfig == nil {
		l.Close()
		return errors.New("pop3: ServeTLS needs a TLSConfig")
	}
	return s.Serve(tls.NewListener(l, s.TLSConfig))
}

// Serve accepts connections on l and serves each in its own goroutine: a
// public listener, which greets every client at once and refuses a PROXY
// header. It always returns a non-nil error and closes l; after Close or
// Shutdown the error is ErrServerClosed.
func (s *Server) Serve(l net.Listener) error { return s.serve(l, nil, nil) }

// ServePrelude serves POP3 on l, a port that tests the clients it serves
// (a client lab's): meet says, for each connection admitted, how to meet
// it before its login. The other ports greet at once, and their sessions
// share the Server's connection numbers and limits with these.
func (s *Server) ServePrelude(l net.Listener, meet func(*ConnInfo) Prelude) error {
	return s.serve(l, nil, meet)
}

// ServeProxied serves POP3 on l for proxies (HAProxy, nginx, the web
// bridge): every connection must come from one of the trusted networks and
// begin with a PROXY protocol header (v1 or v2), read without a timer
// guessing whether one comes. The header's client address replaces the
// proxy's, for the log and for MaxConnsPerIP, and its TLVs reach the
// Backend in ConnInfo. Anything else is refused with words.
func (s *Server) ServeProxied(l net.Listener, trusted []netip.Prefix) error {
	return s.serve(l, &proxyPolicy{trusted: trusted}, nil)
}

func (s *Server) serve(l net.Listener, proxy *proxyPolicy, meet func(*ConnInfo) Prelude) error {
	if s.Backend == nil {
		l.Close()
		return errors.New("pop3: Server has no Backend")
	}
	if !s.trackListener(&l, true) {
		l.Close()
		return ErrServerClosed
	}
	defer s.trackListener(&l, false)
	defer l.Close()

	var delay time.Duration // how long to sleep on accept failure
	for {
		rw, err := l.Accept()
		if err != nil {
			if s.inShutdown.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) {
				// Out of descriptors, or a transient failure: back off as
				// net/http does instead of spinning.
				if delay == 0 {
					delay = 5 * time.Millisecond
				} else if delay *= 2; delay > time.Second {
					delay = time.Second
				}
				s.Logger.Warn("pop3: accept failed; retrying", "err", err, "delay", delay)
				select {
				case <-time.After(delay):
				case <-s.shutdown():
				}
				continue
			}
			return err
		}
		delay = 0
		c := newConn(s, rw, proxy)
		c.meet = meet
		if !s.trackConn(c, true) {
			rw.Close()
			return ErrServerClosed
		}
		go c.serve()
	}
}

// shutdown returns a channel closed when Shutdown or Close begins.
func (s *Server) shutdown() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutdownChLocked()
}

func (s *Server) shutdownChLocked() chan struct{} {
	if s.shutdownCh == nil {
		s.shutdownCh = make(chan struct{})
	}
	return s.shutdownCh
}

func (s *Server) trackListener(l *net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listeners == nil {
		s.listeners = make(map[*net.Listener]struct{})
	}
	if add {
		if s.closed {
			return false
		}
		s.listeners[l] = struct{}{}
	} else {
		delete(s.listeners, l)
	}
	return true
}

func (s *Server) trackConn(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
	}
	if add {
		if s.closed {
			return false
		}
		s.conns[c] = struct{}{}
		s.connWG.Add(1)
	} else {
		delete(s.conns, c)
		s.connWG.Done()
	}
	return true
}

// Why a connection was refused or cut short, for Refused.
const (
	RefusedFull         = iota // MaxConns
	RefusedPerAddress          // MaxConnsPerIP
	RefusedProxy               // a PROXY header from an untrusted address, or a bad one
	RefusedLoginTimeout        // no login within LoginTimeout
	numRefusals
)

// Refused is how many connections were refused (or closed) for reason,
// one of the Refused constants.
func (s *Server) Refused(reason int) int64 { return s.refused[reason].Load() }

// admit counts a session at accept against MaxConns and, if check, under
// key against MaxConnsPerIP; it returns the key counted ("" if none). A
// proxied listener's connection (check false) is counted per address once
// its PROXY header names the client: claim does that.
func (s *Server) admit(key string, check bool) (counted string, ok bool, why string) {
	if !s.count.Admit(s.MaxConns) {
		s.refused[RefusedFull].Add(1)
		return "", false, "the server is full"
	}
	if !check {
		return "", true, ""
	}
	if ok, why := s.claim(key); !ok {
		s.count.Release("")
		return "", false, why
	}
	return key, true, ""
}

// claim counts an admitted session under key, if key has room.
func (s *Server) claim(key string) (ok bool, why string) {
	if !s.count.Claim(key, s.MaxConnsPerIP) {
		s.refused[RefusedPerAddress].Add(1)
		return false, "too many connections from your address"
	}
	return true, ""
}

// release undoes admit, and claim for key if not "".
func (s *Server) release(key string) { s.count.Release(key) }

// Close closes every listener and every connection at once. Sessions end
// without entering UPDATE: nothing marked for deletion is deleted.
func (s *Server) Close() error {
	s.beginShutdown()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.raw.Close()
	}
	return nil
}

// Shutdown stops accepting connections, lets every command under way finish,
// tells each waiting client that the server is going away, and waits for the
// sessions to end. If ctx ends first, it closes the rest and returns ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	s.beginShutdown()
	s.mu.Lock()
	for c := range s.conns {
		c.interrupt()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.connWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.Close()
		<-done
		return ctx.Err()
	}
}

func (s *Server) beginShutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	s.inShutdown.Store(true)
	close(s.shutdownChLocked())
	for l := range s.listeners {
		(*l).Close()
	}
}

// BytesSent is how many octets the server has written to clients.
func (s *Server) BytesSent() int64 { return s.bytesSent.Load() }

// Listening reports whether the server is serving on at least one
// listener and has not been shut down.
func (s *Server) Listening() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.listeners) > 0 && !s.closed && !s.inShutdown.Load()
}

// ActiveConns returns the number of sessions being served.
func (s *Server) ActiveConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
