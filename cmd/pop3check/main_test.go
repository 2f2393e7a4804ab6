package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/pop3/check"
	"github.com/pop3playground/pop3playground/pop3/pop3test"
	"github.com/pop3playground/pop3playground/sessions"
)

// playground starts this project's POP3 server on pop3test's maildrops.
func playground(t *testing.T, opts ...func(*pop3.Server)) string {
	s := pop3.NewServer(pop3test.NewBackend())
	for _, o := range opts {
		o(s)
	}
	s.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cert, err := pop3.SelfSignedCertificate("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return l.Addr().String()
}

func runCheck(t *testing.T, args ...string) (int, string) {
	var out, errOut bytes.Buffer
	code, err := run(context.Background(), args, &out, &errOut)
	if err != nil {
		t.Fatalf("pop3check %v: %v\n%s", args, err, errOut.String())
	}
	return code, out.String()
}

// Against this project's server every check passes, the destructive one
// too when allowed; JSON and JUnit read back as what was printed.
func TestAgainstThePlayground(t *testing.T) {
	addr := playground(t)
	code, out := runCheck(t, "pop3://guest:visitor@"+addr)
	if code != 0 || !strings.Contains(out, "44 checks: 40 passed, 0 failed, 0 warned, 4 skipped") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	junit := filepath.Join(t.TempDir(), "junit.xml")
	code, out = runCheck(t, "--json", "--destructive", "--junit", junit, "pop3://guest:visitor@"+addr)
	var rep struct {
		Target  string
		Results []check.Result
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || len(rep.Results) != check.Count() {
		t.Fatalf("JSON (exit %d, %v):\n%s", code, err, out)
	}
	for _, r := range rep.Results {
		optional := r.ID == "fixture-bytes" || r.ID == "second-account" || r.ID == "autologout"
		if (r.Status != check.Pass && !(optional && r.Status == check.Skip)) || r.RFC == "" || r.Word == "" {
			t.Errorf("%s: %s %s", r.ID, r.Status, r.Detail)
		}
	}
	b, _ := os.ReadFile(junit)
	var js junitSuite
	if err := xml.Unmarshal(b, &js); err != nil || js.Tests != check.Count() || js.Failures != 0 || js.Skipped != 3 || len(js.Cases) != check.Count() {
		t.Errorf("JUnit: %v %+v", err, js)
	}
}

// A server that breaks one rule at a time is caught by the check named
// for that rule, and no other check fails because of it.
func TestCatchesEachBug(t *testing.T) {
	for fault, want := range map[string]string{
		"no-stuffing":        "retr-size",
		"stat-counts-marked": "dele-marks",
		"retr-marked":        "dele-marks",
		"drop-deletes":       "dropped-keeps",
		"list-one-multi":     "list-one",
		"uidl-changes":       "uidl-stable",
		"wrong-password-ok":  "wrong-password",
		"stat-extra-text":    "stat-format",
	} {
		t.Run(fault, func(t *testing.T) {
			addr := faultyServer(t, fault)
			_, out := runCheck(t, "--json", "--destructive", "pop3://guest:visitor@"+addr)
			var rep struct{ Results []check.Result }
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatal(err)
			}
			for _, r := range rep.Results {
				switch {
				case r.ID == want && r.Status != check.Fail:
					t.Errorf("%s: %s, want FAIL (%s)", r.ID, r.Status, r.Detail)
				case r.ID != want && r.Status == check.Fail:
					t.Errorf("%s failed too: %s", r.ID, r.Detail)
				}
			}
		})
	}
	// No lock is a warning: a well-run server may turn it off.
	_, out := runCheck(t, "--json", "pop3://guest:visitor@"+faultyServer(t, "no-lock"))
	if !strings.Contains(out, `"id": "lock",`) || !strings.Contains(out, `"status": "WARN"`) {
		t.Errorf("no lock:\n%s", out)
	}
}

// faultyServer is a small POP3 server, written here, that breaks the
// rule fault names (or none).
func faultyServer(t *testing.T, fault string) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	fs := &faulty{fault: fault, msgs: []string{
		"Subject: one\r\n\r\nHello.\r\n",
		"Subject: dots\r\n\r\n.leading dot\r\n..two\r\nend\r\n",
		"Subject: three\r\n\r\n" + strings.Repeat("line\r\n", 20),
	}}
	if fault == "fixture-no-stuffing" {
		fs.msgs, fs.fault = nil, "no-stuffing"
		for _, m := range check.Fixture() {
			fs.msgs = append(fs.msgs, strings.ReplaceAll(m, "\n", "\r\n"))
		}
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go fs.serve(c)
		}
	}()
	return l.Addr().String()
}

