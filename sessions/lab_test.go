package sessions

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pop3playground/pop3playground/pop3/pop3test"
)

// labLogin is a visitor's lab login.
func labLogin(v *Visitor) string { return LabAccount + "." + v.ID }

// card waits until the lab has seen every connection it recorded close,
// and returns its card by check ID.
func labCard(t *testing.T, v *Visitor) (LabCard, map[string]LabCheck) {
	t.Helper()
	pop3test.WaitFor(t, func() bool {
		v.Lab.mu.Lock()
		defer v.Lab.mu.Unlock()
		for _, s := range v.Lab.sessions {
			if s.end == "" {
				return false
			}
		}
		return len(v.Lab.sessions) > 0
	})
	card := v.Lab.Card()
	byID := map[string]LabCheck{}
	for _, c := range card.Checks {
		byID[c.ID] = c
	}
	return card, byID
}

// labReply is the reply the lab saw to the first command with verb.
func labReply(v *Visitor, verb string) string {
	v.Lab.mu.Lock()
	defer v.Lab.mu.Unlock()
	for _, s := range v.Lab.sessions {
		for _, ln := range s.lines {
			if strings.HasPrefix(strings.ToUpper(ln.Command), verb) {
				return ln.Reply
			}
		}
	}
	return ""
}

// A client with the usual bugs gets each of them named: a bare LF, a
// command after a refused login, a message left unread, no QUIT.
func TestLabNamesAWrongClientsBugs(t *testing.T) {
	e := newMailEnv(t, loadDefault(t))
	v, _ := e.vs.New("127.0.0.1")
	c, err := net.Dial("tcp", e.pop3Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	line := func() string { l, _ := r.ReadString('\n'); return strings.TrimRight(l, "\r\n") }
	say := func(s string) string { io.WriteString(c, s); return line() }
	line()
	say("USER " + labLogin(v) + "\n") // a bare LF
	if got := say("PASS wrong\r\n"); !strings.HasPrefix(got, "-ERR [AUTH]") {
		t.Fatalf("wrong lab password: %q", got)
	}
	if got := say("RETR 1\r\n"); !strings.HasPrefix(got, "-ERR RETR is only valid after you log in") {
		t.Fatalf("RETR after the refusal: %q", got)
	}
	say("USER " + labLogin(v) + "\r\n")
	if got := say("PASS lab\r\n"); !strings.HasPrefix(got, "+OK "+labLogin(v)+"'s maildrop has 6 messages") {
		t.Fatalf("lab login: %q", got)
	}
	if got := say("RETR 1\r\n"); !strings.HasPrefix(got, "+OK") {
		t.Fatalf("RETR 1: %q", got)
	}
	for line() != "." {
	}
	c.Close() // no QUIT
	_, checks := labCard(t, v)
	for id, want := range map[string]string{
		"crlf": LabFail, "login": LabPass, "after-error": LabFail, "commands": LabPass,
		"retrieved": LabFail, "quit": LabFail, "retry": LabNone, "saved": LabNone,
	} {
		if got := checks[id]; got.Status != want {
			t.Errorf("%s: %s (%s), want %s", id, got.Status, got.Seen, want)
		}
	}
	if s := checks["after-error"].Seen; !strings.Contains(s, `"RETR 1"`) {
		t.Errorf("after-error does not show the command: %q", s)
	}
	if s := checks["retrieved"].Seen; !strings.Contains(s, "message 2, 3, 4, 5, 6 not retrieved") {
		t.Errorf("retrieved: %q", s)
	}
	// Nobody else's login is touched: guest and another visitor's lab.
	other, _ := e.vs.New("127.0.0.2")
	if card := other.Lab.Card(); card.Sessions != 0 {
		t.Errorf("another visitor's lab saw %d sessions", card.Sessions)
	}
	if msgs := e.retrieve(v.PersonalLogin("guest")); len(msgs) != 7 {
		t.Errorf("the visitor's guest maildrop has %d messages", len(msgs))
	}
}

// poplibScript logs in to the lab with Python's poplib, retrieves every
// message and prints each one's SHA-256 (lines joined with CRLF, as
// poplib returns them unstuffed), one per line, as sha256sum does.
const poplibScript = `
import hashlib, poplib, sys
host, port, user = sys.argv[1], int(sys.argv[2]), sys.argv[3]
apop = len(sys.argv) > 4 and sys.argv[4] == "apop"
for attempt in range(3):
    try:
        p = poplib.POP3(host, port, timeout=20)
        try:
            p.capa()
        except poplib.error_proto:
            pass  # an RFC 1939 server: no extensions
        if apop:
            p.apop(user, "lab")
        else:
            p.user(user)
            p.pass_("lab")
        break
    except poplib.error_proto as e:
        print("refused", e, file=sys.stderr)
        p.close()
n, _ = p.stat()
for i in range(1, n + 1):
    resp, lines, octets = p.retr(i)
    data = b"".join(l + b"\r\n" for l in lines)
    print(hashlib.sha256(data).hexdigest() + "  " + str(i) + ".eml")
p.quit()
`

// Python's poplib gets a clean card in each scenario that a correct
// client gets through, and its saved messages match, octet for octet.
func TestLabPoplibGetsACleanCard(t *testing.T) {
	py := pop3test.NeedClient(t, "python3")
	e := newMailEnv(t, loadDefault(t))
	host, port, _ := net.SplitHostPort(e.labAddr)
	for _, sc := range []string{"plain", "one-byte", "split", "pause", "sys-temp", "in-use", "minimal", "rfc1939", "apop-only"} {
		t.Run(sc, func(t *testing.T) {
			v, _ := e.vs.New("127.0.0.1")
			if err := v.Lab.Choose(sc); err != nil {
				t.Fatal(err)
			}
			e.vs.ArmLab(v, "127.0.0.1")
			t.Cleanup(func() { e.vs.End(v.Token) }) // the next scenario's visitor uses the lab from this address alone
			args := []string{"-c", poplibScript, host, port, labLogin(v)}
			if sc == "apop-only" {
				args = append(args, "apop")
			}
			out, err := exec.Command(py, args...).Output()
			if err != nil {
				t.Fatalf("poplib: %v\n%s", err, out)
			}
			digests := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(digests) != len(labMessages) {
				t.Fatalf("poplib saved %d messages: %q", len(digests), out)
			}
			for _, p := range v.Lab.Submit(nil, digests) {
				if !p.OK {
					t.Errorf("%s: %s", p.Name, p.Why)
				}
			}
			card, checks := labCard(t, v)
			only := map[string][]string{"retry": {"sys-temp", "in-use"}, "after-error": {"sys-temp", "in-use"},
				"fallback": {"minimal", "rfc1939"}, "apop": {"apop-only"}}
			for _, c := range card.Checks {
				want := LabPass
				if scs, ok := only[c.ID]; ok && !slices.Contains(scs, sc) {
					want = LabNone
				}
				if c.Status != want {
					t.Errorf("%s: %s (%s), want %s", c.ID, c.Status, c.Seen, want)
				}
			}
			if capa := labReply(v, "CAPA"); sc == "rfc1939" && !strings.HasPrefix(capa, "-ERR unknown command") || sc != "rfc1939" && !strings.HasPrefix(capa, "+OK") {
				t.Errorf("CAPA before the login on the lab port: %q", capa)
			}
			_ = checks
		})
	}
}

// A saved message that kept the stuffed dots is flagged on the line where
// it first differs, with the cause; so is its digest.
func TestLabProofNamesTheLine(t *testing.T) {
	var l Lab
	exact := labWorld().Account(LabAccount).Messages[0].data
	stuffed := dotStuff(exact)
	p := l.Submit(map[string][]byte{"1.eml": stuffed}, nil)[0]
	if p.OK || p.N != 1 || !strings.Contains(p.Why, "the stuffed dot was not removed (RFC 1939 §3)") || p.Saw != "..This first body line starts with a dot." {
		t.Errorf("a stuffed copy: %+v", p)
	}
	header := strings.Count(string(exact[:strings.Index(string(exact), "\r\n\r\n")]), "\r\n") + 2
	if p.Line != header+1 {
		t.Errorf("first differing line %d, want %d (the first body line)", p.Line, header+1)
	}
	sum := sha256.Sum256(stuffed)
	d := l.Submit(nil, []string{hex.EncodeToString(sum[:]) + "  1.eml"})[0]
	if d.OK || d.N != 1 || !strings.Contains(d.Why, "stuffed dots were not removed") {
		t.Errorf("the digest of a stuffed copy: %+v", d)
	}
	cut := exact[:len(exact)/2]
	if p := l.Submit(map[string][]byte{"cut.eml": cut}, nil)[0]; p.OK || !strings.Contains(p.Why, "ends here") && !strings.Contains(p.Why, "cut at") {
		t.Errorf("a truncated copy: %+v", p)
	}
	sum = sha256.Sum256(exact)
	if p := l.Submit(nil, []string{hex.EncodeToString(sum[:])})[0]; !p.OK || p.N != 1 {
		t.Errorf("the exact digest: %+v", p)
	}
	card := l.Card()
	b, _ := json.Marshal(card)
	if !strings.Contains(string(b), `"id":"saved","title":"Saves each message as sent, dot-stuffing undone","rfc":"RFC 1939 §3","status":"fail"`) {
		t.Errorf("the card's saved check: %s", b)
	}
}

// The fault scenarios do what they say to a real client: auth-close
// refuses and hangs up, and poplib's next login works; drop-retr cuts the
// first session in the middle of a message, poplib raises an error
// rather than return a partial message, and the next session is whole.
func TestLabFaultScenariosWithPoplib(t *testing.T) {
	py := pop3test.NeedClient(t, "python3")
	e := newMailEnv(t, loadDefault(t))
	host, port, _ := net.SplitHostPort(e.pop3Addr)

	v, _ := e.vs.New("127.0.0.1")
	v.Lab.Choose("auth-close")
	cmd := exec.Command(py, "-c", poplibScript, host, port, labLogin(v))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if out, err := cmd.Output(); err != nil || strings.Count(string(out), ".eml") != len(labMessages) {
		t.Fatalf("auth-close: %v\n%s\n%s", err, out, stderr.String())
	}
	if !strings.Contains(stderr.String(), "-ERR [AUTH] wrong user name or password (the client lab's auth-close scenario), closing the connection") {
		t.Errorf("auth-close: poplib was told %q", stderr.String())
	}
	if _, checks := labCard(t, v); checks["after-error"].Status != LabPass || checks["quit"].Status != LabPass {
		t.Errorf("auth-close card: %+v", checks)
	}

	w, _ := e.vs.New("127.0.0.1")
	w.Lab.Choose("drop-retr")
	out, err := exec.Command(py, "-c", poplibScript, host, port, labLogin(w)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Error") && !strings.Contains(string(out), "error") {
		t.Fatalf("drop-retr: poplib did not fail: %v\n%s", err, out)
	}
	t.Logf("drop-retr: poplib said %s", out[max(0, len(out)-200):])
	out, err = exec.Command(py, "-c", poplibScript, host, port, labLogin(w)).Output()
	if err != nil || strings.Count(string(out), ".eml") != len(labMessages) {
		t.Fatalf("drop-retr, second session: %v\n%s", err, out)
	}
	if _, checks := labCard(t, w); checks["quit"].Status != LabPass {
		t.Errorf("drop-retr: the server's own cut counted against the client: %+v", checks["quit"])
	}
}

// recWriter records each write it is given.
type recWriter struct{ writes []string }

func (r *recWriter) Write(p []byte) (int, error) {
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

// The scenarios' writers cut replies as they say: an octet a write, every
// CRLF in two (for as long as they are meant to), a pause once.
func TestLabWritersCutAsTheySay(t *testing.T) {
	var r recWriter
	w := LabScenarioByID("one-byte").shape(&r, true)
	io.WriteString(w, "+OK 2\r\n")
	if len(r.writes) != 7 {
		t.Errorf("one-byte: %q", r.writes)
	}
	r = recWriter{}
	w = LabScenarioByID("split").shape(&r, true)
	io.WriteString(w, "+OK\r\nline\r\n.\r\n")
	if strings.Join(r.writes, "|") != "+OK\r|\nline\r|\n.\r|\n" {
		t.Errorf("split: %q", r.writes)
	}
	r = recWriter{}
	w = LabScenarioByID("split").shape(&r, true)
	io.WriteString(w, strings.Repeat("x", 64<<10))
	io.WriteString(w, "a\r\nb\r\n")
	if last := r.writes[len(r.writes)-1]; last != "a\r\nb\r\n" {
		t.Errorf("split past 64 KB still cuts: %q", last)
	}
	r = recWriter{}
	w = LabScenarioByID("drop-retr").shape(&r, true)
	if _, err := w.Write(make([]byte, 5<<10)); err == nil || len(strings.Join(r.writes, "")) != 4<<10 {
		t.Errorf("drop-retr let %d octets through, err %v", len(strings.Join(r.writes, "")), err)
	}
	r = recWriter{}
	w = LabScenarioByID("smtp-split").replies(&r)
	io.WriteString(w, "250 2.0.0 OK\r\n")
	if strings.Join(r.writes, "|") != "250| 2.0.0 OK|\r\n" {
		t.Errorf("smtp-split: %q", r.writes)
	}
	if w := LabScenarioByID("drop-retr").shape(&r, false); w != io.Writer(&r) {
		t.Error("drop-retr cuts a session after the first")
	}
}

// smtplibScript sends the lab's test message with Python's smtplib (which
// dot-stuffs and adds nothing), trying again after a 4xx, once.
const smtplibScript = `
import smtplib, sys, time, email.utils
host, port, to, body = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.stdin.buffer.read()
msg = ("From: Student <student@example.org>\r\nTo: <%s>\r\nSubject: lab\r\nDate: %s\r\n\r\n" % (to, email.utils.formatdate())).encode() + body
for attempt in range(2):
    try:
        with smtplib.SMTP(host, port, timeout=10) as s:
            s.sendmail("student@example.org", [to], msg)
        print("sent")
        break
    except smtplib.SMTPRecipientsRefused as e:
        print("refused", e.recipients, file=sys.stderr)
    except smtplib.SMTPDataError as e:
        print("data refused", e.smtp_code, file=sys.stderr)
        break
`

// Python's smtplib, sending the test message, gets a clean card in each
// SMTP scenario; a client that does not dot-stuff gets the line named.
func TestLabSMTP(t *testing.T) {
	py := pop3test.NeedClient(t, "python3")
	e := newMailEnv(t, loadDefault(t))
	host, port, _ := net.SplitHostPort(e.smtpAddr)
	send := func(v *Visitor) (string, string) {
		cmd := exec.Command(py, "-c", smtplibScript, host, port, labLogin(v)+"@play.example")
		cmd.Stdin = strings.NewReader(LabSMTPBody)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("smtplib: %v\n%s", err, stderr.String())
		}
		return string(out), stderr.String()
	}
	checks := func(v *Visitor) map[string]LabCheck {
		m := map[string]LabCheck{}
		for _, c := range v.Lab.Card().Checks {
			m[c.ID] = c
		}
		return m
	}
	for sc, want := range map[string]map[string]string{
		"smtp-plain": {"smtp-ehlo": LabPass, "smtp-crlf": LabPass, "smtp-headers": LabPass, "smtp-body": LabPass, "smtp-retry": LabNone, "smtp-permanent": LabNone},
		"smtp-451":   {"smtp-body": LabPass, "smtp-retry": LabPass, "smtp-permanent": LabNone},
		"smtp-552":   {"smtp-ehlo": LabPass, "smtp-body": LabNone, "smtp-permanent": LabPass},
	} {
		t.Run(sc, func(t *testing.T) {
			v, _ := e.vs.New("127.0.0.1")
			v.Lab.Choose(sc)
			out, stderr := send(v)
			switch sc {
			case "smtp-451":
				if !strings.Contains(stderr, "451") || out != "sent\n" {
					t.Errorf("smtp-451: %q %q", out, stderr)
				}
			case "smtp-552":
				if !strings.Contains(stderr, "data refused 552") {
					t.Errorf("smtp-552: %q %q", out, stderr)
				}
			}
			got := checks(v)
			for id, st := range want {
				if got[id].Status != st {
					t.Errorf("%s: %s (%s), want %s", id, got[id].Status, got[id].Seen, st)
				}
			}
		})
	}

	// A client that sends the body as it is, without dot-stuffing and
	// without Date: the server takes ".A line" as "A line", and the
	// lone "." as the end of DATA.
	v, _ := e.vs.New("127.0.0.1")
	v.Lab.Choose("smtp-plain")
	naive := strings.Split(strings.TrimSuffix(LabSMTPBody, "\r\n"), "\r\n")
	reply := e.rawSMTP(t, "EHLO me\r\n", "MAIL FROM:<s@example.org>\r\n", "RCPT TO:<"+labLogin(v)+"@play.example>\r\n", "DATA\r\n",
		"From: s@example.org\r\nSubject: naive\r\n\r\n"+strings.Join(naive[:3], "\r\n")+"\r\n")
	if !strings.HasPrefix(reply, "250") {
		t.Fatalf("the naive message: %q", reply)
	}
	got := checks(v)
	if got["smtp-body"].Status != LabFail || !strings.Contains(got["smtp-body"].Seen, `body line 2 arrived as "A line that starts with a dot.", not ".A line that starts with a dot.": the client did not dot-stuff it`) {
		t.Errorf("smtp-body: %+v", got["smtp-body"])
	}
	if got["smtp-headers"].Status != LabFail || got["smtp-headers"].Seen != "no Date field" {
		t.Errorf("smtp-headers: %+v", got["smtp-headers"])
	}
}

// curl, a real client for both protocols, against the lab: it retrieves
// a message over POP3 (and QUITs), and uploads the test message over
// SMTP (dot-stuffing it); both cards show what it did.
func TestLabCurl(t *testing.T) {
	curl := pop3test.NeedClient(t, "curl")
	e := newMailEnv(t, loadDefault(t))
	v, _ := e.vs.New("127.0.0.1")
	out, err := exec.Command(curl, "-sS", "--max-time", "20", "pop3://"+labLogin(v)+":lab@"+e.pop3Addr+"/1").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "\r\n.This first body line starts with a dot.\r\n") {
		t.Fatalf("curl RETR 1: %v\n%q", err, out)
	}
	_, checks := labCard(t, v)
	for id, want := range map[string]string{"crlf": LabPass, "login": LabPass, "quit": LabPass, "retrieved": LabFail} {
		if checks[id].Status != want {
			t.Errorf("POP3 %s: %s (%s), want %s", id, checks[id].Status, checks[id].Seen, want)
		}
	}

	v.Lab.Choose("smtp-plain")
	msg := "From: s@example.org\r\nDate: Sun, 6 Dec 2026 12:00:00 +0000\r\nSubject: by curl\r\n\r\n" + LabSMTPBody
	cmd := exec.Command(curl, "-sS", "--max-time", "20", "smtp://"+e.smtpAddr, "--mail-from", "s@example.org", "--mail-rcpt", labLogin(v)+"@play.example", "-T", "-")
	cmd.Stdin = strings.NewReader(msg)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("curl SMTP: %v\n%s", err, out)
	}
	for _, c := range v.Lab.Card().Checks {
		want := LabPass
		switch c.ID {
		case "smtp-retry", "smtp-permanent", "smtp-421":
			want = LabNone
		case "smtp-greeting", "smtp-pipelining":
			want = LabNone // seen by the SMTP edge (cmd/pop3playground), not in this test
		}
		if c.Status != want {
			t.Errorf("SMTP %s: %s (%s), want %s", c.ID, c.Status, c.Seen, want)
		}
	}
}

