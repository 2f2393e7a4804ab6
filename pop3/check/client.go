package check

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// A client is one connection to the server under test. It records the
// exchange, so that a failed check can show what was sent and what came
// back.
type client struct {
	conn     net.Conn
	r        *bufio.Reader
	timeout  time.Duration
	log      []string // "C: …" and "S: …" lines, the newest last
	Greeting string
}

// maxLog bounds the exchange a client keeps.
const maxLog = 60

// dial connects and reads the greeting.
func dial(t Target) (*client, error) {
	d := net.Dialer{Timeout: t.Timeout}
	var conn net.Conn
	var err error
	if t.TLS {
		conn, err = tls.DialWithDialer(&d, "tcp", t.Addr, &tls.Config{InsecureSkipVerify: t.Insecure, ServerName: t.Host})
	} else {
		conn, err = d.Dial("tcp", t.Addr)
	}
	if err != nil {
		return nil, err
	}
	c := &client{conn: conn, r: bufio.NewReader(conn), timeout: t.Timeout}
	c.Greeting, err = c.line()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("no greeting: %w", err)
	}
	return c, nil
}

func (c *client) note(who, s string) {
	if len(c.log) == maxLog {
		c.log = c.log[1:]
	}
	c.log = append(c.log, who+": "+s)
}

// line reads one line, CRLF removed.
func (c *client) line() (string, error) {
	c.conn.SetReadDeadline(time.Now().Add(c.timeout))
	l, err := c.r.ReadString('\n')
	if err != nil {
		if l != "" {
			c.note("S", strconv.Quote(l)+" (no line end)")
		}
		return "", err
	}
	l = strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r")
	c.note("S", l)
	return l, nil
}

// send writes a line and its CRLF; raw writes octets as they are.
func (c *client) send(line string) error {
	c.note("C", line)
	return c.raw(line + "\r\n")
}

func (c *client) raw(s string) error {
	c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	_, err := io.WriteString(c.conn, s)
	return err
}

// cmd sends a command and returns its status line.
func (c *client) cmd(line string) (string, error) {
	if err := c.send(line); err != nil {
		return "", err
	}
	return c.line()
}

// body reads a multi-line body to its "." line: the lines as sent
// (stuffed), and the octets of the content with the stuffing undone and
// CRLF line ends.
func (c *client) body() (raw []string, content string, err error) {
	var b strings.Builder
	for {
		c.conn.SetReadDeadline(time.Now().Add(c.timeout))
		l, err := c.r.ReadString('\n')
		if err != nil {
			return raw, b.String(), fmt.Errorf("the body ended without its \".\" line: %w", err)
		}
		if !strings.HasSuffix(l, "\r\n") {
			return raw, b.String(), fmt.Errorf("a body line ends with a bare LF: %q", l)
		}
		l = l[:len(l)-2]
		if l == "." {
			c.note("S", ".")
			return raw, b.String(), nil
		}
		if len(raw) < 3 {
			c.note("S", l)
		} else if len(raw) == 3 {
			c.note("S", "…")
		}
		raw = append(raw, l)
		b.WriteString(strings.TrimPrefix(l, "."))
		b.WriteString("\r\n")
	}
}

// multi sends a command whose +OK has a body, and reads it.
func (c *client) multi(line string) (status string, raw []string, content string, err error) {
	status, err = c.cmd(line)
	if err != nil || !ok(status) {
		return status, nil, "", err
	}
	raw, content, err = c.body()
	return status, raw, content, err
}

// login logs in with USER and PASS.
func (c *client) login(user, pass string) error {
	if st, err := c.cmd("USER " + user); err != nil {
		return err
	} else if !ok(st) {
		return errors.New("USER refused: " + st)
	}
	c.note("C", "PASS ****")
	if err := c.raw("PASS " + pass + "\r\n"); err != nil {
		return err
	}
	st, err := c.line()
	if err != nil {
		return err
	}
	if !ok(st) {
		return errors.New("PASS refused: " + st)
	}
	return nil
}

// closed reports whether the server closes the connection (EOF) within
// the timeout.
func (c *client) closed() bool {
	c.conn.SetReadDeadline(time.Now().Add(c.timeout))
	_, err := c.r.ReadByte()
	return errors.Is(err, io.EOF)
}

func (c *client) Close() error { return c.conn.Close() }

func ok(status string) bool { return status == "+OK" || strings.HasPrefix(status, "+OK ") }

func isErr(status string) bool { return status == "-ERR" || strings.HasPrefix(status, "-ERR ") }
