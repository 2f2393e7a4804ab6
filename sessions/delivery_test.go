package sessions

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/pop3/limit"
	"github.com/pop3playground/pop3playground/pop3/pop3test"
)

// mailEnv is the playground's two listeners on loopback: POP3 and SMTP,
// delivering into the same visitors' sandboxes.
type mailEnv struct {
	t        testing.TB
	vs       *Visitors
	d        *Delivery
	smtpAddr string
	pop3Addr string
	labAddr  string // the lab's POP3 port (ServePrelude)
	smtpSrv  *gosmtp.Server
}

func newMailEnv(t testing.TB, w *World, opts ...func(*gosmtp.Server, *Delivery)) *mailEnv {
	t.Helper()
	vs := NewVisitors(w)
	e := &mailEnv{t: t, vs: vs, d: NewDelivery(vs, "play.example")}
	cert, err := pop3.SelfSignedCertificate("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}}
	ps := pop3.NewServer(&Backend{World: w, Visitors: vs})
	ps.Observer = vs
	ps.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	ps.AuthFailureDelay = time.Millisecond
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ps.Serve(pl)
	vs.LabDelay = 100 * time.Millisecond
	ll, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ps.ServePrelude(ll, vs.LabPrelude)
	e.labAddr = ll.Addr().String()
	t.Cleanup(func() { ps.Close() })
	s := gosmtp.NewServer(e.d)
	s.Domain = "play.example"
	s.MaxMessageBytes = 1 << 20
	s.MaxRecipients = DefaultMaxRcpts
	s.TLSConfig = tlsConfig
	s.EnableSMTPUTF8 = true
	s.ErrorLog = nopLogger{}
	for _, o := range opts {
		o(s, e.d)
	}
	sl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(sl)
	t.Cleanup(func() { s.Close() })
	e.smtpAddr, e.pop3Addr, e.smtpSrv = sl.Addr().String(), pl.Addr().String(), s
	return e
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}

func (e *mailEnv) address(v *Visitor) string { return v.PersonalLogin("guest") + "@play.example" }

// send delivers msg from a real SMTP client (the standard library's),
// in plaintext (SendMail would insist on verifying the self-signed
// certificate of STARTTLS).
func (e *mailEnv) send(from string, to []string, msg string) error {
	c, err := smtp.Dial(e.smtpAddr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Mail(from); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// retrieve logs in by POP3 with user's personal login and returns every
// message, as RETR sends them (dot-unstuffed).
func (e *mailEnv) retrieve(user string) []string {
	e.t.Helper()
	c := pop3test.Dial(e.t, e.pop3Addr)
	c.Expect("USER "+user, "+OK")
	c.Expect("PASS visitor", "+OK")
	var n int
	fmt.Sscanf(c.Expect("STAT", "+OK"), "+OK %d", &n)
	var msgs []string
	for i := 1; i <= n; i++ {
		msgs = append(msgs, strings.Join(c.Do(fmt.Sprint("RETR ", i), "+OK"), "\r\n")+"\r\n")
	}
	c.Expect("QUIT", "+OK")
	return msgs
}

func TestSMTPDeliversToThePersonalAddress(t *testing.T) {
	e := newMailEnv(t, loadDefault(t))
	v, _ := e.vs.New("127.0.0.1")
	before := len(e.retrieve(v.PersonalLogin("guest")))

	// A session in TRANSACTION keeps its maildrop: the mail is seen at
	// the next login.
	c, err := net.Dial("tcp", e.pop3Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	r.ReadString('\n')
	fmt.Fprintf(c, "USER %s\r\nPASS visitor\r\n", v.PersonalLogin("guest"))
	r.ReadString('\n')
	r.ReadString('\n')

	body := "From: Ada <ada@example.org>\r\nSubject: Hello there\r\n\r\n.leading dot\r\n..two dots\r\nend\r\n"
	if err := e.send("ada@example.org", []string{e.address(v)}, body); err != nil {
		t.Fatalf("SendMail: %v", err)
	}
	fmt.Fprintf(c, "STAT\r\n")
	if st, _ := r.ReadString('\n'); !strings.HasPrefix(st, fmt.Sprintf("+OK %d ", before)) {
		t.Errorf("the open session's STAT %q: want the %d messages it logged in with", st, before)
	}
	fmt.Fprintf(c, "QUIT\r\n")
	r.ReadString('\n')

	msgs := e.retrieve(v.PersonalLogin("guest"))
	if len(msgs) != before+1 {
		t.Fatalf("%d messages after delivery, want %d", len(msgs), before+1)
	}
	got := msgs[len(msgs)-1]
	if !strings.HasPrefix(got, "Return-Path: <ada@example.org>\r\nReceived: from localhost ([127.0.0.1])\r\n\tby play.example (POP3 Playground) with ESMTP id ") {
		t.Errorf("the delivered message starts %q", got[:min(len(got), 200)])
	}
	if !strings.HasSuffix(got, body) {
		t.Errorf("the body did not arrive byte-identical through SMTP and POP3:\n%q", got)
	}
	entries, _, _ := v.Events.Since(0)
	if !slicesContainsFunc(entries, func(en Entry) bool { return en.Type == EntryMail && en.Account == "guest" }) {
		t.Error("the visitor's page was not told of the new mail")
	}
	if e.d.Delivered() != 1 {
		t.Errorf("delivered = %d", e.d.Delivered())
	}
}

func slicesContainsFunc[T any](s []T, f func(T) bool) bool {
	for _, x := range s {
		if f(x) {
			return true
		}
	}
	return false
}

// Nothing is relayed; the shared account and unknown addresses are
// refused with replies that say why.
func TestSMTPRefusesWhatIsNotAPlaygroundAddress(t *testing.T) {
	e := newMailEnv(t, loadDefault(t))
	v, _ := e.vs.New("127.0.0.1")
	for _, tc := range []struct{ to, want string }{
		{"someone@gmail.com", "550 5.7.1"},
		{"guest@play.example", "550 5.1.1 guest@play.example is the shared lab account"},
		{"guest.zzzzzzzzzz@play.example", "550 5.1.1"},
		{"nobody." + v.ID + "@play.example", "550 5.1.1"},
		{v.PersonalLogin("guest") + "@other.example", "550 5.7.1"},
	} {
		err := e.send("x@example.org", []string{tc.to}, "Subject: x\r\n\r\nx\r\n")
		if err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(tc.want, "550 ")) {
			t.Errorf("RCPT TO:<%s>: %v, want %s", tc.to, err, tc.want)
		}
	}
	if n := len(v.Sandbox.Messages("guest")); n != 7 {
		t.Errorf("guest has %d messages after refusals", n)
	}
	if e.d.Refused() != 5 {
		t.Errorf("refused = %d, want 5", e.d.Refused())
	}
}

// Student A mails student B: it lands in B's sandbox only.
func TestSMTPStudentsMailEachOther(t *testing.T) {
	e := newMailEnv(t, loadDefault(t))
	a, _ := e.vs.New("127.0.0.1")
	b, _ := e.vs.New("127.0.0.1")
	if err := e.send(e.address(a), []string{e.address(b)}, "Subject: from A\r\n\r\nhi B\r\n"); err != nil {
		t.Fatal(err)
	}
	if na, nb := len(e.retrieve(a.PersonalLogin("guest"))), len(e.retrieve(b.PersonalLogin("guest"))); na != 7 || nb != 8 {
		t.Errorf("A has %d messages, B %d; want 7 and 8", na, nb)
	}
	if a.MailIn() != 0 || b.MailIn() != 1 {
		t.Errorf("mail in: A %d, B %d; want 0 and 1 (the organiser's count)", a.MailIn(), b.MailIn())
	}
}

func TestSMTPLimits(t *testing.T) {
	e := newMailEnv(t, loadDefault(t), func(s *gosmtp.Server, d *Delivery) {
		s.MaxMessageBytes = 2000
		d.MaxDelivered = 2
		d.PerVisitor = limit.RateLimiter{}
	})
	v, _ := e.vs.New("127.0.0.1")
	to := []string{e.address(v)}
	if err := e.send("x@example.org", to, "Subject: big\r\n\r\n"+strings.Repeat(strings.Repeat("x", 70)+"\r\n", 40)); err == nil || !strings.Contains(err.Error(), "552") {
		t.Errorf("a message over the size limit: %v, want 552", err)
	}
	for i := range 2 {
		if err := e.send("x@example.org", to, fmt.Sprintf("Subject: %d\r\n\r\nx\r\n", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.send("x@example.org", to, "Subject: 3\r\n\r\nx\r\n"); err == nil || !strings.Contains(err.Error(), "452") || !strings.Contains(err.Error(), "4.2.2") || !strings.Contains(err.Error(), "mailbox is full") {
		t.Errorf("past the sandbox's limit: %v, want 452 4.2.2", err)
	}
	v.Sandbox.Reset()
	if err := e.send("x@example.org", to, "Subject: after reset\r\n\r\nx\r\n"); err != nil {
		t.Errorf("after a reset: %v", err)
	}
	// The rate per visitor.
	e.d.PerVisitor = limit.RateLimiter{Rate: 0.001, Burst: 1}
	w, _ := e.vs.New("127.0.0.1")
	e.send("x@example.org", []string{e.address(w)}, "Subject: 1\r\n\r\nx\r\n")
	if err := e.send("x@example.org", []string{e.address(w)}, "Subject: 2\r\n\r\nx\r\n"); err == nil || !strings.Contains(err.Error(), "452") {
		t.Errorf("past the rate: %v, want 452", err)
	}
}

func TestSMTPStartTLS(t *testing.T) {
	e := newMailEnv(t, loadDefault(t))
	v, _ := e.vs.New("127.0.0.1")
	c, err := smtp.Dial(e.smtpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Fatal("no STARTTLS")
	}
	for _, ext := range []string{"PIPELINING", "8BITMIME", "SIZE", "ENHANCEDSTATUSCODES", "SMTPUTF8"} {
		if ok, _ := c.Extension(ext); !ok {
			t.Errorf("EHLO lacks %s", ext)
		}
	}
	if err := c.StartTLS(&tls.Config{InsecureSkipVerify: true}); err != nil {
		t.Fatal(err)
	}
	c.Mail("x@example.org")
	if err := c.Rcpt(e.address(v)); err != nil {
		t.Fatal(err)
	}
	wc, _ := c.Data()
	io.WriteString(wc, "Subject: over TLS\r\n\r\nsecret\r\n")
	if err := wc.Close(); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	msgs := e.retrieve(v.PersonalLogin("guest"))
	if last := msgs[len(msgs)-1]; !strings.Contains(last, "with ESMTPS id") {
		t.Errorf("the Received field does not say TLS: %q", last[:200])
	}
}

// Python's smtplib and curl deliver like any client; the organiser's
// files are never written.
func TestSMTPRealClientsAndTheOrganisersFiles(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "world", "guest"), 0o755)
	os.WriteFile(filepath.Join(dir, "world", "guest", "1.eml"), []byte("Subject: hi\n\nhello\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "users"), []byte("guest:visitor\n"), 0o644)
	hash := func() string {
		h := sha256.New()
		filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
			if err == nil && !de.IsDir() {
				b, _ := os.ReadFile(p)
				fmt.Fprintf(h, "%s %x\n", p, sha256.Sum256(b))
			}
			return nil
		})
		return fmt.Sprintf("%x", h.Sum(nil))
	}
	before := hash()
	w, err := LoadDir(filepath.Join(dir, "world"), filepath.Join(dir, "users"))
	if err != nil {
		t.Fatal(err)
	}
	e := newMailEnv(t, w)
	v, _ := e.vs.New("127.0.0.1")
	host, port, _ := net.SplitHostPort(e.smtpAddr)
	ran := 0
	if py, err := exec.LookPath("python3"); err == nil {
		script := fmt.Sprintf(`import smtplib
s = smtplib.SMTP(%q, %s)
s.sendmail("py@example.org", [%q], "Subject: from python\r\n\r\nsent by smtplib\r\n")
s.quit()`, host, port, e.address(v))
		if out, err := exec.Command(py, "-c", script).CombinedOutput(); err != nil {
			t.Errorf("python smtplib: %v\n%s", err, out)
		}
		ran++
	}
	if curl, err := exec.LookPath("curl"); err == nil {
		cmd := exec.Command(curl, "-sS", "--url", "smtp://"+e.smtpAddr, "--mail-from", "curl@example.org", "--mail-rcpt", e.address(v), "-T", "-")
		cmd.Stdin = strings.NewReader("Subject: from curl\r\n\r\nsent by curl\r\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("curl smtp: %v\n%s", err, out)
		}
		ran++
	}
	if ran == 0 {
		if os.Getenv("POP3PG_REQUIRE_INTEROP") != "" {
			t.Fatal("neither python3 nor curl is installed")
		}
		t.Skip("neither python3 nor curl is installed")
	}
	msgs := e.retrieve(v.PersonalLogin("guest"))
	if len(msgs) != 1+ran {
		t.Fatalf("%d messages, want %d", len(msgs), 1+ran)
	}
	if hash() != before {
		t.Error("the organiser's files changed")
	}
}

// FuzzSMTPSession sends whatever the fuzzer makes to the SMTP listener:
// the server answers in SMTP replies, never delivers outside the
// playground, and greets the next client.
func FuzzSMTPSession(f *testing.F) {
	w, err := DefaultWorld()
	if err != nil {
		f.Fatal(err)
	}
	e := newMailEnv(f, w)
	v, _ := e.vs.New("127.0.0.1")
	for _, s := range []string{
		"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<" + e.address(v) + ">\r\nDATA\r\nSubject: s\r\n\r\n.x\r\n.\r\nQUIT\r\n",
		"HELO\r\nRCPT TO:<x>\r\nDATA\r\nRSET\r\nNOOP\r\nVRFY guest\r\nQUIT\r\n",
		"EHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<guest@play.example>\r\nRCPT TO:<a@gmail.com>\r\nQUIT\r\n",
		"EHLO x\r\nMAIL FROM:<a@b> SIZE=99999999999\r\nBDAT 10 LAST\r\n0123456789\r\n\x00\xff\r\nQUIT\r\n",
		"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<" + e.address(v) + ">\r\nDATA\r\nno header\r\n.\r\nQUIT\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, script string) {
		if len(script) > 16<<10 {
			return
		}
		c, err := net.Dial("tcp", e.smtpAddr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, script)
		c.(*net.TCPConn).CloseWrite()
		r := bufio.NewReader(c)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				break
			}
			if len(l) < 4 || l[0] < '2' || l[0] > '5' || l[3] != ' ' && l[3] != '-' {
				t.Fatalf("not an SMTP reply: %q", l)
			}
		}
		c.Close()
		if n := len(v.Sandbox.Messages("guest")); n > 7+DefaultMaxDelivered {
			t.Fatalf("%d messages delivered", n)
		}
		g, err := net.Dial("tcp", e.smtpAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		g.SetDeadline(time.Now().Add(5 * time.Second))
		if l, err := bufio.NewReader(g).ReadString('\n'); err != nil || !strings.HasPrefix(l, "220 ") {
			t.Fatalf("the next client got %q, %v", l, err)
		}
	})
}

// Lesson 7, "Where mail comes from", followed by its own instructions:
// log in and keep the session, mail yourself, STAT in the open session,
// log in again, RETR the new message.
func TestMailLessonTicks(t *testing.T) {
	e := newMailEnv(t, loadDefault(t))
	lessons, err := BuiltinLessons()
	if err != nil {
		t.Fatal(err)
	}
	e.vs.Lessons = lessons
	var mailLesson *Lesson
	for _, l := range lessons {
		if l.ID == MailLesson {
			mailLesson = l
		}
	}
	v, _ := e.vs.New("127.0.0.1")
	e.vs.StartLesson(v, mailLesson)
	user := v.PersonalLogin("guest")
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", e.pop3Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		r.ReadString('\n')
		return c, r
	}
	say := func(c net.Conn, r *bufio.Reader, line, want string) {
		t.Helper()
		fmt.Fprintf(c, "%s\r\n", line)
		got, _ := r.ReadString('\n')
		if !strings.HasPrefix(got, want) {
			t.Fatalf("%s: got %q, want %q", line, got, want)
		}
	}
	at := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for v.Progress()[MailLesson] != n {
			if time.Now().After(deadline) {
				t.Fatalf("lesson 7 at %d, want %d", v.Progress()[MailLesson], n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	c, r := dial()
	say(c, r, "USER "+user, "+OK")
	say(c, r, "PASS visitor", "+OK "+user+"'s maildrop has 7 messages")
	at(1)
	if err := e.send("me@example.org", []string{e.address(v)}, "Subject: by hand\r\n\r\nhello\r\n"); err != nil {
		t.Fatal(err)
	}
	at(2)
	say(c, r, "STAT", "+OK 7 ")
	at(3)
	say(c, r, "QUIT", "+OK")
	c2, r2 := dial()
	say(c2, r2, "USER "+user, "+OK")
	say(c2, r2, "PASS visitor", "+OK "+user+"'s maildrop has 8 messages")
	at(4)
	say(c2, r2, "RETR 8", "+OK")
	at(5)
	if n := e.vs.Completions(MailLesson); n != 1 {
		t.Errorf("lesson 7 completed %d times", n)
	}
}

// rawSMTP plays lines to the SMTP listener and returns the reply to the
// last one.
func (e *mailEnv) rawSMTP(t *testing.T, lines ...string) string {
	t.Helper()
	c, err := net.Dial("tcp", e.smtpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	reply := func() string {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return "(closed)"
			}
			if len(l) < 4 || l[3] != '-' {
				return strings.TrimRight(l, "\r\n")
			}
		}
	}
	last := reply()
	for _, l := range lines {
		io.WriteString(c, l)
		last = reply()
	}
	return last
}

// What SMTP stores, POP3 serves as it is: so a message must be RFC 5322
// text that reads the same to every client, and the replies say why not.
func TestSMTPRefusesWhatIsNotText(t *testing.T) {
	e := newMailEnv(t, loadDefault(t))
	v, _ := e.vs.New("127.0.0.1")
	to := "RCPT TO:<" + e.address(v) + ">\r\n"
	for _, tc := range []struct {
		name  string
		lines []string
		want  string
	}{
		{"NUL in the sender", []string{"HELO a\r\n", "MAIL FROM:<a\x00b@example.org>\r\n"}, "553 5.1.7 the sender address has a control character"},
		{"NUL in the recipient", []string{"HELO a\r\n", "MAIL FROM:<a@example.org>\r\n", "RCPT TO:<guest\x00@play.example>\r\n"}, "553 5.1.3"},
		{"NUL in the data", []string{"HELO a\r\n", "MAIL FROM:<a@example.org>\r\n", to, "DATA\r\n", "Subject: x\r\n\r\na\x00b\r\n.\r\n"}, "550 5.6.0 line 3 has a NUL octet"},
		{"a lone CR", []string{"HELO a\r\n", "MAIL FROM:<a@example.org>\r\n", to, "DATA\r\n", "Subject: x\r\n\r\nbefore\r.\r+OK fake\r\n.\r\n"}, "550 5.6.0 line 3 has a CR that no LF follows"},
		{"a continuation first", []string{"HELO a\r\n", "MAIL FROM:<a@example.org>\r\n", to, "DATA\r\n", " (POP3 Playground) forged\r\nSubject: x\r\n\r\nx\r\n.\r\n"}, "550 5.6.0 the message begins with white space"},
	} {
		if got := e.rawSMTP(t, tc.lines...); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	if n := len(v.Sandbox.Messages("guest")); n != 7 {
		t.Errorf("guest has %d messages after the refusals, want 7", n)
	}
	// Bare LFs among CRLFs are line ends: stored as CRLF.
	if got := e.rawSMTP(t, "HELO a\r\n", "MAIL FROM:<a@example.org>\r\n", to, "DATA\r\n", "Subject: lf\n\nbare\nlines\r\n.\r\n"); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("bare LFs: %q", got)
	}
	msgs := e.retrieve(v.PersonalLogin("guest"))
	if got := msgs[len(msgs)-1]; !strings.HasSuffix(got, "\r\nSubject: lf\r\n\r\nbare\r\nlines\r\n") {
		t.Errorf("stored %q", got)
	}
}

// The delivered mail the process holds is bounded: when full, 452 4.3.1
// with words; a message no one holds any more is no longer counted.
func TestSMTPStoreBudget(t *testing.T) {
	e := newMailEnv(t, loadDefault(t), func(_ *gosmtp.Server, d *Delivery) {
		d.MaxStored = 3000
		d.PerVisitor, d.PerAddress = limit.RateLimiter{}, limit.RateLimiter{}
	})
	v, _ := e.vs.New("127.0.0.1")
	body := "Subject: big\r\n\r\n" + strings.Repeat("x", 1000) + "\r\n"
	for i := range 2 {
		if err := e.send("a@example.org", []string{e.address(v)}, body); err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
	}
	err := e.send("a@example.org", []string{e.address(v)}, body)
	if err == nil || !strings.Contains(err.Error(), "452") || !strings.Contains(err.Error(), "4.3.1 the playground holds all the delivered mail it may (3000 octets)") {
		t.Fatalf("the third message: %v, want 452 4.3.1", err)
	}
	if e.d.Stored() <= 2000 || e.d.Stored() > 3000 {
		t.Errorf("stored %d octets", e.d.Stored())
	}
	// A reset lets go of the delivered messages: once collected, they
	// no longer count, and mail is taken again.
	v.Sandbox.Reset()
	for i := 0; e.d.Stored() > 0 && i < 50; i++ {
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	if e.d.Stored() != 0 {
		t.Fatalf("stored %d octets after the reset", e.d.Stored())
	}
	if err := e.send("a@example.org", []string{e.address(v)}, body); err != nil {
		t.Errorf("after the reset: %v", err)
	}
}
