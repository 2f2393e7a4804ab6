package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pop3playground/pop3playground/pop3/pop3test"
	"github.com/pop3playground/pop3playground/sessions"
	"github.com/pop3playground/pop3playground/sessions/storetest"
)

// A replicaProc is a replica of the playground in a process of its own
// (the test binary, as replicaEnv makes it), so that it can be killed.
type replicaProc struct {
	t    *testing.T
	name string
	args []string
	cmd  *exec.Cmd
	exit chan error
}

func (rp *replicaProc) start() {
	rp.t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, rp.args...)...)
	cmd.Env = append(os.Environ(), replicaEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		rp.t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		rp.t.Fatal(err)
	}
	rp.cmd, rp.exit = cmd, make(chan error, 1)
	r := bufio.NewReader(out)
	var banner string
	for !strings.Contains(banner, "SMTP for proxies") {
		line, err := r.ReadString('\n')
		if err != nil {
			rp.t.Fatalf("%s's banner %q: %v", rp.name, banner, err)
		}
		banner += line
	}
	go func() { io.Copy(io.Discard, r); rp.exit <- cmd.Wait() }()
}

// stop sends sig and waits for the process to end.
func (rp *replicaProc) stop(sig syscall.Signal) {
	rp.cmd.Process.Signal(sig)
	select {
	case <-rp.exit:
	case <-time.After(20 * time.Second):
		rp.t.Fatalf("%s did not stop on %v", rp.name, sig)
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// A client session through the balancer, line by line.
type lineConn struct {
	t    *testing.T
	c    net.Conn
	r    *bufio.Reader
	from string // the replica that greeted: its --hostname, from the APOP timestamp
}

func dialFront(t *testing.T, addr string) *lineConn {
	t.Helper()
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.SetDeadline(time.Now().Add(10 * time.Second))
			lc := &lineConn{t: t, c: c, r: bufio.NewReader(c)}
			g := lc.line()
			if m := regexp.MustCompile(`@(r\d)>`).FindStringSubmatch(g); m != nil {
				lc.from = m[1]
				return lc
			}
			c.Close() // a replica the balancer has not yet seen die
		}
		if i == 100 {
			t.Fatalf("no greeting through %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (lc *lineConn) line() string {
	l, _ := lc.r.ReadString('\n')
	return strings.TrimRight(l, "\r\n")
}

func (lc *lineConn) do(cmd, want string) string {
	lc.t.Helper()
	io.WriteString(lc.c, cmd+"\r\n")
	got := lc.line()
	if !strings.HasPrefix(got, want) {
		lc.t.Fatalf("%s on %s: %q, want %q", cmd, lc.from, got, want)
	}
	return got
}

// body reads a multi-line reply's lines.
func (lc *lineConn) body() []string {
	var lines []string
	for l := lc.line(); l != "."; l = lc.line() {
		lines = append(lines, l)
	}
	return lines
}

// Three replicas, as separate processes, on a real redis-server behind
// a real HAProxy (round robin, no stickiness; TCP with PROXY v2 for POP3
// and SMTP, HTTP for the page): every request may land elsewhere, and
// the playground behaves as one. A replica killed with SIGKILL holding a
// maildrop frees it within the lease; a rolling restart of all three
// loses nothing; the store stopped means refusals with words, and a
// store that comes back empty, the words of a restart.
func TestReplicasBehindHAProxy(t *testing.T) {
	haproxy := pop3test.NeedClient(t, "haproxy") // CI installs it and requires it
	redis := storetest.StartRedis(t)
	replicas := make([]*replicaProc, 3)
	var pop3Servers, smtpServers, webServers string
	for i := range replicas {
		name := fmt.Sprintf("r%d", i+1)
		pop3P, smtpP, web := freeAddr(t), freeAddr(t), freeAddr(t)
		replicas[i] = &replicaProc{t: t, name: name, args: []string{
			"--hostname", name, "--store", "redis://" + redis.Addr + "/0", "--admin-token", "replicas-share-this-token",
			"--pop3-addr", "127.0.0.1:0", "--smtp-addr", "127.0.0.1:0", "--http-addr", web,
			"--lab-pop3-addr", "", "--lab-smtp-addr", "",
			"--pop3-proxy-addr", pop3P, "--smtp-proxy-addr", smtpP, "--trusted-proxies", "127.0.0.0/8",
			"--shutdown-timeout", "2s", "--visitor-rate", "0"}}
		replicas[i].start()
		t.Cleanup(func() { replicas[i].cmd.Process.Kill() })
		check := " check inter 200ms fall 1 rise 1"
		pop3Servers += fmt.Sprintf("  server %s %s send-proxy-v2%s\n", name, pop3P, check)
		smtpServers += fmt.Sprintf("  server %s %s send-proxy-v2%s\n", name, smtpP, check)
		webServers += fmt.Sprintf("  server %s %s%s\n", name, web, check)
	}
	frontPOP3, frontSMTP, frontWeb := freeAddr(t), freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf(`global
  maxconn 200
defaults
  timeout connect 2s
  timeout client 60s
  timeout server 60s
frontend pop3
  mode tcp
  bind %s
  default_backend pop3
backend pop3
  mode tcp
  balance roundrobin
%sfrontend smtp
  mode tcp
  bind %s
  default_backend smtp
backend smtp
  mode tcp
  balance roundrobin
%sfrontend web
  mode http
  bind %s
  default_backend web
backend web
  mode http
  balance roundrobin
  option forwardfor
%s`, frontPOP3, pop3Servers, frontSMTP, smtpServers, frontWeb, webServers)
	file := filepath.Join(t.TempDir(), "haproxy.cfg")
	os.WriteFile(file, []byte(cfg), 0o644)
	hp := exec.Command(haproxy, "-db", "-f", file)
	hp.Stdout, hp.Stderr = io.Discard, io.Discard
	if err := hp.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hp.Process.Kill(); hp.Wait() })

	// The page: one browser, every request to the next replica.
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	web := "http://" + frontWeb
	var login, address string
	for i := 0; ; i++ {
		resp, err := hc.Get(web + "/")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			break
		}
		if i == 100 {
			t.Fatalf("the page through HAProxy: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	front := &replicaRun{web: web}
	login, address = front.session(t, hc)
	for range 3 {
		if got, _ := front.session(t, hc); got != login {
			t.Fatalf("the same browser, round robin: %q, then %q", login, got)
		}
	}

	// POP3, round robin: a deletion on one replica is seen on the next two.
	seen := map[string]bool{}
	c := dialFront(t, frontPOP3)
	seen[c.from] = true
	c.do("USER "+login, "+OK")
	c.do("PASS visitor", "+OK "+login+"'s maildrop has 7 messages")
	c.do("DELE 1", "+OK")
	c.do("QUIT", "+OK")
	for range 2 {
		c := dialFront(t, frontPOP3)
		seen[c.from] = true
		c.do("USER "+login, "+OK")
		c.do("PASS visitor", "+OK "+login+"'s maildrop has 6 messages")
		c.do("QUIT", "+OK")
	}
	if len(seen) != 3 {
		t.Errorf("three sessions reached %v, not three replicas", seen)
	}

	// SMTP through the balancer, read through the balancer.
	if err := sendPlain(frontSMTP, address); err != nil {
		t.Fatalf("SMTP through HAProxy: %v", err)
	}

	// The page's own work, each request to the next replica: its event
	// stream on one, the lesson started on the next, its terminal's
	// WebSocket on the third; the lab sheet typed in the terminal ticks
	// the lesson in the stream.
	labSheetThroughTheBalancer(t, hc, web, frontWeb)

	// The lock across replicas, then the holder's replica killed.
	holder := dialFront(t, frontPOP3)
	holder.do("USER "+login, "+OK")
	holder.do("PASS visitor", "+OK "+login+"'s maildrop has 7 messages")
	holder.do("UIDL", "+OK")
	before := holder.body()
	other := dialFront(t, frontPOP3)
	other.do("USER "+login, "+OK")
	other.do("PASS visitor", "-ERR [IN-USE]")
	var dead *replicaProc
	for _, rp := range replicas {
		if rp.name == holder.from {
			dead = rp
		}
	}
	killed := time.Now()
	dead.stop(syscall.SIGKILL)
	var freed time.Duration
	for {
		c := dialFront(t, frontPOP3)
		c.do("USER "+login, "+OK")
		io.WriteString(c.c, "PASS visitor\r\n")
		if got := c.line(); strings.HasPrefix(got, "+OK") {
			freed = time.Since(killed)
			c.do("UIDL", "+OK")
			if after := c.body(); strings.Join(after, ",") != strings.Join(before, ",") {
				t.Errorf("the maildrop after the kill:\n%q\nbefore:\n%q", after, before)
			}
			c.do("QUIT", "+OK")
			break
		} else if !strings.HasPrefix(got, "-ERR [IN-USE]") {
			t.Fatalf("after the kill: %q", got)
		}
		if time.Since(killed) > 15*time.Second {
			t.Fatalf("the lock of a killed replica is held after %v", time.Since(killed))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("the lock of a replica killed with SIGKILL was free after %v (lease %v)", freed.Round(100*time.Millisecond), sessions.LeaseTTL)
	dead.start()

	// A rolling restart of all three: nothing lost.
	for _, rp := range replicas {
		rp.stop(syscall.SIGTERM)
		rp.start()
	}
	c = dialFront(t, frontPOP3)
	c.do("USER "+login, "+OK")
	c.do("PASS visitor", "+OK")
	c.do("UIDL", "+OK")
	if after := c.body(); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("the maildrop after a rolling restart:\n%q\nbefore:\n%q", after, before)
	}
	c.do("QUIT", "+OK")
	if got, _ := front.session(t, hc); got != login {
		t.Errorf("the browser after a rolling restart: %q, was %q", got, login)
	}

	// The store stopped: refusals with words, quickly.
	redis.Stop()
	start := time.Now()
	c = dialFront(t, frontPOP3)
	c.do("USER "+login, "+OK")
	c.do("PASS visitor", "-ERR [SYS/TEMP] the playground's store is not answering")
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the refusal took %v", took)
	}
	resp, err := http.Get(web + "/readyz")
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "store") {
			t.Errorf("/readyz with the store down: %d %q", resp.StatusCode, b)
		}
	}
	// Back, empty: the replicas, not restarted, serve again; the old
	// login is gone as after a restart, and the browser gets a new one.
	redis.Start()
	c = dialFront(t, frontPOP3)
	c.do("USER "+login, "+OK")
	c.do("PASS visitor", "-ERR [AUTH]")
	if got, _ := front.session(t, hc); got == login || got == "" {
		t.Errorf("the browser after the store came back empty: %q (was %q)", got, login)
	}
}

// labSheetThroughTheBalancer does the lab sheet as the page does it, with
// no two of its requests on the same replica.
func labSheetThroughTheBalancer(t *testing.T, hc *http.Client, web, host string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	streaming := &http.Client{Jar: hc.Jar}
	req, _ := http.NewRequestWithContext(ctx, "GET", web+"/events", nil)
	resp, err := streaming.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/events through HAProxy: %v %v", resp, err)
	}
	defer resp.Body.Close()
	ticks := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == "lesson":
				ticks <- strings.TrimPrefix(line, "data: ")
			}
		}
		close(ticks)
	}()

	post, _ := http.NewRequest("POST", web+"/api/lessons/01-lab-sheet/start", nil)
	post.Header.Set("Origin", web)
	if resp, err := hc.Do(post); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("starting the lesson through HAProxy: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	ws, _, err := websocket.Dial(ctx, "ws://"+host+"/ws", &websocket.DialOptions{HTTPClient: hc, HTTPHeader: http.Header{"Origin": {web}}})
	if err != nil {
		t.Fatalf("the terminal through HAProxy: %v", err)
	}
	defer ws.CloseNow()
	go func() { // the terminal's output: read, and let go
		for {
			if _, _, err := ws.Read(ctx); err != nil {
				return
			}
		}
	}()
	for _, line := range []string{"USER guest", "PASS visitor", "LIST", "RETR 3", "QUIT"} {
		if err := ws.Write(ctx, websocket.MessageBinary, []byte(line+"\r\n")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for {
		select {
		case tick, ok := <-ticks:
			if !ok {
				t.Fatal("the event stream ended")
			}
			if strings.Contains(tick, `"lesson":"01-lab-sheet","done":4,`) {
				return
			}
		case <-ctx.Done():
			t.Fatal("the lab sheet done through three replicas never ticked its last step on the page's stream")
		}
	}
}
