package web_test

import (
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/pop3playground/pop3playground/pop3/pop3test"
	"github.com/prometheus/client_golang/prometheus"
)

func (b *browser) postForm(path string, form url.Values) (int, map[string]any) {
	b.t.Helper()
	req, _ := http.NewRequest("POST", b.e.http.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Origin", b.e.http.URL)
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	m := map[string]any{}
	decodeJSON(resp.Body, &m)
	return resp.StatusCode, m
}

// The organiser finds a student by what the student's page shows: the
// pseudonym and handle, and a name the student may give (cleaned and
// bounded); rows keep a stable order; progress per lesson and as CSV.
func TestOrganiserFindsTheStudent(t *testing.T) {
	e := newEnv(t, withAdmin(prometheus.NewRegistry()))
	o, _ := e.organiser(t, adminToken)
	zoe, amy := e.visit(t), e.visit(t)
	zi, ai := zoe.session(), amy.session()
	if zi["handle"] == "" || zi["pseudonym"] == "" || zi["handle"] == ai["handle"] {
		t.Fatalf("session info lacks the handle: %v", zi)
	}
	if code, m := zoe.postForm("/api/name", url.Values{"name": {"  Zoë \u202e\x07 Quinn   " + strings.Repeat("x", 60)}}); code != 200 || m["display_name"] != "Zoë Quinn "+strings.Repeat("x", 30) {
		t.Errorf("POST /api/name: %d %q", code, m["display_name"])
	}
	amy.postForm("/api/name", url.Values{"name": {"=HYPERLINK(\"evil\")"}})

	// Amy finishes the lab sheet.
	tm := amy.terminal()
	tm.login()
	tm.cmd("LIST", "+OK")
	tm.body()
	tm.cmd("RETR 3", "+OK")
	tm.body()
	tm.cmd("QUIT", "+OK")
	pop3test.WaitFor(t, func() bool { return e.visitors.ByHandle(ai["handle"].(string)).Progress()["01-lab-sheet"] == 4 })

	st := o.state()
	people := st["people"].([]any)
	var order []string
	for _, p := range people {
		p := p.(map[string]any)
		order = append(order, p["display_name"].(string))
		if p["handle"] == zi["handle"] && p["name"] != zi["pseudonym"] {
			t.Errorf("the admin names Zoë %v, her page %v", p["name"], zi["pseudonym"])
		}
	}
	if strings.Join(order, "|") != "=HYPERLINK(\"evil\")|Zoë Quinn "+strings.Repeat("x", 30) {
		t.Errorf("rows in the order %q, want by name", order)
	}
	summary := fmt.Sprint(st["summary"])
	if !strings.Contains(summary, "finished:1") || !strings.Contains(summary, "of:2") {
		t.Errorf("summary %s: want the lab sheet 1 of 2 finished", summary)
	}

	resp, err := o.client.Get(e.http.URL + "/admin/progress.csv")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	if err != nil || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" || len(recs) != 3 {
		t.Fatalf("progress.csv: %v %v %q", err, resp.Header, recs)
	}
	if recs[0][0] != "handle" || !strings.HasPrefix(recs[0][3], "01-lab-sheet") || recs[0][len(recs[0])-1] != "last_activity" {
		t.Errorf("CSV header %q", recs[0])
	}
	for _, r := range recs[1:] {
		if r[0] == ai["handle"] && (r[3] != "4" || r[2] != "'=HYPERLINK(\"evil\")") {
			t.Errorf("Amy's row %q: want 4 steps of the lab sheet and her name defused", r)
		}
	}
	resp, _ = http.Get(e.http.URL + "/admin/progress.csv")
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("progress.csv without a token: %s", resp.Status)
	}

	// A personal login's wrong password is in the recent errors, under
	// the pseudonym, though not on the student's page.
	c, err := net.Dial("tcp", e.pop3Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "USER %s\r\nPASS nope\r\n", zi["login"])
	io.ReadAll(io.LimitReader(c, 1)) // let the server read it
	pop3test.WaitFor(t, func() bool {
		return strings.Contains(fmt.Sprint(o.state()["errors"]), fmt.Sprint("visitor:", zi["pseudonym"]))
	})
}

// A bulletin can be withdrawn: maildrops that had it keep it, the others
// never get it.
func TestWithdrawABulletin(t *testing.T) {
	e := newEnvWorld(t, freshWorld(t), withAdmin(prometheus.NewRegistry()))
	o, _ := e.organiser(t, adminToken)
	early, late := e.visit(t), e.visit(t)
	if code, _ := o.post("/admin/bulletins", url.Values{"subject": {"Wrong room"}, "body": {"Room 3."}}); code != 200 {
		t.Fatal(code)
	}
	tm := early.terminal()
	tm.login() // gets it
	tm.cmd("STAT", "+OK 8 ")
	tm.cmd("QUIT", "+OK")
	if code, _ := o.post("/admin/bulletins/1/withdraw", nil); code != 200 {
		t.Errorf("withdraw: %d", code)
	}
	if code, _ := o.post("/admin/bulletins/1/withdraw", nil); code != http.StatusNotFound {
		t.Errorf("withdrawing twice: %d", code)
	}
	tm = late.terminal()
	tm.login()
	tm.cmd("STAT", "+OK 7 ")
	tm = early.terminal()
	tm.login()
	tm.cmd("STAT", "+OK 8 ")
	if b := o.state()["bulletins"].([]any)[0].(map[string]any); b["withdrawn"] != true {
		t.Errorf("the board shows %v", b)
	}
}

func decodeJSON(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

// Text assets go out gzipped to clients that accept it, with Vary; the
// favicon is there.
func TestAssetsCompressedAndFavicon(t *testing.T) {
	e := newEnv(t)
	get := func(path, enc string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", e.http.URL+path, nil)
		if enc != "" {
			req.Header.Set("Accept-Encoding", enc)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	plainResp, plain := get("/static/style.css", "identity")
	gzResp, gz := get("/static/style.css", "br;q=1.0, gzip;q=0.8")
	if plainResp.Header.Get("Content-Encoding") != "" || gzResp.Header.Get("Content-Encoding") != "gzip" ||
		gzResp.Header.Get("Vary") != "Accept-Encoding" || len(gz) >= len(plain)/2 {
		t.Fatalf("style.css: plain %d octets %v, gzip %d octets %v", len(plain), plainResp.Header, len(gz), gzResp.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	unz, _ := io.ReadAll(zr)
	if !bytes.Equal(unz, plain) || plainResp.Header.Get("ETag") == gzResp.Header.Get("ETag") {
		t.Error("the gzipped asset is not the asset, or shares its ETag")
	}
	if resp, _ := get("/static/style.css", "gzip;q=0"); resp.Header.Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 got gzip")
	}
	if resp, body := get("/favicon.ico", ""); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/svg+xml" || !bytes.HasPrefix(body, []byte("<svg")) {
		t.Errorf("/favicon.ico: %s %v", resp.Status, resp.Header)
	}
}
