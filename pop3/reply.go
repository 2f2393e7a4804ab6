package pop3

import (
	"errors"
	"fmt"
)

// A ReplyKind names what a reply says happened. The wire text is written
// from it and its arguments, its response code (RFC 2449 §8) comes from
// it, and its explanation is looked up by it: nothing reads meaning back
// out of a reply's words.
type ReplyKind string

// The kinds of reply. A +OK is KindOK (its explanation is its command's,
// in the command table) or KindGreeting; the rest are kinds of -ERR.
const (
	KindOK       ReplyKind = "ok"
	KindGreeting ReplyKind = "greeting"

	KindNeedLogin   ReplyKind = "need-login"        // a TRANSACTION command before logging in
	KindLoggedIn    ReplyKind = "logged-in"         // an AUTHORIZATION command after it
	KindUnknown     ReplyKind = "unknown-command"   // not a POP3 command
	KindEmpty       ReplyKind = "empty-command"     // a line with no command
	KindNotText     ReplyKind = "not-text"          // control characters in the line
	KindLineTooLong ReplyKind = "line-too-long"     // over the line limit
	KindLineFlood   ReplyKind = "line-flood"        // a line that never ends
	KindSyntax      ReplyKind = "syntax"            // the arguments are not what the command takes
	KindMsgArg      ReplyKind = "message-argument"  // a message number missing or not a number
	KindNoMessage   ReplyKind = "no-such-message"   // out of range
	KindMarked      ReplyKind = "marked"            // marked for deletion
	KindPassFirst   ReplyKind = "pass-without-user" // PASS with no USER before it
	KindSASL        ReplyKind = "sasl"              // a SASL exchange refused or cancelled
	KindNoTLS       ReplyKind = "no-tls"            // STLS where it cannot be
	KindNoAPOP      ReplyKind = "no-apop"           // APOP on a server without it
	KindAuth        ReplyKind = "auth"              // [AUTH] wrong credentials
	KindInUse       ReplyKind = "in-use"            // [IN-USE] the maildrop is locked
	KindSysTemp     ReplyKind = "sys-temp"          // [SYS/TEMP]
	KindSysPerm     ReplyKind = "sys-perm"          // [SYS/PERM]
	KindLoginTime   ReplyKind = "login-timeout"     // [SYS/TEMP] no login in time
	KindShutdown    ReplyKind = "shutdown"          // [SYS/TEMP] the server is stopping
	KindAutologout  ReplyKind = "autologout"        // the idle timer ran out
)

// Code is the response code a reply of this kind carries, or "".
func (k ReplyKind) Code() string {
	switch k {
	case KindAuth:
		return "AUTH"
	case KindInUse:
		return "IN-USE"
	case KindSysTemp, KindLoginTime, KindShutdown:
		return "SYS/TEMP"
	case KindSysPerm:
		return "SYS/PERM"
	}
	return ""
}

// junk reports whether a line refused with this kind was not a command
// at all: only these count toward MaxErrors, so that a student who
// overshoots DELE 1 … DELE 20 keeps the session.
func (k ReplyKind) junk() bool {
	return k == KindUnknown || k == KindNotText || k == KindLineTooLong
}

// kindOfCode is the kind of a -ERR a Backend chose by its response code
// (LoginError).
func kindOfCode(code string) ReplyKind {
	switch code {
	case "AUTH":
		return KindAuth
	case "IN-USE":
		return KindInUse
	case "SYS/PERM":
		return KindSysPerm
	}
	return KindSysTemp
}

// A replyError is a -ERR reply: its kind, a text that says what was wrong
// and what would be right, and whether the connection closes after it.
type replyError struct {
	kind  ReplyKind
	code  string // when not the kind's own (a Backend's LoginError)
	text  string
	close bool
}

func (e *replyError) Error() string { return e.text }

// errorf makes a -ERR reply of kind k.
func errorf(k ReplyKind, format string, args ...any) error {
	return &replyError{kind: k, code: k.Code(), text: fmt.Sprintf(format, args...)}
}

// said is what a reply said, as data: its kind and the arguments its
// explanation needs. A handler sets it before a +OK; the -ERR path sets
// it from the replyError.
type said struct {
	kind   ReplyKind
	one    bool   // LIST n or UIDL n, rather than a listing
	msg    int    // the message a reply names
	count  int    // messages (STAT)
	octets int64  // octets (STAT, LIST n, RETR)
	uid    string // UIDL n
}

