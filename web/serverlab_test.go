package web_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/pop3/check"
	"github.com/pop3playground/pop3playground/pop3/pop3test"
	"github.com/pop3playground/pop3playground/web"
)

// The server lab checks only what the organiser lists: anything else is
// refused with words, before a connection is made.
func TestServerLabRefusesOtherTargets(t *testing.T) {
	e := newEnv(t, func(_ *pop3.Server, c *web.Config) {
		c.LabTargets, _ = web.ParseLabTargets("lab.example.org:1100-1199")
	})
	b := e.visit(t)
	for _, target := range []struct{ host, port string }{{"127.0.0.1", "6379"}, {"lab.example.org", "1200"}, {"169.254.169.254", "80"}} {
		code, m := b.postForm("/api/serverlab", url.Values{"host": {target.host}, "port": {target.port}, "user": {"u"}, "pass": {"p"}})
		if code != http.StatusForbidden || !strings.Contains(m["error"].(string), "the server lab checks only lab.example.org:1100-1199") {
			t.Errorf("%s:%s: %d %v", target.host, target.port, code, m)
		}
	}
	none := newEnv(t)
	if code, m := none.visit(t).postForm("/api/serverlab", url.Values{"host": {"localhost"}, "port": {"110"}}); code != http.StatusForbidden || !strings.Contains(m["error"].(string), "allows the server lab no targets") {
		t.Errorf("no targets: %d %v", code, m)
	}
	for _, bad := range []string{"host", "host:0", "host:5-1", ":110", "host:1-70000"} {
		if _, err := web.ParseLabTargets(bad); err == nil {
			t.Errorf("ParseLabTargets(%q) took it", bad)
		}
	}
}

// A target on the list gets the whole suite, streamed a result a line:
// this playground's own POP3 listener passes.
func TestServerLabChecksAnAllowedServer(t *testing.T) {
	target := newEnv(t) // the server under test: another playground's POP3 listener
	host, port, _ := net.SplitHostPort(target.pop3Addr)
	e2 := newEnvWorld(t, freshWorld(t), func(_ *pop3.Server, c *web.Config) {
		c.LabTargets = []web.LabTarget{{Host: host, Lo: 1, Hi: 65535}}
	})
	b := e2.visit(t)
	req, _ := http.NewRequest("POST", e2.http.URL+"/api/serverlab", strings.NewReader(url.Values{"host": {host}, "port": {port}, "user": {"guest"}, "pass": {"visitor"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e2.http.URL)
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("%s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	var results []check.Result
	var sum map[string]int
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"id"`) {
			var r check.Result
			json.Unmarshal(sc.Bytes(), &r)
			results = append(results, r)
		} else {
			json.Unmarshal(sc.Bytes(), &sum)
		}
	}
	if len(results) != check.Count() || sum["checks"] != check.Count() || sum["failed"] != 0 {
		t.Errorf("%d results, summary %v", len(results), sum)
	}
	for _, r := range results {
		if r.Status == check.Fail {
			t.Errorf("%s: %s", r.ID, r.Detail)
		}
	}
}

// In the page: the student names their server, presses Check it, and the
// card fills as the results stream in.
func TestBrowserServerLab(t *testing.T) {
	ctx := browserContext(t)
	target := newEnv(t)
	host, port, _ := net.SplitHostPort(target.pop3Addr)
	e := newEnv(t, func(_ *pop3.Server, c *web.Config) { c.LabTargets = []web.LabTarget{{Host: host, Lo: 1, Hi: 65535}} })
	openPage(t, ctx, e.http.URL+"/")
	waitTerm(t, ctx, "+OK POP3 server ready", 1)
	if err := chromedp.Run(ctx,
		chromedp.Evaluate(`document.getElementById("server-lab").open = true`, nil),
		chromedp.SetValue(`#sl-host`, host, chromedp.ByQuery),
		chromedp.SetValue(`#sl-port`, port, chromedp.ByQuery),
		chromedp.Click(`#server-lab-form button`, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	pop3test.WaitFor(t, func() bool {
		return strings.Contains(evalString(t, ctx, `document.getElementById("sl-status").textContent`), "checks:")
	})
	status := evalString(t, ctx, `document.getElementById("sl-status").textContent`)
	rows := evalString(t, ctx, `String(document.querySelectorAll("#sl-card tbody tr").length)`)
	if !strings.Contains(status, " 0 failed") || rows != fmt.Sprint(check.Count()) {
		t.Errorf("status %q, %s rows", status, rows)
	}
	screenshot(t, ctx, filepath.Join(screenshotDir(t), "server-lab.png"))
}
