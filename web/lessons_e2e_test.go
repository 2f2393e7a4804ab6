package web_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/pop3playground/pop3playground/pop3/pop3test"
)

// waitLesson waits until the page shows done steps of a lesson, ticked by
// the server's events.
func waitLesson(t *testing.T, ctx context.Context, id string, done int) {
	t.Helper()
	sel := fmt.Sprintf(`.lesson[data-lesson=%q] [data-progress]`, id)
	deadline := time.Now().Add(20 * time.Second)
	for {
		var got string
		if err := chromedp.Run(ctx, chromedp.Text(sel, &got, chromedp.ByQuery, chromedp.AtLeast(0))); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(strings.TrimSpace(got), fmt.Sprint(done, "/")) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lesson %s shows %q, want %d steps done", id, got, done)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func evalString(t *testing.T, ctx context.Context, js string) string {
	t.Helper()
	var s string
	if err := chromedp.Run(ctx, chromedp.Evaluate(js, &s, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) })); err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return s
}

// TestBrowserCompletesTheLessons does all six built-in lessons in Chromium
// with nothing but the page: the terminal, a second tab, the APOP helper
// and the Reset button. Every tick comes from the server's events.
func TestBrowserCompletesTheLessons(t *testing.T) {
	ctx := browserContext(t)
	e := newEnv(t)
	shots := screenshotDir(t)
	openPage(t, ctx, e.http.URL+"/")
	waitTerm(t, ctx, "+OK POP3 server ready", 1)

	// Lesson 1: the lab sheet. Each reply gets its explanation.
	typeLine(t, ctx, "USER guest")
	typeLine(t, ctx, "PASS visitor")
	typeLine(t, ctx, "LIST")
	typeLine(t, ctx, "RETR 3")
	waitTerm(t, ctx, "dorm-wifi-44.students.example.net", 1)
	waitTerm(t, ctx, "RETR: the whole message follows, 1995 octets", 1)
	waitLesson(t, ctx, "01-lab-sheet", 3)
	if lit := evalString(t, ctx, `document.querySelector(".fsm li.lit").dataset.state`); lit != "TRANSACTION" {
		t.Errorf("the inspector lights %s during the session", lit)
	}
	if rows := evalString(t, ctx, `String(document.querySelectorAll("#insp-maildrop tbody tr").length)`); rows != "7" {
		t.Errorf("the inspector's maildrop has %s rows", rows)
	}
	// An explanation sits right under its reply, and the toggle hides them.
	pop3test.WaitFor(t, func() bool {
		next := evalString(t, ctx, `(() => {
			const r = [...document.querySelectorAll(".reply-ok")].find(l => l.textContent.startsWith("+OK 7 messages"));
			if (!r || !r.nextElementSibling) return "";
			// As it reads on the screen: without the glosses' words for
			// screen readers.
			const c = r.nextElementSibling.cloneNode(true);
			for (const h of c.querySelectorAll(".visually-hidden")) h.remove();
			return r.nextElementSibling.className + ": " + c.textContent;
		})()`)
		return strings.HasPrefix(next, "ln explain: ↳ LIST: one line per message") && strings.Contains(next, "(RFC 1939 §5)")
	})
	typeLine(t, ctx, "QUIT")
	waitLesson(t, ctx, "01-lab-sheet", 4)
	if c := evalString(t, ctx, `String(document.querySelector('.lesson[data-lesson="01-lab-sheet"]').classList.contains("complete"))`); c != "true" {
		t.Error("lesson 1 is not shown complete")
	}
	// After QUIT the state machine shows UPDATE, greyed: the session ended.
	pop3test.WaitFor(t, func() bool {
		return evalString(t, ctx, `document.querySelector(".fsm").className + " " + document.querySelector(".fsm li.lit").dataset.state`) == "fsm ended UPDATE"
	})

	// Lesson 2: DELE, RSET and UPDATE.
	waitTerm(t, ctx, "Connection closed by foreign host.", 1)
	typeLine(t, ctx, "")
	waitTerm(t, ctx, "+OK POP3 server ready", 2)
	typeLine(t, ctx, "USER guest")
	typeLine(t, ctx, "PASS visitor")
	typeLine(t, ctx, "DELE 1")
	typeLine(t, ctx, "LIST")
	typeLine(t, ctx, "RSET")
	typeLine(t, ctx, "DELE 1")
	waitLesson(t, ctx, "02-dele-rset-update", 4)
	pop3test.WaitFor(t, func() bool { // the inspector marks message 1
		return evalString(t, ctx, `[...document.querySelectorAll("#insp-maildrop tr.marked td:first-child")].map(td => td.textContent).join(",")`) == "1"
	})
	screenshot(t, ctx, filepath.Join(shots, "lessons.png"))
	typeLine(t, ctx, "QUIT")
	waitTerm(t, ctx, "Connection closed by foreign host.", 2)
	typeLine(t, ctx, "")
	waitTerm(t, ctx, "+OK POP3 server ready", 3)
	typeLine(t, ctx, "USER guest")
	typeLine(t, ctx, "PASS visitor")
	waitTerm(t, ctx, "guest's maildrop has 6 messages", 1)
	typeLine(t, ctx, "LIST")
	waitLesson(t, ctx, "02-dele-rset-update", 6)
	if err := chromedp.Run(ctx, chromedp.Click(`#reset-form button`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitLesson(t, ctx, "02-dele-rset-update", 7)

	// Lesson 3: peeking.
	typeLine(t, ctx, "STAT")
	typeLine(t, ctx, "TOP 1 0")
	typeLine(t, ctx, "UIDL")
	waitLesson(t, ctx, "03-peeking", 3)

	// Lesson 4: the lock, with a second tab of the same browser. Its
	// first step is a new login, as the lesson says.
	typeLine(t, ctx, "QUIT")
	waitTerm(t, ctx, "Connection closed by foreign host.", 3)
	typeLine(t, ctx, "")
	waitTerm(t, ctx, "+OK POP3 server ready", 4)
	typeLine(t, ctx, "USER guest")
	typeLine(t, ctx, "PASS visitor")
	waitLesson(t, ctx, "04-lock", 1)
	tab2, cancel := chromedp.NewContext(ctx)
	defer cancel()
	if err := chromedp.Run(tab2, chromedp.Navigate(e.http.URL+"/"), chromedp.WaitVisible(`#term-status[data-state="open"]`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitTerm(t, tab2, "+OK POP3 server ready", 1)
	typeLine(t, tab2, "USER guest")
	typeLine(t, tab2, "PASS visitor")
	waitTerm(t, tab2, "-ERR [IN-USE]", 1)
	waitLesson(t, ctx, "04-lock", 2)
	pop3test.WaitFor(t, func() bool { // the second tab's inspector sees the first
		return strings.Contains(evalString(t, tab2, `document.getElementById("insp-others").textContent`), "Another browser tab (TRANSACTION, guest)")
	})
	typeLine(t, ctx, "QUIT")
	waitLesson(t, tab2, "04-lock", 3)
	typeLine(t, tab2, "USER guest")
	typeLine(t, tab2, "PASS visitor")
	waitLesson(t, tab2, "04-lock", 4)
	typeLine(t, tab2, "QUIT")
	waitTerm(t, tab2, "Connection closed by foreign host.", 1)
	cancel()
	if err := chromedp.Run(ctx, page.BringToFront()); err != nil {
		t.Fatal(err)
	}

	// Lesson 5: APOP with the page's helper, which took the timestamp
	// from the greeting.
	waitTerm(t, ctx, "Connection closed by foreign host.", 4)
	typeLine(t, ctx, "")
	waitTerm(t, ctx, "+OK POP3 server ready", 5)
	waitLesson(t, ctx, "05-apop", 1)
	err := chromedp.Run(ctx,
		chromedp.Click(`#apop summary`, chromedp.ByQuery),
		chromedp.Click(`#apop-type`, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if in := evalString(t, ctx, `document.getElementById("term-input").value`); !strings.HasPrefix(in, "APOP guest ") || len(in) != len("APOP guest ")+32 {
		t.Fatalf("the APOP helper typed %q", in)
	}
	typeLine(t, ctx, "")
	waitTerm(t, ctx, "guest's maildrop has 7 messages", 2)
	typeLine(t, ctx, "STAT")
	waitLesson(t, ctx, "05-apop", 3)
	// The helper's MD5 is MD5.
	for _, s := range []string{"<1896.697170952@dbc.mtview.ca.us>tanstaaf", "", strings.Repeat("x", 64), "héllo ✉"} {
		sum := md5.Sum([]byte(s))
		got := evalString(t, ctx, fmt.Sprintf(`import("/static/md5.js").then(m => m.md5hex(%q))`, s))
		if want := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("md5hex(%q) = %s, want %s", s, got, want)
		}
	}

	// Lesson 6: CAPA and STLS; the terminal cannot speak TLS.
	typeLine(t, ctx, "QUIT")
	waitTerm(t, ctx, "Connection closed by foreign host.", 5)
	typeLine(t, ctx, "")
	waitTerm(t, ctx, "+OK POP3 server ready", 6)
	typeLine(t, ctx, "CAPA")
	typeLine(t, ctx, "AUTH")
	typeLine(t, ctx, "STLS")
	waitTerm(t, ctx, "begin TLS negotiation", 1)
	typeLine(t, ctx, "hello")
	waitLesson(t, ctx, "06-capa-stls", 4)

	if n := evalString(t, ctx, `String(document.querySelectorAll(".lesson.complete").length)`); n != "6" {
		t.Errorf("%s lessons shown complete, want 6", n)
	}

	// The transcript has the session with the password masked.
	tr := evalString(t, ctx, `window.pop3term.transcriptText()`)
	if !strings.Contains(tr, " C: PASS ****") || strings.Contains(tr, "PASS visitor") || !strings.Contains(tr, " S: +OK POP3 server ready") {
		t.Errorf("transcript:\n%s", tr[:min(len(tr), 600)])
	}
	if err := chromedp.Run(ctx, chromedp.Evaluate(`window.scrollTo(0, 0)`, nil)); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, filepath.Join(shots, "lessons-done.png"))
}
