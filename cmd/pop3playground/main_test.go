package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pop3playground/pop3playground/pop3/pop3test"
)

func noEnv(string) string { return "" }

func TestEveryFlagHasAnEnvironmentVariable(t *testing.T) {
	var help bytes.Buffer
	_, err := parseConfig([]string{"--help"}, noEnv, &help)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, name := range []string{"pop3-addr", "pop3s-addr", "hostname", "mailboxes", "users", "idle-timeout", "tls-cert", "tls-key", "trace", "max-conns", "max-conns-per-ip", "max-line-length", "max-errors", "max-auth-failures", "auth-failure-delay"} {
		if !strings.Contains(help.String(), "--"+name+" ") || !strings.Contains(help.String(), "[$"+envName(name)+"]") {
			t.Errorf("--help lacks --%s or $%s", name, envName(name))
		}
	}
	if !strings.Contains(help.String(), "(default localhost:65000)") {
		t.Errorf("--help lacks the default address:\n%s", help.String())
	}
}

func TestEnvironmentFillsInFlags(t *testing.T) {
	env := map[string]string{"POP3PG_POP3_ADDR": ":1110", "POP3PG_MAX_CONNS": "7", "POP3PG_IDLE_TIMEOUT": "15m"}
	cfg, err := parseConfig([]string{"--max-conns", "9"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.pop3Addr != ":1110" || cfg.idleTimeout != 15*time.Minute {
		t.Errorf("environment ignored: %+v", cfg)
	}
	if cfg.maxConns != 9 {
		t.Errorf("max-conns = %d: the command line must win over the environment", cfg.maxConns)
	}
	if _, err := parseConfig(nil, func(k string) string { return map[string]string{"POP3PG_MAX_CONNS": "lots"}[k] }, io.Discard); err == nil || !strings.Contains(err.Error(), "$POP3PG_MAX_CONNS") {
		t.Errorf("a bad environment value: %v", err)
	}
}

func TestTrustedProxiesFlag(t *testing.T) {
	cfg, err := parseConfig(nil, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.trustedProxies.String(); got != "127.0.0.0/8,::1/128" {
		t.Errorf("default %q, want loopback only", got)
	}
	cfg, err = parseConfig([]string{"--trusted-proxies", "10.1.2.3/8, 192.0.2.1"}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.trustedProxies.String(); got != "10.0.0.0/8,192.0.2.1/32" {
		t.Errorf("parsed %q", got)
	}
	if cfg, _ = parseConfig([]string{"--trusted-proxies", "none"}, noEnv, io.Discard); len(cfg.trustedProxies) != 0 {
		t.Errorf("none: %v", cfg.trustedProxies)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--mailboxes", "x"},
		{"--users", "x"},
		{"--tls-cert", "c.pem"},
		{"--max-line-length", "10"},
		{"--trusted-proxies", "10.0.0.0/33"},
		{"--trusted-proxies", "example.com"},
		{"--idle-timeout", "-1s"},
		{"--pop3-proxy-addr", ":65100", "--trusted-proxies", "none"},
		{"--shutdown-timeout", "-5s"},
		{"--smtp-max-size", "lots"},
		{"--trace-max-bytes", "-1MB"},
		{"--store", "redis://localhost:6379/0"}, // replicas need one --admin-token
		{"--store", "localhost:6379", "--admin-token", "0123456789abcdef"},
		{"stray"},
	} {
		if _, err := parseConfig(args, noEnv, io.Discard); err == nil {
			t.Errorf("parseConfig(%q) accepted", args)
		}
	}
}

// Sizes are given as the README shows them.
func TestSizeFlags(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"1048576", 1 << 20}, {"100MB", 100e6}, {"100MiB", 100 << 20}, {"64k", 64 << 10},
		{"1.5 GiB", 3 << 29}, {"0", 0}, {"2KB", 2000},
	} {
		cfg, err := parseConfig([]string{"--trace-max-bytes", tc.in}, noEnv, io.Discard)
		if err != nil || int64(cfg.traceMaxBytes) != tc.want {
			t.Errorf("--trace-max-bytes %s: %v, %v; want %d", tc.in, cfg, err, tc.want)
		}
	}
	_, err := parseConfig([]string{"--idle-timeout", "-1s"}, noEnv, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--idle-timeout -1s") {
		t.Errorf("a negative duration: %v, want its flag named", err)
	}
}

func TestRunServesAndShutsDownOnSignal(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	lessons := t.TempDir()
	os.WriteFile(filepath.Join(lessons, "10-ours.md"), []byte("---\ntitle: Our own lesson\n---\n## Count\ncheck: ok STAT\n\nType `STAT`.\n"), 0o644)
	bulletins := t.TempDir()
	os.WriteFile(filepath.Join(bulletins, "welcome.eml"), []byte("From: org@example.org\nSubject: Welcome to the workshop\n\nHello.\n"), 0o644)
	var logs pop3test.SyncBuffer
	go func() {
		done <- run(ctx, []string{"--pop3-addr", "127.0.0.1:0", "--pop3s-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--smtp-addr", "127.0.0.1:0", "--lab-pop3-addr", "127.0.0.1:0", "--lab-smtp-addr", "127.0.0.1:0", "--lessons", lessons, "--bulletins", bulletins}, noEnv, pw, &logs)
		pw.Close()
	}()
	banner := bufio.NewReader(pr)
	var err error
	var head, line string
	for !strings.HasPrefix(line, "SMTP on ") {
		line, err = banner.ReadString('\n')
		if err != nil {
			t.Fatalf("banner %q: %v", head, err)
		}
		head += line
	}
	go io.Copy(io.Discard, banner)
	addr := regexp.MustCompile(`POP3 on (127\.0\.0\.1:\d+)`).FindStringSubmatch(head)[1]
	webURL := regexp.MustCompile(`web playground on (http://127\.0\.0\.1:\d+)`).FindStringSubmatch(head)
	if webURL == nil {
		t.Fatalf("banner has no web playground line:\n%s", head)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(webURL[1] + p)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %v %v", p, resp, err)
		}
		resp.Body.Close()
	}
	token := regexp.MustCompile(`organiser page on http://\S+/admin \(token ([0-9a-f]{32});`).FindStringSubmatch(head)
	if token == nil {
		t.Fatalf("banner has no admin token:\n%s", head)
	}
	// The organiser's lesson is on the page, after the built-in ones.
	resp, err := http.Get(webURL[1] + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if i, j := strings.Index(string(page), "Our own lesson"), strings.Index(string(page), "CAPA and STLS"); i < 0 || j < 0 || i < j {
		t.Errorf("the page does not list the organiser's lesson after the built-in ones (at %d, %d)", i, j)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	if g, _ := r.ReadString('\n'); !strings.HasPrefix(g, "+OK POP3 Playground ready <") {
		t.Fatalf("greeting %q", g)
	}
	io.WriteString(conn, "USER guest\r\nPASS wrong\r\nUSER guest\r\nPASS visitor\r\n")
	r.ReadString('\n')
	r.ReadString('\n')
	r.ReadString('\n')
	if got, _ := r.ReadString('\n'); !strings.HasPrefix(got, "+OK guest's maildrop has 8 messages") {
		t.Fatalf("login with a bulletin: %q", got)
	}

	// The metrics moved with that session.
	req, _ := http.NewRequest("GET", webURL[1]+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token[1])
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"pop3pg_pop3_connections_total 1",
		"pop3pg_pop3_connections_open 1",
		`pop3pg_pop3_commands_total{outcome="ok",verb="PASS"} 1`,
		`pop3pg_pop3_commands_total{outcome="err",verb="PASS"} 1`,
		"pop3pg_pop3_auth_failures_total 1",
		"pop3pg_sandboxes 1", // this direct login: a bare GET / makes no visitor
		"pop3pg_bulletins 1",
		`pop3pg_lesson_completions_total{lesson="10-ours"} 0`,
	} {
		if !strings.Contains(string(metrics), "\n"+want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	if !strings.Contains(string(metrics), "\ngo_goroutines ") {
		t.Error("metrics lack the Go collector's")
	}
	if m := regexp.MustCompile(`pop3pg_pop3_sent_bytes_total (\d+)`).FindStringSubmatch(string(metrics)); m == nil || m[1] == "0" {
		t.Errorf("octets sent: %v", m)
	}
	// An SMTP session waiting for its next command.
	smtpAddr := regexp.MustCompile(`SMTP on (127\.0\.0\.1:\d+)`).FindStringSubmatch(head)
	if smtpAddr == nil {
		t.Fatal("banner has no SMTP line")
	}
	sc, err := net.Dial("tcp", smtpAddr[1])
	if err != nil {
		t.Fatal(err)
	}
	sr := bufio.NewReader(sc)
	sr.ReadString('\n')
	io.WriteString(sc, "HELO me\r\n")
	sr.ReadString('\n')

	cancel() // as SIGTERM does
	if got, _ := r.ReadString('\n'); !strings.HasPrefix(got, "-ERR [SYS/TEMP] the server is shutting down") {
		t.Errorf("on shutdown the client got %q", got)
	}
	if got, _ := sr.ReadString('\n'); !strings.HasPrefix(got, "421 4.3.2 the server is shutting down") {
		t.Errorf("on shutdown the SMTP client got %q", got)
	}
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
	if strings.Contains(logs.String(), token[1]) {
		t.Errorf("the admin token is in the log:\n%s", logs.String())
	}
}

func TestAdminTokenFlag(t *testing.T) {
	var out bytes.Buffer
	cfg, err := parseConfig([]string{"--admin-token", "a-token-of-20-chars!"}, noEnv, &out)
	if err != nil || cfg.adminToken != "a-token-of-20-chars!" || cfg.tokenGenerated {
		t.Errorf("--admin-token: %+v %v", cfg, err)
	}
	if _, err := parseConfig([]string{"--admin-token", "short"}, noEnv, &out); err == nil {
		t.Error("a short admin token is accepted")
	}
	a, _ := parseConfig(nil, noEnv, &out)
	b, _ := parseConfig(nil, noEnv, &out)
	if !a.tokenGenerated || len(a.adminToken) != 32 || a.adminToken == b.adminToken {
		t.Errorf("generated tokens %q, %q", a.adminToken, b.adminToken)
	}
}

func TestCheck(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--check"}, noEnv, &out, io.Discard); err != nil {
		t.Fatalf("--check on the default world: %v\n%s", err, out.String())
	}
	for _, want := range []string{"guest         7   54859    48959", "2 accounts, 9 messages, 55772 octets", "7 lessons: 01-lab-sheet (4 steps)", "No problems found."} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--check output lacks %q:\n%s", want, out.String())
		}
	}

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "users"), []byte("guest:visitor\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "guest"), 0o755)
	os.WriteFile(filepath.Join(dir, "guest", "1.eml"), []byte("From: a\nnot a header\n\nbody\n"), 0o644)
	out.Reset()
	err := run(context.Background(), []string{"--check", "--mailboxes", dir, "--users", filepath.Join(dir, "users")}, noEnv, &out, io.Discard)
	if err == nil || !strings.Contains(out.String(), "problem: "+filepath.Join(dir, "guest", "1.eml")+":2: malformed header line") {
		t.Errorf("--check on a broken world: %v\n%s", err, out.String())
	}
}

func TestRunRejectsABrokenWorld(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "users"), []byte("guest visitor\n"), 0o644)
	err := run(context.Background(), []string{"--pop3-addr", "127.0.0.1:0", "--lab-pop3-addr", "", "--mailboxes", dir, "--users", filepath.Join(dir, "users")}, noEnv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "users:1: expected name:password") {
		t.Errorf("run on a broken world: %v", err)
	}
}

