package pop3_test

import (
	"bufio"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pop3playground/pop3playground/pop3"
)

// preludeServer is a test server with a port whose Prelude holds the
// greeting back and takes CAPA, STLS and AUTH away before the login (a
// client lab's port, as the playground runs it); it returns that port.
func preludeServer(t *testing.T, delay time.Duration) (*testEnv, string) {
	env := testServer(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go env.srv.ServePrelude(l, func(*pop3.ConnInfo) pop3.Prelude {
		return pop3.Prelude{Delay: delay, Offers: func(verb string) bool {
			return verb != "CAPA" && verb != "STLS" && verb != "AUTH"
		}}
	})
	return env, l.Addr().String()
}

// session dials addr, optionally sends first before reading anything,
// then sends each line after reading the reply to the one before, and
// returns the replies' first lines.
func preludeSession(t *testing.T, addr, first string, lines ...string) []string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	if first != "" {
		io.WriteString(c, first)
	}
	var got []string
	read := func() {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, strings.TrimRight(l, "\r\n"))
	}
	read() // the greeting
	for range strings.Count(first, "\n") {
		read()
	}
	for _, l := range lines {
		io.WriteString(c, l)
		read()
	}
	return got
}

// A Prelude's delay holds the greeting back and tells a client that
// talked before it from one that waited; its Offers take commands away
// before the login, from the replies and from CAPA alike.
func TestPreludeHoldsTheGreetingAndTakesCommandsAway(t *testing.T) {
	env, addr := preludeServer(t, 300*time.Millisecond)

	start := time.Now()
	got := preludeSession(t, addr, "", "CAPA\r\n", "STLS\r\n", "USER guest\r\n", "PASS visitor\r\n", "QUIT\r\n")
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Errorf("greeted after %v, want the 300ms delay", waited)
	}
	for i, want := range []string{"+OK ", "-ERR unknown command \"CAPA\": this server does not offer it", "-ERR unknown command \"STLS\": this server does not offer it", "+OK", "+OK", "+OK"} {
		if !strings.HasPrefix(got[i], want) {
			t.Errorf("reply %d: %q, want %q…", i, got[i], want)
		}
	}
	info := <-env.be.Infos
	if info.SpokeFirst || len(info.Unwaited) > 0 || info.GreetingHeld != 300*time.Millisecond {
		t.Errorf("a client that waited: SpokeFirst %v, Unwaited %q, GreetingHeld %v", info.SpokeFirst, info.Unwaited, info.GreetingHeld)
	}

	// All at once, before the greeting: spoke first, and PASS came
	// before USER's reply.
	preludeSession(t, addr, "USER guest\r\nPASS visitor\r\n", "QUIT\r\n")
	info = <-env.be.Infos
	if !info.SpokeFirst || !slices.Equal(info.Unwaited, []string{"PASS"}) {
		t.Errorf("a client that blasted: SpokeFirst %v, Unwaited %q; want true, [PASS]", info.SpokeFirst, info.Unwaited)
	}
}

// After a CAPA reply that lists PIPELINING, commands sent together are
// not counted against the client (RFC 2449 §6.6).
func TestPipeliningAfterCAPAIsAllowed(t *testing.T) {
	env := testServer(t)
	c, err := net.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	r.ReadString('\n')
	io.WriteString(c, "CAPA\r\n")
	for l, _ := r.ReadString('\n'); l != ".\r\n"; l, _ = r.ReadString('\n') {
	}
	io.WriteString(c, "USER guest\r\nPASS visitor\r\nSTAT\r\nQUIT\r\n")
	io.ReadAll(r)
	info := <-env.be.Infos
	if info.SpokeFirst || len(info.Unwaited) > 0 || info.GreetingHeld != 0 {
		t.Errorf("pipelining after CAPA: SpokeFirst %v, Unwaited %q", info.SpokeFirst, info.Unwaited)
	}
}
