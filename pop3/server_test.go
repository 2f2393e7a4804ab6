package pop3_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/pop3/pop3test"
)

func TestGreetingCarriesAPOPTimestamp(t *testing.T) {
	env := testServer(t)
	c1, c2 := env.greeted(t), env.greeted(t)
	re := regexp.MustCompile(`^\+OK POP3 server ready <[0-9a-f]{16}\.\d+@pop\.test>$`)
	for _, g := range []string{c1.Greeting, c2.Greeting} {
		if !re.MatchString(g) {
			t.Errorf("greeting %q, want match for %s", g, re)
		}
	}
	if c1.Greeting == c2.Greeting {
		t.Errorf("two connections got the same timestamp %q", c1.Greeting)
	}
}

// The example session of RFC 1939 §10, on our fixture.
func TestRFC1939ExampleSession(t *testing.T) {
	env := testServer(t)
	c := env.authenticated(t)
	c.Expect("STAT", "+OK 7 54859")
	if got := c.Cmd("STAT"); got != "+OK 7 54859" {
		t.Errorf("STAT = %q: RFC 1939 §5 wants exactly +OK count size", got)
	}
	c.Expect("LIST", "+OK 7 messages (54859 octets)")
	want := []string{"1 498", "2 810", "3 1995", "4 760", "5 1625", "6 48959", "7 212"}
	if got := c.Body(); !slices.Equal(got, want) {
		t.Errorf("LIST = %q, want %q", got, want)
	}
	c.Expect("RETR 1", "+OK 498 octets")
	body := strings.Join(c.Body(), "\r\n") + "\r\n"
	if len(body) != 498 {
		t.Errorf("RETR 1 body is %d octets, LIST said 498", len(body))
	}
	c.Expect("DELE 1", "+OK message 1 marked for deletion")
	c.Expect("RETR 2", "+OK 810 octets")
	c.Body()
	c.Expect("DELE 2", "+OK message 2 marked for deletion")
	c.Expect("QUIT", "+OK signing off: 2 messages deleted, 5 left")
	c.ExpectClosed()

	// The deletions happened in UPDATE: a new session sees 5 messages.
	c = env.greeted(t)
	c.Expect("USER guest", "+OK")
	c.Expect("PASS visitor", "+OK guest's maildrop has 5 messages (53551 octets)")
	c.Expect("LIST 1", "+OK 1 1995")
}

func TestCommandsInTheWrongState(t *testing.T) {
	env := testServer(t, func(s *pop3.Server) { s.MaxErrors = 100 })
	c := env.greeted(t)
	for _, cmd := range []string{"STAT", "LIST", "LIST 1", "RETR 1", "DELE 1", "NOOP", "RSET", "TOP 1 0", "UIDL", "uidl 1"} {
		verb := strings.ToUpper(strings.Fields(cmd)[0])
		c.Expect(cmd, "-ERR "+verb+" is only valid after you log in: send USER, then PASS")
	}
	c.Expect("PASS visitor", "-ERR PASS must follow USER")
	c.Expect("USER guest", "+OK")
	c.Expect("PASS visitor", "+OK")
	for _, cmd := range []string{"USER guest", "PASS visitor", "APOP guest 0123456789abcdef0123456789abcdef", "AUTH PLAIN", "STLS"} {
		verb := strings.Fields(cmd)[0]
		c.Expect(cmd, "-ERR "+verb+" is only valid before logging in; you are logged in as guest")
	}
	c.Expect("NOOP", "+OK")
}

