package pop3

import (
	"fmt"
	"strings"
)

// A command is one entry of the command table: everything the server, the
// page and the tests know of a POP3 command. Adding a command is one entry
// here and its handler.
type command struct {
	verb string
	// in lists the states the command is valid in (RFC 1939 §3).
	in []state
	// run serves the command; it returns nil when it has replied +OK, or
	// the -ERR to reply with.
	run func(c *conn, arg string) error
	// body says when a +OK reply carries a multi-line body.
	body Body
	// capa is the command's CAPA line (RFC 2449 §5), or "".
	capa string
	// offered says whether this connection may use it now (STLS needs a
	// certificate and no TLS yet); nil: always.
	offered func(c *conn) bool
	// explain says what a +OK to it means.
	explain func(r replyState) string
	// For the reference: its syntax ([optional] arguments in brackets),
	// what it does, a line that works on the default mailbox, and where
	// it is defined.
	syntax, summary, example, rfc string
}

// Body says when a +OK reply has a multi-line body after its status line,
// ended by a line holding ".".
type Body string

const (
	BodyNever       Body = ""
	BodyAlways      Body = "always"
	BodyWithoutArgs Body = "without-arguments" // LIST, UIDL, AUTH alone
)

var (
	authorization = []state{stateAuthorization}
	transaction   = []state{stateTransaction}
	anyState      = []state{stateAuthorization, stateTransaction}
)

// commands is the command table, in the order a session uses them.
var commands = []command{
	{verb: "CAPA", in: anyState, run: (*conn).handleCapa, body: BodyAlways,
		explain: says("CAPA lists what this server supports, one capability per line, so a client knows before it tries (RFC 2449 §5)."),
		syntax:  "CAPA", summary: "List the server's capabilities: what a client may use beyond RFC 1939.", example: "CAPA", rfc: "RFC 2449 §5"},
	{verb: "USER", in: authorization, run: (*conn).handleUser, capa: "USER",
		explain: says("USER names the mailbox; the server waits for PASS before saying whether the pair is right (RFC 1939 §7)."),
		syntax:  "USER name", summary: "Name the maildrop to open; PASS follows.", example: "USER guest", rfc: "RFC 1939 §7"},
	{verb: "PASS", in: authorization, run: (*conn).handlePass, explain: explainLogin("USER and PASS", "RFC 1939 §7"),
		syntax: "PASS password", summary: "Give the password for the name sent by USER; on success the maildrop is locked and the session enters TRANSACTION. The password crosses the wire in the clear.", example: "PASS visitor", rfc: "RFC 1939 §7"},
	{verb: "APOP", in: authorization, run: (*conn).handleAPOP,
		explain: explainLogin("APOP: the password itself never crossed the network, only the MD5 digest of the timestamp and the password", "RFC 1939 §7"),
		syntax:  "APOP name digest", summary: "Log in without sending the password: digest is the MD5, in hex, of the greeting's <timestamp> followed by the password.", example: "APOP guest 0123456789abcdef0123456789abcdef", rfc: "RFC 1939 §7"},
	{verb: "AUTH", in: authorization, run: (*conn).handleAuth, body: BodyWithoutArgs, capa: "SASL PLAIN LOGIN", explain: explainAuth,
		syntax: "AUTH [mechanism [initial-response]]", summary: "Log in with a SASL mechanism (PLAIN, LOGIN); without arguments, list the mechanisms.", example: "AUTH PLAIN", rfc: "RFC 5034"},
	{verb: "STLS", in: authorization, run: (*conn).handleSTLS, capa: "STLS",
		offered: func(c *conn) bool { return c.srv.TLSConfig != nil && c.info.TLS == nil },
		explain: says("STLS: a TLS handshake starts now on this connection; afterwards the server forgets everything said before (RFC 2595 §4)."),
		syntax:  "STLS", summary: "Start TLS on this connection: after +OK the client begins a TLS handshake, then logs in over the encrypted channel.", example: "STLS", rfc: "RFC 2595 §4"},
	{verb: "STAT", in: transaction, run: (*conn).handleStat,
		explain: func(r replyState) string {
			return fmt.Sprintf("STAT: %s, %d octets in total; messages marked for deletion are not counted (RFC 1939 §5).", plural(r.said.count, "message"), r.octets)
		},
		syntax: "STAT", summary: "Count the messages and their total size in octets, marked ones left out.", example: "STAT", rfc: "RFC 1939 §5"},
	{verb: "LIST", in: transaction, run: (*conn).handleList, body: BodyWithoutArgs, explain: explainList,
		syntax: "LIST [msg]", summary: "Give each message's number and size, or one message's.", example: "LIST", rfc: "RFC 1939 §5"},
	{verb: "RETR", in: transaction, run: (*conn).handleRetr, body: BodyAlways,
		explain: func(r replyState) string {
			return fmt.Sprintf("RETR: the whole message follows, %d octets, ending with \".\"; lines that start with \".\" get another \".\" in front on the wire (dot-stuffing, RFC 1939 §3, §5).", r.octets)
		},
		syntax: "RETR msg", summary: "Send a whole message, dot-stuffed, ended by a line holding a single dot.", example: "RETR 1", rfc: "RFC 1939 §5"},
	{verb: "TOP", in: transaction, run: (*conn).handleTop, body: BodyAlways, capa: "TOP",
		explain: says("TOP: the header, a blank line and the first lines of the body, ending with \".\"; TOP n 0 shows the header alone, how clients preview without downloading (RFC 1939 §7)."),
		syntax:  "TOP msg n", summary: "Send a message's header and the first n lines of its body.", example: "TOP 1 0", rfc: "RFC 1939 §7"},
	{verb: "UIDL", in: transaction, run: (*conn).handleUIDL, body: BodyWithoutArgs, capa: "UIDL", explain: explainUIDL,
		syntax: "UIDL [msg]", summary: "Give each message's unique-id, which stays the same across sessions: how clients know what they have already fetched.", example: "UIDL", rfc: "RFC 1939 §7"},
	{verb: "DELE", in: transaction, run: (*conn).handleDele,
		explain: says("DELE only marks the message: it disappears from STAT and LIST now, but is removed only when you QUIT; RSET takes the marks back (RFC 1939 §5, §6)."),
		syntax:  "DELE msg", summary: "Mark a message for deletion. It is removed only when QUIT enters the UPDATE state.", example: "DELE 1", rfc: "RFC 1939 §5"},
	{verb: "RSET", in: transaction, run: (*conn).handleRset,
		explain: says("RSET: every mark for deletion is taken back; nothing has been deleted, since that happens only at QUIT (RFC 1939 §5)."),
		syntax:  "RSET", summary: "Unmark every message marked for deletion in this session.", example: "RSET", rfc: "RFC 1939 §5"},
	{verb: "NOOP", in: transaction, run: (*conn).handleNoop,
		explain: says("NOOP does nothing but get +OK: clients use it to keep the session from the autologout timer (RFC 1939 §5)."),
		syntax:  "NOOP", summary: "Do nothing but answer +OK: keeps an idle session alive.", example: "NOOP", rfc: "RFC 1939 §5"},
	{verb: "QUIT", in: anyState, run: (*conn).handleQuit, explain: explainQuit,
		syntax: "QUIT", summary: "End the session. From TRANSACTION it enters UPDATE: marked messages are removed and the lock released.", example: "QUIT", rfc: "RFC 1939 §6"},
}

