package web_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pop3playground/pop3playground/pop3/limit"
	"github.com/pop3playground/pop3playground/pop3/pop3test"
	"github.com/pop3playground/pop3playground/sessions"
)

// TestBrowserOrganiserWatchesAStudent signs in at /admin in Chromium,
// watches a student's terminal live, and checks that the student's page
// says so.
func TestBrowserOrganiserWatchesAStudent(t *testing.T) {
	ctx := browserContext(t)
	e := newEnvWorld(t, freshWorld(t), withAdmin(prometheus.NewRegistry()))
	shots := screenshotDir(t)

	// The student, in Chromium's first tab.
	openPage(t, ctx, e.http.URL+"/")
	typeLine(t, ctx, "USER guest")
	typeLine(t, ctx, "PASS hunter2xyz")
	waitTerm(t, ctx, "-ERR [AUTH]", 1)

	// The organiser, in a second tab: sign in, see the student, watch.
	org, cancel := chromedp.NewContext(ctx)
	defer cancel()
	err := chromedp.Run(org,
		emulation.SetDeviceMetricsOverride(1366, 900, 1, false),
		chromedp.Navigate(e.http.URL+"/admin"),
		chromedp.SendKeys("#token", adminToken+"\r", chromedp.ByID),
		chromedp.WaitVisible(`#people tbody tr`, chromedp.ByQuery),
		chromedp.Evaluate(watchFirst, nil),
		chromedp.WaitVisible(`#watch`, chromedp.ByID),
	)
	if err != nil {
		t.Fatal(err)
	}
	pop3test.WaitFor(t, func() bool {
		s := evalString(t, org, `document.getElementById("watch-out").textContent`)
		return strings.Contains(s, "PASS ****") && strings.Contains(s, "-ERR [AUTH]")
	})
	if s := evalString(t, org, `document.getElementById("watch-out").textContent`); strings.Contains(s, "hunter2xyz") {
		t.Errorf("the organiser sees the password: %q", s)
	}
	pop3test.WaitFor(t, func() bool { // the recent errors list the failed login
		return strings.Contains(evalString(t, org, `document.getElementById("errors").textContent`), "PASS ****")
	})
	screenshot(t, org, filepath.Join(shots, "admin.png"))

	// The student's page says it is watched (the first tab is in the
	// background, so read the DOM rather than what is drawn).
	pop3test.WaitFor(t, func() bool {
		return evalString(t, ctx, `String(document.getElementById("watched").hidden)`) == "false"
	})
	if err := chromedp.Run(org, chromedp.Click(`#watch-stop`, chromedp.ByID)); err != nil {
		t.Fatal(err)
	}
	pop3test.WaitFor(t, func() bool {
		return evalString(t, ctx, `String(document.getElementById("watched").hidden)`) == "true"
	})
}