func TestBadArgumentsTeach(t *testing.T) {
	env := testServer(t, func(s *pop3.Server) { s.MaxErrors = 100 })
	c := env.authenticated(t)
	for _, tc := range []struct{ send, want string }{
		{"RETR", "-ERR RETR needs a message number, e.g. RETR 1"},
		{"RETR abc", `-ERR "abc" is not a message number; e.g. RETR 1`},
		{"RETR -1", `-ERR "-1" is not a message number; e.g. RETR 1`},
		{"RETR 0", "-ERR no message 0: messages are numbered from 1"},
		{"RETR 8", "-ERR no message 8: the maildrop has 7 messages"},
		{"RETR 99999999999", `-ERR "99999999999" is not a message number`},
		{"RETR 1 2", "-ERR RETR needs a message number"},
		{"LIST 1 2", "-ERR LIST takes at most one message number, e.g. LIST 1"},
		{"LIST x", `-ERR "x" is not a message number; e.g. LIST 1`},
		{"UIDL 9", "-ERR no message 9: the maildrop has 7 messages"},
		{"TOP 1", "-ERR TOP needs a message number and a number of body lines, e.g. TOP 1 10"},
		{"TOP 1 x", `-ERR "x" is not a number of lines; e.g. TOP 1 0 for the header alone`},
		{"TOP 9 0", "-ERR no message 9"},
		{"DELE", "-ERR DELE needs a message number, e.g. DELE 1"},
		{"STAT 1", "-ERR STAT takes no arguments"},
		{"NOOP x", "-ERR NOOP takes no arguments"},
		{"RSET x", "-ERR RSET takes no arguments"},
		{"QUIT now", "-ERR QUIT takes no arguments"},
		{"CAPA x", "-ERR CAPA takes no arguments"},
		{"LOGIN guest visitor", `-ERR unknown command "LOGIN": log in with USER then PASS`},
		{"FROB", `-ERR unknown command "FROB": try STAT, LIST, RETR, TOP, UIDL, DELE, RSET, NOOP or QUIT`},
		{"HELO there", `-ERR unknown command "HELO": that is SMTP`},
		{"GET / HTTP/1.1", `-ERR unknown command "GET": this is a POP3 server, not a web server`},
		{"", "-ERR empty command"},
	} {
		if got := c.Cmd(tc.send); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%q: got %q, want %q", tc.send, got, tc.want)
		}
	}
	c.Expect("STAT", "+OK 7 54859") // the session goes on
}

func TestKeywordsAreCaseInsensitive(t *testing.T) {
	env := testServer(t)
	c := env.greeted(t)
	c.Expect("user guest", "+OK")
	c.Expect("Pass visitor", "+OK")
	c.Expect("sTaT", "+OK 7 54859")
	c.Expect("quit", "+OK")
}

func TestMarkedMessagesAreInvisible(t *testing.T) {
	env := testServer(t)
	c := env.authenticated(t)
	c.Expect("DELE 2", "+OK message 2 marked for deletion; it is removed when you QUIT")
	c.Expect("STAT", "+OK 6 54049")
	c.Expect("LIST", "+OK 6 messages (54049 octets)")
	if got := c.Body(); slices.Contains(got, "2 810") || len(got) != 6 {
		t.Errorf("LIST after DELE 2 = %q", got)
	}
	c.Expect("UIDL", "+OK")
	if got := c.Body(); len(got) != 6 || strings.HasPrefix(got[1], "2 ") {
		t.Errorf("UIDL after DELE 2 = %q", got)
	}
	for _, cmd := range []string{"LIST 2", "UIDL 2", "RETR 2", "TOP 2 0", "DELE 2"} {
		c.Expect(cmd, "-ERR message 2 is marked for deletion; RSET unmarks it")
	}
	c.Expect("RSET", "+OK maildrop has 7 messages (54859 octets)")
	c.Expect("LIST 2", "+OK 2 810")
	c.Expect("DELE 2", "+OK")
	c.Expect("DELE 7", "+OK")
	c.Expect("QUIT", "+OK signing off: 2 messages deleted, 5 left")
	// The +OK to QUIT is sent after the deletions: nothing to wait for.
	if got := len(env.be.Messages("guest")); got != 5 {
		t.Errorf("after QUIT the sandbox has %d messages, want 5", got)
	}
}

func TestQuitFromAuthorizationDeletesNothing(t *testing.T) {
	env := testServer(t)
	c := env.greeted(t)
	c.Expect("USER guest", "+OK")
	c.Expect("QUIT", "+OK signing off")
	c.ExpectClosed()
}

func TestDroppedConnectionDeletesNothingAndReleasesTheLock(t *testing.T) {
	env := testServer(t)
	c := env.authenticated(t)
	c.Expect("DELE 1", "+OK")
	c.Expect("DELE 3", "+OK")
	c.Conn.Close()
	if user := <-env.be.Closed; user != "guest" {
		t.Fatalf("released %q", user)
	}
	if got := len(env.be.Messages("guest")); got != 7 {
		t.Errorf("a dropped session deleted messages: %d left", got)
	}
	c = env.authenticated(t) // the lock is free again
	c.Expect("STAT", "+OK 7 54859")
}

