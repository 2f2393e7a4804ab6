package check

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The known maildrop: `pop3check fixture DIR` writes messages a student
// loads into their server; with --fixture, the fixture-bytes check
// compares what RETR sends with them, octet for octet.

// A fixtureMessage is one message of the known maildrop and what it is
// there to catch.
type fixtureMessage struct {
	subject, catches, body string // body: LF line ends
	header                 string // extra header fields, LF line ends
}

var fixtureMessages = []fixtureMessage{
	{subject: "Dots", catches: "no dot-stuffing, or a line \".\" taken for the end",
		body: ".A first body line that starts with a dot.\n.\n..\n...three dots\n.x\nThe end.\n"},
	{subject: "Blank lines", catches: "blank lines lost or added at the end", body: "Two blank lines follow.\n\n\n"},
	{subject: "8-bit text", catches: "octets decoded or re-encoded",
		header: "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n",
		body:   "Élève, café, naïve, Zürich, 東京, 📬.\n"},
	{subject: "A 998-octet line", catches: "long lines cut or folded", body: strings.Repeat("0123456789", 99) + "abcdefgh\n"},
	{subject: "Multipart", catches: "MIME parts reassembled or re-encoded",
		header: "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n",
		body:   "--b1\nContent-Type: text/plain\n\nSee the attachment.\n--b1\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"x.bin\"\n\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n--b1--\n"},
	{subject: "An empty body", catches: "a body expected after the blank line", body: ""},
	{subject: "A larger message", catches: "a reply read with one read, or a fixed buffer", body: largeFixtureBody()},
}

func largeFixtureBody() string {
	var b strings.Builder
	for i := 0; b.Len() < 100<<10; i++ {
		fmt.Fprintf(&b, "%05d pop3check's larger message, line %d\n", i, i)
	}
	return b.String()
}

// messageID is the Message-ID of fixture message i, by which the check
// finds it whatever order or numbers the server gives.
func messageID(i int) string { return fmt.Sprintf("<pop3check-%d@fixture.invalid>", i+1) }

// text is fixture message i with LF line ends, as a file holds it.
func (m fixtureMessage) text(i int) string {
	return fmt.Sprintf("From: pop3check <fixture@fixture.invalid>\nTo: guest@fixture.invalid\nSubject: %s\nDate: Sun, 6 Dec 2026 12:00:%02d +0000\nMessage-ID: %s\n%s\n%s",
		m.subject, i, messageID(i), m.header, m.body)
}

// writeFixture writes the known maildrop under dir, for the account
// guest (password visitor), in both forms servers read: mbox/guest.mbox
// and maildir/guest/{cur,new,tmp}, and the users file this playground's
// loader reads (--mailboxes DIR/mbox or DIR/maildir, --users DIR/users).
func WriteFixture(dir string) error {
	var mbox strings.Builder
	md := filepath.Join(dir, "maildir", "guest")
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(md, sub), 0o755); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "mbox"), 0o755); err != nil {
		return err
	}
	for i, m := range fixtureMessages {
		t := m.text(i)
		fmt.Fprintf(&mbox, "From fixture@fixture.invalid Sun Dec  6 12:00:%02d 2026\n%s\n", i, t)
		name := fmt.Sprintf("1796558400.%d.pop3check", i+1)
		if err := os.WriteFile(filepath.Join(md, "new", name), []byte(t), 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "mbox", "guest.mbox"), []byte(mbox.String()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "users"), []byte("guest:visitor\n"), 0o644)
}

// checkFixtureBytes retrieves every message and compares those of the
// fixture with it: the body octet for octet, the header fields present
// (a server may add its own, such as Received, at the top).
func checkFixtureBytes(s *suite) (string, string) {
	if !s.t.Fixture {
		return Skip, "needs the known maildrop: load `pop3check fixture DIR` into the server and run with --fixture"
	}
	if st, d, ok := needMessages(s); !ok {
		return st, d
	}
	c, err := s.session(true)
	if err != nil {
		return Fail, err.Error()
	}
	found := 0
	for n := 1; n <= s.count; n++ {
		st, _, content, err := c.multi(fmt.Sprint("RETR ", n))
		if err != nil || !ok(st) {
			return Fail, fmt.Sprintf("RETR %d got %q (%v)", n, st, err)
		}
		for i, m := range fixtureMessages {
			if !strings.Contains(content, "Message-ID: "+messageID(i)) {
				continue
			}
			found++
			want := strings.ReplaceAll(m.text(i), "\n", "\r\n")
			_, wantBody, _ := strings.Cut(want, "\r\n\r\n")
			_, gotBody, _ := strings.Cut(content, "\r\n\r\n")
			if gotBody != wantBody {
				return Fail, fmt.Sprintf("message %d (%q): %s", n, m.subject, firstDifference(gotBody, wantBody)) + "; it is there to catch " + m.catches
			}
		}
	}
	if found < len(fixtureMessages) {
		return Fail, fmt.Sprintf("found %d of the fixture's %d messages (by Message-ID): load all of `pop3check fixture DIR`", found, len(fixtureMessages))
	}
	return Pass, ""
}

// firstDifference names the first line where got and want part.
func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\r\n"), strings.Split(want, "\r\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("body line %d is %q, the fixture's %q", i+1, truncateLine(gl), truncateLine(wl))
		}
	}
	return "the bodies differ"
}
