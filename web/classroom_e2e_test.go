package web_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
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
	}{{"desktop", 1366, 900, false}, {"tablet", 768, 1024, true}, {"phone", 390, 844, true}} {
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
		waitFor(t, func() bool {
			return strings.Contains(evalString(t, ctx, `document.querySelector("[data-testid=current-step]").textContent`), "List the maildrop")
		})
		if cmd := evalString(t, ctx, `[...document.querySelectorAll("#step-cmds [data-cmd]")].map(b => b.dataset.cmd).join(",")`); cmd != "LIST" {
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
		screenshot(t, ctx, filepath.Join(shots, "step-"+size.name+".png"))
	}
	// The step's button types its command; the step moves on. (Each
	// size loaded the page anew: log in again.)
	typeLine(t, ctx, "USER guest")
	typeLine(t, ctx, "PASS visitor")
	waitTerm(t, ctx, "guest's maildrop has", 1)
	if err := chromedp.Run(ctx, chromedp.Click(`#step-cmds [data-cmd="LIST"]`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	typeLine(t, ctx, "")
	waitLesson(t, ctx, "01-lab-sheet", 2)
	waitFor(t, func() bool {
		return strings.Contains(evalString(t, ctx, `document.querySelector("[data-testid=current-step]").textContent`), "Read message 3")
	})
}

func jsInView(sel string) string {
	return fmt.Sprintf(`(() => { const r = document.querySelector(%q).getBoundingClientRect();
		return %q + "=" + (r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight && r.left >= 0 && r.right <= window.innerWidth) + "@" + Math.round(r.top) + "-" + Math.round(r.bottom); })()`, sel, sel)
}
