package web_test

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/pop3playground/pop3playground/sessions"
)

// A class of 30 does all six lessons at once, each student following the
// lessons' own instructions through the page's bridge (two terminals for
// the lock, the APOP digest from the greeting, the Reset button): every
// lesson finishes for everyone, and no tick ever names a lesson other
// than the one the student is doing.
func TestAClassOf30DoesEveryLesson(t *testing.T) {
	if testing.Short() {
		t.Skip("30 students")
	}
	e := newEnv(t)
	t.Run("class", func(t *testing.T) {
		for i := range 30 {
			t.Run(fmt.Sprint("student", i+1), func(t *testing.T) {
				t.Parallel()
				b := e.visit(t)
				v := e.visitors.Get(b.token())
				doEveryLesson(t, e, b, v)
			})
		}
	})
	ids := make([]string, len(e.visitors.Lessons))
	for i, l := range e.visitors.Lessons {
		ids[i] = l.ID
	}
	for _, v := range e.visitors.All() {
		p := v.Progress()
		for _, l := range e.visitors.Lessons {
			if p[l.ID] != len(l.Steps) {
				t.Errorf("%s: %s at %d/%d", v.Name(), l.ID, p[l.ID], len(l.Steps))
			}
		}
		entries, _, _ := v.Events.Since(0)
		last, done := -1, 0
		for _, en := range entries {
			if en.Type != sessions.EntryLesson {
				continue
			}
			i := slices.Index(ids, en.Lesson.Lesson)
			switch {
			case i < last:
				t.Errorf("%s: a tick of %s after lesson %s had begun", v.Name(), en.Lesson.Lesson, ids[last])
			case i > last:
				last, done = i, 0
			}
			if en.Lesson.Done != done+1 {
				t.Errorf("%s: %s ticked to %d after %d", v.Name(), en.Lesson.Lesson, en.Lesson.Done, done)
			}
			done = en.Lesson.Done
		}
	}
	if n := e.visitors.Len(); n != 30 {
		t.Errorf("%d visitors, want 30", n)
	}
}

func (b *browser) token() string {
	for _, c := range b.client.Jar.Cookies(mustURL(b.e.http.URL)) {
		if c.Name == "pop3pg_session" {
			return c.Value[:32]
		}
	}
	b.t.Fatal("no session cookie")
	return ""
}

var timestampRe = regexp.MustCompile(`<[^<>\s]+@[^<>\s]+>`)

func doEveryLesson(t *testing.T, e *env, b *browser, v *sessions.Visitor) {
	at := func(lesson string, n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for v.Progress()[lesson] != n {
			if time.Now().After(deadline) {
				t.Fatalf("%s at %d, want %d", lesson, v.Progress()[lesson], n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	quit := func(tm *term) {
		t.Helper()
		tm.cmd("QUIT", "+OK")
		io.Copy(io.Discard, tm.r)
	}
	multi := func(tm *term, cmd string) {
		t.Helper()
		tm.cmd(cmd, "+OK")
		tm.body()
	}

	// 1. The lab sheet.
	tm := b.terminal()
	tm.login()
	multi(tm, "LIST")
	multi(tm, "RETR 3")
	quit(tm)
	at("01-lab-sheet", 4)

	// 2. DELE, RSET and UPDATE; "Reconnect and look"; Reset.
	tm = b.terminal()
	tm.login()
	tm.cmd("DELE 1", "+OK")
	multi(tm, "LIST")
	tm.cmd("RSET", "+OK")
	tm.cmd("DELE 1", "+OK")
	quit(tm)
	at("02-dele-rset-update", 5)
	tm = b.terminal()
	tm.login()
	multi(tm, "LIST")
	at("02-dele-rset-update", 6)
	b.reset()
	at("02-dele-rset-update", 7)

	// 3. Peeking, in the session still open.
	tm.cmd("STAT", "+OK")
	multi(tm, "TOP 1 0")
	multi(tm, "UIDL")
	at("03-peeking", 3)

	// 4. The lock: a new login (QUIT first, as the lesson says), a
	// second tab refused, the first lets go, the second logs in again.
	quit(tm)
	first := b.terminal()
	first.login()
	at("04-lock", 1)
	second := b.terminal()
	second.cmd("USER guest", "+OK")
	second.cmd("PASS visitor", "-ERR [IN-USE]")
	at("04-lock", 2)
	quit(first)
	at("04-lock", 3)
	second.login()
	at("04-lock", 4)
	quit(second)

	// 5. APOP on a fresh connection, with the greeting's timestamp.
	tm = b.terminal()
	at("05-apop", 1)
	sum := md5.Sum([]byte(timestampRe.FindString(tm.greeting) + "visitor"))
	tm.cmd("APOP guest "+hex.EncodeToString(sum[:]), "+OK")
	tm.cmd("STAT", "+OK")
	at("05-apop", 3)

	// 6. CAPA and STLS, after QUIT (the lesson says so when logged in).
	quit(tm)
	tm = b.terminal()
	multi(tm, "CAPA")
	multi(tm, "AUTH")
	tm.cmd("STLS", "+OK")
	io.WriteString(tm.nc, "hello\r\n")
	io.Copy(io.Discard, tm.r)
	at("06-capa-stls", 4)
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
