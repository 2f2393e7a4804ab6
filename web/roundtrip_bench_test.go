package web_test

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/web"
)

// BenchmarkRoundTrip is one client sending NOOP and reading its reply, in
// lockstep: directly on the POP3 listener, and through /ws as the page's
// terminal does (with its event stream open, or not). One op is one round
// trip; the ratio of ns/op is what the bridge adds on an idle machine.
func BenchmarkRoundTrip(b *testing.B) {
	noop := func(b *testing.B, rw io.ReadWriter) {
		r := bufio.NewReader(rw)
		for b.Loop() {
			if _, err := io.WriteString(rw, "NOOP\r\n"); err != nil {
				b.Fatal(err)
			}
			l, err := r.ReadSlice('\n')
			if err != nil || !strings.HasPrefix(string(l), "+OK") {
				b.Fatalf("%q %v", l, err)
			}
		}
	}
	b.Run("direct", func(b *testing.B) {
		e := newEnv(b)
		c, err := net.Dial("tcp", e.pop3Addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for _, l := range []string{"", "USER guest\r\n", "PASS visitor\r\n"} {
			io.WriteString(c, l)
			if s, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(s, "+OK") {
				b.Fatalf("%q %v", s, err)
			}
		}
		noop(b, c)
	})
	for _, events := range []bool{false, true} {
		name := "ws"
		if events {
			name = "ws+events"
		}
		b.Run(name, func(b *testing.B) {
			// Lift the bridge's rate limit (16 KiB/s by default), which a
			// client typing as fast as a loop would reach within seconds.
			e := newEnv(b, func(_ *pop3.Server, c *web.Config) { c.BridgeRate, c.BridgeBurst = 1<<30, 1<<30 })
			v := e.visit(b)
			if events {
				resp, err := v.client.Get(e.http.URL + "/events")
				if err != nil {
					b.Fatal(err)
				}
				defer resp.Body.Close()
				go io.Copy(io.Discard, resp.Body) // read as the page does
			}
			tm := v.terminal()
			tm.login()
			tm.nc.SetDeadline(time.Time{})
			noop(b, tm.nc)
		})
	}
}
