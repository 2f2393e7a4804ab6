package check

import (
	"bufio"
	"crypto/md5"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The checks of what the server offers beyond RFC 1939's minimum: TLS,
// APOP, SASL, response codes; and a few more of the basics.

func checkNoopBeforeLogin(s *suite) (string, string) { return expectErr(s, false, "NOOP") }
func checkEmptyLine(s *suite) (string, string)       { return expectErr(s, false, "") }
func checkJunk(s *suite) (string, string)            { return expectErr(s, false, "\x01\x02\x7f junk \xff") }

func checkTopLines(s *suite) (string, string) {
	if st, d, ok := needMessages(s); !ok {
		return st, d
	}
	c, err := s.session(true)
	if err != nil {
		return Fail, err.Error()
	}
	st, full, _, err := c.multi("RETR 1")
	if err != nil || !ok(st) {
		return Fail, fmt.Sprintf("RETR 1 got %q (%v)", st, err)
	}
	st, top, _, err := c.multi("TOP 1 2")
	switch {
	case err != nil:
		return Fail, err.Error()
	case isErr(st):
		return Skip, "the server has no TOP"
	}
	blank := 0
	for blank < len(full) && full[blank] != "" {
		blank++
	}
	want := min(len(full), blank+1+2)
	if len(top) != want {
		return Fail, fmt.Sprintf("TOP 1 2 sent %d lines, want the header, the blank line and 2 body lines: %d", len(top), want)
	}
	return Pass, ""
}

func checkListAfterDele(s *suite) (string, string) {
	if st, d, ok := needMessages(s); !ok {
		return st, d
	}
	c, err := s.session(true)
	if err != nil {
		return Fail, err.Error()
	}
	defer c.cmd("RSET")
	c.cmd("DELE 1")
	for _, verb := range []string{"LIST", "UIDL"} {
		m, _, st, err := listing(c, verb)
		if err != nil {
			return Fail, err.Error()
		}
		if isErr(st) {
			continue // no UIDL
		}
		if _, listed := m[1]; listed {
			return Fail, fmt.Sprintf("after DELE 1, %s still lists message 1", verb)
		}
	}
	return Pass, ""
}

func checkQuitTransaction(s *suite) (string, string) {
	if !s.loggedIn {
		return Skip, "no login"
	}
	c, err := s.session(true)
	if err != nil {
		return Fail, err.Error()
	}
	if st, _ := c.cmd("QUIT"); !ok(st) {
		return Fail, "QUIT got " + strconv.Quote(st)
	}
	if !c.closed() {
		return Fail, "the connection stayed open after QUIT"
	}
	return Pass, ""
}

func checkRespCodeAuth(s *suite) (string, string) {
	if !s.caps["RESP-CODES"] && !s.caps["AUTH-RESP-CODE"] {
		return Skip, "neither RESP-CODES nor AUTH-RESP-CODE is in CAPA"
	}
	c, err := s.dial()
	if err != nil {
		return Fail, err.Error()
	}
	c.cmd("USER " + s.t.User)
	st, err := c.cmd("PASS " + s.t.Pass + "-surely-wrong")
	if err != nil {
		return Fail, err.Error()
	}
	if !strings.HasPrefix(st, "-ERR [AUTH]") && s.caps["AUTH-RESP-CODE"] {
		return Fail, fmt.Sprintf("a wrong password got %q: with AUTH-RESP-CODE it says [AUTH] (RFC 3206 §4)", st)
	}
	if m := regexp.MustCompile(`^-ERR \[([^\]]*)\]`).FindStringSubmatch(st); m != nil && strings.ContainsAny(m[1], " \t") {
		return Fail, fmt.Sprintf("the response code %q has white space in it (RFC 2449 §8)", m[1])
	}
	return Pass, ""
}

func checkInUseCode(s *suite) (string, string) {
	if !s.caps["RESP-CODES"] {
		return Skip, "RESP-CODES is not in CAPA"
	}
	first, err := s.session(true)
	if err != nil {
		return Fail, err.Error()
	}
	defer first.cmd("QUIT")
	second, err := s.dial()
	if err != nil {
		return Fail, err.Error()
	}
	second.cmd("USER " + s.t.User)
	st, err := second.cmd("PASS " + s.t.Pass)
	switch {
	case err != nil:
		return Fail, err.Error()
	case ok(st):
		return Skip, "the server let a second session in (see lock)"
	case !strings.HasPrefix(st, "-ERR [IN-USE]"):
		return Warn, fmt.Sprintf("a login refused because the maildrop is locked got %q: with RESP-CODES it says [IN-USE] (RFC 2449 §8.1.1)", st)
	}
	return Pass, ""
}

func checkSTLS(s *suite) (string, string) { return retryInUse(s, stls) }

func stls(s *suite) (string, string) {
	if !s.caps["STLS"] {
		return Skip, "STLS is not in CAPA"
	}
	c, err := s.dial()
	if err != nil {
		return Fail, err.Error()
	}
	if st, err := c.cmd("STLS"); err != nil || !ok(st) {
		return Fail, fmt.Sprintf("STLS got %q (%v)", st, err)
	}
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true, ServerName: s.t.Host})
	if err := tc.Handshake(); err != nil {
		return Fail, "the TLS handshake after +OK failed: " + err.Error()
	}
	c.note("C", "(TLS handshake)")
	c.conn, c.r = tc, bufio.NewReader(tc)
	st, raw, _, err := c.multi("CAPA")
	if err != nil || !ok(st) {
		return Fail, fmt.Sprintf("CAPA over TLS got %q (%v)", st, err)
	}
	for _, l := range raw {
		if strings.EqualFold(strings.TrimSpace(l), "STLS") {
			return Fail, "CAPA after STLS still lists STLS (RFC 2595 §4)"
		}
	}
	if err := c.login(s.t.User, s.t.Pass); err != nil {
		return Fail, "logging in over TLS: " + err.Error()
	}
	return Pass, ""
}

