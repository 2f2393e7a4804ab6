package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// The ws mode measures the web bridge as browsers use it: n visitors,
// each with a terminal (/ws, the cookie handled as the page does) and an
// event stream (/events) read to the end, logged in as a student would,
// each sending a command and waiting for its reply at a steady pace.
// Then as many direct TCP clients do the same on -addr, and the round
// trips are compared. With -retr N it measures the throughput of RETR N
// instead, and -websockify adds websockify on the same listener.
//
//	pop3bench -ws -web http://localhost:8080 -addr localhost:65000 -visitors 1000 -d 10s
//	pop3bench -ws -web http://localhost:8080 -addr localhost:65000 -visitors 8 -retr 6 -websockify ws://localhost:6080/
type wsConfig struct {
	web        string
	addr       string
	visitors   int
	duration   time.Duration
	interval   time.Duration
	user, pass string
	cmd        string
	retr       int
	events     bool
	pid        int
	websockify string
}

// A wsRun is what one kind of client measured.
type wsRun struct {
	name     string
	rtts     []time.Duration
	bytes    int64
	commands int
	elapsed  time.Duration
	cpu      float64 // of the server, seconds; -1 if unknown
	self     float64 // of this load generator
	events   int64   // octets of event stream received meanwhile
}

// eventBytes counts what the visitors' event streams received.
var eventBytes atomic.Int64

type eventCounter struct{}

func (eventCounter) Write(p []byte) (int, error) {
	eventBytes.Add(int64(len(p)))
	return len(p), nil
}

func runWS(ctx context.Context, cfg wsConfig, stdout io.Writer) error {
	u, err := url.Parse(cfg.web)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-web %q: want the playground's URL, e.g. http://localhost:8080", cfg.web)
	}
	what := cfg.cmd + " round trip"
	if cfg.retr > 0 {
		what = fmt.Sprintf("RETR %d throughput", cfg.retr)
	}
	fmt.Fprintf(stdout, "%s, %d clients of each kind, %v each\n", what, cfg.visitors, cfg.duration)
	var runs []*wsRun
	direct := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", cfg.addr)
	}
	if cfg.addr != "" {
		r, err := measure(ctx, cfg, "direct TCP", direct)
		if err != nil {
			return fmt.Errorf("direct TCP: %w", err)
		}
		runs = append(runs, r)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	var streams []net.Conn
	defer func() {
		for _, s := range streams {
			s.Close()
		}
	}()
	var mu sync.Mutex
	bridge := func(ctx context.Context) (net.Conn, error) {
		cookie, err := visitorCookie(client, cfg.web)
		if err != nil {
			return nil, err
		}
		if cfg.events {
			s, err := openRaw(u.Host, "/events", cookie, "", " 200 ")
			if err != nil {
				return nil, fmt.Errorf("event stream: %w", err)
			}
			go io.Copy(eventCounter{}, s) // read as a browser does
			mu.Lock()
			streams = append(streams, s)
			mu.Unlock()
		}
		wsURL := "ws" + strings.TrimPrefix(cfg.web, "http") + "/ws"
		return dialWS(ctx, wsURL, http.Header{"Cookie": {cookie}, "Origin": {cfg.web}})
	}
	name := "through /ws"
	if cfg.events {
		name += " (+ /events)"
	}
	r, err := measure(ctx, cfg, name, bridge)
	if err != nil {
		return fmt.Errorf("bridge: %w", err)
	}
	runs = append(runs, r)

	if cfg.websockify != "" {
		r, err := measure(ctx, cfg, "websockify", func(ctx context.Context) (net.Conn, error) {
			return dialWS(ctx, cfg.websockify, nil)
		})
		if err != nil {
			return fmt.Errorf("websockify: %w", err)
		}
		runs = append(runs, r)
	}
	for _, r := range runs {
		r.print(stdout, cfg)
	}
	base := runs[0]
	for _, r := range runs[1:] {
		if cfg.retr > 0 {
			fmt.Fprintf(stdout, "%s / %s throughput: %.2f\n", r.name, base.name, r.rate()/base.rate())
			continue
		}
		fmt.Fprintf(stdout, "%s / %s: p50 %.2fx, p99 %.2fx\n", r.name, base.name,
			float64(r.pct(0.5))/float64(base.pct(0.5)), float64(r.pct(0.99))/float64(base.pct(0.99)))
	}
	if len(runs) == 3 && cfg.retr > 0 {
		fmt.Fprintf(stdout, "%s / %s throughput: %.2f\n", runs[1].name, runs[2].name, runs[1].rate()/runs[2].rate())
	}
	return nil
}

func dialWS(ctx context.Context, u string, h http.Header) (net.Conn, error) {
	ctx2, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx2, u, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		return nil, err
	}
	// The connection outlives the dial's deadline: it ends with ctx.
	return websocket.NetConn(ctx, c, websocket.MessageBinary), nil
}

