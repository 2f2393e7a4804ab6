package pop3

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

func (c *conn) handleUser(arg string) error {
	args, n := fields(arg)
	if n != 1 {
		return errorf(KindSyntax, "USER needs one user name, e.g. USER guest")
	}
	c.user = args[0]
	b := c.status("+OK now send the password for ")
	b = appendPrintable(b, c.user)
	c.send(append(b, " with PASS"...))
	return nil
}

func (c *conn) handlePass(arg string) error {
	if c.user == "" {
		return errorf(KindPassFirst, "PASS must follow USER: send USER and your user name first")
	}
	if arg == "" {
		return errorf(KindSyntax, "PASS needs the password after it, e.g. PASS secret")
	}
	user := c.user
	c.user = ""
	md, err := c.srv.Backend.Login(c.ctx, &c.info, user, arg)
	return c.loggedIn(user, md, err)
}

func (c *conn) handleAPOP(arg string) error {
	be, ok := c.srv.Backend.(APOPBackend)
	if !ok {
		return errorf(KindNoAPOP, "APOP is not supported here; log in with USER and PASS")
	}
	args := strings.Fields(arg)
	if len(args) != 2 {
		return errorf(KindSyntax, "APOP needs a user name and a digest, e.g. APOP guest c4c9334bac560ecc979e58001b3e22fb")
	}
	if d := args[1]; len(d) != 32 || strings.Trim(strings.ToLower(d), "0123456789abcdef") != "" {
		return errorf(KindSyntax, "the APOP digest is 32 hexadecimal digits: the MD5 of the greeting's timestamp %s followed by the password", c.timestamp)
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
		if sh, ok := md.(Shaper); ok {
			c.flush() // what was said before the login goes out as it was
			c.out.w = sh.Shape(c.out.w)
		}
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
		return errorf(KindInUse, "%s's maildrop is locked by another session, and only one may hold it: QUIT that session first", printable(user))
	case errors.Is(err, ErrAuthFailed):
		c.authFailures++
		c.srv.Logger.Info("pop3: login failed", "conn", c.info.ID, "remote", c.remote(), "user", c.logUser(user))
		if !c.authDelay() {
			return &connError{errShutdown}
		}
		if c.srv.MaxAuthFailures > 0 && c.authFailures >= c.srv.MaxAuthFailures {
			return &replyError{kind: KindAuth, code: "AUTH", text: "wrong user name or password; too many failed logins, closing the connection", close: true}
		}
		return errorf(KindAuth, "wrong user name or password")
	case errors.As(err, &le):
		return &replyError{kind: kindOfCode(le.Code), code: le.Code, text: le.Text, close: le.Close}
	default:
		c.srv.Logger.Error("pop3: opening maildrop", "conn", c.info.ID, "user", c.logUser(user), "err", err)
		return errorf(KindSysTemp, "cannot open %s's maildrop right now; try again later", printable(user))
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
		return errorf(KindSyntax, "AUTH takes a mechanism and an optional initial response, e.g. AUTH PLAIN")
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
			return errorf(KindSASL, "malformed PLAIN response: it is the base64 of authzid, NUL, user name, NUL, password")
		}
		if parts[0] != "" && parts[0] != parts[1] {
			return errorf(KindAuth, "PLAIN may not log in as another user (%s)", printable(parts[0]))
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
		return errorf(KindSASL, "unsupported SASL mechanism %s: this server offers PLAIN and LOGIN", quoteArg(mech))
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
			return "", errorf(KindSASL, "SASL response too long; authentication cancelled")
		}
		if err != nil {
			return "", &connError{err}
		}
		c.traceClient("****")
		resp = line
	}
	if resp == "*" {
		return "", errorf(KindSASL, "authentication cancelled")
	}
	b, err := base64.StdEncoding.DecodeString(resp)
	if err != nil {
		return "", errorf(KindSASL, "the SASL response is not valid base64; authentication cancelled")
	}
	return string(b), nil
}

func (c *conn) handleSTLS(arg string) error {
	if err := noArgs("STLS", arg); err != nil {
		return err
	}
	if c.srv.TLSConfig == nil {
		return errorf(KindNoTLS, "STLS is not available: this server has no TLS certificate")
	}
	if c.info.TLS != nil {
		return errorf(KindNoTLS, "this connection already uses TLS")
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

// explainLogin explains a +OK that logged in, by how.
func explainLogin(how, ref string) func(replyState) string {
	return func(r replyState) string {
		return fmt.Sprintf("Logged in with %s. The maildrop is now locked for this session and the state is TRANSACTION: %s, %d octets (%s, §4).", how, plural(r.count, "message"), r.size, ref)
	}
}

// explainAuth explains a +OK to AUTH: the list of mechanisms, or a login.
func explainAuth(r replyState) string {
	if r.state != stateTransaction {
		return "AUTH without a mechanism lists the SASL mechanisms this server offers, one a line, ending with \".\"; CAPA's SASL line says the same (RFC 1734, RFC 5034 §3)."
	}
	return explainLogin("SASL AUTH", "RFC 5034")(r)
}