var timestampRe = regexp.MustCompile(`<[^<>]+@[^<>]+>`)

func checkAPOP(s *suite) (string, string) { return retryInUse(s, apop) }

func apop(s *suite) (string, string) {
	c, err := s.dial()
	if err != nil {
		return Fail, err.Error()
	}
	ts := timestampRe.FindString(c.Greeting)
	if ts == "" {
		return Skip, "the greeting has no <timestamp>: the server does not offer APOP"
	}
	sum := md5.Sum([]byte(ts + s.t.Pass))
	c.note("C", "APOP "+s.t.User+" (digest)")
	if err := c.raw("APOP " + s.t.User + " " + hex.EncodeToString(sum[:]) + "\r\n"); err != nil {
		return Fail, err.Error()
	}
	st, err := c.line()
	switch {
	case err != nil:
		return Fail, err.Error()
	case ok(st):
		return Pass, ""
	case strings.Contains(st, "[AUTH]") || strings.Contains(strings.ToLower(st), "apop"):
		return Skip, "APOP is refused for this account (it needs a shared secret the server keeps in the clear): " + st
	}
	return Fail, fmt.Sprintf("APOP with the right digest got %q (RFC 1939 §7)", st)
}

func checkSASLPlain(s *suite) (string, string) { return retryInUse(s, saslPlain) }

func saslPlain(s *suite) (string, string) {
	if !s.caps["SASL"] {
		return Skip, "SASL is not in CAPA"
	}
	c, err := s.dial()
	if err != nil {
		return Fail, err.Error()
	}
	c.note("C", "AUTH PLAIN (credentials)")
	if err := c.raw("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+s.t.User+"\x00"+s.t.Pass)) + "\r\n"); err != nil {
		return Fail, err.Error()
	}
	st, err := c.line()
	switch {
	case err != nil:
		return Fail, err.Error()
	case strings.HasPrefix(st, "+ "), st == "+":
		return Warn, "the server asked for the credentials again instead of taking the initial response (RFC 5034 §4)"
	case !ok(st):
		return Fail, fmt.Sprintf("AUTH PLAIN with the right credentials got %q (RFC 5034, RFC 4616)", st)
	}
	return Pass, ""
}

// retryInUse runs a check that logs in on its own again while the
// maildrop is still locked by the session before (a server may release it
// a moment after the connection ended).
func retryInUse(s *suite, check func(*suite) (string, string)) (string, string) {
	for try := 0; ; try++ {
		status, detail := check(s)
		if try == 20 || !strings.Contains(detail, "IN-USE") {
			return status, detail
		}
		for _, c := range s.clients {
			c.Close()
		}
		s.clients = nil
		time.Sleep(50 * time.Millisecond)
	}
}

// unstuffed finds a line of a multi-line body that starts with a single
// "." on the wire: the server did not dot-stuff it (RFC 1939 §3).
func unstuffed(raw []string) (int, string, bool) {
	for i, l := range raw {
		if strings.HasPrefix(l, ".") && !strings.HasPrefix(l, "..") {
			return i + 1, l, true
		}
	}
	return 0, "", false
}

func checkTopStuffing(s *suite) (string, string) {
	if st, d, ok := needMessages(s); !ok {
		return st, d
	}
	c, err := s.session(true)
	if err != nil {
		return Fail, err.Error()
	}
	for n := 1; n <= min(s.count, maxRetr); n++ {
		st, raw, _, err := c.multi(fmt.Sprintf("TOP %d 100000", n))
		switch {
		case err != nil:
			return Fail, err.Error()
		case isErr(st) && n == 1:
			return Skip, "the server has no TOP"
		}
		if i, l, bad := unstuffed(raw); bad {
			return Fail, fmt.Sprintf("TOP %d 100000: line %d is %q on the wire: TOP dot-stuffs its lines as RETR does (RFC 1939 §3, §7)", n, i, truncateLine(l))
		}
	}
	return Pass, ""
}

func checkAutologout(s *suite) (string, string) {
	if s.t.Slow <= 0 {
		return Skip, "takes as long as the floor: run with --slow 10m (RFC 1939's minimum)"
	}
	if !s.loggedIn {
		return Skip, "no login"
	}
	c, err := s.session(true)
	if err != nil {
		return Fail, err.Error()
	}
	time.Sleep(s.t.Slow)
	st, err := c.cmd("NOOP")
	if err != nil || !ok(st) {
		return Fail, fmt.Sprintf("after %v idle, NOOP got %q (%v): the autologout timer must be at least 10 minutes (RFC 1939 §3)", s.t.Slow, st, err)
	}
	return Pass, fmt.Sprintf("still open after %v", s.t.Slow)
}

func checkSecondAccount(s *suite) (string, string) {
	if s.t.User2 == "" {
		return Skip, "needs a second account: --second USER:PASS"
	}
	first, err := s.session(true)
	if err != nil {
		return Fail, err.Error()
	}
	defer first.cmd("RSET")
	count, _, _ := stat(first)
	second, err := s.dial()
	if err != nil {
		return Fail, err.Error()
	}
	if err := second.login(s.t.User2, s.t.Pass2); err != nil {
		return Fail, "the second account could not log in while the first held its own maildrop: the lock is per maildrop (RFC 1939 §8): " + err.Error()
	}
	n2, size2, _ := stat(second)
	if count > 0 {
		first.cmd("DELE 1")
	}
	if n, sz, st := stat(second); n != n2 || sz != size2 {
		return Fail, fmt.Sprintf("a mark in the first account's session changed the second's STAT to %q", st)
	}
	return Pass, ""
}