// The lab writes nothing of the organiser's: a world loaded from files
// serves the lab, and the files hash the same after a lab session that
// deleted messages.
func TestLabLeavesTheOrganisersFilesAlone(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "guest.mbox"), []byte("From a@example.org Mon Nov 23 10:00:00 2026\nFrom: a@example.org\nSubject: one\n\nHello.\n"), 0o644)
	users := filepath.Join(t.TempDir(), "users")
	os.WriteFile(users, []byte("guest:visitor\n"), 0o644)
	hash := func() string {
		h := sha256.New()
		for _, f := range []string{filepath.Join(dir, "guest.mbox"), users} {
			b, _ := os.ReadFile(f)
			h.Write(b)
		}
		return hex.EncodeToString(h.Sum(nil))
	}
	before := hash()
	w, err := LoadDir(dir, users)
	if err != nil {
		t.Fatal(err)
	}
	e := newMailEnv(t, w)
	v, _ := e.vs.New("127.0.0.1")
	c := pop3test.Dial(t, e.pop3Addr)
	c.Expect("USER "+labLogin(v), "+OK")
	c.Expect("PASS lab", "+OK "+labLogin(v)+"'s maildrop has 6 messages")
	c.Expect("DELE 1", "+OK")
	c.Expect("QUIT", "+OK signing off: 1 message deleted, 5 left")
	if hash() != before {
		t.Error("the organiser's files changed")
	}
	if got := len(e.retrieve(v.PersonalLogin("guest"))); got != 1 {
		t.Errorf("the visitor's guest maildrop has %d messages, want the world's 1", got)
	}
}

