package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// The canned mode measures the ceiling of this machine: a second process
// that answers the same session with the bytes the server under test gave
// it, precomputed, keeping no state. Runs alternate between the two, so
// both share the machine alike; the ratio of their rates is what the
// server's own work costs.
//
//	pop3bench -addr localhost:65000 -c 64 -d 5s -canned -pid $(pgrep pop3playground)

// canned is a recorded session: the greeting, and each command's whole
// reply by key (cannedKey).
type canned struct {
	greeting []byte
	replies  map[string][]byte
}

// cannedKey is what a command is answered by: the verb, but for RETR and
// TOP, whose replies depend on their arguments, the whole line.
func cannedKey(line []byte) []byte {
	verb, _, _ := bytes.Cut(line, []byte(" "))
	if string(verb) == "RETR" || string(verb) == "TOP" {
		return line
	}
	return verb
}

// record runs one session of cfg against the server under test and keeps
// every reply as it came.
func record(ctx context.Context, cfg *config) (*canned, error) {
	nc, err := dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	r := bufio.NewReader(nc)
	reply := func(multi bool) ([]byte, error) {
		var out []byte
		l, err := r.ReadBytes('\n')
		if err != nil {
			return nil, err
		}
		out = append(out, l...)
		if !multi || !bytes.HasPrefix(l, []byte("+OK")) {
			return out, nil
		}
		for {
			l, err := r.ReadBytes('\n')
			if err != nil {
				return nil, err
			}
			out = append(out, l...)
			if string(l) == ".\r\n" {
				return out, nil
			}
		}
	}
	c := &canned{replies: make(map[string][]byte)}
	if c.greeting, err = reply(false); err != nil {
		return nil, err
	}
	script := []string{"USER " + cfg.userFor(0), "PASS " + cfg.pass, "STAT", "LIST", "UIDL"}
	for _, line := range script {
		if err := exchange(nc, c, line, reply); err != nil {
			return nil, err
		}
	}
	var count int
	fmt.Sscanf(string(c.replies["STAT"]), "+OK %d", &count)
	switch cfg.retr {
	case "none":
	case "all":
		for i := 1; i <= count; i++ {
			script = append(script, "RETR "+strconv.Itoa(i))
		}
	default:
		script = append(script, "RETR "+cfg.retr)
	}
	for _, line := range append(script[5:], "QUIT") {
		if err := exchange(nc, c, line, reply); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func exchange(nc net.Conn, c *canned, line string, reply func(multi bool) ([]byte, error)) error {
	if _, err := io.WriteString(nc, line+"\r\n"); err != nil {
		return err
	}
	verb, _, _ := strings.Cut(line, " ")
	b, err := reply(verb == "LIST" || verb == "UIDL" || verb == "RETR" || verb == "TOP")
	if err != nil {
		return fmt.Errorf("%s: %w", verb, err)
	}
	if !bytes.HasPrefix(b, []byte("+OK")) {
		return fmt.Errorf("%s: server said %q", verb, b)
	}
	c.replies[string(cannedKey([]byte(line)))] = b
	return nil
}

// serveCanned answers every connection on l from c until ctx ends.
func serveCanned(ctx context.Context, l net.Listener, c *canned) error {
	go func() { <-ctx.Done(); l.Close() }()
	for {
		nc, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		go c.serve(nc)
	}
}

var errReply = []byte("-ERR not in the canned session\r\n")

func (c *canned) serve(nc net.Conn) {
	defer nc.Close()
	r := bufio.NewReaderSize(nc, 4096)
	if _, err := nc.Write(c.greeting); err != nil {
		return
	}
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return
		}
		line = bytes.TrimRight(line, "\r\n")
		reply := c.replies[string(cannedKey(line))]
		if reply == nil {
			reply = errReply
		}
		if _, err := nc.Write(reply); err != nil {
			return
		}
		if string(line) == "QUIT" {
			return
		}
	}
}

// runCanned is the child process of -canned: it records a session from
// the server under test, listens on addr and says where on stdout.
func runCanned(ctx context.Context, cfg *config, addr string, stdout io.Writer) error {
	c, err := record(ctx, cfg)
	if err != nil {
		return fmt.Errorf("recording a session from %s: %w", cfg.addr, err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "canned %s\n", l.Addr())
	return serveCanned(ctx, l, c)
}

// startCanned starts the canned server as a child process (so that it
// has a process of its own, as the server under test has) and returns
// its address and process ID.
func startCanned(ctx context.Context, cfg *config) (addr string, pid int, stop func(), err error) {
	exe, err := os.Executable()
	if err != nil {
		return "", 0, nil, err
	}
	cmd := exec.CommandContext(ctx, exe, "-serve-canned", "127.0.0.1:0", "-addr", cfg.addr,
		"-user", cfg.userFor(0), "-pass", cfg.pass, "-retr", cfg.retr)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", 0, nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", 0, nil, err
	}
	stop = func() { cmd.Process.Kill(); cmd.Wait() }
	line, err := bufio.NewReader(out).ReadString('\n')
	if !strings.HasPrefix(line, "canned ") {
		stop()
		return "", 0, nil, fmt.Errorf("the canned server did not start: %q %v", line, err)
	}
	return strings.TrimSpace(strings.TrimPrefix(line, "canned ")), cmd.Process.Pid, stop, nil
}

// cpuSeconds is the CPU time process pid has used (Linux /proc), or -1.
func cpuSeconds(pid int) float64 {
	if pid <= 0 {
		return -1
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return -1
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ is 100 on Linux
}

// compareCanned runs rounds of the benchmark against the server under
// test and the canned server, alternately, and prints both and the ratio.
func compareCanned(ctx context.Context, cfg *config, serverPID, rounds int, stdout io.Writer) error {
	addr, pid, stop, err := startCanned(ctx, cfg)
	if err != nil {
		return err
	}
	defer stop()
	canned := *cfg
	canned.addr, canned.label = addr, "canned answers"
	if cfg.label == "" {
		cfg.label = cfg.addr
	}
	type total struct {
		sessions int
		secs     float64
		cpu      float64
	}
	var sums [2]total
	for round := range rounds {
		for k, c := range []*config{cfg, &canned} {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			p := serverPID
			if k == 1 {
				p = pid
			}
			cpu0 := cpuSeconds(p)
			res := bench(ctx, c)
			cpu1 := cpuSeconds(p)
			fmt.Fprintf(stdout, "round %d: ", round+1)
			res.print(stdout, c)
			sums[k].sessions += res.ok
			sums[k].secs += res.elapsed.Seconds()
			if cpu0 >= 0 && cpu1 >= 0 {
				sums[k].cpu += cpu1 - cpu0
			} else {
				sums[k].cpu = -1
			}
			if res.failed > 0 {
				return fmt.Errorf("%s: %d sessions failed; first error: %v", c.label, res.failed, res.firstErr)
			}
		}
	}
	rate := func(t total) float64 { return float64(t.sessions) / t.secs }
	fmt.Fprintf(stdout, "sessions/s: %s %.0f, canned %.0f: %.2f of the canned rate\n",
		cfg.label, rate(sums[0]), rate(sums[1]), rate(sums[0])/rate(sums[1]))
	if sums[0].cpu > 0 && sums[1].cpu > 0 {
		per := func(t total) float64 { return t.cpu / float64(t.sessions) * 1e6 }
		fmt.Fprintf(stdout, "CPU per session: %s %.0f µs, canned %.0f µs: %.2fx\n", cfg.label, per(sums[0]), per(sums[1]), per(sums[0])/per(sums[1]))
	}
	return nil
}