func TestExclusiveLock(t *testing.T) {
	env := testServer(t)
	first := env.authenticated(t)
	second := env.greeted(t)
	second.Expect("USER guest", "+OK")
	second.Expect("PASS visitor", "-ERR [IN-USE] guest's maildrop is locked by another session, and only one may hold it: QUIT that session first")
	// Another account in the same sandbox is not locked.
	second.Expect("USER mrose", "+OK")
	second.Expect("PASS tanstaaf", "+OK mrose's maildrop has 2 messages")
	second.Expect("QUIT", "+OK")

	third := env.greeted(t)
	third.Expect("USER guest", "+OK")
	third.Expect("PASS visitor", "-ERR [IN-USE]")
	first.Expect("QUIT", "+OK")
	third.Expect("USER guest", "+OK")
	third.Expect("PASS visitor", "+OK guest's maildrop has 7 messages")
}

func TestPipelining(t *testing.T) {
	env := testServer(t)
	c := env.greeted(t)
	// Everything in one write; the replies come back in order.
	c.Send("CAPA\r\nUSER guest\r\nPASS visitor\r\nSTAT\r\nLIST 3\r\nTOP 3 0\r\nDELE 3\r\nSTAT\r\nBOGUS\r\nUIDL 1\r\nNOOP\r\nQUIT")
	if got := c.ReadLine(); got != "+OK capability list follows" {
		t.Fatalf("first reply %q, want CAPA's", got)
	}
	if caps := c.Body(); !slices.Contains(caps, "PIPELINING") {
		t.Errorf("CAPA lacks PIPELINING: %q", caps)
	}
	for _, want := range []string{"+OK now send the password", "+OK guest's maildrop", "+OK 7 54859", "+OK 3 1995", "+OK top of message follows"} {
		if got := c.ReadLine(); !strings.HasPrefix(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if hdr := c.Body(); len(hdr) < 20 || hdr[len(hdr)-1] != "" {
		t.Errorf("TOP 3 0 = %d lines ending %q; want the header and a blank line", len(hdr), hdr[len(hdr)-1])
	}
	for _, want := range []string{"+OK message 3 marked", "+OK 6 52864", "-ERR unknown command", "+OK 1 ", "+OK", "+OK signing off: 1 message deleted, 6 left"} {
		if got := c.ReadLine(); !strings.HasPrefix(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

func TestDotStuffingOnTheWire(t *testing.T) {
	env := testServer(t)
	c := env.authenticated(t)
	c.Expect("RETR 4", "+OK 760 octets")
	raw := c.RawBody()
	for _, want := range []string{
		"\r\n\r\n..This first body line starts with a dot.\r\n",
		"two dots:\r\n..\r\n...\r\n..hidden files",
		"\r\n....and an ellipsis",
		"dot arrives with two.\r\n.\r\n",
	} {
		if !strings.Contains(raw, want) {
			t.Errorf("RETR 4 lacks %q on the wire:\n%s", want, raw)
		}
	}
	// Undone, the body is the message, octet for octet.
	c.Expect("RETR 4", "+OK")
	if got := len(strings.Join(c.Body(), "\r\n") + "\r\n"); got != 760 {
		t.Errorf("unstuffed RETR 4 is %d octets, want 760", got)
	}
}

func TestTop(t *testing.T) {
	env := testServer(t)
	c := env.authenticated(t)
	c.Expect("RETR 3", "+OK")
	full := c.Body()
	blank := slices.Index(full, "")
	for _, n := range []int{0, 1, 5, 1000} {
		c.Expect(fmt.Sprintf("TOP 3 %d", n), "+OK top of message follows")
		got := c.Body()
		want := full[:min(blank+1+n, len(full))]
		if !slices.Equal(got, want) {
			t.Errorf("TOP 3 %d: %d lines, want %d", n, len(got), len(want))
		}
	}
}

func TestUIDLIsStable(t *testing.T) {
	env := testServer(t)
	c := env.authenticated(t)
	c.Expect("UIDL", "+OK")
	all := c.Body()
	uid3 := strings.Fields(all[2])[1]
	c.Expect("UIDL 3", "+OK 3 "+uid3)
	c.Expect("DELE 1", "+OK")
	c.Expect("QUIT", "+OK")
	c = env.greeted(t)
	c.Expect("USER guest", "+OK")
	c.Expect("PASS visitor", "+OK guest's maildrop has 6 messages")
	c.Expect("UIDL 2", "+OK 2 "+uid3) // renumbered, same unique-id
	for _, l := range all {
		uid := strings.Fields(l)[1]
		if len(uid) < 1 || len(uid) > 70 || strings.ContainsFunc(uid, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
			t.Errorf("unique-id %q breaks RFC 1939 §7", uid)
		}
	}
}

func TestCapa(t *testing.T) {
	env := testServer(t, func(s *pop3.Server) { s.Implementation = "Test-1" })
	c := env.greeted(t)
	c.Expect("CAPA", "+OK capability list follows")
	want := []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "USER", "SASL PLAIN LOGIN", "STLS", "IMPLEMENTATION Test-1"}
	if got := c.Body(); !slices.Equal(got, want) {
		t.Errorf("CAPA in AUTHORIZATION = %q, want %q", got, want)
	}
	c.Expect("USER guest", "+OK")
	c.Expect("PASS visitor", "+OK")
	c.Expect("CAPA", "+OK")
	want = []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "IMPLEMENTATION Test-1"}
	if got := c.Body(); !slices.Equal(got, want) {
		t.Errorf("CAPA in TRANSACTION = %q, want %q", got, want)
	}
}

func TestCapaWithoutTLSHasNoSTLS(t *testing.T) {
	env := testServer(t, func(s *pop3.Server) { s.TLSConfig = nil })
	c := env.greeted(t)
	c.Expect("CAPA", "+OK")
	if got := c.Body(); slices.Contains(got, "STLS") {
		t.Errorf("CAPA offers STLS without a certificate: %q", got)
	}
	c.Expect("STLS", "-ERR STLS is not available: this server has no TLS certificate")
}

func TestOverlongLines(t *testing.T) {
	env := testServer(t)
	c := env.greeted(t)
	c.Expect("NOOP "+strings.Repeat("x", 300), "-ERR line too long: a command line is at most 255 octets (RFC 2449 §4)")
	c.Expect("USER "+strings.Repeat("y", 6000), "-ERR line too long")
	c.Expect("CAPA", "+OK") // the session goes on
	c.Body()
	// 253 octets and CRLF: just fits.
	c.Expect("USER "+strings.Repeat("z", 248), "+OK")

	// A flood without a line end is cut off.
	c.Conn.Write([]byte(strings.Repeat("A", 70<<10)))
	c.Expect("", "-ERR line too long and without end; closing the connection")
	c.ExpectClosed()
}

func TestBinaryJunk(t *testing.T) {
	env := testServer(t)
	c := env.greeted(t)
	c.Expect("ST\x00AT", "-ERR the line holds the control character ^@")
	c.Expect("US\bER guest", "-ERR the line holds the control character ^H (your terminal may have sent it for an editing key)")
	c.Expect("\xff\xfd\x18", "-ERR the line holds the control character ^X")
	c.Expect("\xc3\xa9t\xc3\xa9", `-ERR unknown command "\u00e9t\u00e9": commands are plain ASCII words`)
	c.Expect("\x1b[A", "-ERR the line holds the control character ^[")
	c.Expect("CAPA", "+OK")
	c.Body()
}

func TestTooManyErrorsInARow(t *testing.T) {
	env := testServer(t, func(s *pop3.Server) { s.MaxErrors = 3 })
	c := env.greeted(t)
	c.Expect("NOPE", "-ERR")
	c.Expect("CAPA", "+OK") // a success resets the count
	c.Body()
	c.Expect("NOPE", "-ERR")
	c.Expect("NOPE", "-ERR")
	c.Expect("NOPE", `-ERR unknown command "NOPE": log in with USER then PASS; that is 3 lines in a row that were not commands, closing the connection`)
	c.ExpectClosed()
}

// A student clearing a mail bomb who overshoots (DELE 1 … DELE 20 on
// fewer messages) gets an -ERR for each number past the end, but those
// are commands, not junk: the session stays and QUIT deletes what was
// marked.
func TestOutOfRangeNumbersDoNotEndTheSession(t *testing.T) {
	env := testServer(t, func(s *pop3.Server) { s.MaxErrors = 3 })
	c := env.authenticated(t)
	const n = 7 // guest's maildrop
	for i := 1; i <= n+10; i++ {
		if i <= n {
			c.Expect(fmt.Sprintf("DELE %d", i), "+OK")
		} else {
			c.Expect(fmt.Sprintf("DELE %d", i), "-ERR no message")
		}
	}
	c.Expect("QUIT", "+OK")
	c.ExpectClosed()
	if left := len(env.be.Messages("guest")); left != 0 {
		t.Errorf("%d messages left after QUIT; want all %d deleted", left, n)
	}
}

// When junk does end a session, the reply says that marks were not applied.
func TestJunkStreakSaysMarksStay(t *testing.T) {
	env := testServer(t, func(s *pop3.Server) { s.MaxErrors = 2 })
	c := env.authenticated(t)
	c.Expect("DELE 1", "+OK")
	c.Expect("XYZZY", "-ERR unknown command")
	c.Expect("XYZZY", "-ERR unknown command \"XYZZY\": try STAT, LIST, RETR, TOP, UIDL, DELE, RSET, NOOP or QUIT; that is 2 lines in a row that were not commands, closing the connection without QUIT: the 1 message marked for deletion stay")
	c.ExpectClosed()
}

func TestEmptyLineSaysWhatWouldBeRight(t *testing.T) {
	env := testServer(t)
	c := env.greeted(t)
	c.Expect("", "-ERR empty command: type a command such as CAPA, or USER and your name")
	c.Expect("USER guest", "+OK")
	c.Expect("", "-ERR empty command: send PASS and the password for guest")
	c.Expect("PASS visitor", "+OK")
	c.Expect("", "-ERR empty command: you are logged in; try STAT, LIST")
}

// C1 controls and the characters that reorder text are never echoed raw.
func TestEchoEscapesC1AndBidi(t *testing.T) {
	env := testServer(t)
	c := env.greeted(t)
	c.Expect("USER evil\u202egnp.exe\u0090x\u2066y", `+OK now send the password for evil\u202Egnp.exe?x\u2066y with PASS`)
}

func TestFailedLogins(t *testing.T) {
	env := testServer(t)
	c := env.greeted(t)
	c.Expect("USER guest", "+OK")
	c.Expect("PASS wrong", "-ERR [AUTH] wrong user name or password")
	c.Expect("PASS visitor", "-ERR PASS must follow USER") // the failure forgot the user
	c.Expect("USER nobody", "+OK")                         // no hint that nobody does not exist
	c.Expect("PASS visitor", "-ERR [AUTH] wrong user name or password")
	c.Expect("USER guest", "+OK")
	c.Expect("PASS wrong again", "-ERR [AUTH] wrong user name or password; too many failed logins, closing the connection")
	c.ExpectClosed()
	if !strings.Contains(env.log.String(), "login failed") {
		t.Errorf("failed logins not logged:\n%s", env.log)
	}
}

func TestFailedLoginDelayGrows(t *testing.T) {
	env := testServer(t, func(s *pop3.Server) { s.AuthFailureDelay = 40 * time.Millisecond; s.MaxAuthFailures = 5 })
	c := env.greeted(t)
	var took []time.Duration
	for range 3 {
		c.Expect("USER guest", "+OK")
		start := time.Now()
		c.Expect("PASS wrong", "-ERR [AUTH]")
		took = append(took, time.Since(start))
	}
	// 40ms, 80ms, 160ms: each at least its delay (a lower bound only).
	for i, d := range took {
		if min := 40 * time.Millisecond << i; d < min {
			t.Errorf("failure %d answered after %v, want at least %v", i+1, d, min)
		}
	}
}

func TestConnectionLimits(t *testing.T) {
	env := testServer(t, func(s *pop3.Server) { s.MaxConnsPerIP = 2 })
	env.greeted(t)
	second := env.greeted(t)
	third := env.dial(t)
	if third.Greeting != "-ERR [SYS/TEMP] too many connections from your address; try again later" {
		t.Errorf("third connection greeted %q", third.Greeting)
	}
	third.ExpectClosed()
	second.Expect("QUIT", "+OK")
	second.ExpectClosed()
	env.greeted(t) // the slot was released before the server's FIN

	full := testServer(t, func(s *pop3.Server) { s.MaxConns = 1 })
	full.greeted(t)
	if g := full.dial(t).Greeting; g != "-ERR [SYS/TEMP] the server is full; try again later" {
		t.Errorf("over MaxConns greeted %q", g)
	}
}

func TestAutologout(t *testing.T) {
	env := testServer(t, func(s *pop3.Server) { s.IdleTimeout = 50 * time.Millisecond })
	c := env.authenticated(t)
	c.Expect("DELE 1", "+OK")
	if got := c.ReadLine(); got != "-ERR autologout: no command for 50ms, closing the connection (RFC 1939 §3)" {
		t.Errorf("got %q", got)
	}
	c.ExpectClosed()
	<-env.be.Closed
	if n := len(env.be.Messages("guest")); n != 7 {
		t.Errorf("autologout deleted messages: %d left", n)
	}
}

func TestSTLS(t *testing.T) {
	env := testServer(t)
	c := env.greeted(t)
	c.Expect("USER guest", "+OK")
	c.Expect("STLS", "+OK begin TLS negotiation")
	tc := tls.Client(c.Conn, &tls.Config{ServerName: "localhost", RootCAs: env.certs})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c = pop3test.NewClient(t, tc)
	c.Expect("CAPA", "+OK")
	if got := c.Body(); slices.Contains(got, "STLS") {
		t.Errorf("CAPA after STLS still offers STLS: %q", got)
	}
	c.Expect("PASS visitor", "-ERR PASS must follow USER") // USER before STLS is forgotten
	c.Expect("STLS", "-ERR this connection already uses TLS")
	c.Expect("USER guest", "+OK")
	c.Expect("PASS visitor", "+OK")
	if info := <-env.be.Infos; info.TLS == nil || info.TLS.Version < tls.VersionTLS12 {
		t.Errorf("the backend saw ConnInfo.TLS = %+v", info.TLS)
	}
	c.Expect("RETR 6", "+OK 48959 octets")
	if n := len(strings.Join(c.Body(), "\r\n")) + 2; n != 48959 {
		t.Errorf("RETR 6 over TLS: %d octets", n)
	}
	c.Expect("QUIT", "+OK")
}

// Commands sent in plaintext after STLS, before the handshake, must not run
// (RFC 2595 §4; the attack of CVE-2011-0411).
func TestSTLSDropsInjectedCommands(t *testing.T) {
	env := testServer(t)
	c := env.greeted(t)
	c.Send("STLS\r\nUSER guest\r\nPASS visitor")
	if got := c.ReadLine(); got != "+OK begin TLS negotiation" {
		t.Fatalf("STLS: %q", got)
	}
	tc := tls.Client(c.Conn, &tls.Config{ServerName: "localhost", RootCAs: env.certs})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c = pop3test.NewClient(t, tc)
	c.Expect("STAT", "-ERR STAT is only valid after you log in")
}

func TestImplicitTLS(t *testing.T) {
	env := testServer(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go env.srv.ServeTLS(l)
	tc, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{ServerName: "localhost", RootCAs: env.certs})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	c := pop3test.NewClient(t, tc)
	if g := c.ReadLine(); !strings.HasPrefix(g, "+OK POP3 server ready <") {
		t.Fatalf("greeting over TLS: %q", g)
	}
	c.Expect("CAPA", "+OK")
	if got := c.Body(); slices.Contains(got, "STLS") {
		t.Errorf("CAPA on implicit TLS offers STLS: %q", got)
	}
	c.Expect("USER guest", "+OK")
	c.Expect("PASS visitor", "+OK")
}

func TestAuthPlain(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	env := testServer(t, func(s *pop3.Server) { s.MaxAuthFailures = 10; s.MaxErrors = 20 })
	c := env.greeted(t)
	c.Expect("AUTH", "+OK SASL mechanisms follow")
	if got := c.Body(); !slices.Equal(got, []string{"PLAIN", "LOGIN"}) {
		t.Errorf("AUTH lists %q", got)
	}
	c.Expect("AUTH CRAM-MD5", `-ERR unsupported SASL mechanism "CRAM-MD5": this server offers PLAIN and LOGIN`)
	c.Expect("AUTH PLAIN "+b64("\x00guest\x00wrong"), "-ERR [AUTH] wrong user name or password")
	c.Expect("AUTH PLAIN !!!", "-ERR the SASL response is not valid base64")
	c.Expect("AUTH PLAIN "+b64("guest"), "-ERR malformed PLAIN response")
	c.Expect("AUTH PLAIN "+b64("mrose\x00guest\x00visitor"), "-ERR [AUTH] PLAIN may not log in as another user")
	c.Expect("AUTH PLAIN", "+ ")
	c.Expect("*", "-ERR authentication cancelled")
	// The challenge form (no initial response), then the real login.
	c.Expect("AUTH PLAIN", "+ ")
	c.Expect(b64("guest\x00guest\x00visitor"), "+OK guest's maildrop has 7 messages")
	c.Expect("QUIT", "+OK")

	c = env.greeted(t)
	c.Expect("AUTH PLAIN "+b64("\x00guest\x00visitor"), "+OK guest's maildrop has 7 messages")
}

func TestAuthLogin(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	env := testServer(t)
	c := env.greeted(t)
	c.Expect("AUTH LOGIN", "+ "+b64("Username:"))
	c.Expect(b64("guest"), "+ "+b64("Password:"))
	c.Expect(b64("visitor"), "+OK guest's maildrop")
}

func TestAPOP(t *testing.T) {
	env := testServer(t)
	c := env.greeted(t)
	ts := timestampRe.FindString(c.Greeting)
	c.Expect("APOP mrose "+apopDigest(ts, "wrong"), "-ERR [AUTH] wrong user name or password")
	c.Expect("APOP mrose xyz", "-ERR the APOP digest is 32 hexadecimal digits: the MD5 of the greeting's timestamp "+ts+" followed by the password")
	c.Expect("APOP mrose", "-ERR APOP needs a user name and a digest")
	// A digest made for another connection's timestamp is refused.
	other := env.greeted(t)
	c.Expect("APOP mrose "+apopDigest(timestampRe.FindString(other.Greeting), "tanstaaf"), "-ERR [AUTH]")
	c = env.greeted(t)
	ts = timestampRe.FindString(c.Greeting)
	c.Expect("APOP mrose "+strings.ToUpper(apopDigest(ts, "tanstaaf")), "+OK mrose's maildrop has 2 messages")
}

func TestAPOPWithoutBackendSupport(t *testing.T) {
	env := testServer(t, func(s *pop3.Server) {
		be := s.Backend
		s.Backend = pop3.BackendFunc(be.Login) // hides LoginAPOP
	})
	c := env.greeted(t)
	c.Expect("APOP guest 0123456789abcdef0123456789abcdef", "-ERR APOP is not supported here; log in with USER and PASS")
}

func TestShutdownTellsWaitingClients(t *testing.T) {
	env := testServer(t)
	idle := env.authenticated(t)
	idle.Expect("DELE 1", "+OK")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error)
	go func() { done <- env.srv.Shutdown(ctx) }()
	if got := idle.ReadLine(); got != "-ERR [SYS/TEMP] the server is shutting down; connect again in a moment" {
		t.Errorf("idle client got %q", got)
	}
	idle.ExpectClosed()
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-env.served; !errors.Is(err, pop3.ErrServerClosed) {
		t.Errorf("Serve returned %v", err)
	}
	env.served <- pop3.ErrServerClosed // for the cleanup
	if n := len(env.be.Messages("guest")); n != 7 {
		t.Errorf("shutdown deleted marked messages: %d left", n)
	}
	if _, err := net.Dial("tcp", env.addr); err == nil {
		t.Error("the listener still accepts after Shutdown")
	}
}

func TestTraceMasksSecrets(t *testing.T) {
	trace := &pop3test.SyncBuffer{}
	env := testServer(t, func(s *pop3.Server) { s.Trace = trace })
	c := env.greeted(t)
	c.Expect("USER guest", "+OK")
	c.Expect("PASS visitor", "+OK")
	c.Expect("RETR 7", "+OK")
	c.Body()
	c.Expect("QUIT", "+OK")
	c.ExpectClosed()
	c = env.greeted(t)
	c.Expect("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00guest\x00visitor")), "+OK")
	c.Expect("QUIT", "+OK")
	c.ExpectClosed()
	got := trace.String()
	for _, want := range []string{
		`"from":"client","line":"USER guest"}`,
		`"from":"client","line":"PASS ****"}`,
		`"from":"client","line":"AUTH PLAIN ****"}`,
		`"from":"server","line":"+OK 212 octets"}`,
		`"from":"server","line":"12:30 at the usual place?"}`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("trace lacks %s", want)
		}
	}
	if strings.Contains(got, "visitor") || strings.Contains(got, "AGd1ZXN0AHZpc2l0b3I") {
		t.Errorf("trace shows a secret:\n%s", got)
	}
}

