package web_test

import (
	"context"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/pop3playground/pop3playground/pop3/pop3test"
)

// The page does not move under the reader once painted: on a phone, with
// the CPU and network slowed as Lighthouse's mobile run does, the layout
// shifts sum to under 0.1 (it was 0.215: the pseudonym's line wrapping
// after the first paint). The page has a meta description.
func TestPageLayoutIsStable(t *testing.T) {
	ctx := browserContext(t)
	e := newEnv(t)
	err := chromedp.Run(ctx,
		emulation.SetDeviceMetricsOverride(390, 844, 2, true),
		emulation.SetCPUThrottlingRate(6),
		network.Enable(),
		network.EmulateNetworkConditions(false, 150, 1.6*1024*1024/8, 750*1024/8),
		chromedp.Navigate("about:blank"),
		chromedp.Evaluate(`0`, nil),
	)
	if err != nil {
		t.Fatal(err)
	}
	var script = `window.__cls = 0; window.__shifts = []; new PerformanceObserver(l => { for (const e of l.getEntries()) { if (!e.hadRecentInput) { window.__cls += e.value; window.__shifts.push(e.value.toFixed(3) + " " + e.sources.map(s => (s.node && (s.node.id || s.node.className || s.node.nodeName)) ).join("|")) } } }).observe({type: "layout-shift", buffered: true});`
	if err := chromedp.Run(ctx, chromedp.ActionFunc(func(c context.Context) error {
		_, err := page.AddScriptToEvaluateOnNewDocument(script).Do(c)
		return err
	}), chromedp.Navigate(e.http.URL+"/")); err != nil {
		t.Fatal(err)
	}
	// Measure once the page has done what it does on load: the session
	// made, the terminal connected and greeted, the event stream's first
	// entry shown in the inspector; then one frame for the layout.
	waitTerm(t, ctx, "+OK POP3 server ready", 1)
	pop3test.WaitFor(t, func() bool {
		return evalString(t, ctx, `document.querySelector("#who-name").textContent !== "…" && !document.querySelector("#insp-conn").textContent.startsWith("No session yet") ? "yes" : "no"`) == "yes"
	})
	chromedp.Run(ctx, chromedp.Evaluate(`new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))`, nil, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	var cls float64
	var shifts []string
	chromedp.Run(ctx, chromedp.Evaluate(`window.__cls`, &cls), chromedp.Evaluate(`window.__shifts`, &shifts))
	t.Logf("CLS %.3f: %v", cls, shifts)
	if cls >= 0.1 {
		t.Errorf("cumulative layout shift %.3f, want < 0.1: %v", cls, shifts)
	}
	if d := evalString(t, ctx, `document.querySelector('meta[name=description]')?.content || ""`); len(d) < 50 {
		t.Errorf("meta description %q", d)
	}
}