// Derived from the table once: the index by verb, the commands hints
// name in each state (those of RFC 1939 itself), and the commands CAPA
// lists: first those a session may use once logged in, then (before
// login only) those for logging in.
var (
	byVerb                map[string]*command
	transactionHint       string // "STAT, LIST, …, NOOP or QUIT"
	capaAfter, capaBefore []*command
)

// protocolCapas are the capabilities of the protocol itself, not of a
// command (RFC 2449 §6).
var protocolCapas = []string{"RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"}

func init() {
	byVerb = make(map[string]*command, len(commands))
	var hint []string
	for i := range commands {
		cmd := &commands[i]
		byVerb[cmd.verb] = cmd
		if cmd.validIn(stateTransaction) && strings.HasPrefix(cmd.rfc, "RFC 1939") {
			hint = append(hint, cmd.verb)
		}
		switch {
		case cmd.capa == "":
		case cmd.validIn(stateTransaction):
			capaAfter = append(capaAfter, cmd)
		default:
			capaBefore = append(capaBefore, cmd)
		}
	}
	transactionHint = strings.Join(hint[:len(hint)-1], ", ") + " or " + hint[len(hint)-1]
}

func (cmd *command) validIn(s state) bool {
	for _, in := range cmd.in {
		if in == s {
			return true
		}
	}
	return false
}

// says is an explanation that needs nothing of the reply.
func says(s string) func(replyState) string { return func(replyState) string { return s } }

// dispatch runs one command line. It returns nil when the command has
// replied +OK, or the error to reply with.
func (c *conn) dispatch(line string) error {
	verb, arg, _ := strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	masked := maskSecrets(verb, arg, line)
	c.traceClient(masked)
	c.verb = verb
	c.emit(Event{Kind: EventCommand, Verb: verb, Line: masked})
	if c.state == stateAuthorization && len(c.info.Before) < MaxBefore {
		if c.info.Before == nil {
			c.info.Before = c.before[:0] // the usual few verbs cost no allocation
		}
		c.info.Before = append(c.info.Before, verb)
	}

	if err := checkText(line, verb == "PASS"); err != nil {
		return err
	}
	if verb == "" {
		return c.emptyLine()
	}
	cmd := byVerb[verb]
	switch {
	case cmd == nil:
		return c.unknownCommand(verb)
	case cmd.validIn(c.state) && !c.allows(cmd.verb):
		if !c.allows("CAPA") {
			return errorf(KindUnknown, "unknown command %s: this server does not offer it", quoteArg(verb))
		}
		return errorf(KindUnknown, "unknown command %s: this server does not offer it here; CAPA lists what it does", quoteArg(verb))
	case cmd.validIn(c.state):
		return cmd.run(c, arg)
	case c.state == stateAuthorization:
		return errorf(KindNeedLogin, "%s is only valid after you log in: send USER, then PASS", verb)
	default:
		return errorf(KindLoggedIn, "%s is only valid before logging in; you are logged in as %s", verb, printable(c.user))
	}
}