func TestSessionSummaryLogged(t *testing.T) {
	env := testServer(t)
	c := env.authenticated(t)
	c.Expect("RETR 1", "+OK")
	c.Body()
	c.Expect("DELE 2", "+OK")
	c.Expect("QUIT", "+OK")
	c.ExpectClosed()
	line := env.log.String() // logged before the server's FIN
	for _, want := range []string{"user=guest", "commands=5", "retrieved=1", "deleted=1", "end=quit", "bytes_out="} {
		if !strings.Contains(line, want) {
			t.Errorf("summary lacks %s: %s", want, line)
		}
	}
}

// A session that never logs in is closed after LoginTimeout, however
// busy it keeps itself.
func TestLoginTimeoutClosesACapaLoop(t *testing.T) {
	env := testServer(t, func(s *pop3.Server) { s.LoginTimeout = 300 * time.Millisecond })
	c := env.greeted(t)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c.Send("CAPA")
		line := c.ReadLine()
		if strings.HasPrefix(line, "-ERR [SYS/TEMP] no login within 300ms") {
			c.ExpectClosed()
			if env.srv.Refused(pop3.RefusedLoginTimeout) != 1 {
				t.Error("the login timeout was not counted")
			}
			return
		}
		if line != "+OK" && !strings.HasPrefix(line, "+OK ") {
			t.Fatalf("CAPA: %q", line)
		}
		c.Body()
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("a session looping on CAPA was never closed")
}

