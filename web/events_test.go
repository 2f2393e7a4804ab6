package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pop3playground/pop3playground/pop3/pop3test"
	"github.com/pop3playground/pop3playground/sessions"
)

type sseEvent struct {
	id, name string
	ev       sessions.Event
	size     int // octets of data
	data     string
	tab, via string            // pop3 events
	lesson   sessions.Progress // lesson events
}

// stream opens GET /events and returns a function reading the next event.
func (b *browser) stream(t *testing.T, lastID string) func() sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", b.e.http.URL+"/events", nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /events: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	r := bufio.NewReader(resp.Body)
	lines := make(chan string)
	go func() {
		defer close(lines)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			lines <- strings.TrimRight(l, "\n")
		}
	}()
	return func() sseEvent {
		t.Helper()
		var e sseEvent
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("event stream ended")
				}
				switch {
				case strings.HasPrefix(l, "id: "):
					e.id = l[4:]
				case strings.HasPrefix(l, "event: "):
					e.name = l[7:]
				case strings.HasPrefix(l, "data: "):
					data := []byte(l[6:])
					e.size, e.data = len(data), l[6:]
					json.Unmarshal(data, &e.ev)
					json.Unmarshal(data, &e.lesson)
					var where struct{ Tab, Via string }
					json.Unmarshal(data, &where)
					e.tab, e.via = where.Tab, where.Via
				case l == "" && e.name != "":
					return e
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no event in 10s")
			}
		}
	}
}

// until reads events up to the first of this kind.
func until(t *testing.T, next func() sseEvent, kind sessions.EventKind) sseEvent {
	t.Helper()
	for {
		if e := next(); e.ev.Kind == kind {
			return e
		}
	}
}

// A login to a maildrop of 100,000 messages sends its count and size and
// the first page of messages, never the whole list: kilobytes, not the
// 10.6 MB it once was, in the stream and in the visitor's log.
func TestLoginEventIsBounded(t *testing.T) {
	w := largeWorld(t, 100_000)
	e := newEnvWorld(t, w)
	b := e.visit(t)
	next := b.stream(t, "")
	b.terminal().login()
	st := until(t, next, sessions.EventState)
	if st.ev.Count != 100_000 || len(st.ev.Messages) != sessions.MaildropPage || st.ev.Octets == 0 {
		t.Errorf("login event: count %d, %d messages listed, %d octets", st.ev.Count, len(st.ev.Messages), st.ev.Octets)
	}
	if st.size > 16<<10 {
		t.Errorf("the login event is %d octets", st.size)
	}
	t.Logf("login event for 100,000 messages: %d octets", st.size)
}

