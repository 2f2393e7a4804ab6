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
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/pop3playground/pop3playground/pop3/check"
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

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("pop3check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	jsonOut := fs.Bool("json", false, "print the results as JSON")
	junit := fs.String("junit", "", "also write the results as JUnit XML to this `file`, for CI")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for each reply")
	insecure := fs.Bool("insecure", false, "with pop3s://, do not verify the server's certificate")
	destructive := fs.Bool("destructive", false, "allow checks that delete a message for good (QUIT after DELE)")
	slow := fs.Duration("slow", 0, "idle this long in the autologout check (RFC 1939 §3's floor is 10m); 0 skips it")
	second := fs.String("second", "", "a second account, `USER:PASS`, for the checks that need one")
	fixture := fs.Bool("fixture", false, "the account's maildrop is pop3check's fixture (pop3check fixture DIR): compare RETR's octets with it")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pop3check [flags] pop3://USER:PASS@HOST:PORT")
		fmt.Fprintln(stderr, "       pop3check fixture DIR   (writes the known maildrop: DIR/mbox/guest.mbox, DIR/maildir/guest, DIR/users)")
		fs.PrintDefaults()
	}
	if len(args) == 2 && args[0] == "fixture" {
		if err := check.WriteFixture(args[1]); err != nil {
			return 2, err
		}
		fmt.Fprintf(stdout, "wrote %d messages for guest (password visitor) to %s: mbox/guest.mbox, maildir/guest, and users\n", len(check.Fixture()), args[1])
		return 0, nil
	}
	if err := fs.Parse(args); err != nil {
		return 2, nil
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2, nil
	}
	t, err := check.ParseURL(fs.Arg(0))
	if err != nil {
		return 2, err
	}
	t.Timeout, t.Insecure, t.Destructive, t.Fixture, t.Slow = *timeout, *insecure, *destructive, *fixture, *slow
	if *second != "" {
		u, p, ok := strings.Cut(*second, ":")
		if !ok || u == "" {
			return 2, fmt.Errorf("--second %q: want USER:PASS", *second)
		}
		t.User2, t.Pass2 = u, p
	}

	results := check.Run(ctx, t)
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(struct {
			Target  string         `json:"check.Target"`
			Results []check.Result `json:"results"`
		}{t.Addr, results})
	} else {
		printReport(stdout, t, results)
	}
	if *junit != "" {
		if err := writeJUnit(*junit, t, results); err != nil {
			return 2, err
		}
	}
	for _, r := range results {
		if r.Status == check.Fail {
			return 1, nil
		}
	}
	return 0, nil
}

// printReport prints the results as a lab sheet reads: the verdict, the
// RFC clause and its word, the rule; for a failure what was sent, what
// came back and what was expected.
func printReport(w io.Writer, t check.Target, results []check.Result) {
	fmt.Fprintf(w, "pop3check %s (as %s)\n\n", t.Addr, t.User)
	n := map[string]int{}
	for _, r := range results {
		n[r.Status]++
		fmt.Fprintf(w, "%-4s  %-16s %-6s  %s\n", r.Status, r.RFC, r.Word, r.Title)
		if r.Detail != "" && r.Status != check.Pass {
			fmt.Fprintf(w, "      %s\n", r.Detail)
		}
		for _, l := range r.Exchange {
			fmt.Fprintf(w, "        %s\n", l)
		}
	}
	fmt.Fprintf(w, "\n%d checks: %d passed, %d failed, %d warned, %d skipped\n", len(results), n[check.Pass], n[check.Fail], n[check.Warn], n[check.Skip])
}