type faulty struct {
	fault  string
	mu     sync.Mutex
	msgs   []string
	locked bool
	gen    int // bumped at every login, for uidl-changes
}

func (f *faulty) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	say := func(s string) { w.WriteString(s + "\r\n") }
	say("+OK faulty ready")
	w.Flush()
	var user string
	var msgs []string
	var marked map[int]bool
	loggedIn, gen := false, 0
	defer func() {
		if loggedIn {
			f.mu.Lock()
			if f.fault == "drop-deletes" {
				f.apply(msgs, marked)
			}
			f.locked = false
			f.mu.Unlock()
		}
	}()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if len(line) > 255 {
			say("-ERR line too long")
			w.Flush()
			continue
		}
		f1 := strings.Fields(strings.TrimRight(line, "\r\n"))
		if len(f1) == 0 {
			say("-ERR empty")
			w.Flush()
			continue
		}
		verb := strings.ToUpper(f1[0])
		num := func() int {
			if len(f1) < 2 {
				return -1
			}
			n, err := strconv.Atoi(f1[1])
			if err != nil || n < 1 || n > len(msgs) || marked[n] && f.fault != "retr-marked" {
				return -1
			}
			return n
		}
		switch {
		case verb == "QUIT" && loggedIn && f.fault == "quit-ok-first":
			// +OK first, the deletions a moment later: RFC 1939 §6 has
			// them done before the +OK.
			say("+OK bye")
			w.Flush()
			time.Sleep(300 * time.Millisecond)
			f.mu.Lock()
			f.apply(msgs, marked)
			f.locked = false
			f.mu.Unlock()
			loggedIn = false
			return
		case verb == "QUIT":
			if loggedIn {
				f.mu.Lock()
				f.apply(msgs, marked)
				f.locked = false
				f.mu.Unlock()
				loggedIn = false
			}
			say("+OK bye")
			w.Flush()
			return
		case verb == "CAPA":
			say("+OK")
			say("TOP")
			say("UIDL")
			say("USER")
			say("PIPELINING")
			say(".")
		case !loggedIn && verb == "USER" && len(f1) == 2:
			user = f1[1]
			say("+OK")
		case !loggedIn && verb == "PASS" && user != "":
			f.mu.Lock()
			switch {
			case user != "guest" || len(f1) != 2 || f1[1] != "visitor" && f.fault != "wrong-password-ok":
				say("-ERR [AUTH] no")
			case f.locked && f.fault != "no-lock":
				say("-ERR [IN-USE] locked")
			default:
				f.locked = true
				f.gen++
				gen = f.gen
				msgs = append([]string(nil), f.msgs...)
				marked = map[int]bool{}
				loggedIn = true
				say(fmt.Sprintf("+OK %d messages", len(msgs)))
			}
			f.mu.Unlock()
			user = ""
		case !loggedIn:
			say("-ERR log in first")
		case verb == "STAT":
			n, size := 0, 0
			for i, m := range msgs {
				if !marked[i+1] || f.fault == "stat-counts-marked" {
					n, size = n+1, size+len(m)
				}
			}
			if f.fault == "stat-extra-text" {
				say(fmt.Sprintf("+OK %d %d messages", n, size))
			} else {
				say(fmt.Sprintf("+OK %d %d", n, size))
			}
		case (verb == "LIST" || verb == "UIDL") && len(f1) == 1:
			say("+OK")
			for i, m := range msgs {
				if marked[i+1] {
					continue
				}
				if verb == "LIST" {
					say(fmt.Sprintf("%d %d", i+1, len(m)))
				} else {
					say(fmt.Sprintf("%d %s", i+1, f.uid(i, gen)))
				}
			}
			say(".")
		case verb == "LIST" || verb == "UIDL":
			n := num()
			switch {
			case n < 0:
				say("-ERR no such message")
			case verb == "LIST" && f.fault == "list-one-multi":
				say("+OK")
				say(fmt.Sprintf("%d %d", n, len(msgs[n-1])))
				say(".")
			case verb == "LIST":
				say(fmt.Sprintf("+OK %d %d", n, len(msgs[n-1])))
			default:
				say(fmt.Sprintf("+OK %d %s", n, f.uid(n-1, gen)))
			}
		case verb == "RETR" || verb == "TOP":
			n := num()
			if n < 0 {
				say("-ERR no such message")
				break
			}
			say("+OK")
			lines := strings.Split(strings.TrimSuffix(msgs[n-1], "\r\n"), "\r\n")
			if verb == "TOP" {
				body := 0
				if len(f1) == 3 {
					body, _ = strconv.Atoi(f1[2])
				}
				k := 0
				for k < len(lines) && lines[k] != "" {
					k++
				}
				lines = lines[:min(k+1+body, len(lines))]
			}
			for _, l := range lines {
				if strings.HasPrefix(l, ".") && !(verb == "RETR" && f.fault == "no-stuffing") && !(verb == "TOP" && f.fault == "top-no-stuffing") {
					l = "." + l
				}
				say(l)
			}
			say(".")
		case verb == "DELE":
			if n := num(); n < 0 || marked[n] {
				say("-ERR no such message")
			} else {
				marked[n] = true
				say("+OK marked")
			}
		case verb == "RSET":
			marked = map[int]bool{}
			say("+OK")
		case verb == "NOOP":
			say("+OK")
		default:
			say("-ERR unknown command")
		}
		if r.Buffered() == 0 {
			w.Flush()
		}
	}
}