// A client that connects and says nothing at all is closed at the login
// timeout too, with the same words (the public listener looks at the
// first octets for a PROXY header under the same deadlines).
func TestLoginTimeoutClosesASilentClient(t *testing.T) {
	env := testServer(t, func(s *pop3.Server) { s.LoginTimeout = 300 * time.Millisecond })
	c := env.greeted(t)
	if line := c.ReadLine(); !strings.HasPrefix(line, "-ERR [SYS/TEMP] no login within 300ms") {
		t.Fatalf("a silent client got %q", line)
	}
	c.ExpectClosed()
}

// Once logged in, the login timeout no longer applies.
func TestLoginTimeoutSparesLoggedInSessions(t *testing.T) {
	env := testServer(t, func(s *pop3.Server) { s.LoginTimeout = 200 * time.Millisecond })
	c := env.authenticated(t)
	// A session that connected after it and never logged in is closed by
	// the timeout: by then the logged-in one is past it too.
	silent := env.greeted(t)
	silent.ExpectLine("-ERR [SYS/TEMP] no login within 200ms")
	c.Expect("NOOP", "+OK")
}

// LogUser names users in the log: a personal login never appears raw.
func TestLogUserNamesUsersInTheLog(t *testing.T) {
	env := testServer(t, func(s *pop3.Server) {
		s.LogUser = func(u string) string { return "masked(" + strings.ToUpper(u) + ")" }
	})
	c := env.greeted(t)
	c.Expect("USER secret.k7m2xq9dab", "+OK")
	c.Expect("PASS wrong", "-ERR [AUTH]")
	c.Expect("QUIT", "+OK")
	c.ExpectClosed()
	pop3test.WaitFor(t, func() bool { return strings.Contains(env.log.String(), "pop3 session") })
	if log := env.log.String(); strings.Contains(log, "k7m2xq9dab") || !strings.Contains(log, "masked(SECRET.K7M2XQ9DAB)") {
		t.Errorf("log:\n%s", log)
	}
}

