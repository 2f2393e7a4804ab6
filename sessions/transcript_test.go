package sessions

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/pires/go-proxyproto"
	"golang.org/x/tools/txtar"

	"github.com/pop3playground/pop3playground/pop3"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts under testdata/")

// Every built-in lesson, done by its step bar's actions, gives the same
// bytes on the wire, the same explanations and the same progress as the
// transcript recorded in testdata/lessons: a restructuring that changes a
// reply, an explanation or a lesson's ticks fails here. go test -update
// rewrites the files after an intended change.
func TestLessonTranscripts(t *testing.T) {
	lessons, err := BuiltinLessons()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range append(lessons, mistakes) {
		t.Run(l.ID, func(t *testing.T) {
			got := recordLesson(t, l)
			file := filepath.Join("testdata", "transcripts", l.ID+".txtar")
			if *update {
				if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, txtar.Format(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatalf("%v (go test -run TestLessonTranscripts -update writes it)", err)
			}
			for i, f := range want.Files {
				if i >= len(got.Files) || got.Files[i].Name != f.Name {
					t.Fatalf("section %d: want %s", i, f.Name)
				}
				if g := got.Files[i].Data; !bytes.Equal(g, f.Data) {
					t.Errorf("%s differs from %s:\n%s", f.Name, file, firstDiff(string(f.Data), string(g)))
				}
			}
			if len(got.Files) != len(want.Files) {
				t.Errorf("%d sections, want %d", len(got.Files), len(want.Files))
			}
		})
	}
}

// firstDiff shows the first line where want and got part.
func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n want %q\n  got %q", i+1, wl, gl)
		}
	}
	return ""
}

// A recorder does a lesson's actions as the page's step bar would: one
// POP3 terminal per tab, an SMTP terminal, and the page's own buttons.
type recorder struct {
	t      *testing.T
	e      *lessonEnv
	v      *Visitor
	smtp   string // the SMTP listener's address
	wire   strings.Builder
	terms  []*rterm
	cur    int
	stepOn []int // the terminal each step was done on
	opened int   // POP3 connections made
	mail   *rterm
}

// An rterm is a terminal's connection, or none.
type rterm struct {
	c     net.Conn
	r     *bufio.Reader
	stamp string // the greeting's APOP timestamp
	count string // messages at the last login
}

// mistakes is a session of the mistakes students make, one kind of
// -ERR after another, recorded as a lesson is: it pins every error's
// words and explanation.
var mistakes = &Lesson{ID: "mistakes", Steps: []Step{
	{Title: "before logging in", Do: lines("{connect}", "STAT", "PASS visitor", "USER", "USER a b",
		"USER guest", "PASS", "USER guest", "PASS wrong", "HELO me", "GET / HTTP/1.1", "LOGIN guest",
		"LOGOUT", "HELP", "FROB", "", "ST\x01AT", "STAT\x7f", "\u00e9T", "NOOP", "RSET",
		"AUTH FOO", "AUTH PLAIN", "*", "AUTH PLAIN !!!", "AUTH PLAIN "+"AGd1ZXN0", "AUTH LOGIN", "=", "*",
		"AUTH PLAIN a b c", "APOP guest", "APOP guest nothex", "APOP guest 0123456789abcdef0123456789abcdef",
		"STLS now", "CAPA please", "QUIT now", "X"+strings.Repeat("y", 300))},
	{Title: "logged in", Do: lines("USER guest", "PASS visitor", "USER guest", "PASS visitor", "APOP guest 0123456789abcdef0123456789abcdef",
		"AUTH PLAIN", "STLS", "", "FROB", "RETR", "RETR x", "RETR 0", "RETR 99", "RETR 1 2", "RETR 1234567890",
		"DELE 1", "RETR 1", "DELE 1", "LIST 1", "UIDL 1", "TOP 1", "TOP 2", "TOP 2 x", "TOP 2 0", "LIST 2", "UIDL 2",
		"LIST 1 2", "STAT 1", "NOOP 1", "RSET 1", "STAT", "RSET", "LIST", "CAPA", "QUIT 1", "QUIT")},
}}

// lines makes step-bar actions of command lines; "{connect}" connects.
func lines(ls ...string) []Action {
	var do []Action
	for _, l := range ls {
		if l == "{connect}" {
			do = append(do, Action{Target: "connect"})
			continue
		}
		do = append(do, Action{Line: l})
	}
	return do
}