// replyState is what a reply's explanation needs of its session, as it was
// when the reply went out: kept in the Event by value, so that nothing is
// built unless an Observer asks (Event.Complete).
type replyState struct {
	said
	state   state
	count   int   // messages in the maildrop
	size    int64 // their octets
	removed int   // by QUIT
}

// explain says in one line what a reply means and where the RFCs say so:
// a +OK by its command's entry in the table, a -ERR by its kind.
func explain(verb string, r replyState) string {
	switch r.kind {
	case KindOK:
		if cmd := byVerb[verb]; cmd != nil {
			return cmd.explain(r)
		}
		return "The command succeeded (+OK)."
	case KindGreeting:
		return "The greeting: the server is ready and the session is in the AUTHORIZATION state. The <…> part is the APOP timestamp (RFC 1939 §4, §7)."
	}
	if s, ok := explanations[r.kind]; ok {
		return s
	}
	return "The command failed (-ERR); the text says why. The session's state did not change (RFC 1939 §3)."
}

const noMessage = "Messages are named by their numbers from 1 to the count STAT gives; a message marked for deletion may not be used again until RSET (RFC 1939 §5)."

// explanations says what each kind of -ERR means. A test checks that
// every kind has one.
var explanations = map[ReplyKind]string{
	KindNeedLogin:   "This command belongs to the TRANSACTION state, which begins after a successful login (RFC 1939 §3, §5).",
	KindLoggedIn:    "This command belongs to the AUTHORIZATION state; the session is already in TRANSACTION (RFC 1939 §3, §4).",
	KindUnknown:     "POP3 knows a few four-letter commands (three or four letters, case-insensitive); anything else gets -ERR (RFC 1939 §3).",
	KindEmpty:       "An empty line is not a command: every POP3 command is a keyword, possibly followed by arguments (RFC 1939 §3).",
	KindNotText:     "Commands are printable text; a control character usually comes from a terminal's editing key or from binary data sent to the wrong port (RFC 1939 §3).",
	KindLineTooLong: "A command line may be at most 255 octets with its CRLF (RFC 2449 §4).",
	KindLineFlood:   "The client sent a line far too long to be a command, with no end; the server closes rather than read on (RFC 2449 §4).",
	KindSyntax:      "The command was right but not its arguments: the text says what it takes (RFC 1939 §3: keywords and arguments separated by a single space).",
	KindMsgArg:      "This command needs a message number as its argument (RFC 1939 §5).",
	KindNoMessage:   noMessage,
	KindMarked:      noMessage,
	KindPassFirst:   "PASS only makes sense right after USER has named the mailbox (RFC 1939 §7).",
	KindSASL:        "The SASL exchange ended without a login: an unsupported mechanism, a response that is not base64, or the client cancelled with \"*\" (RFC 5034 §4).",
	KindNoTLS:       "STLS is offered only on a connection that can still start TLS: the server needs a certificate, and a connection already in TLS cannot start it again (RFC 2595 §4).",
	KindNoAPOP:      "APOP is optional: this server does not offer it, so log in with USER and PASS (RFC 1939 §7).",
	KindAuth:        "The user name or password was wrong ([AUTH]: a credentials problem, not a server problem, RFC 3206 §4). Each failure makes the next reply slower.",
	KindInUse:       "Another session holds the maildrop lock; only one session may hold it at a time (RFC 1939 §4, RFC 2449 §8.1.1).",
	KindSysTemp:     "A temporary problem on the server's side ([SYS/TEMP], RFC 3206 §3): trying again later may work.",
	KindSysPerm:     "A permanent problem on the server's side ([SYS/PERM], RFC 3206 §3): trying again will not help as it is.",
	KindLoginTime:   "The session did not log in in time, so the server closed it ([SYS/TEMP], RFC 3206 §3): connect again and log in straight away.",
	KindShutdown:    "The server is stopping and closes every session without entering UPDATE, so nothing marked was deleted ([SYS/TEMP], RFC 3206 §3).",
	KindAutologout:  "The autologout timer ran out: a session that sends nothing for at least 10 minutes is closed without entering UPDATE (RFC 1939 §3).",
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
