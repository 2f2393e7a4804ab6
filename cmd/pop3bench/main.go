// Command pop3bench is a load generator for POP3 servers: many concurrent
// clients each running whole sessions (log in, STAT, LIST, UIDL, RETR, QUIT)
// in lockstep, as a mail client does. It reports sessions per second,
// session latency percentiles and throughput, so that POP3 Playground can be
// measured side by side with another server (../shared/peers: Dovecot) in one
// run on one machine.
//
//	pop3bench -addr localhost:65000 -user guest -c 16 -d 10s
//	pop3bench -addr 127.0.0.1:11110 -user 'user%d' -users 100 -c 16 -d 10s
//	pop3bench -addr localhost:65000 -c 64 -canned -pid PID
//	pop3bench -web http://localhost:8080 -token TOKEN -visitors 5000 [-open]
//	pop3bench -ws -web http://localhost:8080 -addr localhost:65000 -visitors 1000 -d 10s
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "pop3bench:", err)
		os.Exit(1)
	}
}

type config struct {
	addr     string
	user     string
	users    int
	pass     string
	conc     int
	duration time.Duration
	sessions int
	retr     string
	timeout  time.Duration
	label    string
	// SMTP mode: one message a session from from to rcpt.
	smtp bool
	from string
	rcpt string
	do   func(context.Context, *config, string) (*sessionStats, error)
}