// An Offerer is a Maildrop that takes away optional commands once its
// session is logged in (a minimal RFC 1939 server has no TOP, UIDL or
// CAPA): they are answered as unknown, and CAPA leaves them out.
type Offerer interface {
	Offers(verb string) bool
}

// offers reports whether CAPA lists cmd on this connection now.
func (c *conn) offers(cmd *command) bool {
	return (cmd.offered == nil || cmd.offered(c)) && c.allows(cmd.verb)
}

// allows reports whether the session may use the command: before the
// login as the Prelude says, after it as the maildrop does (Offerer).
func (c *conn) allows(verb string) bool {
	if c.md == nil {
		return c.prelude.Offers == nil || c.prelude.Offers(verb)
	}
	o, ok := c.md.(Offerer)
	return !ok || o.Offers(verb)
}

// MultiLine reports whether a +OK reply to the command line has a body
// after its status line, ended by a line holding ".": what a client must
// know to read the reply (RFC 1939 §3). After "+OK" to STLS the
// connection turns to TLS instead.
func MultiLine(line string) bool {
	verb, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
	cmd := byVerb[strings.ToUpper(verb)]
	if cmd == nil {
		return false
	}
	return cmd.body == BodyAlways || cmd.body == BodyWithoutArgs && strings.TrimSpace(arg) == ""
}

// emptyLine answers a line with no command, with what would be right in
// this state.
func (c *conn) emptyLine() error {
	switch {
	case c.state == stateTransaction:
		return errorf(KindEmpty, "empty command: you are logged in; try %s", transactionHint)
	case c.user != "":
		return errorf(KindEmpty, "empty command: send PASS and the password for %s", printable(c.user))
	}
	return errorf(KindEmpty, "empty command: type a command such as CAPA, or USER and your name")
}

// unknownCommand answers a verb that is not a POP3 command, with what the
// student probably meant.
func (c *conn) unknownCommand(verb string) error {
	q := quoteArg(verb)
	switch verb {
	case "HELO", "EHLO", "MAIL", "RCPT", "DATA":
		return errorf(KindUnknown, "unknown command %s: that is SMTP, for sending mail; this is POP3, for collecting it", q)
	case "GET", "POST", "HEAD", "PUT", "OPTIONS", "CONNECT", "PRI":
		return errorf(KindUnknown, "unknown command %s: this is a POP3 server, not a web server", q)
	case "LOGIN":
		return errorf(KindUnknown, "unknown command %s: log in with USER then PASS", q)
	case "LOGOUT", "EXIT", "BYE":
		return errorf(KindUnknown, "unknown command %s: to end the session, send QUIT", q)
	case "HELP":
		return errorf(KindUnknown, "unknown command %s: POP3 has no HELP; CAPA lists what this server supports", q)
	}
	if c.state == stateAuthorization {
		return errorf(KindUnknown, "unknown command %s: log in with USER then PASS", q)
	}
	return errorf(KindUnknown, "unknown command %s: try %s", q, transactionHint)
}

// A CommandDoc describes one command for people learning POP3 and for the
// page's terminal: the page's command reference is built from these.
type CommandDoc struct {
	Verb    string   `json:"verb"`
	States  []string `json:"states"` // the states it is valid in
	Syntax  string   `json:"syntax"` // e.g. "RETR msg"; [optional] arguments in brackets
	Summary string   `json:"summary"`
	Example string   `json:"example"` // a line that works on the default mailbox
	RFC     string   `json:"rfc"`     // where it is defined
	Body    Body     `json:"body,omitempty"`
}

// Reference documents every command the server knows, from the command
// table, in the order a session uses them.
var Reference = reference()

func reference() []CommandDoc {
	docs := make([]CommandDoc, len(commands))
	for i, cmd := range commands {
		states := make([]string, len(cmd.in))
		for k, s := range cmd.in {
			states[k] = s.String()
		}
		docs[i] = CommandDoc{Verb: cmd.verb, States: states, Syntax: cmd.syntax, Summary: cmd.summary,
			Example: cmd.example, RFC: cmd.rfc, Body: cmd.body}
	}
	return docs
}
