package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pop3playground/pop3playground/pop3/pop3test"
)

// childEnv, when set, makes the test binary the playground itself, with
// the descriptor limit it names: a child process whose limit the test
// can lower without lowering its own.
const childEnv = "POP3PG_TEST_CHILD_NOFILE"

// replicaEnv, when set, makes the test binary the playground itself,
// with the arguments after "--", stopped by SIGTERM as the binary is: a
// replica the test can kill (replicas_e2e_test.go).
const replicaEnv = "POP3PG_TEST_REPLICA"

func TestMain(m *testing.M) {
	if os.Getenv(replicaEnv) != "" {
		args := os.Args[slices.Index(os.Args, "--")+1:]
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		defer stop()
		if err := run(ctx, args, noEnv, os.Stdout, os.Stderr); err != nil {
			os.Stderr.WriteString("run: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	if n := os.Getenv(childEnv); n != "" {
		var lim uint64
		for _, d := range n {
			lim = lim*10 + uint64(d-'0')
		}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: lim, Max: lim}); err != nil {
			os.Stderr.WriteString("setrlimit: " + err.Error() + "\n")
			os.Exit(2)
		}
		ctx, stop := context.WithTimeout(context.Background(), 60*time.Second)
		defer stop()
		if err := run(ctx, os.Args[len(os.Args)-10:], noEnv, os.Stdout, os.Stderr); err != nil {
			os.Stderr.WriteString("run: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestBudgetFollowsTheDescriptorLimit(t *testing.T) {
	b := newBudget(1024)
	if b.maxConns+b.httpConns+fixedDescriptors != 1024 || b.maxVisitors != (1024-fixedDescriptors)/descriptorsPerVisitor {
		t.Errorf("newBudget(1024) = %+v", b)
	}
	if b := newBudget(1 << 20); b.maxVisitors != capVisitors || b.maxConns != capConns {
		t.Errorf("newBudget(1M) = %+v: want the caps", b)
	}
	cfg, err := parseConfigBudget(nil, noEnv, io.Discard, newBudget(1024))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.maxVisitors != 224 || cfg.maxConns != 224 || cfg.maxConnsPerIP < cfg.maxVisitorsPerIP {
		t.Errorf("defaults at 1024 descriptors: %d visitors, %d POP3 sessions, %d per address for %d visitors per address",
			cfg.maxVisitors, cfg.maxConns, cfg.maxConnsPerIP, cfg.maxVisitorsPerIP)
	}
}

// With a low descriptor limit, a crowd gets polite refusals (-ERR
// [SYS/TEMP], HTTP 503) before the process runs out of descriptors, and
// /healthz, /readyz and /metrics keep answering.
func TestLowDescriptorLimitRefusesPolitely(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	const limit = 256 // budget: 32 POP3 sessions, 96 HTTP connections (32 kept in reserve)
	cmd := exec.Command(os.Args[0], "-test.run=^$", "--pop3-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--smtp-addr", "127.0.0.1:0", "--lab-pop3-addr", "127.0.0.1:0", "--lab-smtp-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), childEnv+"=256")
	var stderr pop3test.SyncBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
	r := bufio.NewReader(out)
	var head string
	for !strings.HasPrefix(head, "World:") && !strings.Contains(head, "\nWorld:") {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("banner: %v\n%s\n%s", err, head, stderr.String())
		}
		head += line
	}
	go io.Copy(io.Discard, r)
	pop3Addr := regexp.MustCompile(`POP3 on (\S+)`).FindStringSubmatch(head)[1]
	webURL := regexp.MustCompile(`web playground on (\S+)`).FindStringSubmatch(head)[1]
	token := regexp.MustCompile(`\(token ([0-9a-f]{32});`).FindStringSubmatch(head)[1]
	_, webPort, _ := net.SplitHostPort(strings.TrimPrefix(webURL, "http://"))
	webAddr := "127.0.0.1:" + webPort

	// POP3: more direct clients than the budget's 32 sessions.
	var greeted, full int
	for range 40 {
		c, err := net.Dial("tcp", pop3Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "CAPA\r\n") // not silent: no wait for a PROXY header
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		switch {
		case err != nil:
			t.Fatalf("POP3 connection: %v", err)
		case strings.HasPrefix(line, "+OK"):
			greeted++
		case strings.HasPrefix(line, "-ERR [SYS/TEMP] the server is full"):
			full++
		default:
			t.Fatalf("POP3 connection got %q", line)
		}
	}
	if greeted != 32 || full != 8 {
		t.Errorf("%d POP3 sessions greeted, %d refused; want 32 and 8", greeted, full)
	}

	// HTTP: connections that hold on (idle, never a request) past the
	// ordinary share.
	for range 80 {
		c, err := net.Dial("tcp", webAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	time.Sleep(100 * time.Millisecond)
	get := func(path string, hdr ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", webURL+path, nil)
		if len(hdr) == 2 {
			req.Header.Set(hdr[0], hdr[1])
		}
		req.Close = true
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/", "Accept", "text/html"); code != http.StatusServiceUnavailable || !strings.Contains(body, "out of connections") {
		t.Errorf("GET / with the budget spent: %d %.200q", code, body)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, _ := get(p); code != http.StatusOK {
			t.Errorf("GET %s with the budget spent: %d", p, code)
		}
	}
	code, metrics := get("/metrics", "Authorization", "Bearer "+token)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics with the budget spent: %d", code)
	}
	for _, want := range []string{
		`pop3pg_pop3_refused_total{reason="full"} 8`,
		`pop3pg_http_refused_total{reason="descriptors",what="request"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(stderr.String(), "too many open files") {
		t.Errorf("the process ran out of descriptors:\n%s", stderr.String())
	}
}

// The trace is cut at --trace-max-bytes: one rotated file kept, records
// never split.
func TestTraceRotates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trace.jsonl")
	f, err := openRotating(path, 1000)
	if err != nil {
		t.Fatal(err)
	}
	rec := []byte(`{"from":"client","line":"` + strings.Repeat("x", 70) + `"}` + "\n") // 100 octets
	for range 55 {
		if _, err := f.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	for _, p := range []string{path, path + ".1"} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 1000 || len(b)%len(rec) != 0 {
			t.Errorf("%s holds %d octets: want at most 1000, whole records", p, len(b))
		}
	}
	if _, err := os.Stat(path + ".2"); err == nil {
		t.Error("more than one rotated file kept")
	}
}

// The Host check is on whenever the names people use are known: a
// listener on one host, or a public host or origins configured.
func TestAnyHostOnlyWhenNothingNamesTheHost(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{nil, false}, // localhost:8080
		{[]string{"--http-addr", ":8080"}, true},
		{[]string{"--http-addr", "0.0.0.0:8080"}, true},
		{[]string{"--http-addr", ":8080", "--public-host", "pop.example.org"}, false},
		{[]string{"--http-addr", "[::]:8080", "--origins", "class.example.org"}, false},
		{[]string{"--http-addr", "192.0.2.7:8080"}, false},
	} {
		cfg, err := parseConfigBudget(tc.args, noEnv, io.Discard, newBudget(1024))
		if err != nil {
			t.Fatal(err)
		}
		if got := anyHost(cfg); got != tc.want {
			t.Errorf("anyHost(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

// The binary's SMTP listener: in the banner, refusing a relay, and
// bounded in connections per address.
func TestRunServesSMTP(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--pop3-addr", "127.0.0.1:0", "--http-addr", "", "--smtp-addr", "127.0.0.1:0", "--lab-pop3-addr", "", "--mail-domain", "class.example", "--smtp-max-conns-per-ip", "5"}, noEnv, pw, io.Discard)
		pw.Close()
	}()
	r := bufio.NewReader(pr)
	var addr string
	for addr == "" {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("banner: %v", err)
		}
		if m := regexp.MustCompile(`^SMTP on (\S+) delivers to personal addresses NAME\.ID@class\.example`).FindStringSubmatch(line); m != nil {
			addr = m[1]
		}
	}
	go io.Copy(io.Discard, r)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	cr := bufio.NewReader(c)
	io.WriteString(c, "HELO me\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<someone@gmail.com>\r\nQUIT\r\n")
	var replies []string
	for {
		l, err := cr.ReadString('\n')
		if err != nil {
			break
		}
		replies = append(replies, strings.TrimSpace(l))
	}
	if len(replies) < 4 || !strings.HasPrefix(replies[0], "220 ") || !strings.HasPrefix(replies[3], "550 5.7.1 someone@gmail.com: this server delivers only to playground addresses") {
		t.Errorf("SMTP replies %q", replies)
	}
	c.Close()
	// More than --smtp-max-conns-per-ip at once from one address: the
	// next is told 421, loopback or not.
	var held []net.Conn
	for range 5 {
		h, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		held = append(held, h)
	}
	time.Sleep(50 * time.Millisecond)
	x, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	x.SetDeadline(time.Now().Add(5 * time.Second))
	if l, _ := bufio.NewReader(x).ReadString('\n'); !strings.HasPrefix(l, "421 4.7.0 too many connections") {
		t.Errorf("one more SMTP connection: %q", l)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}
