// Command pop3check checks a POP3 server against RFC 1939 and its
// extensions (RFC 2449), as h2spec does for HTTP/2: each check PASS,
// FAIL, WARN or SKIP, with the RFC section, the word it rests on (MUST,
// SHOULD, MAY), and for a failure the exchange that showed it.
//
//	go run ./cmd/pop3check pop3://USER:PASS@HOST:PORT
//
// The exit status is 1 when a check fails.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	code, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pop3check:", err)
	}
	os.Exit(code)
}

// A target is the server under test and how to reach it.
type target struct {
	addr, host  string
	user, pass  string
	tls         bool // pop3s: TLS from the first octet
	insecure    bool // do not verify the certificate
	timeout     time.Duration
	destructive bool
	fixture     bool // the maildrop is pop3check's fixture
}

func parseTarget(raw string) (target, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "pop3" && u.Scheme != "pop3s") || u.Host == "" || u.User == nil {
		return target{}, fmt.Errorf("%q: want pop3://USER:PASS@HOST:PORT (or pop3s://)", raw)
	}
	t := target{host: u.Hostname(), user: u.User.Username(), tls: u.Scheme == "pop3s"}
	t.pass, _ = u.User.Password()
	port := u.Port()
	if port == "" {
		port = map[bool]string{false: "110", true: "995"}[t.tls]
	}
	t.addr = net.JoinHostPort(t.host, port)
	return t, nil
}

// A Result is one check's verdict.
type Result struct {
	ID       string   `json:"id"`
	Title    string   `json:"title"`
	RFC      string   `json:"rfc"`
	Word     string   `json:"word"`
	Status   string   `json:"status"`
	Detail   string   `json:"detail,omitempty"`
	Exchange []string `json:"exchange,omitempty"` // for a FAIL or WARN: what was sent and what came back
	Seconds  float64  `json:"seconds"`
}

// A suite runs the checks on one target and keeps what they learn.
type suite struct {
	t        target
	clients  []*client
	caps     map[string]bool
	loggedIn bool
	count    int
	size     int64
	sizes    map[int]int64
	uids     map[int]string
}

// dial opens a connection for the check under way.
func (s *suite) dial() (*client, error) {
	c, err := dial(s.t)
	if err == nil {
		s.clients = append(s.clients, c)
	}
	return c, err
}

// waitUnlocked gives a server a moment to release a maildrop after a
// connection ended; session retries a login refused as in use, too.
func (s *suite) waitUnlocked() { time.Sleep(50 * time.Millisecond) }

func deadline(s *suite) time.Time { return time.Now().Add(s.t.timeout) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("pop3check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	jsonOut := fs.Bool("json", false, "print the results as JSON")
	junit := fs.String("junit", "", "also write the results as JUnit XML to this `file`, for CI")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for each reply")
	insecure := fs.Bool("insecure", false, "with pop3s://, do not verify the server's certificate")
	destructive := fs.Bool("destructive", false, "allow checks that delete a message for good (QUIT after DELE)")
	fixture := fs.Bool("fixture", false, "the account's maildrop is pop3check's fixture (pop3check fixture DIR): compare RETR's octets with it")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pop3check [flags] pop3://USER:PASS@HOST:PORT")
		fmt.Fprintln(stderr, "       pop3check fixture DIR   (writes the known maildrop: DIR/mbox/guest.mbox, DIR/maildir/guest, DIR/users)")
		fs.PrintDefaults()
	}
	if len(args) == 2 && args[0] == "fixture" {
		if err := writeFixture(args[1]); err != nil {
			return 2, err
		}
		fmt.Fprintf(stdout, "wrote %d messages for guest (password visitor) to %s: mbox/guest.mbox, maildir/guest, and users\n", len(fixtureMessages), args[1])
		return 0, nil
	}
	if err := fs.Parse(args); err != nil {
		return 2, nil
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2, nil
	}
	t, err := parseTarget(fs.Arg(0))
	if err != nil {
		return 2, err
	}
	t.timeout, t.insecure, t.destructive, t.fixture = *timeout, *insecure, *destructive, *fixture
	results := runSuite(ctx, t)
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(struct {
			Target  string   `json:"target"`
			Results []Result `json:"results"`
		}{t.addr, results})
	} else {
		printReport(stdout, t, results)
	}
	if *junit != "" {
		if err := writeJUnit(*junit, t, results); err != nil {
			return 2, err
		}
	}
	for _, r := range results {
		if r.Status == Fail {
			return 1, nil
		}
	}
	return 0, nil
}

// runSuite runs every check in order, each on connections of its own.
func runSuite(ctx context.Context, t target) []Result {
	s := &suite{t: t, caps: map[string]bool{}}
	var results []Result
	for _, ch := range checks {
		if ctx.Err() != nil {
			break
		}
		start := time.Now()
		status, detail := ch.run(s)
		r := Result{ID: ch.id, Title: ch.title, RFC: ch.rfc, Word: ch.word, Status: status, Detail: detail,
			Seconds: time.Since(start).Seconds()}
		if status == Fail || status == Warn {
			for _, c := range s.clients {
				r.Exchange = append(r.Exchange, c.log...)
			}
		}
		for _, c := range s.clients {
			c.Close()
		}
		s.clients = nil
		results = append(results, r)
	}
	return results
}

// printReport prints the results as a lab sheet reads: the verdict, the
// RFC clause and its word, the rule; for a failure what was sent, what
// came back and what was expected.
func printReport(w io.Writer, t target, results []Result) {
	fmt.Fprintf(w, "pop3check %s (as %s)\n\n", t.addr, t.user)
	n := map[string]int{}
	for _, r := range results {
		n[r.Status]++
		fmt.Fprintf(w, "%-4s  %-16s %-6s  %s\n", r.Status, r.RFC, r.Word, r.Title)
		if r.Detail != "" && r.Status != Pass {
			fmt.Fprintf(w, "      %s\n", r.Detail)
		}
		for _, l := range r.Exchange {
			fmt.Fprintf(w, "        %s\n", l)
		}
	}
	fmt.Fprintf(w, "\n%d checks: %d passed, %d failed, %d warned, %d skipped\n", len(results), n[Pass], n[Fail], n[Warn], n[Skip])
}