func (f *faulty) uid(i, gen int) string {
	if f.fault == "uidl-changes" {
		return fmt.Sprintf("m%d-g%d", i+1, gen)
	}
	return fmt.Sprintf("m%d", i+1)
}

// apply removes the marked messages for good; f.mu is held.
func (f *faulty) apply(msgs []string, marked map[int]bool) {
	var keep []string
	for i, m := range msgs {
		if !marked[i+1] {
			keep = append(keep, m)
		}
	}
	f.msgs = keep
}

// Against Dovecot (../shared/peers/dovecot-pop3.sh), where the machine has
// it: everything passes but the lock, which Dovecot leaves off by default
// (pop3_lock_session = no): a warning, not a failure.
func TestAgainstDovecot(t *testing.T) {
	script := filepath.Join("..", "..", "..", "shared", "peers", "dovecot-pop3.sh")
	if _, err := os.Stat(script); err != nil {
		t.Skip("no ../shared/peers/dovecot-pop3.sh")
	}
	if _, err := exec.LookPath("dovecot"); err != nil {
		if _, err := os.Stat("/usr/sbin/dovecot"); err != nil {
			t.Skip("Dovecot is not installed (the peer script installs it as root: dovecot-core, dovecot-pop3d)")
		}
	}
	port := "11931"
	// Its output goes to a file: Dovecot keeps the descriptors it
	// inherits, and a pipe would never reach its end.
	logf, err := os.Create(filepath.Join(t.TempDir(), "dovecot.log"))
	if err != nil {
		t.Fatal(err)
	}
	start := exec.Command("bash", script, "start", port, "2")
	start.Stdout, start.Stderr = logf, logf
	if err := start.Run(); err != nil {
		b, _ := os.ReadFile(logf.Name())
		t.Skipf("the Dovecot peer did not start: %v\n%s", err, b)
	}
	t.Cleanup(func() { exec.Command("bash", script, "stop", port).Run() })
	code, out := runCheck(t, "--json", "pop3://guest:visitor@127.0.0.1:"+port)
	var rep struct{ Results []check.Result }
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 {
		t.Fatalf("exit %d, %v:\n%s", code, err, out)
	}
	for _, r := range rep.Results {
		if r.Status == check.Fail || r.Status == check.Warn && r.ID != "lock" || r.Status == check.Skip && r.Detail == "" {
			t.Errorf("%s: %s %s", r.ID, r.Status, r.Detail)
		}
	}
}