// largeWorld is a world whose guest has n small messages, from an mbox as
// an organiser's would be.
func largeWorld(t *testing.T, n int) *sessions.World {
	t.Helper()
	dir := t.TempDir()
	var mbox strings.Builder
	for i := range n {
		fmt.Fprintf(&mbox, "From a@example.org Mon Nov 23 10:00:00 2026\nFrom: a@example.org\nSubject: message %d\n\nHello.\n\n", i)
	}
	if err := os.WriteFile(filepath.Join(dir, "guest.mbox"), []byte(mbox.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(users, []byte("guest:visitor\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := sessions.LoadDir(dir, users)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestEventsStream(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.visit(t), e.visit(t)
	next := alice.stream(t, "")
	bobNext := bob.stream(t, "")

	tm := alice.terminal()
	if ev := next(); ev.ev.Kind != sessions.EventConnected || ev.id != "1" {
		t.Errorf("first event %+v", ev)
	}
	tm.login()
	st := until(t, next, sessions.EventState)
	if st.ev.State != "TRANSACTION" || len(st.ev.Messages) != 7 || st.ev.Messages[0].Subject != "Welcome to the POP3 Playground" {
		t.Errorf("state event %+v", st.ev)
	}
	tm.cmd("DELE 2", "+OK")
	if m := until(t, next, sessions.EventMarked); m.ev.Msg != 2 {
		t.Errorf("marked %+v", m.ev)
	}
	reply := until(t, next, sessions.EventReply)

	tm.cmd("QUIT", "+OK")
	until(t, next, sessions.EventClosed)

	// A reconnecting browser resumes after the last event it saw.
	resumed := alice.stream(t, reply.id)
	// Commands are not sent: the page has the terminal's own echo.
	for ev := resumed(); ; ev = resumed() {
		if ev.ev.Kind == sessions.EventCommand {
			t.Errorf("the page's stream sent a command event: %+v", ev.ev)
		}
		if ev.ev.Kind == sessions.EventReply {
			if ev.ev.Verb != "QUIT" || !ev.ev.Time.IsZero() {
				t.Errorf("after Last-Event-ID %s came %+v, want the reply to QUIT, without a time", reply.id, ev.ev)
			}
			break
		}
	}

	// A personal login's events reach the same stream once it logs in.
	conn, err := net.Dial("tcp", e.pop3Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "USER %s\r\nPASS visitor\r\n", alice.session()["login"])
	if ev := until(t, resumed, sessions.EventLockTaken); !strings.HasPrefix(ev.ev.User, "guest.") {
		t.Errorf("personal login's lock event %+v", ev.ev)
	}

	// Bob saw nothing of Alice's; his own session shows up.
	bt := bob.terminal()
	bt.login()
	if ev := bobNext(); ev.ev.Kind != sessions.EventConnected || ev.id != "1" {
		t.Errorf("bob's first event %+v", ev)
	}
}

func TestEventsNeedASession(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.http.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a cookie: %s", resp.Status)
	}
}

// TestEventsNameTheirPageAndTickLessons follows a lesson done through the
// bridge: each event says which page's terminal it came from, and lesson
// progress and resets arrive on the same stream.
func TestEventsNameTheirPageAndTickLessons(t *testing.T) {
	e := newEnv(t)
	alice := e.visit(t)
	alice.tab = "page-1"
	next := alice.stream(t, "")

	tm := alice.terminal()
	tm.login()
	tm.cmd("LIST", "+OK")
	tm.body()
	tm.cmd("RETR 3", "+OK")
	tm.body()
	tm.cmd("QUIT", "+OK")

	var done []string
	for len(done) < 4 {
		ev := next()
		switch ev.name {
		case "pop3":
			if ev.tab != "page-1" || ev.via != "web" {
				t.Fatalf("a bridged event names tab %q via %q: %+v", ev.tab, ev.via, ev.ev)
			}
		case "lesson":
			if ev.lesson.Lesson == "01-lab-sheet" {
				done = append(done, fmt.Sprint(ev.lesson.Done, "/", ev.lesson.Steps))
			}
		}
	}
	if got := strings.Join(done, " "); got != "1/4 2/4 3/4 4/4" {
		t.Errorf("lesson 1 ticks: %s", got)
	}

	// A personal login is "pop3", with no tab; a tab name that is not
	// letters and digits is dropped.
	conn, err := net.Dial("tcp", e.pop3Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "USER %s\r\nPASS visitor\r\n", alice.session()["login"])
	if ev := until(t, next, sessions.EventLockTaken); ev.via != "pop3" || ev.tab != "" {
		t.Errorf("personal login: via %q, tab %q", ev.via, ev.tab)
	}
	alice.tab = "<script>"
	alice.terminal()
	if ev := until(t, next, sessions.EventConnected); ev.via != "web" || ev.tab != "" {
		t.Errorf("bad tab name: via %q, tab %q", ev.via, ev.tab)
	}

	alice.reset()
	for ev := next(); ev.name != "reset"; ev = next() {
	}
	// Only the lesson under way moved: the lab sheet, then lesson 2's
	// last step (the reset) cannot tick before its first.
	if p := e.visitors.All()[0].Progress(); p["01-lab-sheet"] != 4 || p["04-lock"] != 0 || p["02-dele-rset-update"] != 0 {
		t.Errorf("progress %v", p)
	}
}

func TestLessonsAPI(t *testing.T) {
	e := newEnv(t)
	b := e.visit(t)
	tm := b.terminal()
	tm.login()
	pop3test.WaitFor(t, func() bool { return e.visitors.All()[0].Progress()["01-lab-sheet"] == 1 })

	get := func() []struct {
		ID      string
		Steps   []string
		Done    int
		Current bool
	} {
		t.Helper()
		resp, err := b.client.Get(e.http.URL + "/api/lessons")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var list []struct {
			ID      string
			Steps   []string
			Done    int
			Current bool
		}
		if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /api/lessons: %s, %v", resp.Status, err)
		}
		return list
	}
	list := get()
	if len(list) != 6 || list[0].ID != "01-lab-sheet" || list[0].Done != 1 || len(list[0].Steps) != 4 || list[0].Steps[0] != "Log in" {
		t.Errorf("lessons %+v", list)
	}

	post := func(path, origin string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", e.http.URL+path, nil)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Origin", origin)
		resp, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("/api/lessons/01-lab-sheet/restart", "https://evil.example"); code != http.StatusForbidden {
		t.Errorf("a cross-site restart: %d, want 403", code)
	}
	if code := post("/api/lessons/99-nope/restart", e.http.URL); code != http.StatusNotFound {
		t.Errorf("restarting an unknown lesson: %d, want 404", code)
	}
	if code := post("/api/lessons/01-lab-sheet/restart", e.http.URL); code != http.StatusOK {
		t.Errorf("restart: %d", code)
	}
	if list := get(); list[0].Done != 0 || list[3].Done != 0 {
		t.Errorf("after restarting lesson 1: %+v", list)
	}
	// Starting lesson 4 makes it the one that ticks: a login now is its
	// first step, not the lab sheet's.
	if code := post("/api/lessons/04-lock/start", e.http.URL); code != http.StatusOK {
		t.Errorf("start: %d", code)
	}
	tm.cmd("QUIT", "+OK")
	tm = b.terminal()
	tm.login()
	pop3test.WaitFor(t, func() bool { return e.visitors.All()[0].Progress()["04-lock"] == 1 })
	if list := get(); list[0].Done != 0 || !list[3].Current {
		t.Errorf("after starting lesson 4 and logging in: %+v", list)
	}

	resp, err := http.Get(e.http.URL + "/api/lessons")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a session: %s", resp.Status)
	}
}
