package web_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pop3playground/pop3playground/pop3/pop3test"
)

type labReply struct {
	Login    string `json:"login"`
	Password string `json:"password"`
	Card     struct {
		Scenario struct{ ID string } `json:"scenario"`
		Sessions int                 `json:"sessions"`
		Checks   []struct{ ID, Status, Seen string }
		Messages []struct {
			N      int
			SHA256 string `json:"sha256"`
		}
	} `json:"card"`
	Submitted []struct {
		Name string
		OK   bool
		Line int
		Why  string
	} `json:"submitted"`
	Error string `json:"error"`
}

func (b *browser) lab(method, path string, body io.Reader, ctype string) (int, labReply) {
	b.t.Helper()
	req, _ := http.NewRequest(method, b.e.http.URL+path, body)
	req.Header.Set("Origin", b.e.http.URL)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	var lr labReply
	json.NewDecoder(resp.Body).Decode(&lr)
	return resp.StatusCode, lr
}

// A script reaches its own card with the lab login over HTTP Basic, picks
// a scenario, and submits what a client saved: digests and files are
// checked against the lab's maildrop; a wrong password or another
// visitor's ID gets 401.
func TestLabAPIForScripts(t *testing.T) {
	e := newEnv(t)
	b := e.visit(t)
	_, info := b.lab("GET", "/api/lab", nil, "")
	if !strings.HasPrefix(info.Login, "lab.") || info.Password != "lab" || len(info.Card.Messages) != 6 || len(info.Card.Checks) < 8 {
		t.Fatalf("GET /api/lab: %+v", info)
	}
	basic := func(user, pass, method, path string, body io.Reader, ctype string) (int, labReply) {
		req, _ := http.NewRequest(method, e.http.URL+path, body)
		req.SetBasicAuth(user, pass)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var lr labReply
		json.NewDecoder(resp.Body).Decode(&lr)
		return resp.StatusCode, lr
	}
	if code, _ := basic(info.Login, "wrong", "GET", "/api/lab", nil, ""); code != http.StatusUnauthorized {
		t.Errorf("a wrong lab password: %d", code)
	}
	if code, _ := basic("lab.0000000000", "lab", "GET", "/api/lab", nil, ""); code != http.StatusUnauthorized {
		t.Errorf("an unknown lab login: %d", code)
	}
	code, r := basic(info.Login, "lab", "POST", "/api/lab/scenario", strings.NewReader("scenario=one-byte"), "application/x-www-form-urlencoded")
	if code != http.StatusOK || r.Card.Scenario.ID != "one-byte" {
		t.Fatalf("choosing a scenario over Basic: %d %+v", code, r)
	}
	if code, r := basic(info.Login, "lab", "POST", "/api/lab/scenario", strings.NewReader("scenario=nope"), "application/x-www-form-urlencoded"); code != http.StatusBadRequest || !strings.Contains(r.Error, `no scenario "nope"`) {
		t.Errorf("an unknown scenario: %d %q", code, r.Error)
	}
	// Digests, as sha256sum prints them: one right, one made up.
	digests := info.Card.Messages[0].SHA256 + "  1.eml\n" + strings.Repeat("ab", 32) + "  2.eml\n"
	code, r = basic(info.Login, "lab", "POST", "/api/lab/proof", strings.NewReader(digests), "text/plain")
	if code != http.StatusOK || len(r.Submitted) != 2 || !r.Submitted[0].OK || r.Submitted[1].OK {
		t.Fatalf("digests: %d %+v", code, r.Submitted)
	}
	// A file saved without dot-unstuffing, from the page's form.
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	fw, _ := mw.CreateFormFile("files", "1.eml")
	msg := fetchLabMessage(t, e, info.Login, 1)
	io.WriteString(fw, strings.ReplaceAll(msg, "\r\n.", "\r\n.."))
	mw.Close()
	code, r = b.lab("POST", "/api/lab/proof", &form, mw.FormDataContentType())
	if code != http.StatusOK || len(r.Submitted) != 1 || r.Submitted[0].OK || !strings.Contains(r.Submitted[0].Why, "the stuffed dot was not removed") {
		t.Fatalf("a stuffed file: %d %+v", code, r.Submitted)
	}
	for _, c := range r.Card.Checks {
		if c.ID == "saved" && c.Status != "fail" {
			t.Errorf("the card's saved check: %+v", c)
		}
	}
	// The Markdown card.
	req, _ := http.NewRequest("GET", e.http.URL+"/api/lab?format=md", nil)
	req.SetBasicAuth(info.Login, "lab")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	md, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(md), "# Client lab report card") || !strings.Contains(string(md), "| Saves each message as sent, dot-stuffing undone | fail | RFC 1939 §3 |") {
		t.Errorf("the Markdown card:\n%s", md)
	}
}

