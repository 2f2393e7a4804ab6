package pop3

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The states a command is valid in (RFC 1939 §§4–7, RFC 2449, 2595, 5034).
var commandStates = map[string]state{
	"USER": stateAuthorization,
	"PASS": stateAuthorization,
	"APOP": stateAuthorization,
	"AUTH": stateAuthorization,
	"STLS": stateAuthorization,
	"STAT": stateTransaction,
	"LIST": stateTransaction,
	"RETR": stateTransaction,
	"DELE": stateTransaction,
	"NOOP": stateTransaction,
	"RSET": stateTransaction,
	"TOP":  stateTransaction,
	"UIDL": stateTransaction,
	"QUIT": -1, // any state
	"CAPA": -1,
}

// dispatch runs one command line. It returns nil when the command has
// replied +OK, or the error to reply with.
func (c *conn) dispatch(line string) error {
	verb, arg, _ := strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	masked := maskSecrets(verb, arg, line)
	c.traceClient(masked)
	c.verb = verb
	c.emit(Event{Kind: EventCommand, Verb: verb, Line: masked})

	if err := checkText(line, verb == "PASS"); err != nil {
		return err
	}
	if verb == "" {
		return c.emptyLine()
	}
	st, known := commandStates[verb]
	switch {
	case !known:
		return c.unknownCommand(verb)
	case st == stateTransaction && c.state != stateTransaction:
		return errorf("", "%s is only valid after you log in: send USER, then PASS", verb)
	case st == stateAuthorization && c.state != stateAuthorization:
		return errorf("", "%s is only valid before logging in; you are logged in as %s", verb, printable(c.user))
	}

	switch verb {
	case "USER":
		return c.handleUser(arg)
	case "PASS":
		return c.handlePass(arg)
	case "APOP":
		return c.handleAPOP(arg)
	case "AUTH":
		return c.handleAuth(arg)
	case "STLS":
		return c.handleSTLS(arg)
	case "CAPA":
		return c.handleCapa(arg)
	case "QUIT":
		return c.handleQuit(arg)
	case "STAT":
		return c.handleStat(arg)
	case "LIST":
		return c.handleList(arg)
	case "UIDL":
		return c.handleUIDL(arg)
	case "RETR":
		return c.handleRetr(arg)
	case "TOP":
		return c.handleTop(arg)
	case "DELE":
		return c.handleDele(arg)
	case "RSET":
		return c.handleRset(arg)
	case "NOOP":
		return c.handleNoop(arg)
	}
	panic("pop3: command without handler: " + verb)
}

// emptyLine answers a line with no command, with what would be right in
// this state.
func (c *conn) emptyLine() error {
	switch {
	case c.state == stateTransaction:
		return errorf("", "empty command: you are logged in; try STAT, LIST, RETR, TOP, UIDL, DELE, RSET, NOOP or QUIT")
	case c.user != "":
		return errorf("", "empty command: send PASS and the password for %s", printable(c.user))
	}
	return errorf("", "empty command: type a command such as CAPA, or USER and your name")
}

// checkText refuses control characters: on a command line they come from a
// terminal's editing keys or from binary junk, never from a command.
// A password may hold any other octet.
func checkText(line string, password bool) error {
	for i := 0; i < len(line); i++ {
		if b := line[i]; b < ' ' && b != '\t' || b == 0x7f {
			return junkf("the line holds the control character %s (your terminal may have sent it for an editing key); type the command again as plain text", caret(b))
		}
	}
	if !password {
		verb, _, _ := strings.Cut(line, " ")
		if strings.ContainsFunc(verb, func(r rune) bool { return r >= 0x80 }) {
			return junkf("unknown command %s: commands are plain ASCII words such as STAT", quoteArg(verb))
		}
	}
	return nil
}

// caret names a control character as terminals show it: ^@ for NUL, ^? for DEL.
func caret(b byte) string {
	if b == 0x7f {
		return "^?"
	}
	return "^" + string(rune(b+'@'))
}

// quoteArg quotes what the client sent for an error reply: ASCII only, at
// most 20 characters.
func quoteArg(s string) string {
	if len(s) > 20 {
		return strconv.QuoteToASCII(s[:20]) + "…"
	}
	return strconv.QuoteToASCII(s)
}