// options are pop3bench's flags.
type options struct {
	cfg         config
	wsMode      bool
	withCanned  bool
	rounds, pid int
	serveCanned string
	vc          visitorsConfig
	wc          wsConfig
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("pop3bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.cfg.addr, "addr", "localhost:65000", "POP3 server `address`")
	fs.StringVar(&o.cfg.user, "user", "guest", "user `name`; with a %d, worker i logs in as fmt.Sprintf(name, i%users+1)")
	fs.IntVar(&o.cfg.users, "users", 1, "how many numbered users a %d in -user ranges over")
	fs.StringVar(&o.cfg.pass, "pass", "visitor", "`password`")
	fs.IntVar(&o.cfg.conc, "c", 8, "concurrent clients")
	fs.DurationVar(&o.cfg.duration, "d", 5*time.Second, "run this long (ignored if -n is set)")
	fs.IntVar(&o.cfg.sessions, "n", 0, "run this many sessions in all, then stop")
	fs.StringVar(&o.cfg.retr, "retr", "all", "messages each session retrieves: all, none, or a message `number`")
	fs.DurationVar(&o.cfg.timeout, "timeout", 10*time.Second, "per-session deadline")
	fs.StringVar(&o.cfg.label, "label", "", "name printed with the results")
	fs.BoolVar(&o.cfg.smtp, "smtp", false, "measure an SMTP server at -addr instead: each session sends one message (EHLO, MAIL, RCPT, DATA, QUIT) from -from to -rcpt")
	fs.StringVar(&o.cfg.from, "from", "bench@example.org", "with -smtp: the envelope sender")
	fs.StringVar(&o.cfg.rcpt, "rcpt", "", "with -smtp: the recipient `address` (the playground's: a personal address from its page or /api/session)")
	fs.BoolVar(&o.withCanned, "canned", false, "also measure a canned-answer server (the machine's ceiling): a child process replaying, with no state, the replies -addr gave one session; runs alternate, and the ratio is printed")
	fs.IntVar(&o.rounds, "rounds", 3, "with -canned: rounds of -d against each server")
	fs.IntVar(&o.pid, "pid", 0, "with -canned or -ws: the process ID of the server at -addr, to compare CPU per session (Linux)")
	fs.StringVar(&o.serveCanned, "serve-canned", "", "run only the canned server on this `address` (the child process of -canned)")
	fs.StringVar(&o.vc.web, "web", "", "the playground's `URL`: measure what visitors cost it (with -visitors) instead of POP3 sessions")
	fs.StringVar(&o.vc.token, "token", "", "the playground's admin `token`, to read its /metrics")
	fs.IntVar(&o.vc.visitors, "visitors", 1000, "with -web: how many visitors to make")
	fs.BoolVar(&o.vc.open, "open", false, "with -web: open a terminal and an event stream for each visitor")
	fs.DurationVar(&o.vc.settle, "settle", 150*time.Second, "with -web: how long to wait for the server's next garbage collection before reading its heap (the runtime runs one at least every 2 minutes)")
	fs.BoolVar(&o.wsMode, "ws", false, "with -web: measure the bridge: -visitors visitors each with a terminal and an event stream, logged in, sending -cmd every -interval for -d; then as many direct clients on -addr")
	fs.DurationVar(&o.wc.interval, "interval", time.Second, "with -ws: each client's pace; 0 for as fast as it can")
	fs.StringVar(&o.wc.cmd, "cmd", "NOOP", "with -ws: the command whose round trip is measured")
	fs.BoolVar(&o.wc.events, "events", true, "with -ws: each visitor also reads an event stream, as the page does")
	fs.StringVar(&o.wc.websockify, "websockify", "", "with -ws -retr: also measure websockify at this ws:// `URL`, bridging to the same listener")
	return o, fs.Parse(args)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	cfg, vc, wc, pid := o.cfg, o.vc, o.wc, o.pid
	withCanned := o.withCanned
	if o.wsMode {
		if vc.web == "" {
			return errors.New("-ws needs -web")
		}
		wc.web, wc.visitors, wc.duration, wc.pid = vc.web, vc.visitors, cfg.duration, pid
		wc.user, wc.pass = cfg.userFor(0), cfg.pass
		wc.addr = cfg.addr
		if cfg.retr != "all" && cfg.retr != "none" {
			wc.retr, _ = strconv.Atoi(cfg.retr)
		}
		return runWS(ctx, wc, stdout)
	}
	if vc.web != "" {
		return runVisitors(ctx, vc, stdout)
	}
	cfg.do = session
	if cfg.smtp {
		if cfg.rcpt == "" {
			return errors.New("-smtp needs -rcpt")
		}
		if withCanned {
			return errors.New("-canned is for POP3")
		}
		cfg.do, cfg.retr = smtpSession, "-"
	}
	if cfg.conc < 1 || cfg.users < 1 {
		return errors.New("-c and -users must be at least 1")
	}
	if cfg.retr != "all" && cfg.retr != "none" && !cfg.smtp {
		if n, err := strconv.Atoi(cfg.retr); err != nil || n < 1 {
			return fmt.Errorf("-retr %q: want all, none or a message number", cfg.retr)
		}
	}
	if o.serveCanned != "" {
		return runCanned(ctx, &cfg, o.serveCanned, stdout)
	}
	// One session first, to fail fast on a wrong address or login.
	if _, err := cfg.do(ctx, &cfg, cfg.userFor(0)); err != nil {
		return fmt.Errorf("first session: %w", err)
	}
	if withCanned {
		if cfg.sessions > 0 {
			return errors.New("-canned runs for -d, not -n sessions")
		}
		return compareCanned(ctx, &cfg, pid, o.rounds, stdout)
	}
	res := bench(ctx, &cfg)
	res.print(stdout, &cfg)
	if res.ok == 0 {
		return fmt.Errorf("no session succeeded; first error: %v", res.firstErr)
	}
	return nil
}

func (c *config) userFor(worker int) string {
	if strings.Contains(c.user, "%d") {
		return fmt.Sprintf(c.user, worker%c.users+1)
	}
	return c.user
}

type result struct {
	ok, failed int
	firstErr   error
	bytes      int64
	commands   int
	latencies  []time.Duration
	elapsed    time.Duration
}

type sessionStats struct {
	commands int
	bytes    int64
}

func bench(ctx context.Context, cfg *config) *result {
	// runCtx only decides when to stop starting sessions; a session under
	// way runs to its end with its own deadline, so the end of the run does
	// not count as failures.
	runCtx := ctx
	if cfg.sessions == 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, cfg.duration)
		defer cancel()
	}
	var (
		mu    sync.Mutex
		res   result
		wg    sync.WaitGroup
		left  = cfg.sessions
		start = time.Now()
	)
	take := func() bool {
		if cfg.sessions == 0 {
			return runCtx.Err() == nil
		}
		mu.Lock()
		defer mu.Unlock()
		left--
		return left >= 0 && runCtx.Err() == nil
	}
	for w := range cfg.conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := cfg.userFor(w)
			var lat []time.Duration
			var ok, failed, cmds int
			var bytes int64
			var firstErr error
			for take() {
				t0 := time.Now()
				st, err := cfg.do(ctx, cfg, user)
				if err != nil {
					if ctx.Err() != nil {
						break // interrupted
					}
					failed++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				lat = append(lat, time.Since(t0))
				ok++
				cmds += st.commands
				bytes += st.bytes
			}
			mu.Lock()
			res.ok += ok
			res.failed += failed
			res.commands += cmds
			res.bytes += bytes
			res.latencies = append(res.latencies, lat...)
			if res.firstErr == nil {
				res.firstErr = firstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return &res
}

func (r *result) print(w io.Writer, cfg *config) {
	slices.Sort(r.latencies)
	pct := func(p float64) time.Duration {
		if len(r.latencies) == 0 {
			return 0
		}
		return r.latencies[min(len(r.latencies)-1, int(p*float64(len(r.latencies))))]
	}
	secs := r.elapsed.Seconds()
	label := cfg.label
	if label == "" {
		label = cfg.addr
	}
	if cfg.smtp {
		fmt.Fprintf(w, "%s: %d messages accepted (%d failed) in %.2fs with %d clients, one message a session\n",
			label, r.ok, r.failed, secs, cfg.conc)
		fmt.Fprintf(w, "  %.0f messages/s  %.0f commands/s\n", float64(r.ok)/secs, float64(r.commands)/secs)
	} else {
		fmt.Fprintf(w, "%s: %d sessions (%d failed) in %.2fs with %d clients, retr=%s\n",
			label, r.ok, r.failed, secs, cfg.conc, cfg.retr)
		fmt.Fprintf(w, "  %.0f sessions/s  %.0f commands/s  %.1f MB/s received\n",
			float64(r.ok)/secs, float64(r.commands)/secs, float64(r.bytes)/secs/1e6)
	}
	fmt.Fprintf(w, "  session latency p50 %v  p90 %v  p99 %v  max %v\n",
		pct(0.50).Round(time.Microsecond), pct(0.90).Round(time.Microsecond),
		pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond))
	if r.firstErr != nil {
		fmt.Fprintf(w, "  first error: %v\n", r.firstErr)
	}
}