func TestRunRejectsABrokenLesson(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "10-ours.md"), []byte("---\ntitle: Ours\n---\n## Count\ncheck: ok COUNT\n"), 0o644)
	err := run(context.Background(), []string{"--pop3-addr", "127.0.0.1:0", "--lab-pop3-addr", "", "--http-addr", "", "--lessons", dir}, noEnv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "10-ours.md:5: \"ok COUNT\": the server has no command COUNT") {
		t.Errorf("run with a broken lesson: %v", err)
	}
}

// The README's flag table names every flag, so that it does not drift
// from the binary.
func TestREADMENamesEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var help bytes.Buffer
	parseConfig([]string{"--help"}, noEnv, &help)
	for _, m := range regexp.MustCompile(`(?m)^\s+--([a-z0-9-]+)`).FindAllStringSubmatch(help.String(), -1) {
		if !bytes.Contains(readme, []byte("`--"+m[1])) {
			t.Errorf("README.md does not mention --%s", m[1])
		}
	}
}

// With an organiser's world the built-in lessons, which speak of the
// embedded one, are shown only when asked for, in the order asked; --check
// says where a lesson's buttons name an account or message the world lacks.
func TestLessonsFitTheOrganisersWorld(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "users"), []byte("alice:secret\nguest:visitor\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "guest"), 0o755)
	os.WriteFile(filepath.Join(dir, "guest", "1.eml"), []byte("From: a@example.org\nSubject: one\n\nbody\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "alice"), 0o755)
	world := []string{"--check", "--mailboxes", dir, "--users", filepath.Join(dir, "users")}
	var out bytes.Buffer
	if err := run(context.Background(), world, noEnv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "0 lessons:") || !strings.Contains(out.String(), "No problems found.") {
		t.Errorf("an organiser's world, no lessons asked for:\n%s", out.String())
	}
	out.Reset()
	if err := run(context.Background(), append(world, "--builtin-lessons", "3,1"), noEnv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"2 lessons: 03-peeking (3 steps) 01-lab-sheet (4 steps)",
		"warning: lesson 01-lab-sheet, step 3 (Read message 3): RETR 3 names message 3, and guest has 1",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--builtin-lessons 3,1: the output lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := parseConfig([]string{"--builtin-lessons", "9"}, noEnv, io.Discard); err != nil {
		t.Fatal(err) // the flag is checked when the lessons load
	}
	if err := run(context.Background(), []string{"--check", "--builtin-lessons", "9"}, noEnv, io.Discard, io.Discard); err == nil {
		t.Error("--builtin-lessons 9 was accepted")
	}
}

// The server lab's targets: the organiser's list, else localhost's
// unprivileged ports on a start that serves the page on loopback only,
// else none.
func TestLabTargetsDefault(t *testing.T) {
	for _, tc := range []struct {
		http, list string
		want       int
	}{
		{"localhost:8080", "", 3}, {"127.0.0.1:8080", "", 3}, {"0.0.0.0:8080", "", 0}, {":8080", "", 0},
		{"0.0.0.0:8080", "lab1.example.org:1100-1199,lab2.example.org:110", 2},
	} {
		got := labTargets(&config{httpAddr: tc.http, labTargets: tc.list})
		if len(got) != tc.want {
			t.Errorf("--http-addr %s --lab-targets %q: %v", tc.http, tc.list, got)
		}
	}
}