func recordLesson(t *testing.T, l *Lesson) *txtar.Archive {
	id := l.ID
	e := newLessonEnv(t)
	d := NewDelivery(e.vs, "play.example")
	d.Now = func() time.Time { return time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC) }
	s := gosmtp.NewServer(d)
	s.Domain = "play.example"
	s.ErrorLog = nopLogger{}
	sl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(sl)
	t.Cleanup(func() { s.Close() })
	v, _ := e.vs.New("127.0.0.1")
	if builtin := e.lessons[id]; builtin != nil {
		e.vs.StartLesson(v, builtin)
	}
	r := &recorder{t: t, e: e, v: v, smtp: sl.Addr().String(), terms: []*rterm{{}}}
	for i, st := range l.Steps {
		fmt.Fprintf(&r.wire, "## step %d: %s\n", i+1, st.Title)
		if st.StepConn > 0 {
			r.cur = r.stepOn[st.StepConn-1]
		}
		for _, a := range st.Do {
			r.do(a)
		}
		r.stepOn = append(r.stepOn, r.cur)
	}
	for i := range r.terms {
		r.cur = i
		if r.terms[i].c != nil {
			r.do(Action{Line: "QUIT"})
		}
	}
	r.waitClosed()
	return &txtar.Archive{
		Comment: []byte(id + " done by its step bar (sessions/transcript_test.go).\n"),
		Files: []txtar.File{
			{Name: "wire", Data: []byte(r.normal(r.wire.String()))},
			{Name: "events", Data: []byte(r.normal(r.events()))},
		},
	}
}

// normal replaces what differs from run to run: the visitor's personal
// login, the greeting's timestamp and what is made from it, and the
// trace fields of delivered mail.
func (r *recorder) normal(s string) string {
	s = strings.ReplaceAll(s, r.v.ID, "VISITOR")
	s = strings.ReplaceAll(s, r.v.Token, "TOKEN")
	for _, re := range normalisers {
		s = re.re.ReplaceAllString(s, re.to)
	}
	return s
}

var normalisers = []struct {
	re *regexp.Regexp
	to string
}{
	{regexp.MustCompile(`<[0-9a-f.]+@[^>]+>`), "<TIMESTAMP>"},
	{regexp.MustCompile(`APOP guest [0-9a-f]{32}`), "APOP guest DIGEST"},
	{regexp.MustCompile(`\bid [0-9A-Za-z._-]+`), "id ID"},
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), "127.0.0.1:PORT"},
}

func (r *recorder) term() *rterm { return r.terms[r.cur] }

func (r *recorder) do(a Action) {
	r.t.Helper()
	switch a.Target {
	case "connect":
		if r.term().c == nil {
			r.connect()
		}
	case "tab":
		r.terms = append(r.terms, &rterm{})
		r.cur = len(r.terms) - 1
		r.connect()
	case "reset":
		fmt.Fprintf(&r.wire, "[reset mailbox]\n")
		r.e.vs.Reset(r.v)
	case "compose":
		r.compose()
	case "smtp":
		r.smtpLine(a.Line)
	default:
		r.pop3Line(a.Line)
	}
}

func (r *recorder) connect() {
	c, err := net.Dial("tcp", r.e.addr)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	h := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}, c.RemoteAddr())
	h.SetTLVs([]proxyproto.TLV{{Type: TLVToken, Value: []byte(r.v.Token)}, {Type: TLVTab, Value: fmt.Appendf(nil, "tab%d", r.cur+1)}})
	if _, err := h.WriteTo(c); err != nil {
		r.t.Fatal(err)
	}
	r.opened++
	tm := r.term()
	tm.c, tm.r = c, bufio.NewReader(c)
	fmt.Fprintf(&r.wire, "[tab%d connects]\n", r.cur+1)
	greeting, _ := r.read()
	if i, j := strings.IndexByte(greeting, '<'), strings.IndexByte(greeting, '>'); i >= 0 && j > i {
		tm.stamp = greeting[i : j+1]
	}
}

// read reads one line of the current terminal and records it; ok is
// false at the end of the connection.
func (r *recorder) read() (line string, ok bool) {
	tm := r.term()
	line, err := tm.r.ReadString('\n')
	if line != "" {
		fmt.Fprintf(&r.wire, "S%d: %q\n", r.cur+1, line)
	}
	if err != nil {
		fmt.Fprintf(&r.wire, "[tab%d closed: %v]\n", r.cur+1, err)
		tm.c.Close()
		tm.c = nil
		r.waitClosed()
		return "", false
	}
	return strings.TrimRight(line, "\r\n"), true
}

func (r *recorder) pop3Line(line string) {
	tm := r.term()
	if tm.c == nil {
		fmt.Fprintf(&r.wire, "[tab%d not connected: %s not typed]\n", r.cur+1, line)
		return
	}
	line = strings.ReplaceAll(line, "{count}", tm.count)
	line = strings.ReplaceAll(line, "{address}", r.v.PersonalLogin("guest")+"@play.example")
	if strings.Contains(line, "{apop}") {
		sum := md5.Sum([]byte(tm.stamp + "visitor"))
		line = strings.ReplaceAll(line, "{apop}", hex.EncodeToString(sum[:]))
	}
	fmt.Fprintf(&r.wire, "C%d: %q\n", r.cur+1, line+"\r\n")
	io.WriteString(tm.c, line+"\r\n")
	status, _ := r.read()
	if n, ok := strings.CutPrefix(status, "+OK guest's maildrop has "); ok {
		tm.count, _, _ = strings.Cut(n, " ")
	}
	verb, _, _ := strings.Cut(line, " ")
	switch {
	case !strings.HasPrefix(status, "+OK"):
	case strings.EqualFold(verb, "QUIT"):
		r.read() // the end
	case pop3.MultiLine(line):
		for l, ok := r.read(); ok && l != "."; l, ok = r.read() {
		}
	}
}

