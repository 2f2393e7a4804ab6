package sessions

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/pop3/pop3test"
)

// lessonEnv is a POP3 server reporting to visitors with the built-in
// lessons, on a real loopback listener.
type lessonEnv struct {
	t       *testing.T
	vs      *Visitors
	addr    string
	lessons map[string]*Lesson
}

func newLessonEnv(t *testing.T) *lessonEnv {
	t.Helper()
	w := loadDefault(t)
	vs := NewVisitors(w)
	lessons, err := BuiltinLessons()
	if err != nil {
		t.Fatal(err)
	}
	vs.Lessons = lessons
	srv := pop3.NewServer(&Backend{World: w, Visitors: vs})
	srv.Observer = vs
	cert, err := pop3.SelfSignedCertificate("localhost")
	if err != nil {
		t.Fatal(err)
	}
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.AuthFailureDelay = time.Millisecond
	srv.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The page's connections come through the bridge's listener.
	go srv.ServeProxied(l, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	t.Cleanup(func() { srv.Close() })
	e := &lessonEnv{t: t, vs: vs, addr: l.Addr().String(), lessons: map[string]*Lesson{}}
	for _, l := range lessons {
		e.lessons[l.ID] = l
	}
	return e
}

// pconn is one POP3 connection of a visitor's page: through a PROXY
// header with their token, as the bridge makes it.
type pconn struct {
	*pop3test.Client
	user string
}

func (e *lessonEnv) connect(v *Visitor) *pconn {
	e.t.Helper()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	h := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}, c.RemoteAddr())
	h.SetTLVs([]proxyproto.TLV{{Type: TLVToken, Value: []byte(v.Token)}})
	if _, err := h.WriteTo(c); err != nil {
		e.t.Fatal(err)
	}
	pc := &pconn{Client: pop3test.NewClient(e.t, c), user: "guest"}
	pc.Greeting = pc.ReadLine()
	return pc
}

// do sends a command line and reads its reply, whole.
func (pc *pconn) do(line, want string) {
	pc.T.Helper()
	pc.Do(strings.ReplaceAll(line, "USER guest", "USER "+pc.user), want)
}

func (pc *pconn) login() {
	pc.do("USER guest", "+OK")
	pc.do("PASS visitor", "+OK")
}

func (pc *pconn) quit() {
	pc.T.Helper()
	pc.do("QUIT", "+OK")
	pc.ExpectClosed()
}

