package web_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/pop3playground/pop3playground/pop3/pop3test"
)

// chromium returns the browser to drive, or skips the test where there is
// none (CI installs it and sets POP3PG_REQUIRE_BROWSER=1, so it runs there).
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("POP3PG_REQUIRE_BROWSER") != "" {
		t.Fatal("chromium not found, and POP3PG_REQUIRE_BROWSER is set")
	}
	t.Skip("chromium not found: install it (apt-get install -y chromium) to run the browser test")
	return ""
}

func browserContext(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelC := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelC(); cancelB(); cancelA() })
	return ctx
}

// screenshotDir is where screenshots go: $POP3PG_SCREENSHOTS, or a
// temporary directory.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("POP3PG_SCREENSHOTS"); d != "" {
		os.MkdirAll(d, 0o755)
		return d
	}
	return t.TempDir()
}

// termText is what the terminal shows.
func termText(ctx context.Context) (string, error) {
	var s string
	err := chromedp.Run(ctx, chromedp.Text("#term-out", &s, chromedp.ByID))
	return s, err
}

// waitTerm waits until the terminal's text contains want, n times in all.
func waitTerm(t *testing.T, ctx context.Context, want string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s, err := termText(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(s, want) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the terminal never showed %q (%d times); it shows:\n%s", want, n, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// openPage loads the playground in a desktop-sized window and waits for
// its terminal to connect.
func openPage(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	err := chromedp.Run(ctx,
		emulation.SetDeviceMetricsOverride(1366, 900, 1, false),
		chromedp.Navigate(url),
		chromedp.WaitVisible(`#term-status[data-state="open"]`, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
}

func typeLine(t *testing.T, ctx context.Context, line string) {
	t.Helper()
	if err := chromedp.Run(ctx, chromedp.SendKeys("#term-input", line+"\r", chromedp.ByID)); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserDoesTheLabSheet loads the page in headless Chromium and does
// the lab sheet by typing into the terminal, as a student would.
func TestBrowserDoesTheLabSheet(t *testing.T) {
	ctx := browserContext(t)
	e := newEnv(t)
	shots := screenshotDir(t)

	openPage(t, ctx, e.http.URL+"/")
	waitTerm(t, ctx, "Escape character is '^]'.", 1)
	waitTerm(t, ctx, "+OK POP3 server ready", 1)

	var personal string
	if err := chromedp.Run(ctx, chromedp.Text(`[data-testid="personal-login"]`, &personal, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	v := e.visitors.All()[0]
	if !strings.Contains(personal, "guest."+v.ID) || !strings.Contains(personal, "pop.example.org") {
		t.Errorf("personal login panel shows:\n%s", personal)
	}

	typeLine(t, ctx, "user guest")
	waitTerm(t, ctx, "+OK", 2)
	typeLine(t, ctx, "pass visitor")
	waitTerm(t, ctx, "maildrop has 7 messages", 1)
	typeLine(t, ctx, "STAT")
	waitTerm(t, ctx, "+OK 7 54859", 1)
	// The inspector lists the maildrop the login opened, from its event.
	var row string
	if err := chromedp.Run(ctx, chromedp.Text(`#insp-maildrop tbody tr`, &row, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(row); len(f) < 4 || f[0] != "1" || f[1] != "498" || !strings.Contains(row, "Welcome") {
		t.Errorf("the inspector's first message reads %q", row)
	}
	typeLine(t, ctx, "RETR 1")
	waitTerm(t, ctx, "Subject: Welcome to the POP3 Playground", 1)
	typeLine(t, ctx, "RETR 6") // 48 KB: must render without freezing
	waitTerm(t, ctx, "Mail server log for Monday", 1)
	typeLine(t, ctx, "NOOP")
	waitTerm(t, ctx, "+OK", 7)

	// Client lines are marked apart, replies coloured, and the server's
	// text never became markup.
	var cli, oks, errs, injected int
	err := chromedp.Run(ctx,
		chromedp.Evaluate(`document.querySelectorAll("#term-out .ln.cli").length`, &cli),
		chromedp.Evaluate(`document.querySelectorAll("#term-out .reply-ok").length`, &oks),
		chromedp.Evaluate(`document.querySelectorAll("#term-out .reply-err").length`, &errs),
		chromedp.Evaluate(`document.querySelectorAll("#term-out *:not(div):not(span)").length`, &injected),
	)
	if err != nil {
		t.Fatal(err)
	}
	if cli != 6 || oks < 7 || errs != 0 || injected != 0 {
		t.Errorf("client lines %d (want 6), +OK %d, -ERR %d, other elements %d", cli, oks, errs, injected)
	}
	typeLine(t, ctx, "RETR 99")
	waitTerm(t, ctx, "-ERR no message 99", 1)

	// A pasted block goes out as it is: two commands at once (PIPELINING);
	// its unfinished last line stays on the input line.
	var rest string
	err = chromedp.Run(ctx,
		chromedp.Evaluate(`(() => {
			const dt = new DataTransfer();
			dt.setData("text/plain", "UIDL 3\r\nLIST 3\r\nTOP 3");
			document.getElementById("term-input").dispatchEvent(new ClipboardEvent("paste", {clipboardData: dt, bubbles: true, cancelable: true}));
		})()`, nil),
		chromedp.Value("#term-input", &rest, chromedp.ByID),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitTerm(t, ctx, "+OK 3 1995", 1)
	if rest != "TOP 3" {
		t.Errorf("after the paste the input holds %q, want \"TOP 3\"", rest)
	}
	// Line editing: Ctrl+W erases a word, Ctrl+U the line; ↑ recalls.
	err = chromedp.Run(ctx,
		chromedp.SendKeys("#term-input", " 0", chromedp.ByID),
		chromedp.KeyEvent("w", chromedp.KeyModifiers(input.ModifierCtrl)),
		chromedp.Value("#term-input", &rest, chromedp.ByID),
	)
	if err != nil || rest != "TOP 3 " {
		t.Errorf("Ctrl+W left %q (%v), want \"TOP 3 \"", rest, err)
	}
	chromedp.Run(ctx,
		chromedp.KeyEvent("u", chromedp.KeyModifiers(input.ModifierCtrl)),
		chromedp.KeyEvent(kb.ArrowUp),
		chromedp.Value("#term-input", &rest, chromedp.ByID),
	)
	if rest != "LIST 3" {
		t.Errorf("Ctrl+U then ↑ gave %q, want the last command, \"LIST 3\"", rest)
	}
	chromedp.Run(ctx, chromedp.KeyEvent("u", chromedp.KeyModifiers(input.ModifierCtrl)))

	// Server bytes are text: control bytes shown as ^X, markup as itself.
	var shown string
	err = chromedp.Run(ctx, chromedp.Evaluate(`(() => {
		window.pop3term.receive("bell\x07 esc\x1b[31m <b>bold</b>\r\n");
		window.pop3term.flush();
		return document.querySelector("#term-out").lastElementChild.textContent;
	})()`, &shown))
	if err != nil || shown != "bell^G esc^[[31m <b>bold</b>" {
		t.Errorf("server control bytes rendered as %q (%v)", shown, err)
	}

	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.querySelector(".term").scrollTop = 0; window.scrollTo(0,0)`, nil)); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, filepath.Join(shots, "desktop.png"))

	typeLine(t, ctx, "QUIT")
	waitTerm(t, ctx, "Connection closed by foreign host.", 1)
	pop3test.WaitFor(t, func() bool { return e.pop3.ActiveConns() == 0 && e.web.OpenBridges() == 0 })

	// Enter reconnects.
	typeLine(t, ctx, "")
	waitTerm(t, ctx, "Escape character is '^]'.", 2)

	// The phone layout.
	err = chromedp.Run(ctx,
		emulation.SetDeviceMetricsOverride(390, 844, 3, true),
		chromedp.Reload(),
		chromedp.WaitVisible(`#term-status[data-state="open"]`, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	typeLine(t, ctx, "USER guest")
	typeLine(t, ctx, "PASS visitor")
	typeLine(t, ctx, "LIST")
	waitTerm(t, ctx, "7 212", 1)
	var overflow bool
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.documentElement.scrollWidth > window.innerWidth`, &overflow)); err != nil {
		t.Fatal(err)
	}
	if overflow {
		t.Error("the phone layout scrolls sideways")
	}
	screenshot(t, ctx, filepath.Join(shots, "phone.png"))
}

func screenshot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}