// dial connects to cfg.addr for one session: cfg.timeout bounds all of it,
// the connection included.
func dial(ctx context.Context, cfg *config) (net.Conn, error) {
	deadline := time.Now().Add(cfg.timeout)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", cfg.addr)
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(deadline)
	return nc, nil
}

// session runs one POP3 session as a mail client would: greeting, USER,
// PASS, STAT, LIST, UIDL, RETR (as configured) and QUIT, each command waiting
// for its reply.
func session(ctx context.Context, cfg *config, user string) (*sessionStats, error) {
	nc, err := dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	c := &client{r: bufio.NewReaderSize(nc, 32<<10), w: bufio.NewWriter(nc), st: &sessionStats{}}
	if _, err := c.status(); err != nil {
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if _, err := c.cmd("USER " + user); err != nil {
		return nil, err
	}
	if _, err := c.cmd("PASS " + cfg.pass); err != nil {
		return nil, err
	}
	stat, err := c.cmd("STAT")
	if err != nil {
		return nil, err
	}
	var count int
	if _, err := fmt.Sscanf(stat, "+OK %d", &count); err != nil {
		return nil, fmt.Errorf("STAT reply %q: %v", stat, err)
	}
	for _, cmd := range []string{"LIST", "UIDL"} {
		if _, err := c.multi(cmd); err != nil {
			return nil, err
		}
	}
	switch cfg.retr {
	case "none":
	case "all":
		for i := 1; i <= count; i++ {
			if _, err := c.multi("RETR " + strconv.Itoa(i)); err != nil {
				return nil, err
			}
		}
	default:
		if _, err := c.multi("RETR " + cfg.retr); err != nil {
			return nil, err
		}
	}
	if _, err := c.cmd("QUIT"); err != nil {
		return nil, err
	}
	return c.st, nil
}

type client struct {
	r  *bufio.Reader
	w  *bufio.Writer
	st *sessionStats
}

func (c *client) line() (string, error) {
	l, err := c.r.ReadSlice('\n')
	c.st.bytes += int64(len(l))
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(l), "\r\n"), nil
}

func (c *client) status() (string, error) {
	l, err := c.line()
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(l, "+OK") {
		return l, fmt.Errorf("server said %q", l)
	}
	return l, nil
}

func (c *client) cmd(line string) (string, error) {
	c.st.commands++
	c.w.WriteString(line + "\r\n")
	if err := c.w.Flush(); err != nil {
		return "", err
	}
	l, err := c.status()
	if err != nil {
		return l, fmt.Errorf("%s: %w", strings.Fields(line)[0], err)
	}
	return l, nil
}

// multi sends a command with a multi-line reply and reads it to the
// terminating dot, returning the number of data lines.
func (c *client) multi(line string) (int, error) {
	if _, err := c.cmd(line); err != nil {
		return 0, err
	}
	for n := 0; ; n++ {
		l, err := c.r.ReadSlice('\n')
		c.st.bytes += int64(len(l))
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return n, fmt.Errorf("%s: %w", line, err)
		}
		if err == nil && (string(l) == ".\r\n" || string(l) == ".\n") {
			return n, nil
		}
		for errors.Is(err, bufio.ErrBufferFull) { // a line longer than the buffer
			l, err = c.r.ReadSlice('\n')
			c.st.bytes += int64(len(l))
		}
		if err != nil {
			return n, fmt.Errorf("%s: %w", line, err)
		}
	}
}
