package web_test

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pop3playground/pop3playground/pop3/pop3test"
	"github.com/pop3playground/pop3playground/sessions"
)

// The current lesson step sits beside the terminal: with the input
// focused after login, the step bar and the input are both in view, on a
// desktop and on a phone, and it follows the steps as they tick.
func TestCurrentStepBesideTheTerminal(t *testing.T) {
	ctx := browserContext(t)
	e := newEnv(t)
	shots := screenshotDir(t)
	for _, size := range []struct {
		name          string
		width, height int64
		mobile        bool
	}{{"desktop", 1366, 900, false}, {"wide", 1920, 1080, false}, {"tablet", 768, 1024, true}, {"phone", 390, 844, true}} {
		err := chromedp.Run(ctx,
			emulation.SetDeviceMetricsOverride(size.width, size.height, 1, size.mobile),
			chromedp.Navigate(e.http.URL+"/"),
			chromedp.WaitVisible(`#term-status[data-state="open"]`, chromedp.ByQuery),
		)
		if err != nil {
			t.Fatal(err)
		}
		waitTerm(t, ctx, "+OK POP3 server ready", 1)
		if size.name == "desktop" {
			typeLine(t, ctx, "USER guest")
			typeLine(t, ctx, "PASS visitor")
			waitLesson(t, ctx, "01-lab-sheet", 1)
		}
		pop3test.WaitFor(t, func() bool {
			return strings.Contains(evalString(t, ctx, `document.querySelector("[data-testid=current-step]").textContent`), "List the maildrop")
		})
		if cmd := evalString(t, ctx, `[...document.querySelectorAll("#step-cmds button")].map(b => b.textContent).join(",")`); cmd != "LIST" {
			t.Errorf("%s: the step bar offers %q, want LIST", size.name, cmd)
		}
		if err := chromedp.Run(ctx, chromedp.Focus("#term-input", chromedp.ByID)); err != nil {
			t.Fatal(err)
		}
		var where string
		js := `[` + strings.Join([]string{
			jsInView("[data-testid=current-step]"), jsInView("#term-input"),
		}, ",") + `].join(" ")`
		if err := chromedp.Run(ctx, chromedp.Evaluate(js, &where)); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(where, "false") {
			t.Errorf("%s (%dx%d): %s; want the step and the input in view", size.name, size.width, size.height, where)
		}
		if size.width <= 600 { // iOS zooms into inputs under 16 px
			if fs := evalString(t, ctx, `getComputedStyle(document.getElementById("term-input")).fontSize`); fs != "16px" {
				t.Errorf("%s: the terminal input is %s, want 16px", size.name, fs)
			}
		}
		screenshot(t, ctx, filepath.Join(shots, "step-"+size.name+".png"))
	}
	// The step's button types its command; the step moves on. (Each
	// size loaded the page anew: log in again.)
	typeLine(t, ctx, "USER guest")
	typeLine(t, ctx, "PASS visitor")
	waitTerm(t, ctx, "guest's maildrop has", 1)
	if err := chromedp.Run(ctx, chromedp.Click(`#step-cmds button[data-action="pop3"]`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	typeLine(t, ctx, "")
	waitLesson(t, ctx, "01-lab-sheet", 2)
	pop3test.WaitFor(t, func() bool {
		return strings.Contains(evalString(t, ctx, `document.querySelector("[data-testid=current-step]").textContent`), "Read message 3")
	})
}

func jsInView(sel string) string {
	return fmt.Sprintf(`(() => { const r = document.querySelector(%q).getBoundingClientRect();
		return %q + "=" + (r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight && r.left >= 0 && r.right <= window.innerWidth) + "@" + Math.round(r.top) + "-" + Math.round(r.bottom); })()`, sel, sel)
}

// Reset while logged in, the organiser's End, and a server that forgot
// the page (as after a restart): the page says what happened, Enter
// reconnects, and the lesson progress survives.
func TestBrowserTruthAfterResetEndAndRestart(t *testing.T) {
	ctx := browserContext(t)
	e := newEnvWorld(t, freshWorld(t), withAdmin(prometheus.NewRegistry()))
	shots := screenshotDir(t)
	openPage(t, ctx, e.http.URL+"/")
	waitTerm(t, ctx, "+OK POP3 server ready", 1)
	typeLine(t, ctx, "USER guest")
	typeLine(t, ctx, "PASS visitor")
	typeLine(t, ctx, "LIST")
	waitLesson(t, ctx, "01-lab-sheet", 2)
	typeLine(t, ctx, "DELE 1")
	waitTerm(t, ctx, "message 1 marked", 1)

	// Reset while logged in: the session keeps the maildrop it had.
	if err := chromedp.Run(ctx, chromedp.Click(`#reset-form button`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	pop3test.WaitFor(t, func() bool {
		return strings.Contains(evalString(t, ctx, `document.getElementById("inspector").textContent`), "This session still sees the maildrop it had when it logged in")
	})
	if rows := evalString(t, ctx, `String(document.querySelectorAll("#insp-maildrop tbody tr").length)`); rows != "7" {
		t.Errorf("after a reset while logged in the inspector shows %s messages, want the session's 7", rows)
	}
	if s := evalString(t, ctx, `document.getElementById("reset-status").textContent`); !strings.Contains(s, "QUIT and log in again") {
		t.Errorf("reset status %q", s)
	}
	typeLine(t, ctx, "STAT")
	waitTerm(t, ctx, "+OK 6 ", 1) // the session still has its mark: RFC 1939 §8
	screenshot(t, ctx, filepath.Join(shots, "reset-logged-in.png"))

	// The organiser ends the session: the page says so, Enter gives a
	// fresh one, and the lesson progress is still there.
	v := e.visitors.All()[0]
	o, _ := e.organiser(t, adminToken)
	if code, _ := o.post("/admin/visitors/"+v.Handle+"/end", nil); code != 200 {
		t.Fatalf("end: %d", code)
	}
	waitTerm(t, ctx, "The organiser ended your session", 1)
	typeLine(t, ctx, "")
	waitTerm(t, ctx, "+OK POP3 server ready", 2)
	pop3test.WaitFor(t, func() bool {
		all := e.visitors.All()
		return len(all) == 1 && all[0] != v && all[0].Progress()["01-lab-sheet"] == 2
	})
	waitLesson(t, ctx, "01-lab-sheet", 2)

	// The server forgets the page (its cookie no longer valid, as after a
	// restart with a new key): Enter still reconnects, with progress.
	typeLine(t, ctx, "QUIT")
	waitTerm(t, ctx, "Connection closed by foreign host.", 1)
	if err := chromedp.Run(ctx, network.ClearBrowserCookies()); err != nil {
		t.Fatal(err)
	}
	typeLine(t, ctx, "")
	waitTerm(t, ctx, "+OK POP3 server ready", 3)
	pop3test.WaitFor(t, func() bool {
		for _, v := range e.visitors.All() {
			if v.Progress()["01-lab-sheet"] == 2 && v.Bridges() == 1 {
				return true
			}
		}
		return false
	})
	if s := evalString(t, ctx, `document.getElementById("term-out").textContent`); strings.Contains(s, "reload") {
		t.Errorf("the terminal asks to reload: %q", s[max(0, len(s)-300):])
	}
	typeLine(t, ctx, "USER guest")
	typeLine(t, ctx, "PASS visitor")
	typeLine(t, ctx, "RETR 3")
	waitLesson(t, ctx, "01-lab-sheet", 3)
}

// A long reply is not read aloud line by line: after the first lines the
// body is hidden from screen readers, and its end says how long it was.
// Lesson commands are buttons a keyboard reaches.
func TestBrowserLongRepliesAndKeyboard(t *testing.T) {
	ctx := browserContext(t)
	e := newEnv(t)
	openPage(t, ctx, e.http.URL+"/")
	waitTerm(t, ctx, "+OK POP3 server ready", 1)
	typeLine(t, ctx, "USER guest")
	typeLine(t, ctx, "PASS visitor")
	typeLine(t, ctx, "RETR 6")
	pop3test.WaitFor(t, func() bool {
		return strings.Contains(evalString(t, ctx, `document.getElementById("term-out").textContent`), "end of the reply:")
	})
	hidden := evalString(t, ctx, `String(document.querySelectorAll("#term-out [aria-hidden=true]").length)`)
	summary := evalString(t, ctx, `[...document.querySelectorAll("#term-out .visually-hidden")].map(s => s.textContent).join("|")`)
	if hidden == "0" || !strings.Contains(summary, "lines, 48 KB") {
		t.Errorf("RETR 6: %s lines hidden from screen readers, summary %q", hidden, summary)
	}
	// Tab reaches a lesson's command; Enter types it.
	if tag := evalString(t, ctx, `document.querySelector(".lesson-steps [data-cmd]").tagName`); tag != "BUTTON" {
		t.Errorf("a lesson command is a %s, want a BUTTON", tag)
	}
	err := chromedp.Run(ctx,
		chromedp.Focus(`.lesson-steps [data-cmd="LIST"]`, chromedp.ByQuery),
		chromedp.KeyEvent("\r"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if in := evalString(t, ctx, `document.getElementById("term-input").value`); in != "LIST" {
		t.Errorf("Enter on a lesson command typed %q", in)
	}
}

// The page never shows a login that does not work: when the server gives
// its cookie a new visitor (the organiser's End, or a restart that forgot
// the visitor while the cookie stays good), the pseudonym, handle and
// personal login change at once, a line says so, and the login shown works
// over plain TCP.
func TestBrowserIdentityIsAlwaysCurrent(t *testing.T) {
	ctx := browserContext(t)
	e := newEnvWorld(t, freshWorld(t), withAdmin(prometheus.NewRegistry()))
	openPage(t, ctx, e.http.URL+"/")
	waitTerm(t, ctx, "+OK POP3 server ready", 1)
	shown := func() (login, handle string) {
		return evalString(t, ctx, `document.querySelector("[data-testid=personal-login] #pl-user").textContent`),
			evalString(t, ctx, `document.getElementById("who-handle").textContent`)
	}
	current := func() *sessions.Visitor {
		all := e.visitors.All()
		if len(all) != 1 {
			return nil
		}
		return all[0]
	}
	check := func(when string, old *sessions.Visitor) {
		t.Helper()
		var v *sessions.Visitor
		pop3test.WaitFor(t, func() bool {
			v = current()
			login, handle := shown()
			return v != nil && v != old && login == v.PersonalLogin("guest") && handle == v.Handle
		})
		if note := evalString(t, ctx, `document.querySelector("[data-testid=identity-note]").textContent`); !strings.Contains(note, v.PersonalLogin("guest")) || !strings.Contains(note, "no longer works") {
			t.Errorf("%s: the note says %q", when, note)
		}
		login, _ := shown()
		c, err := net.Dial("tcp", e.pop3Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(c)
		r.ReadString('\n')
		fmt.Fprintf(c, "USER %s\r\nPASS visitor\r\n", login)
		r.ReadString('\n')
		if got, _ := r.ReadString('\n'); !strings.HasPrefix(got, "+OK") {
			t.Errorf("%s: the login the page shows (%s) gets %q", when, login, got)
		}
		c.Close()
		// And with curl, as a student would try it.
		if curl, err := exec.LookPath("curl"); err == nil {
			out, err := exec.Command(curl, "-sS", "--max-time", "10", "pop3://"+login+":visitor@"+e.pop3Addr+"/").CombinedOutput()
			if err != nil || !strings.HasPrefix(string(out), "1 ") {
				t.Errorf("%s: curl with the login the page shows: %v\n%s", when, err, out)
			}
		}
	}
	first := current()
	if login, _ := shown(); login != first.PersonalLogin("guest") {
		t.Fatalf("the page shows %q, want %q", login, first.PersonalLogin("guest"))
	}

	// The organiser's End: before anyone presses Enter.
	o, _ := e.organiser(t, adminToken)
	if code, _ := o.post("/admin/visitors/"+first.Handle+"/end", nil); code != 200 {
		t.Fatalf("end: %d", code)
	}
	check("after End", first)
	screenshot(t, ctx, filepath.Join(screenshotDir(t), "identity-after-end.png"))

	// A restart that forgot the visitor while the cookie stays good
	// (--admin-token set): the terminal's next connection and the event
	// stream are told, and the page shows the visitor it gets.
	second := current()
	e.visitors.End(second.Token)
	check("after the server forgot the visitor", second)
	typeLine(t, ctx, "")
	waitTerm(t, ctx, "+OK POP3 server ready", 2)
}

// The organiser's announcement shows on the student's page at once, and
// goes when it is taken down.
func TestBrowserShowsTheAnnouncement(t *testing.T) {
	ctx := browserContext(t)
	e := newEnvWorld(t, freshWorld(t), withAdmin(prometheus.NewRegistry()))
	openPage(t, ctx, e.http.URL+"/")
	waitTerm(t, ctx, "+OK POP3 server ready", 1)
	o, _ := e.organiser(t, adminToken)
	if code, _ := o.post("/admin/announce", url.Values{"text": {"Stop and look up, please."}}); code != 200 {
		t.Fatalf("announce: %d", code)
	}
	shown := func() string {
		return evalString(t, ctx, `(() => { const a = document.querySelector("[data-testid=announcement]"); return a.hidden ? "(hidden)" : a.textContent })()`)
	}
	pop3test.WaitFor(t, func() bool { return shown() == "From the organiser: Stop and look up, please." })
	screenshot(t, ctx, filepath.Join(screenshotDir(t), "announcement.png"))
	o.post("/admin/announce", url.Values{"text": {""}})
	pop3test.WaitFor(t, func() bool { return shown() == "(hidden)" })
}
