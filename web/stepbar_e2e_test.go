package web_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pop3playground/pop3playground/pop3/pop3test"
)

// barState is what the step bar offers now: the lesson's title, the step,
// and its buttons not yet pressed.
type barState struct {
	Lesson, Count, Title string
	Buttons              []struct{ Label, Action string }
}

func readBar(t *testing.T, ctx context.Context) barState {
	t.Helper()
	var st barState
	err := chromedp.Run(ctx, chromedp.Evaluate(`({
		Lesson: document.getElementById("step-lesson").textContent,
		Count: document.getElementById("step-count").textContent,
		Title: document.getElementById("step-title").textContent,
		Buttons: [...document.querySelectorAll("#step-cmds button:not(.used)")].map(b => ({Label: b.textContent, Action: b.dataset.action || ""})),
	})`, &st))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// pressBar presses the step bar's first button not yet pressed, and Enter
// in the terminal a command went to; it returns what it pressed.
func pressBar(t *testing.T, ctx context.Context) string {
	t.Helper()
	st := readBar(t, ctx)
	if len(st.Buttons) == 0 {
		return ""
	}
	b := st.Buttons[0]
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.querySelector("#step-cmds button:not(.used)").click()`, nil)); err != nil {
		t.Fatal(err)
	}
	switch b.Action {
	case "pop3":
		if err := chromedp.Run(ctx, chromedp.SendKeys("#term-input", "\r", chromedp.ByID)); err != nil {
			t.Fatal(err)
		}
	case "smtp":
		if err := chromedp.Run(ctx, chromedp.SendKeys("#smtp-input", "\r", chromedp.ByID)); err != nil {
			t.Fatal(err)
		}
	}
	return b.Label
}

// doLessonWithTheBar finishes the lesson the bar shows by pressing only its
// buttons, waiting after each for the server to answer.
func doLessonWithTheBar(t *testing.T, ctx context.Context, id string, steps int) {
	t.Helper()
	var pressed []string
	deadline := time.Now().Add(60 * time.Second)
	for {
		done := evalString(t, ctx, fmt.Sprintf(`document.querySelector('.lesson[data-lesson=%q] [data-progress]').textContent`, id))
		if done == fmt.Sprintf("%d/%d", steps, steps) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lesson %s stuck at %s after pressing %q; the bar says %+v", id, done, pressed, readBar(t, ctx))
		}
		before := evalString(t, ctx, `String(document.querySelectorAll("#term-out .ln, #smtp-out .ln").length) + " " + document.getElementById("term-status").dataset.state + " " + document.getElementById("step-count").textContent`)
		label := pressBar(t, ctx)
		if label == "" {
			time.Sleep(50 * time.Millisecond) // waiting for the server's tick
			continue
		}
		pressed = append(pressed, label)
		// The server answers (a line, a state change or a tick).
		wait := time.Now().Add(5 * time.Second)
		for time.Now().Before(wait) {
			time.Sleep(40 * time.Millisecond)
			now := evalString(t, ctx, `String(document.querySelectorAll("#term-out .ln, #smtp-out .ln").length) + " " + document.getElementById("term-status").dataset.state + " " + document.getElementById("step-count").textContent`)
			if now != before {
				time.Sleep(120 * time.Millisecond) // the rest of a multi-line reply
				break
			}
		}
	}
}

// A student who presses only the step bar's buttons finishes every
// built-in lesson that one tab can do (lesson 4's second tab has its own
// test), the mail lesson across both terminals included, each in the
// order the page offers them.
func TestBrowserStepBarAloneFinishesTheLessons(t *testing.T) {
	ctx := browserContext(t)
	var smtpAddr string
	e := newEnv(t, withMail(t, &smtpAddr))
	openPage(t, ctx, e.http.URL+"/")
	waitTerm(t, ctx, "+OK POP3 server ready", 1)
	for _, l := range []struct {
		id    string
		steps int
	}{{"01-lab-sheet", 4}, {"02-dele-rset-update", 7}, {"03-peeking", 3}, {"05-apop", 3}, {"06-capa-stls", 4}, {"07-mail-in", 5}} {
		// The bar's "Start it" when the lesson it offers is this one
		// (after lesson 3 it offers lesson 4, which has its own test);
		// else open it, as a click on its title does.
		if st := readBar(t, ctx); st.Count == "· done" && strings.HasSuffix(st.Title, lessonTitle(t, ctx, l.id)) {
			if pressBar(t, ctx) != "Start it" {
				t.Fatalf("the done bar offers %+v", st)
			}
			pop3test.WaitFor(t, func() bool { return strings.HasPrefix(readBar(t, ctx).Count, "· step 1 ") })
		} else {
			openLesson(t, ctx, l.id)
		}
		doLessonWithTheBar(t, ctx, l.id, l.steps)
		if st := readBar(t, ctx); st.Count != "· done" || !strings.HasPrefix(st.Title, "Lesson done") {
			t.Errorf("after %s the bar says %+v", l.id, st)
		}
	}
	screenshot(t, ctx, filepath.Join(screenshotDir(t), "stepbar-done.png"))
	// The transcript has both terminals' dialogue, labelled, in order.
	tr := evalString(t, ctx, `window.pop3transcript()`)
	pass, ehlo := strings.Index(tr, " POP3 C: PASS ****"), strings.Index(tr, " SMTP C: EHLO browser")
	if pass < 0 || ehlo < 0 || !strings.Contains(tr, " SMTP S: 250 ") || pass > ehlo {
		t.Errorf("the transcript lacks a terminal's lines or their order (PASS at %d, EHLO at %d):\n%s", pass, ehlo, tr[max(0, len(tr)-1500):])
	}
}

// The lock lesson across two tabs, with the step bar's buttons only: the
// bar opens the second tab, each tab offers only what is for it (the
// first tab's QUIT is not offered in the second, whose session the last
// step needs), and the lesson finishes.
func TestBrowserStepBarLockLessonInTwoTabs(t *testing.T) {
	ctx := browserContext(t)
	e := newEnv(t)
	openPage(t, ctx, e.http.URL+"/")
	waitTerm(t, ctx, "+OK POP3 server ready", 1)
	openLesson(t, ctx, "04-lock")
	// Step 1 in the first tab.
	for readBar(t, ctx).Count == "· step 1 of 4" {
		if pressBar(t, ctx) == "" {
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(150 * time.Millisecond)
	}
	// Step 2: the first tab offers only "Open a second tab".
	pop3test.WaitFor(t, func() bool { st := readBar(t, ctx); return len(st.Buttons) == 1 && st.Buttons[0].Action == "tab" })
	// chromedp opens the second tab itself (window.open in a headless
	// test has no handle to drive), as the button would.
	tab2, cancel := chromedp.NewContext(ctx)
	defer cancel()
	openPage(t, tab2, e.http.URL+"/")
	waitTerm(t, tab2, "+OK POP3 server ready", 1)
	pop3test.WaitFor(t, func() bool {
		st := readBar(t, tab2)
		return st.Count == "· step 2 of 4" && len(st.Buttons) == 2 && st.Buttons[0].Label == "USER guest"
	})
	for readBar(t, tab2).Count == "· step 2 of 4" {
		pressBar(t, tab2)
		time.Sleep(200 * time.Millisecond)
	}
	waitTerm(t, tab2, "-ERR [IN-USE]", 1)
	// Step 3 is the first tab's: the second offers nothing and says so.
	pop3test.WaitFor(t, func() bool {
		st := readBar(t, tab2)
		return st.Count == "· step 3 of 4" && len(st.Buttons) == 0 && strings.Contains(st.Title, "in your other tab")
	})
	pop3test.WaitFor(t, func() bool { st := readBar(t, ctx); return len(st.Buttons) == 1 && st.Buttons[0].Label == "QUIT" })
	pressBar(t, ctx)
	// Step 4 is the second tab's.
	pop3test.WaitFor(t, func() bool { return readBar(t, tab2).Count == "· step 4 of 4" })
	for readBar(t, tab2).Count == "· step 4 of 4" {
		pressBar(t, tab2)
		time.Sleep(200 * time.Millisecond)
	}
	pop3test.WaitFor(t, func() bool { return readBar(t, tab2).Count == "· done" })
	screenshot(t, tab2, filepath.Join(screenshotDir(t), "stepbar-lock-tab2.png"))
}

// Pressing QUIT early in the mail lesson closes the session a later step
// needs: the bar says so and offers to start again from the step that
// opened it, and the lesson still finishes with the bar alone.
func TestBrowserStepBarRecoversFromAnEarlyQuit(t *testing.T) {
	ctx := browserContext(t)
	var smtpAddr string
	e := newEnv(t, withMail(t, &smtpAddr))
	openPage(t, ctx, e.http.URL+"/")
	waitTerm(t, ctx, "+OK POP3 server ready", 1)
	openLesson(t, ctx, "07-mail-in")
	for readBar(t, ctx).Count == "· step 1 of 5" {
		if pressBar(t, ctx) == "" {
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(150 * time.Millisecond)
	}
	typeLine(t, ctx, "QUIT") // the trap: step 3 needs step 1's session
	pop3test.WaitFor(t, func() bool {
		st := readBar(t, ctx)
		return strings.Contains(st.Title, "has closed") && len(st.Buttons) == 1 && st.Buttons[0].Label == "Start again from step 1"
	})
	screenshot(t, ctx, filepath.Join(screenshotDir(t), "stepbar-blocked.png"))
	doLessonWithTheBar(t, ctx, "07-mail-in", 5)
}

func openLesson(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	if err := chromedp.Run(ctx, chromedp.Evaluate(fmt.Sprintf(`(() => { for (const d of document.querySelectorAll(".lesson")) d.open = d.dataset.lesson === %q })()`, id), nil)); err != nil {
		t.Fatal(err)
	}
	pop3test.WaitFor(t, func() bool { return strings.HasPrefix(readBar(t, ctx).Count, "· step 1 ") })
}

// The explanations' jargon has plain words beside it: on hover, on tap or
// keyboard focus, and for a screen reader.
func TestBrowserGlossesTheJargon(t *testing.T) {
	ctx := browserContext(t)
	e := newEnv(t)
	openPage(t, ctx, e.http.URL+"/")
	waitTerm(t, ctx, "+OK POP3 server ready", 1)
	typeLine(t, ctx, "USER guest")
	typeLine(t, ctx, "PASS visitor")
	typeLine(t, ctx, "STAT")
	waitTerm(t, ctx, "+OK 7 54859", 1)
	pop3test.WaitFor(t, func() bool {
		return evalString(t, ctx, `String([...document.querySelectorAll("#term-out .explain .gloss")].some(g => g.textContent === "octets"))`) == "true"
	})
	got := evalString(t, ctx, `(() => { const g = [...document.querySelectorAll("#term-out .explain .gloss")].find(g => g.textContent === "octets");
		g.focus(); return [g.title, g.nextElementSibling.textContent, getComputedStyle(g, "::after").content].join(" | ") })()`)
	parts := strings.Split(got, " | ")
	if len(parts) != 3 || !strings.HasPrefix(parts[0], "bytes: units of 8 bits") || !strings.HasPrefix(parts[1], " (bytes: units of 8 bits") || !strings.Contains(parts[2], "bytes: units of 8 bits") {
		t.Errorf("the gloss of octets: %q", got)
	}
	if rfc := evalString(t, ctx, `[...document.querySelectorAll("#term-out .explain .gloss")].map(g => g.title).find(t => t.includes("Internet standard")) || ""`); !strings.Contains(rfc, "RFC 1939, section") {
		t.Errorf("an RFC citation's gloss: %q", rfc)
	}
}

func lessonTitle(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	return evalString(t, ctx, fmt.Sprintf(`document.querySelector('.lesson[data-lesson=%q] .lesson-title').textContent`, id))
}
