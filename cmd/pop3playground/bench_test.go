package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// startRun starts the playground as the binary does, with the default
// flags but for the addresses (a port of the system's choosing) and args,
// and returns its banner, up to the SMTP line.
func startRun(tb testing.TB, args ...string) string { return startRunUntil(tb, "SMTP on ", args...) }

// startRunUntil is startRun, reading the banner up to a line with until.
func startRunUntil(tb testing.TB, until string, args ...string) string {
	banner, _ := startStoppable(tb, until, args...)
	return banner
}

// startStoppable is startRunUntil that also returns a function that
// stops the playground (as SIGTERM does) and waits for it.
func startStoppable(tb testing.TB, until string, args ...string) (banner string, stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	args = append([]string{"--pop3-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--smtp-addr", "127.0.0.1:0", "--lab-pop3-addr", "127.0.0.1:0", "--lab-smtp-addr", "127.0.0.1:0"}, args...)
	go func() {
		done <- run(ctx, args, noEnv, pw, io.Discard)
		pw.Close()
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	tb.Cleanup(stop)
	r := bufio.NewReader(pr)
	for !strings.Contains(banner, until) {
		line, err := r.ReadString('\n')
		if err != nil {
			tb.Fatalf("banner %q: %v", banner, err)
		}
		banner += line
	}
	go io.Copy(io.Discard, r)
	return banner, stop
}

func bannerAddr(tb testing.TB, banner, pattern string) string {
	tb.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(banner)
	if m == nil {
		tb.Fatalf("banner has no %s:\n%s", pattern, banner)
	}
	return m[1]
}

// BenchmarkSessionsFromLoopback is what the lab machine's own clients get
// on a default start: 8 clients on loopback doing whole POP3 sessions
// (USER, PASS, STAT, RETR 1, QUIT), and sending one message a session
// over SMTP. It reports sessions/s and messages/s. (Before the public
// listeners stopped waiting for PROXY headers: 26 sessions/s.) The SMTP
// figure is taken with its rate limits and the sandbox's 200 messages
// off: by default one address may send 60 messages, then one a second, and
// one visitor receive 20, then one every 5 s.
func BenchmarkSessionsFromLoopback(b *testing.B) {
	banner := startRun(b, "--smtp-rate", "0", "--smtp-visitor-rate", "0", "--smtp-max-delivered", "0")
	pop3Addr := bannerAddr(b, banner, `POP3 on (\S+)`)
	smtpAddr := bannerAddr(b, banner, `SMTP on (\S+)`)
	web := bannerAddr(b, banner, `web playground on (\S+)`)
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	for _, p := range []string{"/", "/api/session"} {
		resp, err := hc.Get(web + p)
		if err != nil {
			b.Fatal(err)
		}
		if p == "/api/session" {
			var s struct{ Address string }
			json.NewDecoder(resp.Body).Decode(&s)
			if s.Address == "" {
				b.Fatal("no personal address")
			}
			web = s.Address
		}
		resp.Body.Close()
	}
	rcpt := web
	b.Run("pop3", func(b *testing.B) {
		parallel8(b, func() error { return pop3Session(pop3Addr) })
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sessions/s")
	})
	b.Run("smtp", func(b *testing.B) {
		parallel8(b, func() error { return smtpSend(smtpAddr, rcpt) })
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "messages/s")
	})
}

// parallel8 runs f b.N times over 8 clients.
func parallel8(b *testing.B, f func() error) {
	var wg sync.WaitGroup
	work := make(chan struct{})
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				if err := f(); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	for range b.N {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
}

// transcript sends each line after reading the reply before it (the
// greeting first) and checks each reply's first octet.
func transcript(addr string, want byte, lines ...string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	read := func(what string) error {
		for first := true; ; first = false {
			l, err := r.ReadString('\n')
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			if first && (l[0] == '-' || l[0] == '4' || l[0] == '5') {
				return fmt.Errorf("%s: %q", what, l)
			}
			multi := strings.HasPrefix(what, "RETR")
			if want == '+' && (!multi || l == ".\r\n") || want != '+' && (len(l) < 4 || l[3] != '-') {
				return nil
			}
		}
	}
	if err := read("greeting"); err != nil {
		return err
	}
	for _, l := range lines {
		if _, err := io.WriteString(c, l+"\r\n"); err != nil {
			return err
		}
		if strings.HasPrefix(l, "Subject:") { // DATA's content: one reply at its end
			continue
		}
		if err := read(l); err != nil {
			return err
		}
	}
	return nil
}

func pop3Session(addr string) error {
	return transcript(addr, '+', "USER guest", "PASS visitor", "STAT", "RETR 1", "QUIT")
}

func smtpSend(addr, rcpt string) error {
	return transcript(addr, '2', "EHLO bench", "MAIL FROM:<bench@example.org>", "RCPT TO:<"+rcpt+">", "DATA",
		"Subject: bench\r\n\r\nhello", ".", "QUIT")
}
