package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/smtp"
	"strings"
	"testing"

	"github.com/pop3playground/pop3playground/pop3/pop3test"
	"github.com/pop3playground/pop3playground/sessions/storetest"
)

// A replica of the binary on a shared store.
type replicaRun struct {
	pop3, smtp, web string
	stop            func()
}

func startReplicaRun(t *testing.T, store string) *replicaRun {
	t.Helper()
	banner, stop := startStoppable(t, "SMTP on ", "--store", store, "--admin-token", "replicas-share-this-token")
	return &replicaRun{pop3: bannerAddr(t, banner, `POP3 on (\S+)`), smtp: bannerAddr(t, banner, `SMTP on (\S+)`),
		web: bannerAddr(t, banner, `web playground on (\S+)`), stop: stop}
}

// session is GET /api/session on the replica, with the browser's cookies.
func (r *replicaRun) session(t *testing.T, hc *http.Client) (login, address string) {
	t.Helper()
	resp, err := hc.Get(r.web + "/api/session")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s struct{ Login, Address string }
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/api/session: %d %v", r.web, resp.StatusCode, err)
	}
	return s.Login, s.Address
}

func statOn(t *testing.T, addr, login string) string {
	t.Helper()
	c := pop3test.Dial(t, addr)
	c.Expect("USER "+login, "+OK")
	c.Expect("PASS visitor", "+OK")
	got := c.Expect("STAT", "+OK")
	c.Expect("QUIT", "+OK")
	return got
}

// Two replicas of the binary on a real redis-server, with no affinity:
// the browser's cookie from A is a session on B, its personal login and
// address work on both, what one deletes the other sees, the lock holds
// across them, and a restart of A forgets nothing.
func TestReplicasOnRedis(t *testing.T) {
	store := "redis://" + storetest.RedisServer(t) + "/0"
	a, b := startReplicaRun(t, store), startReplicaRun(t, store)
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar} // one browser; cookies are per host, so A's reach B
	resp, err := hc.Get(a.web + "/")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	login, address := a.session(t, hc)
	if got, _ := b.session(t, hc); got != login {
		t.Fatalf("the same browser on B is %q, on A %q", got, login)
	}

	c := pop3test.Dial(t, b.pop3)
	c.Expect("USER "+login, "+OK")
	c.Expect("PASS visitor", "+OK "+login+"'s maildrop has 7 messages")
	l := pop3test.Dial(t, a.pop3)
	l.Expect("USER "+login, "+OK")
	l.Expect("PASS visitor", "-ERR [IN-USE]")
	c.Expect("DELE 1", "+OK")
	c.Expect("QUIT", "+OK")
	if got := statOn(t, a.pop3, login); !strings.HasPrefix(got, "+OK 6 ") {
		t.Errorf("STAT on A after B deleted one: %q", got)
	}
	for _, r := range []*replicaRun{a, b} {
		resp, err := http.Get(r.web + "/readyz")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("/readyz on %s: %v %v", r.web, resp.Status, err)
		}
	}

	// The organiser signs in on A and is signed in on B, whose page
	// lists the visitor A made; a sign-out on B ends it on A too.
	org, _ := cookiejar.New(nil)
	oc := &http.Client{Jar: org, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	form := strings.NewReader("token=replicas-share-this-token")
	req, _ := http.NewRequest("POST", a.web+"/admin/login", form)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", a.web)
	if resp, err := oc.Do(req); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("signing in on A: %v %v", resp, err)
	}
	// Cookies are per host, not per port: the browser sends A's to B.
	resp, err = oc.Get(b.web + "/admin/api/state")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the organiser's state on B: %v %v", resp, err)
	}
	state, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var me struct{ Handle string }
	if resp, err := hc.Get(a.web + "/api/session"); err == nil {
		json.NewDecoder(resp.Body).Decode(&me)
		resp.Body.Close()
	}
	if me.Handle == "" || !strings.Contains(string(state), `"handle":"`+me.Handle+`"`) {
		t.Errorf("B's organiser page does not list A's visitor %q:\n%.600s", me.Handle, state)
	}
	req, _ = http.NewRequest("POST", b.web+"/admin/logout", nil)
	req.Header.Set("Origin", b.web)
	oc.Do(req)
	resp, err = oc.Get(a.web + "/admin/api/state")
	if err == nil && resp.StatusCode == http.StatusOK {
		t.Error("signed out on B, still signed in on A")
	}

	// A restart of A: the same cookie, the same login, the deletion kept.
	a.stop()
	a = startReplicaRun(t, store)
	if got, _ := a.session(t, hc); got != login {
		t.Errorf("after a restart the browser is %q, was %q", got, login)
	}
	if got := statOn(t, a.pop3, login); !strings.HasPrefix(got, "+OK 6 ") {
		t.Errorf("STAT on A after its restart: %q", got)
	}

	// Mail to the personal address is taken by either replica.
	for _, r := range []*replicaRun{a, b} {
		if err := sendPlain(r.smtp, address); err != nil {
			t.Errorf("SMTP to %s on %s: %v", address, r.smtp, err)
		}
	}
}

// sendPlain sends a short message over SMTP without STARTTLS.
func sendPlain(addr, to string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Mail("teacher@example.org"); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	io.WriteString(w, "Subject: hi\r\n\r\nhello\r\n")
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}
