package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/sessions"
	"github.com/pop3playground/pop3playground/web"
)

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

func TestVisitorsMode(t *testing.T) {
	w, err := sessions.DefaultWorld()
	if err != nil {
		t.Fatal(err)
	}
	vs := sessions.NewVisitors(w)
	srv := pop3.NewServer(&sessions.Backend{World: w, Visitors: vs})
	srv.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	ws := web.New(web.Config{POP3Addr: l.Addr().String(), Visitors: vs, AdminToken: "bench-token-for-the-test", Metrics: reg,
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