// fetchLabMessage retrieves message n of the lab's maildrop over POP3 and
// returns it as sent, dot-stuffing undone.
func fetchLabMessage(t *testing.T, e *env, login string, n int) string {
	c := pop3test.Dial(t, e.pop3Addr)
	c.Expect("USER "+login, "+OK")
	c.Expect("PASS lab", "+OK")
	body := c.Do(fmt.Sprint("RETR ", n), "+OK")
	c.Expect("QUIT", "+OK")
	return strings.Join(body, "\r\n") + "\r\n"
}

// In the page: the student opens the lab, picks a scenario, runs a
// client (here one that sends a bare LF and never QUITs), and the card
// names both mistakes.
func TestBrowserClientLab(t *testing.T) {
	ctx := browserContext(t)
	e := newEnv(t)
	openPage(t, ctx, e.http.URL+"/")
	waitTerm(t, ctx, "+OK POP3 server ready", 1)
	var user string
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.getElementById("client-lab").open = true`, nil)); err != nil {
		t.Fatal(err)
	}
	pop3test.WaitFor(t, func() bool {
		return evalString(t, ctx, `String(document.querySelectorAll("#lab-scenario option").length)`) == "11"
	})
	if err := chromedp.Run(ctx,
		chromedp.SetValue(`#lab-scenario`, "split", chromedp.ByQuery),
		chromedp.Click(`#lab-scenario-form button`, chromedp.ByQuery),
		chromedp.Text(`#lab-user`, &user, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	pop3test.WaitFor(t, func() bool {
		return strings.Contains(evalString(t, ctx, `document.getElementById("lab-status").textContent`), "started")
	})
	c := pop3test.Dial(t, e.pop3Addr)
	io.WriteString(c.Conn, "USER "+user+"\n") // a bare LF
	c.ExpectLine("+OK")
	c.Expect("PASS lab", "+OK")
	c.Do("LIST", "+OK")
	c.Conn.Close() // no QUIT
	status := func(id string) string {
		return evalString(t, ctx, `(document.querySelector('#lab-card tr[data-check="`+id+`"]') || {dataset: {}}).dataset.status || ""`)
	}
	pop3test.WaitFor(t, func() bool {
		chromedp.Run(ctx, chromedp.Evaluate(`window.labRefresh()`, nil, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
		return status("crlf") == "fail" && status("quit") == "fail"
	})
	if status("login") != "pass" {
		t.Errorf("login: %q", status("login"))
	}
	text := evalString(t, ctx, `document.getElementById("lab-card").textContent`)
	if !strings.Contains(text, "ended a line with LF alone") || !strings.Contains(text, "closed without QUIT") || !strings.Contains(text, "RFC 1939 §6") {
		t.Errorf("the card reads:\n%s", text)
	}
	screenshot(t, ctx, filepath.Join(screenshotDir(t), "client-lab.png"))
	// On a phone the panel fits the width: no sideways scrolling.
	if err := chromedp.Run(ctx, emulation.SetDeviceMetricsOverride(390, 844, 3, true),
		chromedp.ScrollIntoView(`#client-lab`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	if overflow := evalString(t, ctx, `String(document.documentElement.scrollWidth > window.innerWidth)`); overflow != "false" {
		t.Error("the page scrolls sideways at 390 px with the client lab open")
	}
	var shot []byte
	if err := chromedp.Run(ctx, chromedp.Screenshot(`#client-lab`, &shot, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(screenshotDir(t), "client-lab-phone.png"), shot, 0o644)
}

// The organiser sees each student's lab: the scenario and the checks
// passed and failed, on the page and in the CSV.
func TestOrganiserSeesTheLabCards(t *testing.T) {
	e := newEnv(t, withAdmin(prometheus.NewRegistry()))
	o, _ := e.organiser(t, adminToken)
	b := e.visit(t)
	_, info := b.lab("GET", "/api/lab", nil, "")
	b.lab("POST", "/api/lab/scenario", strings.NewReader("scenario=pause"), "application/x-www-form-urlencoded")
	c := pop3test.Dial(t, e.pop3Addr)
	c.Expect("USER "+info.Login, "+OK")
	c.Expect("PASS lab", "+OK")
	c.Expect("QUIT", "+OK")
	var row map[string]any
	pop3test.WaitFor(t, func() bool {
		for _, p := range o.state()["people"].([]any) {
			row = p.(map[string]any)
		}
		return strings.Contains(fmt.Sprint(row["lab"]), "pause: 6 of 13 checks passed, 0 failed")
	})
	resp, err := o.client.Get(e.http.URL + "/admin/progress.csv")
	if err != nil {
		t.Fatal(err)
	}
	recs, _ := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	head, rec := recs[0], recs[1]
	n := len(head)
	if strings.Join(head[n-4:], ",") != "lab_scenario,lab_checks_passed,lab_checks_failed,last_activity" || strings.Join(rec[n-4:n-1], ",") != "pause,6,0" {
		t.Errorf("CSV: %q / %q", head, rec)
	}
}