// The fixture, loaded into this project's server from the files
// pop3check writes, passes fixture-bytes; the same messages served
// without dot-stuffing fail it on the line that shows it.
func TestFixture(t *testing.T) {
	dir := t.TempDir()
	if code, _ := runCheck(t, "fixture", dir); code != 0 {
		t.Fatalf("fixture: exit %d", code)
	}
	for _, form := range []string{"mbox", "maildir"} {
		t.Run(form, func(t *testing.T) { fixtureRun(t, dir, form) })
	}
}

// The fixture served without dot-stuffing fails fixture-bytes on the
// line that shows it.
func TestFixtureCatchesNoStuffing(t *testing.T) {
	_, out := runCheck(t, "--json", "--fixture", "pop3://guest:visitor@"+faultyServer(t, "fixture-no-stuffing"))
	var rep struct{ Results []check.Result }
	json.Unmarshal([]byte(out), &rep)
	for _, r := range rep.Results {
		if r.ID == "fixture-bytes" && (r.Status != check.Fail || !strings.Contains(r.Detail, `message 1 ("Dots"): body line 1 is "A first body line that starts with a dot…", the fixture's ".A first body line`)) {
			t.Errorf("fixture-bytes: %s %s", r.Status, r.Detail)
		}
	}
}

func fixtureRun(t *testing.T, dir, form string) {
	w, err := sessions.LoadDir(filepath.Join(dir, form), filepath.Join(dir, "users"))
	if err != nil {
		t.Fatalf("the playground's loader: %v", err)
	}
	s := pop3.NewServer(&sessions.Backend{World: w})
	s.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	code, out := runCheck(t, "--json", "--fixture", "pop3://guest:visitor@"+l.Addr().String())
	if code != 0 || !strings.Contains(out, `"id": "fixture-bytes",`) {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	var rep struct{ Results []check.Result }
	json.Unmarshal([]byte(out), &rep)
	for _, r := range rep.Results {
		if r.ID == "fixture-bytes" && r.Status != check.Pass {
			t.Errorf("fixture-bytes: %s %s", r.Status, r.Detail)
		}
	}
}

// A second account, implicit TLS, and the autologout floor: this
// server passes with --second and over pop3s://, and a server whose
// autologout comes before --slow fails the autologout check alone.
func TestSecondAccountTLSAndAutologout(t *testing.T) {
	addr := playground(t)
	code, out := runCheck(t, "--json", "--second", "mrose:tanstaaf", "--slow", "1s", "pop3://guest:visitor@"+addr)
	if code != 0 || !strings.Contains(out, `"id": "second-account",`) {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	statuses := func(out string) map[string]string {
		var rep struct{ Results []check.Result }
		json.Unmarshal([]byte(out), &rep)
		m := map[string]string{}
		for _, r := range rep.Results {
			m[r.ID] = r.Status + " " + r.Detail
		}
		return m
	}
	if st := statuses(out); !strings.HasPrefix(st["second-account"], check.Pass) || !strings.HasPrefix(st["autologout"], check.Pass) {
		t.Errorf("second account %q, autologout %q", st["second-account"], st["autologout"])
	}

	// pop3s://: TLS from the first octet.
	cert, err := pop3.SelfSignedCertificate("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	s := pop3.NewServer(pop3test.NewBackend())
	s.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}}))
	t.Cleanup(func() { s.Close() })
	if code, out := runCheck(t, "--insecure", "pop3s://guest:visitor@"+l.Addr().String()); code != 0 || !strings.Contains(out, " 0 failed") {
		t.Errorf("pop3s: exit %d\n%s", code, out)
	}

	short := playground(t, func(s *pop3.Server) { s.IdleTimeout = 300 * time.Millisecond })
	_, out = runCheck(t, "--json", "--slow", "1s", "pop3://guest:visitor@"+short)
	for id, st := range statuses(out) {
		if (id == "autologout") != strings.HasPrefix(st, check.Fail) {
			t.Errorf("%s: %s", id, st)
		}
	}
}