// The student's page shows the handle the organiser's page lists, and a
// name the student gives appears beside it; the organiser's page keeps
// focus across refreshes, works at 390 px, and logs no error, signed in
// or not.
func TestBrowserOrganiserFindsTheStudentByHandle(t *testing.T) {
	ctx := browserContext(t)
	e := newEnvWorld(t, freshWorld(t), withAdmin(prometheus.NewRegistry()))
	shots := screenshotDir(t)
	openPage(t, ctx, e.http.URL+"/")
	pop3test.WaitFor(t, func() bool { return evalString(t, ctx, `document.getElementById("who-handle").textContent`) != "…" })
	handle := evalString(t, ctx, `document.getElementById("who-handle").textContent`)
	pseudonym := evalString(t, ctx, `document.getElementById("who-name").textContent`)
	if v := e.visitors.ByHandle(handle); v == nil || v.Name() != pseudonym {
		t.Fatalf("the page shows %q (%s), which names no visitor", pseudonym, handle)
	}
	err := chromedp.Run(ctx,
		chromedp.SendKeys("#display-name", "Ada <b>L</b>\r", chromedp.ByID),
	)
	if err != nil {
		t.Fatal(err)
	}
	pop3test.WaitFor(t, func() bool {
		return strings.Contains(evalString(t, ctx, `document.querySelector("[data-testid=visitor-handle]").textContent`), "“Ada <b>L</b>”")
	})

	org, cancel := chromedp.NewContext(ctx)
	defer cancel()
	var errs []string
	listenConsole(org, &errs)
	err = chromedp.Run(org,
		emulation.SetDeviceMetricsOverride(390, 844, 1, true),
		chromedp.Navigate(e.http.URL+"/admin"),
		chromedp.WaitVisible("#token", chromedp.ByID),
	)
	if err != nil {
		t.Fatal(err)
	}
	err = chromedp.Run(org,
		chromedp.SendKeys("#token", adminToken+"\r", chromedp.ByID),
		chromedp.WaitVisible(`#people tbody tr`, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	row := evalString(t, org, `document.querySelector("#people tbody tr").textContent`)
	if !strings.Contains(row, handle) || !strings.Contains(row, pseudonym) || !strings.Contains(row, "Ada <b>L</b>") {
		t.Errorf("the admin row %q lacks the handle, pseudonym or name", row)
	}
	if evalString(t, org, `String(document.querySelectorAll("#people b").length)`) != "0" {
		t.Error("the student's name was rendered as HTML")
	}
	// Focus stays on the Watch button across the 3-second refresh.
	if err := chromedp.Run(org, chromedp.Evaluate(`document.querySelector("#people [data-watch]").focus()`, nil)); err != nil {
		t.Fatal(err)
	}
	// One refresh redraws the rows: wait for the next one, not a time.
	before := evalString(t, org, `document.querySelector("#people").dataset.refreshes || "0"`)
	pop3test.WaitFor(t, func() bool {
		return evalString(t, org, `document.querySelector("#people").dataset.refreshes || "0"`) != before
	})
	pop3test.WaitFor(t, func() bool {
		return evalString(t, org, `document.querySelector("#people [data-watch]") !== null && document.activeElement === document.querySelector("#people [data-watch]") && document.activeElement.isConnected ? "yes" : "no"`) == "yes" &&
			evalString(t, org, `String(document.querySelector("#people tbody tr") !== null)`) == "true"
	})
	if overflow := evalString(t, org, `String(document.documentElement.scrollWidth > window.innerWidth)`); overflow != "false" {
		t.Error("the admin page scrolls sideways at 390 px")
	}
	screenshot(t, org, filepath.Join(shots, "admin-phone.png"))
	if len(errs) > 0 {
		t.Errorf("console errors on /admin: %q", errs)
	}
}

// listenConsole collects the page's console errors and uncaught
// exceptions into errs.
func listenConsole(ctx context.Context, errs *[]string) {
	var mu sync.Mutex
	chromedp.ListenTarget(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			*errs = append(*errs, ev.ExceptionDetails.Text+" "+fmt.Sprint(ev.ExceptionDetails.Exception.Description))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.APITypeError {
				*errs = append(*errs, "console.error")
			}
		}
	})
}

