package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pop3playground/pop3playground/pop3/pop3test"
)

// A real HAProxy in front: its PROXY v2 header reaches the playground on
// --pop3-proxy-addr and --smtp-proxy-addr, the clients behind it are
// served, and HAProxy pointed at the public port by mistake gets words.
// (Both sides are on loopback here, so the client address the header names
// is 127.0.0.1 too: what this shows is HAProxy's header, accepted.)
func TestHAProxyInFront(t *testing.T) {
	haproxy := pop3test.NeedClient(t, "haproxy") // CI installs it and requires it
	free := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	pop3Proxy, smtpProxy := free(), free()
	banner := startRunUntil(t, "SMTP for proxies", "--pop3-proxy-addr", pop3Proxy, "--smtp-proxy-addr", smtpProxy, "--trusted-proxies", "127.0.0.0/8")
	if !strings.Contains(banner, "POP3 for proxies on "+pop3Proxy) || !strings.Contains(banner, "SMTP for proxies on "+smtpProxy) {
		t.Fatalf("banner:\n%s", banner)
	}
	public := bannerAddr(t, banner, `POP3 on (\S+)`)
	front, smtpFront, wrong := free(), free(), free()
	cfg := fmt.Sprintf(`global
  maxconn 100
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend pop3
  bind %s
  default_backend playground
backend playground
  server p1 %s send-proxy-v2
frontend smtp
  bind %s
  default_backend playground_smtp
backend playground_smtp
  server s1 %s send-proxy-v2
frontend wrong
  bind %s
  default_backend public
backend public
  server w1 %s send-proxy-v2
`, front, pop3Proxy, smtpFront, smtpProxy, wrong, public)
	file := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(haproxy, "-db", "-f", file)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	dial := func(addr string) (net.Conn, *bufio.Reader) {
		for i := 0; ; i++ { // until HAProxy listens
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.SetDeadline(time.Now().Add(10 * time.Second))
				return c, bufio.NewReader(c)
			}
			if i == 100 {
				t.Fatalf("HAProxy on %s: %v", addr, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	c, r := dial(front)
	if g, _ := r.ReadString('\n'); !strings.HasPrefix(g, "+OK POP3 Playground ready") {
		t.Fatalf("through HAProxy: %q", g)
	}
	io.WriteString(c, "USER guest\r\nPASS visitor\r\nQUIT\r\n")
	r.ReadString('\n')
	if got, _ := r.ReadString('\n'); !strings.HasPrefix(got, "+OK guest's maildrop has 7 messages") {
		t.Errorf("login through HAProxy: %q", got)
	}
	c.Close()

	c, r = dial(smtpFront)
	if g, _ := r.ReadString('\n'); !strings.HasPrefix(g, "220 ") {
		t.Errorf("SMTP through HAProxy: %q", g)
	}
	c.Close()

	c, r = dial(wrong)
	defer c.Close()
	r.ReadString('\n') // the greeting: the public port greets at once
	if got, _ := r.ReadString('\n'); !strings.HasPrefix(got, "-ERR [SYS/PERM] PROXY header refused: this port serves POP3 clients directly") {
		t.Errorf("HAProxy at the public port: %q", got)
	}
}
