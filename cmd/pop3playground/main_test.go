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
		{"stray"},
	} {
		if _, err := parseConfig(args, noEnv, io.Discard); err == nil {
			t.Errorf("parseConfig(%q) accepted", args)
		}
	}
}

func TestRunServesAndShutsDownOnSignal(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	lessons := t.TempDir()
	os.WriteFile(filepath.Join(lessons, "10-ours.md"), []byte("---\ntitle: Our own lesson\n---\n## Count\ncheck: ok STAT\n\nType `STAT`.\n"), 0o644)
	go func() {
		done <- run(ctx, []string{"--pop3-addr", "127.0.0.1:0", "--pop3s-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--lessons", lessons}, noEnv, pw, io.Discard)
		pw.Close()
	}()
	banner := bufio.NewReader(pr)
	var err error
	var head, line string
	for !strings.HasPrefix(line, "World:") {
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
	resp, err := http.Get(webURL[1] + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	// The organiser's lesson is on the page, after the built-in ones.
	resp, err = http.Get(webURL[1] + "/")
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
	io.WriteString(conn, "USER guest\r\nPASS visitor\r\n")
	r.ReadString('\n')
	if got, _ := r.ReadString('\n'); !strings.HasPrefix(got, "+OK guest's maildrop has 7 messages") {
		t.Fatalf("login: %q", got)
	}
	cancel() // as SIGTERM does
	if got, _ := r.ReadString('\n'); !strings.HasPrefix(got, "-ERR [SYS/TEMP] the server is shutting down") {
		t.Errorf("on shutdown the client got %q", got)
	}
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}

func TestRunRejectsABrokenWorld(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "users"), []byte("guest visitor\n"), 0o644)
	err := run(context.Background(), []string{"--pop3-addr", "127.0.0.1:0", "--mailboxes", dir, "--users", filepath.Join(dir, "users")}, noEnv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "users:1: expected name:password") {
		t.Errorf("run on a broken world: %v", err)
	}
}

func TestRunRejectsABrokenLesson(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "10-ours.md"), []byte("---\ntitle: Ours\n---\n## Count\ncheck: ok COUNT\n"), 0o644)
	err := run(context.Background(), []string{"--pop3-addr", "127.0.0.1:0", "--http-addr", "", "--lessons", dir}, noEnv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "10-ours.md:5: \"ok COUNT\": the server has no command COUNT") {
		t.Errorf("run with a broken lesson: %v", err)
	}
}