// A student raises a hand from the page; another is stuck (five -ERR in a
// row through their terminal): the organiser's page lists the raised hand
// first, then the stuck one, marked, above everyone else; search finds a
// handle; Helped lowers the hand and the student's page says so.
func TestBrowserRaisedHandAndStuckComeFirst(t *testing.T) {
	ctx := browserContext(t)
	e := newEnvWorld(t, freshWorld(t), withAdmin(prometheus.NewRegistry()))
	e.visitors.Rate = limit.RateLimiter{}
	shots := screenshotDir(t)
	// Bystanders, and one who is stuck.
	for range 4 {
		e.visit(t).session()
	}
	stuck := e.visit(t)
	stuck.session()
	tm := stuck.terminal()
	tm.login()
	for range sessions.StuckErrors {
		tm.cmd("RETR 99", "-ERR")
	}
	stuckHandle := stuck.session()["handle"].(string)

	openPage(t, ctx, e.http.URL+"/")
	pop3test.WaitFor(t, func() bool { return evalString(t, ctx, `document.getElementById("who-handle").textContent`) != "…" })
	handle := evalString(t, ctx, `document.getElementById("who-handle").textContent`)
	err := chromedp.Run(ctx,
		chromedp.SendKeys("#help-note", "step 3 never ticks", chromedp.ByID),
		chromedp.Click(`[data-testid=ask-help]`, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	pop3test.WaitFor(t, func() bool {
		return strings.HasPrefix(evalString(t, ctx, `document.getElementById("help-status").textContent`), "Your hand is up")
	})

	org, cancel := chromedp.NewContext(ctx)
	defer cancel()
	err = chromedp.Run(org,
		emulation.SetDeviceMetricsOverride(1366, 900, 1, false),
		chromedp.Navigate(e.http.URL+"/admin"),
		chromedp.WaitVisible("#token", chromedp.ByID),
		chromedp.SendKeys("#token", adminToken+"\r", chromedp.ByID),
		chromedp.WaitVisible(`#people tbody tr`, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	rows := func() string {
		return evalString(t, org, `[...document.querySelectorAll("#people tbody tr")].map(tr => tr.dataset.handle + ":" + tr.className).join(" ")`)
	}
	pop3test.WaitFor(t, func() bool { return strings.HasPrefix(rows(), handle+":asked "+stuckHandle+":stuck ") })
	first := evalString(t, org, `document.querySelector("#people tbody tr").textContent`)
	if !strings.Contains(first, "Asked for help") || !strings.Contains(first, "step 3 never ticks") {
		t.Errorf("the first row %q does not show the raised hand", first)
	}
	if second := evalString(t, org, `document.querySelectorAll("#people tbody tr")[1].textContent`); !strings.Contains(second, "Stuck: 5 -ERR replies in a row") {
		t.Errorf("the second row %q does not say why it is stuck", second)
	}
	if n := evalString(t, org, `document.getElementById("n-help").textContent`); n != "2" {
		t.Errorf("need help: %s, want 2", n)
	}
	screenshot(t, org, filepath.Join(shots, "admin-needs-help.png"))

	// Search by the stuck student's handle: one row.
	if err := chromedp.Run(org, chromedp.SendKeys("#people-search", stuckHandle, chromedp.ByID)); err != nil {
		t.Fatal(err)
	}
	pop3test.WaitFor(t, func() bool { return rows() == stuckHandle+":stuck" })
	if err := chromedp.Run(org, chromedp.Evaluate(`(() => { const q = document.getElementById("people-search"); q.value = ""; q.dispatchEvent(new Event("input")) })()`, nil)); err != nil {
		t.Fatal(err)
	}

	// Helped: the hand goes down, and the student's page says so.
	if err := chromedp.Run(org, chromedp.Evaluate(`document.querySelector('#people tbody tr.asked form[action$="/helped"] button').click()`, nil)); err != nil {
		t.Fatal(err)
	}
	pop3test.WaitFor(t, func() bool {
		return evalString(t, ctx, `document.getElementById("help-status").textContent`) == "The organiser marked your question as helped."
	})
	pop3test.WaitFor(t, func() bool { return !strings.Contains(rows(), ":asked") })
}

// watchFirst presses the first Watch button once the page's script has
// drawn the rows (data-refreshes) and in one task, since the rows are
// redrawn every 3 s: a click on a node found a moment earlier may land
// on one already replaced.
const watchFirst = `new Promise((resolve) => {
  const press = () => {
    const b = document.querySelector("#people [data-watch]");
    if (document.querySelector("#people").dataset.refreshes && b) { b.click(); resolve(true); } else setTimeout(press, 20);
  };
  press();
})`
