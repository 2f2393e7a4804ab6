package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/pop3playground/pop3playground/pop3/pop3test"
	"github.com/prometheus/client_golang/prometheus"
)

// axeSource is axe-core's axe.min.js: $POP3PG_AXE, or what .ci/run
// installs with npm. Without it the test skips with a message, unless
// POP3PG_REQUIRE_AXE is set (CI).
func axeSource(t *testing.T) string {
	t.Helper()
	paths := []string{os.Getenv("POP3PG_AXE"), filepath.Join("..", ".ci", "node_modules", "axe-core", "axe.min.js")}
	for _, p := range paths {
		if p == "" {
			continue
		}
		if b, err := os.ReadFile(p); err == nil {
			return string(b)
		}
	}
	if os.Getenv("POP3PG_REQUIRE_AXE") != "" {
		t.Fatal("axe-core not found: npm install --prefix .ci axe-core, or set POP3PG_AXE")
	}
	t.Skip("axe-core not found (npm install --prefix .ci axe-core, or set POP3PG_AXE): accessibility not checked")
	return ""
}

type axeViolation struct {
	ID    string `json:"id"`
	Help  string `json:"help"`
	Nodes []struct {
		Target         []any  `json:"target"`
		FailureSummary string `json:"failureSummary"`
	} `json:"nodes"`
}

func runAxe(t *testing.T, ctx context.Context, src, state string) {
	t.Helper()
	var out string
	err := chromedp.Run(ctx,
		chromedp.Evaluate(src, nil),
		chromedp.Evaluate(`axe.run(document, {resultTypes: ["violations"]}).then(r => JSON.stringify(r.violations))`, &out,
			func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }),
	)
	if err != nil {
		t.Fatalf("%s: axe: %v", state, err)
	}
	var vs []axeViolation
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		t.Fatalf("%s: axe said %q: %v", state, out, err)
	}
	for _, v := range vs {
		var where []string
		shown := v.Nodes[:min(len(v.Nodes), 4)]
		if os.Getenv("POP3PG_AXE_ALL") != "" {
			shown = v.Nodes
		}
		for _, n := range shown {
			where = append(where, fmt.Sprint(n.Target)+": "+strings.ReplaceAll(n.FailureSummary, "\n", " "))
		}
		t.Errorf("%s: %s (%s), %d elements: %s", state, v.ID, v.Help, len(v.Nodes), strings.Join(where, " | "))
	}
}

// The page and the organiser's page have no axe-core violations: fresh,
// logged in with every panel open, in the light and the dark scheme.
func TestAccessibility(t *testing.T) {
	src := axeSource(t)
	for _, scheme := range []string{"light", "dark"} {
		t.Run(scheme, func(t *testing.T) { accessibility(t, src, scheme) })
	}
}

func accessibility(t *testing.T, src, scheme string) {
	ctx := browserContext(t)
	var smtpAddr string // the SMTP terminal and compose panel are checked too
	e := newEnvWorld(t, freshWorld(t), withAdmin(prometheus.NewRegistry()), withMail(t, &smtpAddr))
	{
		err := chromedp.Run(ctx, emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}))
		if err != nil {
			t.Fatal(err)
		}
		openPage(t, ctx, e.http.URL+"/")
		waitTerm(t, ctx, "+OK POP3 server ready", 1)
		runAxe(t, ctx, src, scheme+" fresh page")

		typeLine(t, ctx, "USER guest")
		typeLine(t, ctx, "PASS visitor")
		typeLine(t, ctx, "LIST")
		typeLine(t, ctx, "DELE 2")
		typeLine(t, ctx, "BOGUS")
		waitTerm(t, ctx, "unknown command", 1)
		typeLine(t, ctx, "RETR 3")
		waitTerm(t, ctx, "end of the reply:", 1)
		if err := chromedp.Run(ctx, chromedp.Evaluate(`document.getElementById("view-message").click()`, nil)); err != nil {
			t.Fatal(err)
		}
		pop3test.WaitFor(t, func() bool {
			return evalString(t, ctx, `String(document.getElementById("mailview").hidden)`) == "false"
		})
		if err := chromedp.Run(ctx, chromedp.Evaluate(`for (const d of document.querySelectorAll("details")) d.open = true`, nil)); err != nil {
			t.Fatal(err)
		}
		pop3test.WaitFor(t, func() bool {
			return evalString(t, ctx, `String(document.querySelectorAll("#insp-maildrop tbody tr").length)`) == "7" &&
				evalString(t, ctx, `String(document.querySelectorAll("#lab-card tbody tr").length)`) == "13"
		})
		runAxe(t, ctx, src, scheme+" logged in, every panel open")

		if err := chromedp.Run(ctx, chromedp.Navigate(e.http.URL+"/admin"), chromedp.WaitVisible("#token", chromedp.ByID)); err != nil {
			t.Fatal(err)
		}
		runAxe(t, ctx, src, scheme+" admin sign-in")
		if err := chromedp.Run(ctx, chromedp.SendKeys("#token", adminToken+"\r", chromedp.ByID), chromedp.WaitVisible(`#people tbody tr`, chromedp.ByQuery)); err != nil {
			t.Fatal(err)
		}
		runAxe(t, ctx, src, scheme+" admin")

		// Watching a terminal: its scrolling log must be reachable by
		// keyboard (scrollable-region-focusable). A raised hand and a
		// filter in use are checked too.
		for _, v := range e.visitors.All() {
			v.RaiseHand("the lock step")
		}
		if err := chromedp.Run(ctx, chromedp.Evaluate(watchFirst, nil)); err != nil {
			t.Fatal(err)
		}
		pop3test.WaitFor(t, func() bool {
			return evalString(t, ctx, `String(document.querySelector(".watch-term").scrollHeight > document.querySelector(".watch-term").clientHeight && document.querySelector("#people tr.asked") !== null)`) == "true"
		})
		runAxe(t, ctx, src, scheme+" admin while watching")
	}
}
