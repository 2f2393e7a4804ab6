// Package pop3 is a POP3 server: RFC 1939 (the protocol, with APOP), RFC 2449
// (CAPA and response codes), RFC 3206 (the SYS and AUTH response codes),
// RFC 2595 (STLS) and RFC 5034 (SASL AUTH, with PLAIN and LOGIN).
//
// It knows nothing of HTTP or visitors. A Server accepts connections, runs
// one state machine per connection (AUTHORIZATION → TRANSACTION → UPDATE) and
// asks its Backend to authenticate users and open their Maildrop.
package pop3

import (
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"github.com/pop3playground/pop3playground/pop3/limit"
)

// A Backend authenticates users and opens their maildrops.
//
// Login is called with the user name and password given by USER/PASS or by a
// SASL mechanism. On success the returned Maildrop is locked for this session
// until its Close method is called (RFC 1939 §8: exclusive access).
// It returns ErrAuthFailed for bad credentials and ErrMaildropInUse when
// another session holds the lock; any other error is reported to the client
// as a temporary system failure.
type Backend interface {
	Login(ctx context.Context, c *ConnInfo, user, password string) (Maildrop, error)
}

// BackendFunc adapts a function to a Backend.
type BackendFunc func(ctx context.Context, c *ConnInfo, user, password string) (Maildrop, error)

// Login calls f.
func (f BackendFunc) Login(ctx context.Context, c *ConnInfo, user, password string) (Maildrop, error) {
	return f(ctx, c, user, password)
}

var _ Backend = BackendFunc(nil)

// An APOPBackend also supports the APOP command (RFC 1939 §7). LoginAPOP must
// check digest against the user's shared secret with CheckAPOP.
type APOPBackend interface {
	Backend
	LoginAPOP(ctx context.Context, c *ConnInfo, user, timestamp, digest string) (Maildrop, error)
}

// CheckAPOP reports whether digest is the APOP digest of timestamp and
// secret: the MD5 of the timestamp (angle brackets included) followed by the
// secret, as 32 hexadecimal digits. It compares in constant time.
func CheckAPOP(timestamp, secret, digest string) bool {
	sum := md5.Sum([]byte(timestamp + secret))
	want := hex.EncodeToString(sum[:])
	return limit.Equal(want, strings.ToLower(digest))
}

// A Maildrop is one user's mailbox, locked for one session.
//
// Its messages are fixed when the session enters TRANSACTION; message
// numbers are positions in it (1-based on the wire, 0-based here) and do not
// change for the rest of the session (RFC 1939 §5). Marks for deletion are
// kept by the session, not by the Maildrop: a Maildrop only sees the final
// list of messages to remove, when the session enters UPDATE.
//
// A login asks only for Stat: a maildrop of 100,000 messages should cost
// no more to log in to than one of 7. Messages are described one at a time,
// when a command needs them.
type Maildrop interface {
	// Stat is how many messages the maildrop holds and their size in
	// octets, in all.
	Stat() (count int, size int64)
	// Message describes message i, for 0 <= i < count.
	Message(i int) MessageInfo
	// Open returns the content of message i: lines ended by CRLF, not
	// dot-stuffed, exactly MessageInfo.Size octets. The session closes it
	// before opening another.
	Open(i int) (io.ReadCloser, error)
	// Delete removes the messages with these indexes (UPDATE state).
	Delete(indexes []int) error
	// Close releases the lock. It is called exactly once, whether or not
	// the session ended with QUIT.
	Close() error
}

// A Shaper is a Maildrop that chooses how the session's replies reach the
// client once it is logged in: Shape wraps the connection's writer (to
// deliver replies a byte at a time, say, as a client must be ready for).
type Shaper interface {
	Shape(w io.Writer) io.Writer
}

// A Noter is a Maildrop with a remark for the user, added to the reply to a
// successful login and to QUIT: for example that the maildrop is a private
// copy that disappears when the connection ends.
type Noter interface {
	Note() string
}

// MessageInfo describes one message of a maildrop.
type MessageInfo struct {
	Size int64  // octets, with CRLF line ends, before dot-stuffing
	UID  string // unique-id for UIDL: 1 to 70 characters from 0x21 to 0x7E
	// Subject is shown to Observers (the inspector); the protocol does not
	// use it.
	Subject string
}

// ConnInfo describes the connection a login comes from.
type ConnInfo struct {
	ID         uint64 // unique for the life of the Server (Server.IDBase and up)
	RemoteAddr net.Addr
	LocalAddr  net.Addr
	// TLS is the connection's TLS state after STLS or on an implicit-TLS
	// listener; nil on a plaintext connection.
	TLS *tls.ConnectionState
	// Proxied is true when a trusted proxy's PROXY header named the client:
	// RemoteAddr and LocalAddr are then the header's, and ProxyTLVs holds
	// its type-length-value fields by type (PROXY v2 only).
	Proxied   bool
	ProxyTLVs map[byte][]byte
	// BareLF is set once the client has ended a line with LF alone, not
	// CRLF (RFC 1939 §3 wants CRLF; the server accepts both).
	BareLF bool
	// Before are the verbs of the commands the client sent before it
	// logged in, in order (the first MaxBefore), for a Backend that
	// grades clients.
	Before []string
	// GreetingHeld is how long a Prelude held the greeting back, and
	// SpokeFirst is set when the client sent something meanwhile (seen
	// only where the greeting was held).
	GreetingHeld time.Duration
	SpokeFirst   bool
	// Unwaited are the verbs of the commands that arrived before the
	// reply to the command before them, while this session had not
	// listed PIPELINING in a CAPA reply (RFC 2449 §6.6: until then a
	// client waits for each reply), the first MaxBefore.
	Unwaited []string
}

// MaxBefore bounds ConnInfo.Before and ConnInfo.Unwaited.
const MaxBefore = 16

// A Prelude is how a Server meets one connection before its login, for
// a port that tests the clients it serves (a client lab's): see
// Server.ServePrelude.
type Prelude struct {
	// Delay holds the greeting back this long; a client that sends
	// anything meanwhile did not wait for it (ConnInfo.SpokeFirst).
	Delay time.Duration
	// Offers, if set, takes commands away before the login, as an
	// Offerer maildrop does after it: they are answered as unknown, and
	// CAPA leaves them out.
	Offers func(verb string) bool
}

// Errors a Backend returns to choose the reply to a failed login.
var (
	// ErrAuthFailed: wrong user name or password (reply code [AUTH]).
	ErrAuthFailed = errors.New("pop3: authentication failed")
	// ErrMaildropInUse: another session holds the maildrop's lock (reply
	// code [IN-USE], RFC 2449 §8.1.1).
	ErrMaildropInUse = errors.New("pop3: maildrop in use")
)

// A LoginError refuses a login with a reply of the Backend's choosing: an
// optional response code (RFC 2449 §8, without brackets) and a text that
// tells the user what to do.
type LoginError struct {
	Code string
	Text string
	// Close closes the connection after the reply.
	Close bool
}

func (e *LoginError) Error() string { return "pop3: login refused: " + e.Text }

// ErrServerClosed is returned by Serve after Close or Shutdown.
var ErrServerClosed = errors.New("pop3: server closed")