// The capability scenarios catch a client that insists: UIDL sent again
// after the server said it has none, or USER/PASS with no APOP after it.
func TestLabCapabilityScenariosCatchInsistence(t *testing.T) {
	e := newMailEnv(t, loadDefault(t))
	v, _ := e.vs.New("127.0.0.1")
	v.Lab.Choose("minimal")
	c := pop3test.Dial(t, e.pop3Addr)
	c.Expect("USER "+labLogin(v), "+OK")
	c.Expect("PASS lab", "+OK")
	c.Expect("UIDL", `-ERR unknown command "UIDL"`)
	c.Expect("UIDL", `-ERR unknown command "UIDL"`)
	c.Expect("QUIT", "+OK")
	if _, checks := labCard(t, v); checks["fallback"].Status != LabFail || !strings.Contains(checks["fallback"].Seen, "sent UIDL again") {
		t.Errorf("minimal: %+v", checks["fallback"])
	}

	w, _ := e.vs.New("127.0.0.1")
	w.Lab.Choose("apop-only")
	c = pop3test.Dial(t, e.pop3Addr)
	c.Expect("USER "+labLogin(w), "+OK")
	c.Expect("PASS lab", "-ERR [AUTH] this maildrop takes APOP only")
	c.Expect("QUIT", "+OK")
	if _, checks := labCard(t, w); checks["apop"].Status != LabFail {
		t.Errorf("apop-only: %+v", checks["apop"])
	}
}

