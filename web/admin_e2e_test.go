package web_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
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
		chromedp.Click(`#people [data-watch]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#watch`, chromedp.ByID),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		s := evalString(t, org, `document.getElementById("watch-out").textContent`)
		return strings.Contains(s, "PASS ****") && strings.Contains(s, "-ERR [AUTH]")
	})
	if s := evalString(t, org, `document.getElementById("watch-out").textContent`); strings.Contains(s, "hunter2xyz") {
		t.Errorf("the organiser sees the password: %q", s)
	}
	waitFor(t, func() bool { // the recent errors list the failed login
		return strings.Contains(evalString(t, org, `document.getElementById("errors").textContent`), "PASS ****")
	})
	screenshot(t, org, filepath.Join(shots, "admin.png"))

	// The student's page says it is watched (the first tab is in the
	// background, so read the DOM rather than what is drawn).
	waitFor(t, func() bool {
		return evalString(t, ctx, `String(document.getElementById("watched").hidden)`) == "false"
	})
	if err := chromedp.Run(org, chromedp.Click(`#watch-stop`, chromedp.ByID)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		return evalString(t, ctx, `String(document.getElementById("watched").hidden)`) == "true"
	})
}
