package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/pop3/limit"
	"github.com/pop3playground/pop3playground/sessions"
	"github.com/pop3playground/pop3playground/web"
)

// TestMain lets the test binary be the canned server's child process, as
// pop3bench is for -canned.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-serve-canned" {
		main()
		return
	}
	os.Exit(m.Run())
}

// -canned records a session from the server, serves it from a child
// process that keeps no state, and compares the two rates.
func TestCannedMode(t *testing.T) {
	w, err := sessions.DefaultWorld()
	if err != nil {
		t.Fatal(err)
	}
	srv := pop3.NewServer(&sessions.Backend{World: w})
	srv.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	c, err := record(context.Background(), &config{addr: l.Addr().String(), user: "guest", pass: "visitor", users: 1, retr: "all", timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.replies) != 13 || !bytes.HasPrefix(c.replies["RETR 7"], []byte("+OK")) || !bytes.HasSuffix(c.replies["LIST"], []byte("\r\n.\r\n")) {
		t.Fatalf("recorded %d replies: %q", len(c.replies), c.replies["LIST"])
	}
	var out, errOut bytes.Buffer
	err = run(context.Background(), []string{"-addr", l.Addr().String(), "-c", "4", "-d", "200ms", "-canned", "-rounds", "1", "-pid", strconv.Itoa(os.Getpid())}, &out, &errOut)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "canned answers: ") || !strings.Contains(out.String(), "of the canned rate") || !strings.Contains(out.String(), "(0 failed)") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestBenchAgainstRealServer(t *testing.T) {
	w, err := sessions.DefaultWorld()
	if err != nil {
		t.Fatal(err)
	}
	srv := pop3.NewServer(&sessions.Backend{World: w})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()

	var out, errOut bytes.Buffer
	err = run(context.Background(), []string{"-addr", l.Addr().String(), "-c", "4", "-n", "40", "-label", "test"}, &out, &errOut)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "test: 40 sessions (0 failed)") {
		t.Errorf("output:\n%s", out.String())
	}

	// A wrong password fails fast, before any load.
	out.Reset()
	err = run(context.Background(), []string{"-addr", l.Addr().String(), "-pass", "wrong", "-n", "5"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "first session: PASS") {
		t.Errorf("wrong password: err %v, want a first-session PASS error", err)
	}
}

// -ws runs the same paced commands through the bridge (with event
// streams) and directly, and compares the round trips.
func TestWSMode(t *testing.T) {
	w, err := sessions.DefaultWorld()
	if err != nil {
		t.Fatal(err)
	}
	vs := sessions.NewVisitors(w)
	srv := pop3.NewServer(&sessions.Backend{World: w, Visitors: vs})
	srv.Observer = vs
	srv.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	l, lb := listen(t), listen(t)
	go srv.Serve(l)
	go srv.ServeProxied(lb, loopback)
	defer srv.Close()
	ws := web.New(web.Config{POP3Addr: lb.Addr().String(), Visitors: vs, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	hs := httptest.NewServer(ws)
	defer func() { ws.CloseStreams(); hs.Close(); ws.Close() }()

	var out, errOut bytes.Buffer
	err = run(context.Background(), []string{"-ws", "-web", hs.URL, "-addr", l.Addr().String(), "-visitors", "4", "-d", "300ms", "-interval", "50ms", "-pid", strconv.Itoa(os.Getpid())}, &out, &errOut)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	for _, want := range []string{"NOOP round trip, 4 clients of each kind", "direct TCP: ", "through /ws (+ /events): ", "octets/command", "through /ws (+ /events) / direct TCP: p50 "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestVisitorsMode(t *testing.T) {
	w, err := sessions.DefaultWorld()
	if err != nil {
		t.Fatal(err)
	}
	vs := sessions.NewVisitors(w)
	srv := pop3.NewServer(&sessions.Backend{World: w, Visitors: vs})
	lb := listen(t)
	go srv.ServeProxied(lb, loopback)
	defer srv.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	ws := web.New(web.Config{POP3Addr: lb.Addr().String(), Visitors: vs, AdminToken: "bench-token-for-the-test", Metrics: reg,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	hs := httptest.NewServer(ws)
	defer func() { ws.CloseStreams(); hs.Close(); ws.Close() }()

	var out, errOut bytes.Buffer
	err = run(context.Background(), []string{"-web", hs.URL, "-token", "bench-token-for-the-test", "-visitors", "20", "-open", "-settle", "0s"}, &out, &errOut)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "20 visitors with a terminal and an event stream made") ||
		!strings.Contains(out.String(), "the server holds 20 more visitors") || !strings.Contains(out.String(), "KiB/visitor") {
		t.Errorf("output:\n%s", out.String())
	}
	if vs.Len() != 20 {
		t.Errorf("%d visitors made, want 20", vs.Len())
	}
	if err := run(context.Background(), []string{"-web", hs.URL, "-token", "wrong", "-visitors", "1", "-settle", "0s"}, &out, &errOut); err == nil {
		t.Error("a wrong token was not reported")
	}
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// -smtp sends one message a session to a real SMTP listener delivering
// into a visitor's sandbox, and counts the accepted ones.
func TestSMTPMode(t *testing.T) {
	w, err := sessions.DefaultWorld()
	if err != nil {
		t.Fatal(err)
	}
	vs := sessions.NewVisitors(w)
	v, err := vs.New("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	d := sessions.NewDelivery(vs, "play.example")
	d.PerVisitor, d.PerAddress = limit.RateLimiter{}, limit.RateLimiter{}
	d.MaxDelivered = 0
	s := gosmtp.NewServer(d)
	s.Domain = "play.example"
	l := listen(t)
	go s.Serve(l)
	defer s.Close()
	var out, errOut bytes.Buffer
	err = run(context.Background(), []string{"-smtp", "-addr", l.Addr().String(), "-rcpt", v.PersonalLogin("guest") + "@play.example", "-c", "4", "-n", "40"}, &out, &errOut)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "40 messages accepted (0 failed)") || !strings.Contains(out.String(), "messages/s") {
		t.Errorf("output:\n%s", out.String())
	}
	if n := len(v.Sandbox.Messages("guest")); n != 7+41 { // and the first, to fail fast
		t.Errorf("%d messages in the sandbox, want 48", n)
	}
	if err := run(context.Background(), []string{"-smtp", "-addr", l.Addr().String(), "-rcpt", "nobody@play.example", "-n", "1"}, &out, &errOut); err == nil || !strings.Contains(err.Error(), "550") {
		t.Errorf("a refused recipient: %v", err)
	}
}
