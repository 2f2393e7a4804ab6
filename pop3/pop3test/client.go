package pop3test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pop3playground/pop3playground/pop3"
)

// A Client is a line-level POP3 client for transcripts: it sends lines and
// reads replies as RFC 1939 frames them, and fails its test on anything
// else.
type Client struct {
	T        testing.TB
	Conn     net.Conn
	R        *bufio.Reader
	Greeting string
}

// Dial connects to addr and reads the greeting, whatever it is; the
// connection is closed when the test ends, and every read and write must
// be done within ten seconds.
func Dial(t testing.TB, addr string) *Client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(t, conn)
	c.Greeting = c.ReadLine()
	return c
}

// NewClient is a Client on a connection already made, before its
// greeting.
func NewClient(t testing.TB, conn net.Conn) *Client {
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	return &Client{T: t, Conn: conn, R: bufio.NewReader(conn)}
}

// Send writes a line and its CRLF.
func (c *Client) Send(line string) {
	c.T.Helper()
	if _, err := io.WriteString(c.Conn, line+"\r\n"); err != nil {
		c.T.Fatalf("send %q: %v", line, err)
	}
}

// ReadLine reads a line, which must end with CRLF, and returns it without.
func (c *Client) ReadLine() string {
	c.T.Helper()
	line, err := c.R.ReadString('\n')
	if err != nil {
		c.T.Fatalf("reading a reply: %v (got %q)", err, line)
	}
	if !strings.HasSuffix(line, "\r\n") {
		c.T.Fatalf("reply %q does not end with CRLF", line)
	}
	return strings.TrimSuffix(line, "\r\n")
}

// Cmd sends a command and returns its status line.
func (c *Client) Cmd(line string) string {
	c.T.Helper()
	c.Send(line)
	return c.ReadLine()
}

// Expect sends a command and checks that its status line starts with
// want.
func (c *Client) Expect(line, want string) string {
	c.T.Helper()
	got := c.Cmd(line)
	if !strings.HasPrefix(got, want) {
		c.T.Fatalf("%s: got %q, want %q", line, got, want)
	}
	return got
}

// Do is Expect that also reads the body of a +OK that has one
// (pop3.MultiLine), and returns the body's lines.
func (c *Client) Do(line, want string) []string {
	c.T.Helper()
	if got := c.Expect(line, want); strings.HasPrefix(got, "+OK") && pop3.MultiLine(line) {
		return c.Body()
	}
	return nil
}

// ExpectRe sends a command and matches its status line against re.
func (c *Client) ExpectRe(line, re string) string {
	c.T.Helper()
	got := c.Cmd(line)
	if !regexp.MustCompile(re).MatchString(got) {
		c.T.Fatalf("%s: got %q, want match for %q", line, got, re)
	}
	return got
}

// ExpectLine reads a line that must start with want.
func (c *Client) ExpectLine(want string) string {
	c.T.Helper()
	got := c.ReadLine()
	if !strings.HasPrefix(got, want) {
		c.T.Fatalf("got %q, want %q", got, want)
	}
	return got
}

// Body reads a multi-line body up to its "." line and undoes the
// dot-stuffing.
func (c *Client) Body() []string {
	c.T.Helper()
	var lines []string
	for {
		l := c.ReadLine()
		if l == "." {
			return lines
		}
		lines = append(lines, strings.TrimPrefix(l, "."))
	}
}

// RawBody reads a multi-line body as sent, "." line included.
func (c *Client) RawBody() string {
	c.T.Helper()
	var b strings.Builder
	for {
		l := c.ReadLine()
		b.WriteString(l + "\r\n")
		if l == "." {
			return b.String()
		}
	}
}

// ExpectClosed checks that the server closes the connection.
func (c *Client) ExpectClosed() {
	c.T.Helper()
	if line, err := c.R.ReadString('\n'); err != io.EOF {
		c.T.Fatalf("connection still open: read %q, %v", line, err)
	}
}

// A SyncBuffer is a bytes.Buffer safe for a server's goroutines: a
// server's log in a test.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// WaitFor waits until cond holds, checking it again whenever a little
// time has passed, and fails the test after ten seconds.
func WaitFor(t testing.TB, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// NeedClient returns the path of a real client program (curl, python3),
// or skips the test when the machine has none; with POP3PG_REQUIRE_INTEROP
// set (CI), it fails the test instead.
func NeedClient(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("POP3PG_REQUIRE_INTEROP") != "" {
			t.Fatalf("%s is required for interop tests: %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}
