package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"

	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/sessions"
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
