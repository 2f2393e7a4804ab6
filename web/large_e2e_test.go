package web_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The inspector on a maildrop of 100,000 messages: the table lists the
// first page, in a box of its own that scrolls, and says so, and STAT in the caption follows a mark on a
// message far beyond that page, from the event's count and the mark's size.
func TestBrowserLargeMaildrop(t *testing.T) {
	ctx := browserContext(t)
	e := newEnvWorld(t, largeWorld(t, 100_000))
	openPage(t, ctx, e.http.URL+"/")
	typeLine(t, ctx, "USER guest")
	typeLine(t, ctx, "PASS visitor")
	waitTerm(t, ctx, "guest's maildrop has 100000 messages", 1)
	caption := func(want string) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			c := evalString(t, ctx, `document.getElementById("insp-maildrop-caption").textContent`)
			if strings.Contains(c, want) {
				return c
			}
			if time.Now().After(deadline) {
				t.Fatalf("the caption never said %q; it says %q", want, c)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	c := caption("STAT 100000 ")
	if !strings.Contains(c, "first 100 of 100,000 messages") {
		t.Errorf("the caption does not say the table is a page: %q", c)
	}
	if rows := evalString(t, ctx, `String(document.querySelectorAll("#insp-maildrop tbody tr").length)`); rows != "100" {
		t.Errorf("the table has %s rows, want the first 100", rows)
	}
	// They scroll in a box of their own, which the keyboard can reach.
	box := evalString(t, ctx, `(() => { const w = document.getElementById("insp-maildrop-wrap"); return w.scrollHeight > w.clientHeight + 100 && w.clientHeight < 600 && w.tabIndex === 0 ? "ok" : w.scrollHeight + " " + w.clientHeight + " " + w.tabIndex; })()`)
	if box != "ok" {
		t.Errorf("the maildrop box (scroll height, height, tab index): %s", box)
	}
	stat := strings.Fields(c[strings.Index(c, "STAT "):])
	typeLine(t, ctx, "LIST 100000")
	waitTerm(t, ctx, "+OK 100000 ", 1)
	typeLine(t, ctx, "DELE 100000")
	caption("STAT 99999 ")
	typeLine(t, ctx, "STAT")
	waitTerm(t, ctx, "+OK 99999 ", 1)
	term, _ := termText(ctx)
	after := term[strings.LastIndex(term, "+OK 99999 "):]
	if got := strings.Fields(after)[2]; !strings.Contains(caption("STAT 99999 "), "STAT 99999 "+got+".") {
		t.Errorf("the caption's STAT disagrees with the server's %q (login STAT %v)", after[:min(len(after), 30)], stat[:3])
	}
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir(t), "large-maildrop.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