// What a stranger can make the lab hold is bounded: five messages of at
// most 64 KB, however many and however large they send.
func TestLabMailIsBounded(t *testing.T) {
	var l Lab
	l.Choose("smtp-plain")
	big := []byte("From: a@b\r\nDate: x\r\n\r\n" + strings.Repeat("y", 1<<20))
	for range 20 {
		l.labData(big, "me", "a@b", labWire{})
	}
	held := 0
	for _, m := range l.mail {
		held += len(m.raw)
	}
	if len(l.mail) != maxLabMail || held > maxLabMail*maxLabMailSz {
		t.Errorf("the lab holds %d messages, %d octets", len(l.mail), held)
	}
	if card := l.Card(); card.Sessions != maxLabMail {
		t.Errorf("card: %d messages", card.Sessions)
	}
}

// What a client sent before its login counts: PASS before USER, or a
// TRANSACTION command before logging in, is named.
func TestLabSeesTheOrderBeforeTheLogin(t *testing.T) {
	e := newMailEnv(t, loadDefault(t))
	for _, tc := range []struct {
		before []string
		want   string
	}{
		{[]string{"PASS lab", "USER %s"}, "sent PASS before USER"},
		{[]string{"STAT", "USER %s"}, "sent STAT before logging in"},
		{[]string{"CAPA", "USER %s"}, ""},
	} {
		v, _ := e.vs.New("127.0.0.1")
		c := pop3test.Dial(t, e.pop3Addr)
		for _, l := range tc.before {
			if l == "CAPA" {
				c.Do(l, "+OK")
				continue
			}
			c.Cmd(strings.Replace(l, "%s", labLogin(v), 1))
		}
		c.Expect("PASS lab", "+OK")
		c.Expect("QUIT", "+OK")
		_, checks := labCard(t, v)
		got := checks["login-order"]
		if tc.want == "" && got.Status != LabPass || tc.want != "" && (got.Status != LabFail || !strings.Contains(got.Seen, tc.want)) {
			t.Errorf("%v: %+v", tc.before, got)
		}
	}
}