// printable makes a user-supplied name safe to echo in a reply: C0 and
// C1 controls and invalid UTF-8 become "?", and the characters that
// reorder text on screen (bidi overrides and isolates, RFC 9839 §4.3
// "problematic code points") are shown escaped, as \u202E, so that an
// echo can never hide or reverse what follows it.
func printable(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] >= 0x7f {
			return string(appendPrintable(nil, s))
		}
	}
	return s // plain ASCII: nothing to change
}

// appendPrintable appends printable(s) to b.
func appendPrintable(b []byte, s string) []byte {
	for _, r := range s {
		switch {
		case r < ' ' || r == 0x7f || 0x80 <= r && r <= 0x9f || r == utf8.RuneError:
			b = append(b, '?')
		case bidiControl(r):
			b = fmt.Appendf(b, "\\u%04X", r)
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return b
}

// bidiControl reports whether r changes the direction of the text around
// it: the embeddings and overrides U+202A–U+202E, the isolates
// U+2066–U+2069, and the marks U+200E, U+200F and U+061C.
func bidiControl(r rune) bool {
	return 0x202a <= r && r <= 0x202e || 0x2066 <= r && r <= 0x2069 || r == 0x200e || r == 0x200f || r == 0x061c
}

// unknownCommand answers a verb that is not a POP3 command. It counts
// toward the error streak (junk), unlike a known command used wrongly.
func (c *conn) unknownCommand(verb string) error {
	err := c.unknownCommandText(verb).(*replyError)
	err.junk = true
	return err
}

func (c *conn) unknownCommandText(verb string) error {
	q := quoteArg(verb)
	switch verb {
	case "HELO", "EHLO", "MAIL", "RCPT", "DATA":
		return errorf("", "unknown command %s: that is SMTP, for sending mail; this is POP3, for collecting it", q)
	case "GET", "POST", "HEAD", "PUT", "OPTIONS", "CONNECT", "PRI":
		return errorf("", "unknown command %s: this is a POP3 server, not a web server", q)
	case "LOGIN":
		return errorf("", "unknown command %s: log in with USER then PASS", q)
	case "LOGOUT", "EXIT", "BYE":
		return errorf("", "unknown command %s: to end the session, send QUIT", q)
	case "HELP":
		return errorf("", "unknown command %s: POP3 has no HELP; CAPA lists what this server supports", q)
	}
	if c.state == stateAuthorization {
		return errorf("", "unknown command %s: log in with USER then PASS", q)
	}
	return errorf("", "unknown command %s: try STAT, LIST, RETR, TOP, UIDL, DELE, RSET, NOOP or QUIT", q)
}

// noArgs checks that a command without arguments got none.
func noArgs(verb, arg string) error {
	if strings.TrimSpace(arg) != "" {
		return errorf("", "%s takes no arguments", verb)
	}
	return nil
}

// parseMsgNum turns a message-number argument into a message index, refusing
// numbers out of range and messages marked for deletion (RFC 1939 §5).
func (c *conn) parseMsgNum(verb, s string) (int, error) {
	n, ok := parseNumber(s)
	switch {
	case !ok:
		return 0, errorf("", "%s is not a message number; e.g. %s 1", quoteArg(s), verb)
	case n == 0:
		return 0, errorf("", "no message 0: messages are numbered from 1")
	case n > c.count:
		return 0, errorf("", "no message %d: the maildrop has %s", n, plural(c.count, "message"))
	case c.marks.has(n - 1):
		return 0, errorf("", "message %d is marked for deletion; RSET unmarks it", n)
	}
	return n - 1, nil
}

// parseNumber parses a non-negative decimal number of at most 9 digits.
func parseNumber(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

func plural(n int, word string) string {
	return string(appendPlural(nil, n, word))
}

func appendPlural(b []byte, n int, word string) []byte {
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, ' ')
	b = append(b, word...)
	if n != 1 {
		b = append(b, 's')
	}
	return b
}

// fields splits a command's arguments at white space, as strings.Fields
// does, without allocating: the first two, and how many there are.
func fields(s string) (f [2]string, n int) {
	for {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
		if s == "" {
			return f, n
		}
		end := strings.IndexFunc(s, unicode.IsSpace)
		if end < 0 {
			end = len(s)
		}
		if n < len(f) {
			f[n] = s[:end]
		}
		n++
		s = s[end:]
	}
}

// stat counts the messages not marked for deletion and their octets.
func (c *conn) stat() (count int, size int64) {
	return c.count - c.marks.n, c.size - c.marks.octet
}

func (c *conn) handleUser(arg string) error {
	args, n := fields(arg)
	if n != 1 {
		return errorf("", "USER needs one user name, e.g. USER guest")
	}
	c.user = args[0]
	b := c.status("+OK now send the password for ")
	b = appendPrintable(b, c.user)
	c.send(append(b, " with PASS"...))
	return nil
}

func (c *conn) handlePass(arg string) error {
	if c.user == "" {
		return errorf("", "PASS must follow USER: send USER and your user name first")
	}
	if arg == "" {
		return errorf("", "PASS needs the password after it, e.g. PASS secret")
	}
	user := c.user
	c.user = ""
	md, err := c.srv.Backend.Login(c.ctx, &c.info, user, arg)
	return c.loggedIn(user, md, err)
}

func (c *conn) handleAPOP(arg string) error {
	be, ok := c.srv.Backend.(APOPBackend)
	if !ok {
		return errorf("", "APOP is not supported here; log in with USER and PASS")
	}
	args := strings.Fields(arg)
	if len(args) != 2 {
		return errorf("", "APOP needs a user name and a digest, e.g. APOP guest c4c9334bac560ecc979e58001b3e22fb")
	}
	if d := args[1]; len(d) != 32 || strings.Trim(strings.ToLower(d), "0123456789abcdef") != "" {
		return errorf("", "the APOP digest is 32 hexadecimal digits: the MD5 of the greeting's timestamp %s followed by the password", c.timestamp)
	}
	c.user = ""
	md, err := be.LoginAPOP(c.ctx, &c.info, args[0], c.timestamp, args[1])
	return c.loggedIn(args[0], md, err)
}

// loggedIn finishes a login attempt: on success the session enters
// TRANSACTION; on failure it explains, and slows down repeated guessing.
func (c *conn) loggedIn(user string, md Maildrop, err error) error {
	var le *LoginError
	switch {
	case err == nil:
		c.md, c.user, c.state = md, user, stateTransaction
		c.count, c.size = md.Stat()
		c.emit(Event{Kind: EventLockTaken, User: user})
		c.emit(Event{Kind: EventState, State: stateTransaction.String(), User: user, Count: c.count, Octets: c.size, md: md})
		if n, ok := md.(Noter); ok {
			c.note = n.Note()
		}
		b := appendPrintable(c.status("+OK "), user)
		b = append(b, "'s maildrop has "...)
		b = c.appendStat(b)
		c.send(c.appendNote(b))
		return nil
	case errors.Is(err, ErrMaildropInUse):
		c.emit(Event{Kind: EventLockRefused, User: user})
		return errorf("IN-USE", "%s's maildrop is locked by another session, and only one may hold it: QUIT that session first", printable(user))
	case errors.Is(err, ErrAuthFailed):
		c.authFailures++
		c.srv.Logger.Info("pop3: login failed", "conn", c.info.ID, "remote", c.remote(), "user", c.logUser(user))
		if !c.authDelay() {
			return &connError{errShutdown}
		}
		if c.srv.MaxAuthFailures > 0 && c.authFailures >= c.srv.MaxAuthFailures {
			return &replyError{code: "AUTH", text: "wrong user name or password; too many failed logins, closing the connection", close: true}
		}
		return errorf("AUTH", "wrong user name or password")
	case errors.As(err, &le):
		return errorf(le.Code, "%s", le.Text)
	default:
		c.srv.Logger.Error("pop3: opening maildrop", "conn", c.info.ID, "user", c.logUser(user), "err", err)
		return errorf("SYS/TEMP", "cannot open %s's maildrop right now; try again later", printable(user))
	}
}

// appendStat appends "N messages (M octets)", marked ones left out.
func (c *conn) appendStat(b []byte) []byte {
	count, size := c.stat()
	b = appendPlural(b, count, "message")
	b = append(b, " ("...)
	b = strconv.AppendInt(b, size, 10)
	return append(b, " octets)"...)
}

// appendNote appends the maildrop's note, if any.
func (c *conn) appendNote(b []byte) []byte {
	if c.note == "" {
		return b
	}
	return append(append(b, "; "...), c.note...)
}

// authDelay waits before the reply to a failed login, doubling with each
// failure in the session. It reports false if the server is shutting down.
func (c *conn) authDelay() bool {
	d := c.srv.AuthFailureDelay
	if d <= 0 {
		return true
	}
	for i := 1; i < c.authFailures && d < time.Minute; i++ {
		d *= 2
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.srv.shutdown():
		return false
	}
}

func (c *conn) handleAuth(arg string) error {
	args := strings.Fields(arg)
	if len(args) == 0 {
		// The RFC 1734 form still used by some clients: list mechanisms.
		c.ok("SASL mechanisms follow")
		c.writeLine("PLAIN")
		c.writeLine("LOGIN")
		c.writeLine(".")
		return nil
	}
	if len(args) > 2 {
		return errorf("", "AUTH takes a mechanism and an optional initial response, e.g. AUTH PLAIN")
	}
	var initial *string
	if len(args) == 2 {
		initial = &args[1]
	}
	switch mech := strings.ToUpper(args[0]); mech {
	case "PLAIN":
		// RFC 4616: authzid NUL authcid NUL passwd.
		resp, err := c.saslStep("", initial)
		if err != nil {
			return err
		}
		parts := strings.Split(resp, "\x00")
		if len(parts) != 3 || parts[1] == "" {
			return errorf("", "malformed PLAIN response: it is the base64 of authzid, NUL, user name, NUL, password")
		}
		if parts[0] != "" && parts[0] != parts[1] {
			return errorf("AUTH", "PLAIN may not log in as another user (%s)", printable(parts[0]))
		}
		md, err := c.srv.Backend.Login(c.ctx, &c.info, parts[1], parts[2])
		return c.loggedIn(parts[1], md, err)
	case "LOGIN":
		// draft-murchison-sasl-login: prompts "Username:" and "Password:".
		user, err := c.saslStep(base64.StdEncoding.EncodeToString([]byte("Username:")), initial)
		if err != nil {
			return err
		}
		pass, err := c.saslStep(base64.StdEncoding.EncodeToString([]byte("Password:")), nil)
		if err != nil {
			return err
		}
		md, err := c.srv.Backend.Login(c.ctx, &c.info, user, pass)
		return c.loggedIn(user, md, err)
	default:
		return errorf("", "unsupported SASL mechanism %s: this server offers PLAIN and LOGIN", quoteArg(mech))
	}
}

// saslStep sends a challenge and reads the client's response (RFC 5034 §4),
// or takes the initial response given with AUTH ("=" for an empty one).
func (c *conn) saslStep(challenge string, initial *string) (string, error) {
	var resp string
	if initial != nil {
		resp = *initial
		if resp == "=" {
			return "", nil
		}
	} else {
		c.writeLine("+ " + challenge)
		if err := c.flush(); err != nil {
			return "", &connError{err}
		}
		line, err := c.readLine(maxSASLLineLength)
		if errors.Is(err, errLineTooLong) {
			return "", errorf("", "SASL response too long; authentication cancelled")
		}
		if err != nil {
			return "", &connError{err}
		}
		c.traceClient("****")
		resp = line
	}
	if resp == "*" {
		return "", errorf("", "authentication cancelled")
	}
	b, err := base64.StdEncoding.DecodeString(resp)
	if err != nil {
		return "", errorf("", "the SASL response is not valid base64; authentication cancelled")
	}
	return string(b), nil
}

func (c *conn) handleSTLS(arg string) error {
	if err := noArgs("STLS", arg); err != nil {
		return err
	}
	if c.srv.TLSConfig == nil {
		return errorf("", "STLS is not available: this server has no TLS certificate")
	}
	if c.info.TLS != nil {
		return errorf("", "this connection already uses TLS")
	}
	c.ok("begin TLS negotiation")
	if err := c.flush(); err != nil {
		return &connError{err}
	}
	if err := c.startTLS(); err != nil {
		c.closing = true
		c.end = "TLS handshake failed: " + err.Error()
	}
	return nil
}

func (c *conn) handleCapa(arg string) error {
	if err := noArgs("CAPA", arg); err != nil {
		return err
	}
	c.ok("capability list follows")
	c.writeLine("TOP")
	c.writeLine("UIDL")
	c.writeLine("RESP-CODES")
	c.writeLine("AUTH-RESP-CODE")
	c.writeLine("PIPELINING")
	if c.state == stateAuthorization {
		c.writeLine("USER")
		c.writeLine("SASL PLAIN LOGIN")
		if c.srv.TLSConfig != nil && c.info.TLS == nil {
			c.writeLine("STLS")
		}
	}
	if c.srv.Implementation != "" {
		c.writeLine("IMPLEMENTATION " + c.srv.Implementation)
	}
	c.writeLine(".")
	return nil
}

func (c *conn) handleQuit(arg string) error {
	if err := noArgs("QUIT", arg); err != nil {
		return err
	}
	c.closing = true
	c.end = "quit"
	if c.state == stateAuthorization {
		c.ok("signing off")
		return nil
	}
	// RFC 1939 §6: QUIT from TRANSACTION enters UPDATE, which removes the
	// marked messages; the +OK goes out only after they are gone.
	c.state = stateUpdate
	c.emit(Event{Kind: EventState, State: stateUpdate.String(), User: c.user})
	var marked []int
	if c.marks.n > 0 {
		marked = c.marks.list()
	}
	var err error
	if len(marked) > 0 {
		err = c.md.Delete(marked)
	}
	if cerr := c.md.Close(); cerr != nil {
		c.srv.Logger.Error("pop3: releasing maildrop", "conn", c.info.ID, "user", c.logUser(c.user), "err", cerr)
	}
	c.md = nil
	if err != nil {
		c.emit(Event{Kind: EventLockReleased, User: c.user})
		c.srv.Logger.Error("pop3: removing messages", "conn", c.info.ID, "user", c.logUser(c.user), "err", err)
		return errorf("SYS/TEMP", "some messages marked for deletion were not removed")
	}
	c.removed = len(marked)
	nums := make([]int, len(marked))
	for k, i := range marked {
		nums[k] = i + 1
	}
	c.emit(Event{Kind: EventUpdate, User: c.user, Deleted: nums})
	c.emit(Event{Kind: EventLockReleased, User: c.user})
	b := appendPlural(c.status("+OK signing off: "), len(marked), "message")
	if left := c.count - len(marked); left == 0 {
		b = append(b, " deleted, maildrop empty"...)
	} else {
		b = append(b, " deleted, "...)
		b = strconv.AppendInt(b, int64(left), 10)
		b = append(b, " left"...)
	}
	c.send(c.appendNote(b))
	return nil
}

func (c *conn) handleStat(arg string) error {
	if err := noArgs("STAT", arg); err != nil {
		return err
	}
	// RFC 1939 §5: exactly "+OK count size", marked messages not counted.
	count, size := c.stat()
	b := strconv.AppendInt(c.status("+OK "), int64(count), 10)
	b = append(b, ' ')
	c.send(strconv.AppendInt(b, size, 10))
	return nil
}

// handleList and handleUIDL share their shape: a scan listing of every
// message not marked, or one line for one message.
func (c *conn) handleList(arg string) error { return c.scanListing("LIST", arg) }

func (c *conn) handleUIDL(arg string) error { return c.scanListing("UIDL", arg) }

// appendListing appends message i's line of a LIST or UIDL listing:
// "number size" or "number unique-id".
func (c *conn) appendListing(b []byte, verb string, i int) []byte {
	b = strconv.AppendInt(b, int64(i+1), 10)
	b = append(b, ' ')
	m := c.md.Message(i)
	if verb == "LIST" {
		return strconv.AppendInt(b, m.Size, 10)
	}
	return append(b, m.UID...)
}

func (c *conn) scanListing(verb, arg string) error {
	args, n := fields(arg)
	switch n {
	case 0:
		if verb == "LIST" {
			c.send(c.appendStat(c.status("+OK ")))
		} else {
			c.send(c.status("+OK unique-id listing follows"))
		}
		w := c.writer()
		line := c.lb[:0]
		for i := range c.count {
			if !c.marks.has(i) {
				line = append(c.appendListing(line[:0], verb, i), '\r', '\n')
				w.Write(line)
			}
		}
		c.lb = line[:0]
		c.writeLine(".")
		return nil
	case 1:
		i, err := c.parseMsgNum(verb, args[0])
		if err != nil {
			return err
		}
		c.send(c.appendListing(c.status("+OK "), verb, i))
		return nil
	default:
		return errorf("", "%s takes at most one message number, e.g. %s 1", verb, verb)
	}
}

func (c *conn) handleRetr(arg string) error {
	args, n := fields(arg)
	if n != 1 {
		return errorf("", "RETR needs a message number, e.g. RETR 1")
	}
	i, err := c.parseMsgNum("RETR", args[0])
	if err != nil {
		return err
	}
	err = c.sendMessage(i, -1)
	if err == nil {
		c.retrieved++
	}
	return err
}

func (c *conn) handleTop(arg string) error {
	args, n := fields(arg)
	if n != 2 {
		return errorf("", "TOP needs a message number and a number of body lines, e.g. TOP 1 10")
	}
	i, err := c.parseMsgNum("TOP", args[0])
	if err != nil {
		return err
	}
	lines, ok := parseNumber(args[1])
	if !ok {
		return errorf("", "%s is not a number of lines; e.g. TOP %d 0 for the header alone", quoteArg(args[1]), i+1)
	}
	return c.sendMessage(i, lines)
}

// sendMessage sends message i as a multi-line reply: all of it (RETR,
// top < 0) or its header and top lines of its body (TOP).
func (c *conn) sendMessage(i, top int) error {
	r, err := c.md.Open(i)
	if err != nil {
		c.srv.Logger.Error("pop3: opening message", "conn", c.info.ID, "user", c.logUser(c.user), "msg", i+1, "err", err)
		return errorf("SYS/TEMP", "cannot read message %d right now; try again later", i+1)
	}
	defer r.Close()
	if top < 0 {
		b := strconv.AppendInt(c.status("+OK "), c.md.Message(i).Size, 10)
		c.send(append(b, " octets"...))
	} else {
		c.send(c.status("+OK top of message follows"))
	}
	c.dw = dotWriter{w: c.writer()}
	if top < 0 {
		_, err = io.Copy(&c.dw, r)
	} else {
		err = copyTop(&c.dw, r, top)
	}
	if err != nil {
		// The +OK is out: a broken body cannot be followed by -ERR.
		if c.out.err == nil {
			c.srv.Logger.Error("pop3: reading message", "conn", c.info.ID, "user", c.logUser(c.user), "msg", i+1, "err", err)
		}
		return &connError{err}
	}
	if err := c.dw.Close(); err != nil {
		return &connError{err}
	}
	return nil
}

func (c *conn) handleDele(arg string) error {
	args, n := fields(arg)
	if n != 1 {
		return errorf("", "DELE needs a message number, e.g. DELE 1")
	}
	i, err := c.parseMsgNum("DELE", args[0])
	if err != nil {
		return err
	}
	size := c.md.Message(i).Size
	c.marks.set(i, c.count, size)
	c.emit(Event{Kind: EventMarked, Msg: i + 1, Octets: size})
	b := strconv.AppendInt(c.status("+OK message "), int64(i+1), 10)
	c.send(append(b, " marked for deletion; it is removed when you QUIT"...))
	return nil
}

func (c *conn) handleRset(arg string) error {
	if err := noArgs("RSET", arg); err != nil {
		return err
	}
	c.marks.each(func(i int) { c.emit(Event{Kind: EventUnmarked, Msg: i + 1}) })
	c.marks.clear()
	c.send(c.appendStat(c.status("+OK maildrop has ")))
	return nil
}

func (c *conn) handleNoop(arg string) error {
	if err := noArgs("NOOP", arg); err != nil {
		return err
	}
	c.send(c.status("+OK"))
	return nil
}
