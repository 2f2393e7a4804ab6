package check

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The verdicts of a check.
const (
	Pass = "PASS"
	Fail = "FAIL"
	Warn = "WARN" // allowed, but a well-run server does otherwise (or the RFC's word is SHOULD/MAY)
	Skip = "SKIP" // the server does not offer it, or the run does not allow it
)

// A check is one rule of the RFCs, tried on the server.
type check struct {
	id, title string
	rfc       string // the section
	word      string // MUST, SHOULD or MAY: what the rule rests on
	run       func(s *suite) (status, detail string)
}

// checks are the suite, in the order a session meets them. Checks that
// change the maildrop undo it (RSET, a dropped connection) unless
// --destructive allows otherwise.
var checks = []check{
	{"greeting", "The greeting is a positive status line", "RFC 1939 §4", "MUST", checkGreeting},
	{"greeting-crlf", "Lines end with CRLF", "RFC 1939 §3", "MUST", checkGreetingCRLF},
	{"unknown-command", "An unknown command gets -ERR, and the session goes on", "RFC 1939 §3", "MUST", checkUnknown},
	{"wrong-state", "A TRANSACTION command before login gets -ERR", "RFC 1939 §3", "MUST", checkWrongState},
	{"pass-without-user", "PASS without USER gets -ERR", "RFC 1939 §7", "MUST", checkPassFirst},
	{"wrong-password", "A wrong password gets -ERR", "RFC 1939 §7", "MUST", checkWrongPassword},
	{"empty-line", "An empty line gets -ERR, and the session goes on", "RFC 1939 §3", "MUST", checkEmptyLine},
	{"junk", "Control characters and 8-bit junk get -ERR, and the session goes on", "RFC 1939 §3", "SHOULD", checkJunk},
	{"noop-before-login", "NOOP before login gets -ERR", "RFC 1939 §3, §5", "MUST", checkNoopBeforeLogin},
	{"capa", "CAPA lists the capabilities, ended by \".\"", "RFC 2449 §5", "MAY", checkCapa},
	{"auth-resp-code", "A wrong password's -ERR carries [AUTH] where advertised", "RFC 3206 §4, RFC 2449 §8", "MUST", checkRespCodeAuth},
	{"stls", "STLS starts TLS; CAPA no longer lists it; the login works over TLS", "RFC 2595 §4", "MUST", checkSTLS},
	{"apop", "APOP logs in with the digest of the greeting's timestamp", "RFC 1939 §7", "MAY", checkAPOP},
	{"sasl-plain", "AUTH PLAIN with an initial response logs in", "RFC 5034 §4", "MAY", checkSASLPlain},
	{"quit-authorization", "QUIT before login gets +OK and the connection closes", "RFC 1939 §4", "MUST", checkQuitAuthorization},
	{"login", "USER then PASS logs in", "RFC 1939 §7", "MUST", checkLogin},
	{"stat-format", "STAT answers exactly \"+OK count size\"", "RFC 1939 §5", "MUST", checkStatFormat},
	{"list-sum", "LIST gives one line per message, and the sizes add up to STAT's", "RFC 1939 §5", "MUST", checkListSum},
	{"list-one", "LIST n is one line, \"+OK n size\", as in the listing", "RFC 1939 §5", "MUST", checkListOne},
	{"list-no-such", "LIST of a message that does not exist gets -ERR", "RFC 1939 §5", "MUST", checkListNoSuch},
	{"retr-size", "RETR sends as many octets as LIST says, dot-stuffing undone", "RFC 1939 §5, §3", "SHOULD", checkRetrSize},
	{"fixture-bytes", "RETR sends the fixture's messages octet for octet", "RFC 1939 §3, §5", "MUST", checkFixtureBytes},
	{"retr-no-such", "RETR of a message that does not exist gets -ERR", "RFC 1939 §5", "MUST", checkRetrNoSuch},
	{"uidl", "UIDL gives unique ids of 1 to 70 printable characters", "RFC 1939 §7", "MUST", checkUIDL},
	{"uidl-one", "UIDL n is one line matching the listing", "RFC 1939 §7", "MUST", checkUIDLOne},
	{"uidl-stable", "Unique ids stay the same in the next session", "RFC 1939 §7", "MUST", checkUIDLStable},
	{"top", "TOP n 0 sends the header and the blank line after it", "RFC 1939 §7", "MUST", checkTop},
	{"top-lines", "TOP n k sends the header, the blank line and k body lines", "RFC 1939 §7", "MUST", checkTopLines},
	{"top-stuffing", "TOP dot-stuffs the lines it sends", "RFC 1939 §3, §7", "MUST", checkTopStuffing},
	{"dele-marks", "DELE marks: the message leaves STAT and LIST, RETR and DELE of it get -ERR", "RFC 1939 §5", "MUST", checkDeleMarks},
	{"listing-after-dele", "LIST and UIDL leave a marked message out", "RFC 1939 §5, §7", "MUST", checkListAfterDele},
	{"rset", "RSET takes the marks back", "RFC 1939 §5", "MUST", checkRset},
	{"noop", "NOOP gets +OK", "RFC 1939 §5", "MUST", checkNoop},
	{"case-insensitive", "Keywords are case-insensitive", "RFC 1939 §3", "MUST", checkCase},
	{"state-after-login", "USER after login gets -ERR", "RFC 1939 §3", "MUST", checkStateAfterLogin},
	{"dropped-keeps", "A dropped connection deletes nothing", "RFC 1939 §6", "MUST", checkDroppedKeeps},
	{"lock", "A second session cannot open a maildrop in use", "RFC 1939 §8", "SHOULD", checkLock},
	{"in-use-code", "A login refused for the lock says [IN-USE] where RESP-CODES is advertised", "RFC 2449 §8.1.1", "SHOULD", checkInUseCode},
	{"quit-transaction", "QUIT in TRANSACTION gets +OK and the connection closes", "RFC 1939 §6", "MUST", checkQuitTransaction},
	{"overlong", "An overlong line gets -ERR, and the session goes on", "RFC 2449 §4", "SHOULD", checkOverlong},
	{"pipelining", "Pipelined commands are answered in order", "RFC 2449 §6.6", "MUST", checkPipelining},
	{"second-account", "Another account's maildrop is apart: its own lock, its own marks", "RFC 1939 §8", "MUST", checkSecondAccount},
	{"autologout", "An idle session lasts at least the autologout floor", "RFC 1939 §3", "MUST", checkAutologout},
	{"quit-update", "QUIT from TRANSACTION deletes what was marked", "RFC 1939 §6", "MUST", checkQuitUpdate},
}

