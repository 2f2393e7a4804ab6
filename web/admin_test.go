package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/pop3/limit"
	"github.com/pop3playground/pop3playground/pop3/pop3test"
	"github.com/pop3playground/pop3playground/sessions"
	"github.com/pop3playground/pop3playground/web"
)

const adminToken = "s3cret-admin-token-for-tests"

func withAdmin(reg *prometheus.Registry) option {
	return func(_ *pop3.Server, c *web.Config) {
		c.AdminToken = adminToken
		c.Metrics = reg
		c.POP3Conns = func() int { return 0 }
	}
}

// organiser is a browser signed in at /admin.
type organiser struct {
	t      *testing.T
	e      *env
	client *http.Client
}

func (e *env) organiser(t *testing.T, token string) (*organiser, int) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	o := &organiser{t: t, e: e, client: &http.Client{Jar: jar}}
	resp, err := o.client.PostForm(e.http.URL+"/admin/login", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return o, resp.StatusCode
}

func (o *organiser) post(path string, form url.Values) (int, map[string]any) {
	o.t.Helper()
	req, _ := http.NewRequest("POST", o.e.http.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Origin", o.e.http.URL)
	resp, err := o.client.Do(req)
	if err != nil {
		o.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func (o *organiser) state() map[string]any {
	o.t.Helper()
	resp, err := o.client.Get(o.e.http.URL + "/admin/api/state")
	if err != nil {
		o.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
		o.t.Fatalf("admin state: %s %v", resp.Status, err)
	}
	return m
}

func TestAdminAuth(t *testing.T) {
	e := newEnv(t, withAdmin(prometheus.NewRegistry()))
	get := func(c *http.Client, path string, hdr ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", e.http.URL+path, nil)
		if len(hdr) == 2 {
			req.Header.Set(hdr[0], hdr[1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// Without a token: the sign-in form, and nothing else.
	if code, body := get(http.DefaultClient, "/admin"); code != 200 || !strings.Contains(body, "Organiser sign-in") || strings.Contains(body, "Reset every sandbox") {
		t.Errorf("GET /admin signed out: %d", code)
	}
	for _, p := range []string{"/admin/api/state", "/metrics", "/admin/visitors/x/watch"} {
		if code, _ := get(http.DefaultClient, p); code != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: %d", p, code)
		}
	}
	if _, code := e.organiser(t, "wrong"); code != http.StatusForbidden {
		t.Errorf("a wrong token: %d", code)
	}
	if code, _ := get(http.DefaultClient, "/metrics", "Authorization", "Bearer wrong"); code != http.StatusUnauthorized {
		t.Errorf("metrics with a wrong bearer: %d", code)
	}
	// A cookie forged from anything but the token does not pass.
	if code, _ := get(http.DefaultClient, "/admin/api/state", "Cookie", web.AdminCookie+"="+adminToken); code != http.StatusUnauthorized {
		t.Errorf("the token itself as the cookie: %d", code)
	}
	// A cross-site form cannot act for a signed-in organiser.
	o, code := e.organiser(t, adminToken)
	if code != http.StatusOK { // followed the redirect to /admin
		t.Fatalf("sign-in: %d", code)
	}
	req, _ := http.NewRequest("POST", e.http.URL+"/admin/reset-all", nil)
	req.Header.Set("Origin", "https://evil.example")
	if resp, err := o.client.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-site admin action: %v %v", resp.Status, err)
	}

	// The right token: the page, its state and metrics.
	if code, body := get(o.client, "/admin"); code != 200 || !strings.Contains(body, "Reset every sandbox") {
		t.Errorf("GET /admin signed in: %d", code)
	}
	if code, body := get(http.DefaultClient, "/metrics", "Authorization", "Bearer "+adminToken); code != 200 || !strings.Contains(body, "pop3pg_visitors 0") {
		t.Errorf("metrics with the token: %d\n%s", code, body)
	}
	o.post("/admin/logout", nil)
	if code, _ := get(o.client, "/admin/api/state"); code != http.StatusUnauthorized {
		t.Errorf("after sign-out: %d", code)
	}
}

func TestAdminOffWithoutAToken(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.http.URL + "/admin")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /admin with no token configured: %s", resp.Status)
	}
}

func TestAdminActions(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnvWorld(t, freshWorld(t), withAdmin(reg)) // it posts a bulletin
	o, _ := e.organiser(t, adminToken)
	alice, bob := e.visit(t), e.visit(t)

	// Alice deletes a message and gets an error; the organiser sees her.
	ta := alice.terminal()
	ta.login()
	ta.cmd("DELE 1", "+OK")
	ta.cmd("RETR 99", "-ERR")
	ta.cmd("QUIT", "+OK")
	pop3test.WaitFor(t, func() bool {
		st := o.state()
		errs, _ := st["errors"].([]any)
		return len(errs) > 0 && errs[0].(map[string]any)["command"] == "RETR 99"
	})
	st := o.state()
	if st["visitors"].(float64) != 2 || len(st["people"].([]any)) != 2 {
		t.Errorf("state %v", st)
	}

	// A bulletin reaches both at their next login, once.
	if code, _ := o.post("/admin/bulletins", url.Values{"subject": {""}, "body": {"x"}}); code != http.StatusBadRequest {
		t.Errorf("a bulletin without a subject: %d", code)
	}
	if code, m := o.post("/admin/bulletins", url.Values{"subject": {"Break until 11:00"}, "body": {"Coffee in room 2."}}); code != 200 || m["bulletin"].(float64) != 1 {
		t.Fatalf("post: %d %v", code, m)
	}
	ta = alice.terminal()
	ta.cmd("USER guest", "+OK")
	ta.cmd("PASS visitor", "+OK guest's maildrop has 7 messages") // 6 + the bulletin
	ta.cmd("TOP 7 0", "+OK")
	if head := strings.Join(ta.body(), "\n"); !strings.Contains(head, "To: guest") || !strings.Contains(head, "Subject: Break until 11:00") {
		t.Errorf("the bulletin's header:\n%s", head)
	}
	ta.cmd("QUIT", "+OK")
	tb := bob.terminal()
	tb.cmd("USER guest", "+OK")
	tb.cmd("PASS visitor", "+OK guest's maildrop has 8 messages")
	tb.cmd("QUIT", "+OK")

	// Reset every sandbox: Alice's message 1 is back, and so is the
	// bulletin she had: a reset sandbox is a new visitor's.
	if code, m := o.post("/admin/reset-all", nil); code != 200 || m["reset"].(float64) != 2 {
		t.Errorf("reset-all: %d %v", code, m)
	}
	ta = alice.terminal()
	ta.cmd("USER guest", "+OK")
	ta.cmd("PASS visitor", "+OK guest's maildrop has 8 messages")

	// Watch Alice: the organiser sees her transcript, her page is told.
	aliceEvents := alice.stream(t, "")
	people := o.state()["people"].([]any)
	var handle string
	for _, p := range people {
		if p := p.(map[string]any); p["state"] == "TRANSACTION" {
			handle = p["handle"].(string)
		}
	}
	if handle == "" {
		t.Fatalf("nobody in TRANSACTION: %v", people)
	}
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.http.URL+"/admin/visitors/"+handle+"/watch", nil)
	resp, err := o.client.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("watch: %v %v", resp, err)
	}
	lines := bufio.NewScanner(resp.Body)
	var transcript []string
	ta.cmd("STAT", "+OK 8")
	for lines.Scan() && !strings.Contains(lines.Text(), "+OK 8 ") {
		if d, ok := strings.CutPrefix(lines.Text(), "data: "); ok {
			transcript = append(transcript, d)
		}
	}
	if got := strings.Join(transcript, "\n"); !strings.Contains(got, `"who":"C","text":"PASS ****"`) || strings.Contains(got, "visitor\"") {
		t.Errorf("watched transcript:\n%s", got)
	}
	for ev := aliceEvents(); ev.name != "watch"; ev = aliceEvents() {
	}
	cancel()
	resp.Body.Close()

	// End Bob's session: his cookie no longer works and his terminal
	// closes.
	tb = bob.terminal()
	var bobHandle string
	for _, p := range o.state()["people"].([]any) {
		if p := p.(map[string]any); p["handle"] != handle {
			bobHandle = p["handle"].(string)
		}
	}
	if code, _ := o.post("/admin/visitors/"+bobHandle+"/end", nil); code != 200 {
		t.Errorf("end: %d", code)
	}
	tb.nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := tb.r.ReadString('\n'); err == nil {
		t.Error("the ended visitor's terminal stayed open")
	}
	// Bob's page comes back to a fresh session and sandbox.
	bobID := e.visitors.ByHandle(bobHandle)
	if bobID != nil {
		t.Error("the ended visitor is still held")
	}
	if again := bob.session(); again["id"] == nil || e.visitors.Len() != 2 {
		t.Errorf("the ended visitor's page came back to %v", again)
	}
	if v := e.visitors.ByHandle(bobHandle); v != nil {
		t.Error("the ended visitor came back under the same handle")
	}
	if code, _ := o.post("/admin/visitors/"+bobHandle+"/end", nil); code != http.StatusNotFound {
		t.Errorf("ending twice: %d", code)
	}

	// The web side's metrics moved: a cross-site WebSocket is a refused
	// handshake.
	if _, _, err := alice.dial("https://evil.example"); err == nil {
		t.Fatal("a cross-site WebSocket was accepted")
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "," + l.GetValue()
			}
			got[name] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	for name, want := range map[string]float64{
		"pop3pg_visitors":                              2, // Bob's ended; his page made a new one
		"pop3pg_bulletins":                             1,
		"pop3pg_bridge_errors_total,connect":           0,
		"pop3pg_lesson_completions_total,01-lab-sheet": 0,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
}

// An announcement reaches every open page at once over its event stream,
// and a page that opens later gets the one in force; an empty one takes
// it down; more than a line is refused with words.
func TestAnnouncementReachesEveryPage(t *testing.T) {
	e := newEnv(t, withAdmin(prometheus.NewRegistry()))
	e.visitors.Rate = limit.RateLimiter{}
	const pages = 30
	next := make([]func() sseEvent, pages)
	for i := range pages {
		b := e.visit(t)
		b.session()
		next[i] = b.stream(t, "")
	}
	o, _ := e.organiser(t, adminToken)
	start := time.Now()
	if code, m := o.post("/admin/announce", url.Values{"text": {"Stop and look up: we start lesson 2."}}); code != 200 || m["announcement"] != "Stop and look up: we start lesson 2." {
		t.Fatalf("announce: %d %v", code, m)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var slowest time.Duration
	for i := range pages {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ev := next[i]()
				if ev.name != "announcement" {
					continue
				}
				var a sessions.Announcement
				json.Unmarshal([]byte(ev.data), &a)
				if a.Text != "Stop and look up: we start lesson 2." {
					t.Errorf("page %d got %q", i, a.Text)
				}
				mu.Lock()
				slowest = max(slowest, time.Since(start))
				mu.Unlock()
				return
			}
		}()
	}
	wg.Wait()
	t.Logf("all %d pages had the announcement %v after it was posted", pages, slowest)

	// A page that opens now gets it first thing.
	late := e.visit(t)
	late.session()
	ev := late.stream(t, "")()
	if ev.name != "announcement" {
		t.Fatalf("a page opened later first got %q, want the announcement", ev.name)
	}
	if st := o.state(); st["announcement"] != "Stop and look up: we start lesson 2." {
		t.Errorf("admin state: announcement %v", st["announcement"])
	}
	// Taken down: the pages get an empty one.
	if code, _ := o.post("/admin/announce", url.Values{"text": {""}}); code != 200 {
		t.Fatalf("take down: %d", code)
	}
	for ev := next[0](); ; ev = next[0]() {
		if ev.name == "announcement" {
			if !strings.Contains(ev.data, `"text":""`) {
				t.Errorf("taken down: %s", ev.data)
			}
			break
		}
	}
	for _, bad := range []string{strings.Repeat("x", 281), "two\nlines"} {
		if code, m := o.post("/admin/announce", url.Values{"text": {bad}}); code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(m["error"]), "one line") {
			t.Errorf("announce %q: %d %v", bad[:min(len(bad), 20)], code, m)
		}
	}
}