// settle waits until v's progress stops changing (events are filed on
// the server's goroutines) and returns it.
func settle(t *testing.T, v *Visitor, want map[string]int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := v.Progress()
		same := true
		for id, n := range want {
			same = same && got[id] == n
		}
		if same {
			time.Sleep(20 * time.Millisecond) // and nothing else moves
			if got2 := v.Progress(); fmt.Sprint(got2) == fmt.Sprint(got) {
				return
			}
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("progress %v, want %v", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func zeroExcept(lessons []*Lesson, id string, n int) map[string]int {
	m := map[string]int{}
	for _, l := range lessons {
		m[l.ID] = 0
	}
	m[id] = n
	return m
}

// With each built-in lesson under way, doing the lab sheet moves no other
// lesson, and a fresh visitor has no step done anywhere.
func TestTheLabSheetMovesOnlyTheLessonUnderWay(t *testing.T) {
	e := newLessonEnv(t)
	labSheetTicks := map[string]int{ // what the lab sheet does to each lesson
		"01-lab-sheet": 4, "02-dele-rset-update": 0, "03-peeking": 0,
		"04-lock":      1, // logged in and kept open: that is its first step
		"05-apop":      1, // a connection opened after starting it: its first step
		"06-capa-stls": 0,
		"07-mail-in":   1, // logged in: its first step
	}
	for _, l := range e.vs.Lessons {
		t.Run(l.ID, func(t *testing.T) {
			v, _ := e.vs.New("127.0.0.1")
			first := e.connect(v) // the page's terminal, open before anything
			settle(t, v, zeroExcept(e.vs.Lessons, "", 0))
			e.vs.StartLesson(v, l)
			c := e.connect(v)
			c.login()
			c.do("LIST", "+OK")
			c.do("RETR 3", "+OK")
			c.quit()
			first.do("QUIT", "+OK")
			settle(t, v, zeroExcept(e.vs.Lessons, l.ID, labSheetTicks[l.ID]))
			entries, _, _ := v.Events.Since(0)
			for _, en := range entries {
				if en.Type == EntryLesson && en.Lesson.Lesson != l.ID {
					t.Errorf("an announcement names %s while the student does %s", en.Lesson.Lesson, l.ID)
				}
			}
		})
	}
}

// The lock lesson needs a second session: an APOP login in the first
// tab after its QUIT is not "log in again in the second session".
func TestLockLessonNeedsTheSecondSession(t *testing.T) {
	e := newLessonEnv(t)
	v, _ := e.vs.New("127.0.0.1")
	e.vs.StartLesson(v, e.lessons["04-lock"])
	first := e.connect(v)
	first.login()
	second := e.connect(v)
	second.do("USER guest", "+OK")
	second.do("PASS visitor", "-ERR [IN-USE]")
	settle(t, v, map[string]int{"04-lock": 2})
	first.quit()
	settle(t, v, map[string]int{"04-lock": 3})
	again := e.connect(v) // the first tab reconnects and logs in
	again.login()
	again.quit()
	settle(t, v, map[string]int{"04-lock": 3})
	second.do("PASS visitor", "-ERR PASS must follow USER") // as the lesson warns
	second.login()
	settle(t, v, map[string]int{"04-lock": 4})
}

// "Start a fresh connection" needs a connection opened after the lesson
// was started, and the APOP login must be on it.
func TestAPOPLessonNeedsAFreshConnection(t *testing.T) {
	e := newLessonEnv(t)
	v, _ := e.vs.New("127.0.0.1")
	old := e.connect(v)
	e.vs.StartLesson(v, e.lessons["05-apop"])
	old.do("NOOP", "-ERR")
	settle(t, v, map[string]int{"05-apop": 0})
	fresh := e.connect(v)
	settle(t, v, map[string]int{"05-apop": 1})
	old.login() // a PASS login elsewhere is not the step
	fresh.do("STAT", "-ERR")
	settle(t, v, map[string]int{"05-apop": 1})
}

// "CAPA before logging in" does not tick while logged in.
func TestCapaLessonWantsAuthorization(t *testing.T) {
	e := newLessonEnv(t)
	v, _ := e.vs.New("127.0.0.1")
	e.vs.StartLesson(v, e.lessons["06-capa-stls"])
	c := e.connect(v)
	c.login()
	c.do("CAPA", "+OK")
	settle(t, v, map[string]int{"06-capa-stls": 0})
	c.quit()
	c = e.connect(v)
	c.do("CAPA", "+OK")
	c.do("AUTH", "+OK")
	c.do("STLS", "+OK")
	settle(t, v, map[string]int{"06-capa-stls": 3})
}

// Opening a lesson already finished (to read it again) ticks nothing and
// breaks nothing.
func TestReopeningAFinishedLesson(t *testing.T) {
	e := newLessonEnv(t)
	v, _ := e.vs.New("127.0.0.1")
	c := e.connect(v)
	c.login()
	c.do("LIST", "+OK")
	c.do("RETR 3", "+OK")
	c.quit()
	settle(t, v, map[string]int{"01-lab-sheet": 4})
	e.vs.StartLesson(v, e.lessons["01-lab-sheet"])
	c = e.connect(v)
	c.login()
	c.do("STAT", "+OK")
	c.quit()
	settle(t, v, map[string]int{"01-lab-sheet": 4, "02-dele-rset-update": 0})
}

// A bridged login whose visitor is gone is told what this server knows:
// ended by the organiser, idle too long, or a token it never gave out
// (a restart, or a forged header).
func TestBridgedLoginOfAGoneVisitorSaysWhy(t *testing.T) {
	e := newLessonEnv(t)
	ended, _ := e.vs.New("192.0.2.1")
	idle, _ := e.vs.New("192.0.2.1")
	stranger := &Visitor{Token: NewToken()}
	e.vs.End(ended.Token)
	idle.lastSeen.Store(time.Now().Add(-3 * e.vs.TTL).UnixNano())
	e.vs.Sweep(time.Now())
	for _, tc := range []struct {
		v    *Visitor
		want string
	}{
		{ended, "-ERR [SYS/PERM] your playground session has ended (ended by the organiser): reload the page"},
		{idle, "-ERR [SYS/PERM] your playground session has ended (idle too long): reload the page"},
		{stranger, "-ERR [SYS/PERM] the PROXY header names no playground session this server gave out"},
	} {
		pc := e.connect(tc.v)
		pc.do("USER guest", "+OK")
		pc.do("PASS visitor", tc.want)
	}
}