// smtpLine types one line in the SMTP terminal and records the reply.
func (r *recorder) smtpLine(line string) {
	if r.mail == nil {
		c, err := net.Dial("tcp", r.smtp)
		if err != nil {
			r.t.Fatal(err)
		}
		r.t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		r.mail = &rterm{c: c, r: bufio.NewReader(c)}
		fmt.Fprintf(&r.wire, "[smtp connects]\n")
		r.smtpReply()
	}
	line = strings.ReplaceAll(line, "{address}", r.v.PersonalLogin("guest")+"@play.example")
	fmt.Fprintf(&r.wire, "M: %q\n", line+"\r\n")
	io.WriteString(r.mail.c, line+"\r\n")
	r.smtpReply()
	if strings.EqualFold(line, "QUIT") {
		r.mail.c.Close()
		r.mail = nil
	}
}

func (r *recorder) smtpReply() string {
	for {
		l, err := r.mail.r.ReadString('\n')
		if l != "" {
			fmt.Fprintf(&r.wire, "R: %q\n", l)
		}
		if err != nil {
			r.t.Fatalf("SMTP: %v", err)
		}
		if len(l) < 4 || l[3] != '-' {
			return l
		}
	}
}

// compose sends what the page's compose panel sends when the step bar
// fills it in.
func (r *recorder) compose() {
	me := r.v.PersonalLogin("guest") + "@play.example"
	fmt.Fprintf(&r.wire, "[compose]\n")
	for _, l := range []string{"EHLO browser", "MAIL FROM:<" + me + ">", "RCPT TO:<" + me + ">", "DATA",
		"From: <" + me + ">\r\nTo: <" + me + ">\r\nSubject: by hand\r\n\r\nHello from the step bar.\r\n.", "QUIT"} {
		r.smtpLine(l)
	}
}

// waitClosed waits until every connection made has told the visitor's
// log it closed, so that the order of events does not depend on timing.
func (r *recorder) waitClosed() {
	deadline := time.Now().Add(5 * time.Second)
	for {
		entries, _, wait := r.v.Events.Since(0)
		n := 0
		for _, en := range entries {
			if en.Type == EntryPOP3 && en.Event.Kind == EventClosed {
				n++
			}
		}
		if open := 0; true {
			for _, tm := range r.terms {
				if tm.c != nil {
					open++
				}
			}
			if n >= r.opened-open {
				return
			}
		}
		select {
		case <-wait:
		case <-time.After(time.Until(deadline)):
			r.t.Fatalf("%d of %d connections told their end", n, r.opened)
		}
	}
}

// events renders the visitor's log: what the inspector and the lessons
// are told.
func (r *recorder) events() string {
	var b strings.Builder
	entries, _, _ := r.v.Events.Since(0)
	for _, en := range entries {
		switch en.Type {
		case EntryPOP3:
			ev := en.Event
			fmt.Fprintf(&b, "conn %d %s", ev.Conn, ev.Kind)
			for _, f := range []string{ev.Verb, ev.Code, ev.State, ev.User, ev.Reason} {
				if f != "" {
					fmt.Fprintf(&b, " %s", f)
				}
			}
			if ev.Msg != 0 || ev.Count != 0 || ev.Octets != 0 || ev.Deleted != nil {
				fmt.Fprintf(&b, " msg=%d count=%d octets=%d deleted=%v", ev.Msg, ev.Count, ev.Octets, ev.Deleted)
			}
			if ev.Line != "" {
				fmt.Fprintf(&b, " %q", ev.Line)
			}
			b.WriteString("\n")
			if ev.Explain != "" {
				fmt.Fprintf(&b, "  explain: %s\n", ev.Explain)
			}
		case EntryLesson:
			p := en.Lesson
			fmt.Fprintf(&b, "lesson %s %d/%d", p.Lesson, p.Done, p.Steps)
			if p.Tab != "" || p.NotTab != "" {
				fmt.Fprintf(&b, " tab=%q not_tab=%q", p.Tab, p.NotTab)
			}
			if p.Blocked != "" {
				fmt.Fprintf(&b, " blocked %q rewind %d", p.Blocked, p.Rewind)
			}
			b.WriteString("\n")
		default:
			fmt.Fprintf(&b, "%s %s\n", en.Type, en.Account)
		}
	}
	return b.String()
}