// On the lab port, a client that talks before the greeting and sends
// PASS without waiting for USER's reply gets both named; on the public
// port the greeting comes at once and that check is not exercised.
func TestLabPortSeesAClientThatDoesNotWait(t *testing.T) {
	e := newMailEnv(t, loadDefault(t))
	v, _ := e.vs.New("127.0.0.1")
	v.Lab.Choose("plain")
	e.vs.ArmLab(v, "127.0.0.1")
	blast := func(addr string) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "USER "+labLogin(v)+"\r\nPASS lab\r\nQUIT\r\n")
		io.ReadAll(c)
	}
	blast(e.pop3Addr)
	_, checks := labCard(t, v)
	if checks["greeting"].Status != LabNone || checks["pipelining"].Status != LabFail {
		t.Errorf("on the public port: greeting %+v, pipelining %+v", checks["greeting"], checks["pipelining"])
	}
	v.Lab.Reset()
	blast(e.labAddr)
	_, checks = labCard(t, v)
	if g := checks["greeting"]; g.Status != LabFail || !strings.Contains(g.Seen, "sent before the +OK greeting came") {
		t.Errorf("greeting: %+v", g)
	}
	if p := checks["pipelining"]; p.Status != LabFail || !strings.Contains(p.Seen, "sent PASS, QUIT before the reply to the command before") {
		t.Errorf("pipelining: %+v", p)
	}
}

// Two visitors using the lab from one address (a classroom's NAT): the
// lab port cannot tell whose a connection is before the login, so it
// applies neither's scenario before it and says so on the card; the
// login still finds the right lab.
func TestLabPortBehindASharedAddress(t *testing.T) {
	e := newMailEnv(t, loadDefault(t))
	a, _ := e.vs.New("127.0.0.1")
	b, _ := e.vs.New("127.0.0.1")
	for _, v := range []*Visitor{a, b} {
		v.Lab.Choose("rfc1939")
		e.vs.ArmLab(v, "127.0.0.1")
	}
	c := pop3test.Dial(t, e.labAddr)
	c.Expect("CAPA", "+OK")
	c.Body()
	c.Expect("USER "+labLogin(a), "+OK")
	c.Expect("PASS lab", "+OK")
	c.Expect("QUIT", "+OK")
	_, checks := labCard(t, a)
	if f := checks["fallback"]; f.Status != LabNone || !strings.Contains(f.Seen, "2 visitors used the lab from your network address") {
		t.Errorf("fallback behind a shared address: %+v", f)
	}
	if b.Lab.Card().Sessions != 0 {
		t.Errorf("b's lab saw a's connection")
	}
}
