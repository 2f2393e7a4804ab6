package main

import (
	"io"
	"net"
	netsmtp "net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/pop3playground/pop3playground/sessions"
)

// labChecks is the lab's card by check ID.
func labChecks(v *sessions.Visitor) map[string]sessions.LabCheck {
	m := map[string]sessions.LabCheck{}
	for _, c := range v.Lab.Card().Checks {
		m[c.ID] = c
	}
	return m
}

const labMsg = "From: s@example.org\r\nDate: Sun, 6 Dec 2026 12:00:00 +0000\r\nSubject: lab\r\n\r\n"

// smtp-421 on the lab SMTP port: Go's net/smtp is refused at the
// greeting, sends again, and gets a clean card; the public port never
// refuses a greeting for the lab.
func TestSMTPLabPort421(t *testing.T) {
	e := startSMTP(t, 10)
	v, _ := e.visitors.New("127.0.0.1")
	v.Lab.Choose("smtp-421")
	e.visitors.ArmLab(v, "127.0.0.1")
	to := []string{"lab." + v.ID + "@play.example"}

	if _, greeting := dialSMTP(t, e.public, nil); !strings.HasPrefix(greeting, "220 ") {
		t.Fatalf("public port greeting: %q", greeting)
	}
	err := netsmtp.SendMail(e.lab, nil, "s@example.org", to, []byte(labMsg+sessions.LabSMTPBody))
	if err == nil || !strings.HasPrefix(err.Error(), "421") || !strings.Contains(err.Error(), "4.3.2 ") {
		t.Fatalf("first send through the lab port: %v, want 421 4.3.2", err)
	}
	if c := labChecks(v)["smtp-421"]; c.Status != sessions.LabFail {
		t.Errorf("smtp-421 before the client came back: %+v", c)
	}
	if err := netsmtp.SendMail(e.lab, nil, "s@example.org", to, []byte(labMsg+sessions.LabSMTPBody)); err != nil {
		t.Fatalf("second send: %v", err)
	}
	for id, c := range labChecks(v) {
		want := sessions.LabPass
		if id == "smtp-retry" || id == "smtp-permanent" {
			want = sessions.LabNone
		}
		if c.Status != want {
			t.Errorf("%s: %s (%s), want %s", id, c.Status, c.Seen, want)
		}
	}
}

// smtp-split on the lab SMTP port cuts the greeting and every line of
// the multi-line EHLO reply into pieces, and net/smtp still delivers.
func TestSMTPLabPortSplitsTheEHLOReply(t *testing.T) {
	e := startSMTP(t, 10)
	v, _ := e.visitors.New("127.0.0.1")
	v.Lab.Choose("smtp-split")
	e.visitors.ArmLab(v, "127.0.0.1")

	conn, err := net.Dial("tcp", e.lab)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var segs []string
	buf := make([]byte, 4096)
	read := func(until string) {
		for all := ""; !strings.Contains(all, until); {
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("after %q: %v", segs, err)
			}
			segs = append(segs, string(buf[:n]))
			all += string(buf[:n])
		}
	}
	read("\r\n")
	io.WriteString(conn, "EHLO me\r\n")
	read("\r\n250 ")
	read("\r\n")
	conn.Close()
	if segs[0] != "220" {
		t.Errorf("the greeting's first segment: %q, want the code alone", segs[0])
	}
	for _, s := range segs {
		if strings.Count(s, "\r\n") > 1 || strings.Contains(s, "250-") && strings.Contains(s, "\r\n") {
			t.Errorf("a segment holds more than a piece of one line: %q", s)
		}
	}
	if err := netsmtp.SendMail(e.lab, nil, "s@example.org", []string{"lab." + v.ID + "@play.example"}, []byte(labMsg+sessions.LabSMTPBody)); err != nil {
		t.Fatalf("net/smtp through the split replies: %v", err)
	}
	if c := labChecks(v)["smtp-body"]; c.Status != sessions.LabPass {
		t.Errorf("smtp-body: %+v", c)
	}
}

// A client that blasts a whole session at the lab port without reading
// a reply gets both lapses named: it spoke before the greeting, and sent
// MAIL before the reply to EHLO and the message before 354.
func TestSMTPLabPortSeesABlastingClient(t *testing.T) {
	e := startSMTP(t, 10)
	v, _ := e.visitors.New("127.0.0.1")
	v.Lab.Choose("smtp-plain")
	e.visitors.ArmLab(v, "127.0.0.1")
	conn, err := net.Dial("tcp", e.lab)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "EHLO me\r\nMAIL FROM:<s@example.org>\r\nRCPT TO:<lab."+v.ID+"@play.example>\r\nDATA\r\n"+labMsg+"hello\r\n.\r\nQUIT\r\n")
	io.ReadAll(conn)
	checks := labChecks(v)
	if c := checks["smtp-greeting"]; c.Status != sessions.LabFail {
		t.Errorf("smtp-greeting: %+v", c)
	}
	if c := checks["smtp-pipelining"]; c.Status != sessions.LabFail || !strings.Contains(c.Seen, "MAIL before the reply to EHLO") || !strings.Contains(c.Seen, "the message before the 354 reply to DATA") {
		t.Errorf("smtp-pipelining: %+v", c)
	}
}

// A client that sends RCPT before MAIL is refused (go-smtp: 502), and the card
// names the command it sent out of turn, on the public port too.
func TestSMTPLabSeesCommandsOutOfTurn(t *testing.T) {
	e := startSMTP(t, 10)
	v, _ := e.visitors.New("127.0.0.1")
	v.Lab.Choose("smtp-plain")
	c, _ := dialSMTP(t, e.public, nil)
	c.do("EHLO me\r\n", "250 ")
	c.do("RCPT TO:<lab."+v.ID+"@play.example>\r\n", "50")
	c.do("MAIL FROM:<s@example.org>\r\n", "250 ")
	c.do("RCPT TO:<lab."+v.ID+"@play.example>\r\n", "250 ")
	c.do("DATA\r\n", "354 ")
	c.do(labMsg+"hello\r\n.\r\n", "250 ")
	c.do("QUIT\r\n", "221 ")
	checks := labChecks(v)
	if ch := checks["smtp-ehlo"]; ch.Status != sessions.LabFail || !strings.Contains(ch.Seen, "refused RCPT as sent out of turn") {
		t.Errorf("smtp-ehlo: %+v", ch)
	}
	if ch := checks["smtp-pipelining"]; ch.Status != sessions.LabPass {
		t.Errorf("smtp-pipelining for a client that waited: %+v", ch)
	}
}