// measure connects cfg.visitors clients with dial, logs each in, then
// runs the load for cfg.duration and collects the figures.
func measure(ctx context.Context, cfg wsConfig, name string, dial func(context.Context) (net.Conn, error)) (*wsRun, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	peers := make([]*peer, cfg.visitors)
	defer func() {
		for _, p := range peers {
			if p != nil {
				fmt.Fprint(p.nc, "QUIT\r\n")
				p.nc.Close()
			}
		}
	}()
	if err := connectPeers(ctx, cfg, peers, dial); err != nil {
		return nil, err
	}
	time.Sleep(time.Second) // let the server finish with the setup
	run := &wsRun{name: name}
	cpu0, self0 := cpuSeconds(cfg.pid), cpuSeconds(os.Getpid())
	events0 := eventBytes.Load()
	start := time.Now()
	err := drive(ctx, cfg, peers, start, run)
	run.elapsed = time.Since(start)
	time.Sleep(100 * time.Millisecond) // the last events
	run.events = eventBytes.Load() - events0
	run.cpu, run.self = -1, -1
	if cpu1 := cpuSeconds(cfg.pid); cpu0 >= 0 && cpu1 >= 0 {
		run.cpu = cpu1 - cpu0
	}
	if self1 := cpuSeconds(os.Getpid()); self0 >= 0 && self1 >= 0 {
		run.self = self1 - self0
	}
	if err != nil {
		return nil, err
	}
	slices.Sort(run.rtts)
	return run, nil
}

// A peer is one measured client's connection.
type peer struct {
	nc net.Conn
	r  *bufio.Reader
}

// connectPeers connects and logs in every peer, 32 at a time, so that a
// thousand clients do not all meet the listener's backlog at once.
func connectPeers(ctx context.Context, cfg wsConfig, peers []*peer, dial func(context.Context) (net.Conn, error)) error {
	errs := make(chan error, len(peers))
	sem := make(chan struct{}, 32)
	var setup sync.WaitGroup
	for i := range peers {
		setup.Add(1)
		sem <- struct{}{}
		go func() {
			defer setup.Done()
			defer func() { <-sem }()
			nc, err := dial(ctx)
			if err != nil {
				errs <- fmt.Errorf("client %d: %w", i+1, err)
				return
			}
			peers[i] = &peer{nc: nc, r: bufio.NewReaderSize(nc, 32<<10)}
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			c := &client{r: peers[i].r, w: bufio.NewWriter(nc), st: &sessionStats{}}
			if _, err := c.status(); err != nil {
				errs <- fmt.Errorf("client %d: greeting: %w", i+1, err)
				return
			}
			for _, line := range []string{"USER " + cfg.user, "PASS " + cfg.pass} {
				if _, err := c.cmd(line); err != nil {
					errs <- fmt.Errorf("client %d: %w", i+1, err)
					return
				}
			}
			nc.SetDeadline(time.Time{})
		}()
	}
	setup.Wait()
	close(errs)
	return <-errs
}

// drive has every peer send its command once an interval until the run's
// duration is over, spread over the interval so that the load is steady
// rather than in waves, and adds what they measured to run.
func drive(ctx context.Context, cfg wsConfig, peers []*peer, start time.Time, run *wsRun) error {
	end := start.Add(cfg.duration)
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &client{r: p.r, w: bufio.NewWriter(p.nc), st: &sessionStats{}}
			var rtts []time.Duration
			next := start.Add(time.Duration(i) * cfg.interval / time.Duration(len(peers)))
			var err error
			for time.Now().Before(end) && ctx.Err() == nil {
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
				next = next.Add(cfg.interval)
				p.nc.SetDeadline(time.Now().Add(10 * time.Second))
				t0 := time.Now()
				if cfg.retr > 0 {
					_, err = c.multi("RETR " + strconv.Itoa(cfg.retr))
				} else {
					_, err = c.cmd(cfg.cmd)
				}
				if err != nil {
					break
				}
				rtts = append(rtts, time.Since(t0))
			}
			mu.Lock()
			defer mu.Unlock()
			run.rtts = append(run.rtts, rtts...)
			run.bytes += c.st.bytes
			run.commands += c.st.commands
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}()
	}
	wg.Wait()
	return firstErr
}

func (r *wsRun) pct(p float64) time.Duration {
	if len(r.rtts) == 0 {
		return 0
	}
	return r.rtts[min(len(r.rtts)-1, int(p*float64(len(r.rtts))))]
}

func (r *wsRun) rate() float64 { return float64(r.bytes) / r.elapsed.Seconds() }

func (r *wsRun) print(w io.Writer, cfg wsConfig) {
	fmt.Fprintf(w, "%s: %d commands in %.1fs", r.name, r.commands, r.elapsed.Seconds())
	if cfg.retr > 0 {
		fmt.Fprintf(w, ", %.1f MB/s", r.rate()/1e6)
	}
	fmt.Fprintf(w, "; round trip p50 %v p90 %v p99 %v", r.pct(0.5).Round(time.Microsecond),
		r.pct(0.9).Round(time.Microsecond), r.pct(0.99).Round(time.Microsecond))
	if r.events > 0 && r.commands > 0 {
		fmt.Fprintf(w, "; events %d octets/command", r.events/int64(r.commands))
	}
	if r.cpu >= 0 && r.commands > 0 {
		fmt.Fprintf(w, "; server CPU %.0f µs/command", r.cpu/float64(r.commands)*1e6)
	}
	if r.self >= 0 && r.commands > 0 {
		fmt.Fprintf(w, " (load generator %.0f µs)", r.self/float64(r.commands)*1e6)
	}
	fmt.Fprintln(w)
}
