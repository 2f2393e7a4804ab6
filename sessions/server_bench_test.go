// The POP3 server's benchmarks, as cmd/pop3playground runs it: the
// sessions' Backend and Observer, every session logged. They live here
// because that is where both ends meet; pop3's own tests use pop3test.
package sessions

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/pop3playground/pop3playground/pop3"
)

// serveBench starts a Server on loopback with no connection limits, as
// set, and returns its address.
func serveBench(b *testing.B, set func(*pop3.Server)) string {
	s := pop3.NewServer(nil)
	s.MaxConns, s.MaxConnsPerIP = 0, 0
	s.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	set(s)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go s.Serve(l)
	b.Cleanup(func() { s.Close() })
	return l.Addr().String()
}

// benchServer is a Server as cmd/pop3playground runs it: every direct login
// gets a fresh sandbox of the default world.
func benchServer(b *testing.B) string {
	w := loadDefault(b)
	return serveBench(b, func(s *pop3.Server) { s.Backend = &Backend{World: w} })
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
// The server runs as cmd/pop3playground runs it: the visitors' Observer
// sees every event and every session is logged (to io.Discard, formatted).
// allocs/command counts the allocations of both ends, dial and accept
// included, per command; the client allocates next to nothing per command.
func BenchmarkSession(b *testing.B) {
	w := loadDefault(b)
	addr := serveBench(b, func(s *pop3.Server) {
		s.Backend = &Backend{World: w}
		s.Observer = NewVisitors(w)
	})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := &leanClient{r: bufio.NewReaderSize(nil, 32<<10)}
		for pb.Next() {
			if err := c.session(addr); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N*len(sessionScript)), "allocs/command")
}

// sessionScript is BenchmarkSession's session; a true second field means a
// multi-line reply.
var sessionScript = []struct {
	cmd   []byte
	multi bool
}{
	{[]byte("USER guest\r\n"), false}, {[]byte("PASS visitor\r\n"), false}, {[]byte("STAT\r\n"), false},
	{[]byte("LIST\r\n"), true}, {[]byte("UIDL\r\n"), true},
	{[]byte("RETR 1\r\n"), true}, {[]byte("RETR 2\r\n"), true}, {[]byte("RETR 3\r\n"), true}, {[]byte("RETR 4\r\n"), true},
	{[]byte("RETR 5\r\n"), true}, {[]byte("RETR 6\r\n"), true}, {[]byte("RETR 7\r\n"), true},
	{[]byte("QUIT\r\n"), false},
}

// leanClient runs sessionScript, reusing its buffer from session to session.
type leanClient struct{ r *bufio.Reader }

func (c *leanClient) session(addr string) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	c.r.Reset(conn)
	if err := c.status(); err != nil {
		return err
	}
	for _, s := range sessionScript {
		if _, err := conn.Write(s.cmd); err != nil {
			return err
		}
		if err := c.status(); err != nil {
			return err
		}
		for s.multi {
			l, err := c.r.ReadSlice('\n')
			if err != nil && err != bufio.ErrBufferFull {
				return err
			}
			if len(l) == 3 && l[0] == '.' {
				break
			}
		}
	}
	return nil
}

func (c *leanClient) status() error {
	l, err := c.r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if len(l) < 3 || string(l[:3]) != "+OK" {
		return errors.New("server said " + strconv.Quote(string(l)))
	}
	return nil
}

// BenchmarkLoginWorldSize logs in to maildrops of 7 and of 100,000
// messages (USER and PASS; connecting and QUIT are not timed): a login must not
// cost more for a larger maildrop (target: within 2×).
func BenchmarkLoginWorldSize(b *testing.B) {
	for _, n := range []int{7, 100_000} {
		b.Run(fmt.Sprintf("messages=%d", n), func(b *testing.B) {
			w := worldOf(b, n)
			addr := serveBench(b, func(s *pop3.Server) {
				s.Backend = &Backend{World: w}
				s.Observer = NewVisitors(w)
			})
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				c, err := dialRaw(addr)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := c.cmd("USER guest"); err != nil {
					b.Fatal(err)
				}
				if err := c.cmd("PASS visitor"); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				c.cmd("QUIT")
				c.conn.Close()
				b.StartTimer()
			}
		})
	}
}

// worldOf is a world whose guest has n small messages, loaded from an mbox
// as an organiser's would be.
func worldOf(b testing.TB, n int) *World {
	dir := b.TempDir()
	var mbox strings.Builder
	for i := range n {
		fmt.Fprintf(&mbox, "From a@example.org Mon Nov 23 10:00:00 2026\nFrom: a@example.org\nSubject: message %d\n\nHello %d.\n\n", i, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "guest.mbox"), []byte(mbox.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	users := filepath.Join(b.TempDir(), "users")
	if err := os.WriteFile(users, []byte("guest:visitor\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	w, err := LoadDir(dir, users)
	if err != nil {
		b.Fatal(err)
	}
	return w
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
		// Twice: pooled buffers survive one collection (sync.Pool's victim
		// cache) and would be counted before the sessions that take them.
		runtime.GC()
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
