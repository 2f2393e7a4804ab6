package pop3_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"

	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/sessions"
)

// benchServer is a Server as cmd/pop3playground runs it: every direct login
// gets a fresh sandbox of the default world; no connection limits.
func benchServer(b *testing.B) string {
	env := testServer(b, func(s *pop3.Server) {
		s.Backend = &sessions.Backend{World: testWorld()}
		s.MaxConns, s.MaxConnsPerIP = 0, 0
	})
	return env.addr
}

// rawClient is a minimal lockstep client for benchmarks.
type rawClient struct {
	conn net.Conn
	r    *bufio.Reader
}

func dialRaw(addr string) (*rawClient, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &rawClient{conn: conn, r: bufio.NewReaderSize(conn, 32<<10)}
	if _, err := c.status(); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func (c *rawClient) status() (string, error) {
	l, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(l, "+OK") {
		return "", fmt.Errorf("server said %q", l)
	}
	return l, nil
}

func (c *rawClient) cmd(line string) error {
	if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
		return err
	}
	_, err := c.status()
	return err
}

// multi sends a command and reads its multi-line reply, returning its size.
func (c *rawClient) multi(line string) (int, error) {
	if err := c.cmd(line); err != nil {
		return 0, err
	}
	n := 0
	for {
		l, err := c.r.ReadSlice('\n')
		n += len(l)
		if err != nil {
			return n, err
		}
		if len(l) == 3 && l[0] == '.' {
			return n, nil
		}
	}
}

// BenchmarkSession runs whole client sessions over loopback: USER, PASS,
// STAT, LIST, UIDL, RETR of all seven messages, QUIT. One op is one session.
func BenchmarkSession(b *testing.B) {
	addr := benchServer(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := benchSession(addr); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func benchSession(addr string) error {
	c, err := dialRaw(addr)
	if err != nil {
		return err
	}
	defer c.conn.Close()
	for _, cmd := range []string{"USER guest", "PASS visitor", "STAT"} {
		if err := c.cmd(cmd); err != nil {
			return err
		}
	}
	for _, cmd := range []string{"LIST", "UIDL", "RETR 1", "RETR 2", "RETR 3", "RETR 4", "RETR 5", "RETR 6", "RETR 7"} {
		if _, err := c.multi(cmd); err != nil {
			return err
		}
	}
	return c.cmd("QUIT")
}

// BenchmarkRETR50K retrieves the default world's 50 KB message again and
// again on one connection: the dot-stuffing write path.
func BenchmarkRETR50K(b *testing.B) {
	addr := benchServer(b)
	c, err := dialRaw(addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.conn.Close()
	if err := c.cmd("USER guest"); err != nil {
		b.Fatal(err)
	}
	if err := c.cmd("PASS visitor"); err != nil {
		b.Fatal(err)
	}
	n, err := c.multi("RETR 6")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.multi("RETR 6"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIdleSessionMemory measures what a logged-in, idle session costs
// the server in heap: it opens sessions in batches and reports bytes/session.
// (Client and server share the process; the client's side is measured once
// alone and subtracted.)
func BenchmarkIdleSessionMemory(b *testing.B) {
	addr := benchServer(b)
	const batch = 200
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	login := func(c *rawClient) error {
		if err := c.cmd("USER guest"); err != nil {
			return err
		}
		return c.cmd("PASS visitor")
	}
	var total float64
	for b.Loop() {
		before := heap()
		conns := make([]*rawClient, 0, batch)
		for range batch {
			c, err := dialRaw(addr)
			if err != nil {
				b.Fatal(err)
			}
			if err := login(c); err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
		}
		after := heap()
		// The client side alone: a bufio.Reader of 32 KiB and a net.Conn each.
		clientSide := uint64(batch) * (32<<10 + 1024)
		total += float64(after-before-min(after-before, clientSide)) / batch
		for _, c := range conns {
			c.conn.Close()
		}
	}
	b.ReportMetric(total/float64(b.N), "heap-bytes/session")
}