// minimalBackend serves pop3test's maildrops as a minimal RFC 1939
// server would once logged in: no TOP, UIDL or CAPA (pop3.Offerer).
type minimalBackend struct{ *pop3test.Backend }

type minimalMaildrop struct{ pop3.Maildrop }

func (minimalMaildrop) Offers(verb string) bool {
	return verb != "TOP" && verb != "UIDL" && verb != "CAPA"
}

func (b minimalBackend) Login(ctx context.Context, c *pop3.ConnInfo, user, pass string) (pop3.Maildrop, error) {
	md, err := b.Backend.Login(ctx, c, user, pass)
	if err != nil {
		return nil, err
	}
	return minimalMaildrop{md}, nil
}

// A maildrop may take optional commands away once logged in: they are
// unknown, CAPA (where it is left) stops listing them, and the rest works.
func TestOffererTakesOptionalCommandsAway(t *testing.T) {
	env := testServer(t, func(s *pop3.Server) { s.Backend = minimalBackend{pop3test.NewBackend()} })
	c := env.greeted(t)
	if caps := c.Do("CAPA", "+OK"); !slices.Contains(caps, "TOP") {
		t.Errorf("CAPA before login: %q", caps)
	}
	c.Expect("USER guest", "+OK")
	c.Expect("PASS visitor", "+OK")
	for _, cmd := range []string{"TOP 1 0", "UIDL", "CAPA"} {
		verb, _, _ := strings.Cut(cmd, " ")
		c.Expect(cmd, `-ERR unknown command "`+verb+`": this server does not offer it`)
	}
	c.Do("RETR 1", "+OK")
	c.Expect("QUIT", "+OK")
}
