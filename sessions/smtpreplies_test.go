package sessions

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// Every final reply the playground's SMTP server gives to a session of
// the mistakes students make has an explanation.
func TestEverySMTPReplyIsExplained(t *testing.T) {
	e := newMailEnv(t, loadDefault(t))
	v, _ := e.vs.New("127.0.0.1")
	me := e.address(v)
	seen := map[string]bool{}
	for _, session := range [][]string{
		{"FROB", "VRFY guest", "MAIL FROM:<a@b>", "RCPT TO:<" + me + ">", "DATA", "EHLO me", "RCPT TO:<" + me + ">",
			"MAIL FROM:<a@b> SIZE=999999999", "MAIL FROM:<a@b> FOO=1", "MAIL FROM:a@b", "MAIL FROM:<a@b>",
			"RCPT TO:<nobody@play.example>", "RCPT TO:<someone@example.org>", "RCPT TO:<a@b@c>", "RCPT TO:<" + me + ">",
			"DATA", "Subject: x\r\n\r\nnul \x00 here\r\n.", "RSET", "NOOP", "QUIT"},
		{"HELO me", "MAIL FROM:<a@b>", "RCPT TO:<" + me + ">", "DATA", " folded first\r\n\r\nx\r\n.", "QUIT"},
	} {
		for _, l := range smtpReplies(t, e.smtpAddr, session) {
			if ExplainSMTP(l) == "" {
				t.Errorf("no explanation for %q", l)
			}
			seen[l[:3]] = true
		}
	}
	for _, code := range []string{"220", "221", "250", "252", "354", "500", "502", "550", "552"} {
		if !seen[code] {
			t.Errorf("the session met no %s reply: %v", code, seen)
		}
	}
	if ExplainSMTP("250-PIPELINING") != "" || ExplainSMTP("hello") != "" {
		t.Error("explained a line that is not a final reply")
	}
}

// smtpReplies plays lines to an SMTP server and returns every final
// reply line, the greeting first.
func smtpReplies(t *testing.T, addr string, lines []string) []string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	var got []string
	reply := func() bool {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return false
			}
			if len(l) < 4 || l[3] != '-' {
				got = append(got, strings.TrimRight(l, "\r\n"))
				return true
			}
		}
	}
	reply()
	for _, l := range lines {
		io.WriteString(c, l+"\r\n")
		if !reply() {
			break
		}
	}
	return got
}

// Every command SMTPCommands names is one the SMTP server knows: none is
// answered 500 (unrecognised).
func TestSMTPCommandsAreTheServers(t *testing.T) {
	e := newMailEnv(t, loadDefault(t))
	for _, verb := range SMTPCommands {
		got := smtpReplies(t, e.smtpAddr, []string{verb})
		if len(got) < 2 || strings.HasPrefix(got[1], "500 ") {
			t.Errorf("%s: %q", verb, got)
		}
	}
}