func checkGreeting(s *suite) (string, string) {
	c, err := s.dial()
	if err != nil {
		return Fail, err.Error()
	}
	if !ok(c.Greeting) {
		return Fail, "the greeting is " + strconv.Quote(c.Greeting)
	}
	return Pass, ""
}

func checkGreetingCRLF(s *suite) (string, string) {
	c, err := s.dial()
	if err != nil {
		return Fail, err.Error()
	}
	if err := c.send("NOOP"); err != nil {
		return Fail, err.Error()
	}
	c.conn.SetReadDeadline(deadline(s))
	l, err := c.r.ReadString('\n')
	if err != nil {
		return Fail, err.Error()
	}
	c.note("S", strconv.Quote(l))
	if !strings.HasSuffix(l, "\r\n") {
		return Fail, "a reply ends with a bare LF"
	}
	return Pass, ""
}

// session dials and, unless login is false, logs in. A login refused as
// in use is tried again for a moment: a server may release a maildrop a
// little after the connection that held it ended.
func (s *suite) session(login bool) (*client, error) {
	for try := 0; ; try++ {
		c, err := s.dial()
		if err != nil || !login {
			return c, err
		}
		err = c.login(s.t.User, s.t.Pass)
		if err == nil || try == 20 || !strings.Contains(err.Error(), "IN-USE") {
			return c, err
		}
		c.Close()
		time.Sleep(50 * time.Millisecond)
	}
}

func expectErr(s *suite, login bool, cmds ...string) (string, string) {
	c, err := s.session(login)
	if err != nil {
		return Fail, err.Error()
	}
	for _, cmd := range cmds {
		st, err := c.cmd(cmd)
		if err != nil {
			return Fail, err.Error()
		}
		if !isErr(st) {
			return Fail, fmt.Sprintf("%s got %q, want -ERR", cmd, st)
		}
	}
	switch st, err := c.cmd("NOOP"); {
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
		return Fail, "after the -ERR the server closed the connection: a refused command leaves the session as it was, and after a refused PASS the client may try again or QUIT (RFC 1939 §3, §7)"
	case err != nil:
		return Fail, "after the -ERR, NOOP got no reply: " + err.Error()
	case !ok(st) && !isErr(st):
		return Fail, fmt.Sprintf("after the -ERR, NOOP got %q", st)
	}
	return Pass, ""
}

func checkUnknown(s *suite) (string, string)         { return expectErr(s, false, "FROB") }
func checkWrongState(s *suite) (string, string)      { return expectErr(s, false, "STAT", "RETR 1") }
func checkPassFirst(s *suite) (string, string)       { return expectErr(s, false, "PASS "+s.t.Pass) }
func checkStateAfterLogin(s *suite) (string, string) { return expectErr(s, true, "USER "+s.t.User) }

func checkWrongPassword(s *suite) (string, string) {
	c, err := s.dial()
	if err != nil {
		return Fail, err.Error()
	}
	if st, err := c.cmd("USER " + s.t.User); err != nil {
		return Fail, err.Error()
	} else if isErr(st) {
		return Skip, "USER was refused: the server may not take USER/PASS"
	}
	st, err := c.cmd("PASS " + s.t.Pass + "-surely-wrong")
	if err != nil {
		return Fail, err.Error()
	}
	if !isErr(st) {
		return Fail, "a wrong password got " + strconv.Quote(st)
	}
	return Pass, ""
}

func checkCapa(s *suite) (string, string) {
	c, err := s.dial()
	if err != nil {
		return Fail, err.Error()
	}
	st, raw, _, err := c.multi("CAPA")
	switch {
	case err != nil:
		return Fail, err.Error()
	case isErr(st):
		return Skip, "the server has no CAPA (an RFC 1939 server need not)"
	case !ok(st):
		return Fail, "CAPA got " + strconv.Quote(st)
	}
	for _, l := range raw {
		f := strings.Fields(l)
		if len(f) > 0 {
			s.caps[strings.ToUpper(f[0])] = true
		}
	}
	return Pass, "capabilities: " + strings.Join(raw, ", ")
}

func checkQuitAuthorization(s *suite) (string, string) {
	c, err := s.dial()
	if err != nil {
		return Fail, err.Error()
	}
	st, err := c.cmd("QUIT")
	if err != nil || !ok(st) {
		return Fail, fmt.Sprintf("QUIT got %q (%v)", st, err)
	}
	if !c.closed() {
		return Fail, "the connection stayed open after QUIT"
	}
	return Pass, ""
}

func checkLogin(s *suite) (string, string) {
	c, err := s.session(true)
	if err != nil {
		return Fail, err.Error()
	}
	s.loggedIn = true
	st, err := c.cmd("STAT")
	if err != nil {
		return Fail, err.Error()
	}
	fmt.Sscanf(st, "+OK %d %d", &s.count, &s.size)
	return Pass, ""
}

var statRe = regexp.MustCompile(`^\+OK (\d+) (\d+)$`)

func checkStatFormat(s *suite) (string, string) {
	if !s.loggedIn {
		return Skip, "no login"
	}
	c, err := s.session(true)
	if err != nil {
		return Fail, err.Error()
	}
	st, err := c.cmd("STAT")
	if err != nil {
		return Fail, err.Error()
	}
	if !statRe.MatchString(st) {
		return Fail, fmt.Sprintf("STAT got %q: a client parses exactly \"+OK\", a space, the count, a space, the size", st)
	}
	return Pass, ""
}
