package pop3

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// maxDiscard is how much of one overlong line is skipped before the
// connection is closed instead.
const maxDiscard = 64 << 10

// readerPool holds the sessions' read buffers, from accept to close: a
// server that serves thousands of short sessions a second reuses them.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

func (c *conn) releaseReader() {
	c.br.Reset(nil)
	readerPool.Put(c.br)
	c.br = nil
}

// lingeringClose sends FIN, then reads and discards what the client still
// sends for a moment before closing: closing a socket with unread input
// makes the kernel send RST, which can destroy the last reply before the
// client reads it.
func (c *conn) lingeringClose() {
	nc := c.raw
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	if tcp, ok := nc.(*net.TCPConn); ok && !c.srv.inShutdown.Load() {
		if tcp.CloseWrite() == nil {
			tcp.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			io.CopyN(io.Discard, tcp, 256<<10)
		}
	}
	c.raw.Close()
}

// hasPipelinedLine reports whether a whole command line is already buffered,
// so that replies to pipelined commands go out in one write (RFC 2449 §6.6).
func (c *conn) hasPipelinedLine() bool {
	n := c.br.Buffered()
	if n == 0 {
		return false
	}
	b, _ := c.br.Peek(n)
	return bytes.IndexByte(b, '\n') >= 0
}

func (c *conn) flush() error {
	if c.bw != nil {
		if err := c.bw.Flush(); err != nil {
			return err
		}
	}
	return c.out.err
}

// writerPool holds the sessions' write buffers: a session holds one only
// while it has replies to write, not while it waits for its client, so an
// idle session costs no write buffer. At 64 KiB most messages go out with
// their status line and terminating dot in one system call.
var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

// writer is the session's write buffer, taken from the pool if needed.
func (c *conn) writer() *bufio.Writer {
	if c.bw == nil {
		c.bw = writerPool.Get().(*bufio.Writer)
		c.bw.Reset(&c.out)
	}
	return c.bw
}

// releaseWriter gives the write buffer back once it is flushed.
func (c *conn) releaseWriter() {
	if c.bw != nil && c.bw.Buffered() == 0 {
		c.bw.Reset(nil)
		writerPool.Put(c.bw)
		c.bw = nil
	}
}

// readLine reads one line of at most limit octets, line end included, and
// returns it without the line end. A bare LF ends a line too (nc without -C).
func (c *conn) readLine(limit int) (string, error) {
	var deadline time.Time
	if c.srv.IdleTimeout > 0 {
		deadline = time.Now().Add(c.srv.IdleTimeout)
	}
	if login := c.loginDeadline(); !login.IsZero() && (deadline.IsZero() || login.Before(deadline)) {
		deadline = login
	}
	c.raw.SetReadDeadline(deadline)
	// Shutdown sets the flag, then the deadline: checking after setting
	// ours means one of the two always stops the read.
	if c.srv.inShutdown.Load() {
		return "", errShutdown
	}
	line, err := c.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		n := len(line)
		for err == bufio.ErrBufferFull && n < maxDiscard {
			line, err = c.br.ReadSlice('\n')
			n += len(line)
		}
		switch {
		case err == bufio.ErrBufferFull:
			c.traceClient(fmt.Sprintf("(%d octets without a line end)", n))
			return "", errLineFlood
		case err != nil:
			return "", err
		}
		c.traceClient(fmt.Sprintf("(line of %d octets)", n))
		return "", errLineTooLong
	}
	if err != nil {
		return "", err
	}
	if len(line) > limit {
		c.traceClient(fmt.Sprintf("(line of %d octets)", len(line)))
		return "", errLineTooLong
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	} else {
		c.info.BareLF = true
	}
	c.in.lines++
	return lineString(line), nil
}

// lineString is string(b), without an allocation for the commands that
// sessions send bare most often.
func lineString(b []byte) string {
	switch string(b) { // compiled without converting b
	case "STAT":
		return "STAT"
	case "LIST":
		return "LIST"
	case "UIDL":
		return "UIDL"
	case "NOOP":
		return "NOOP"
	case "RSET":
		return "RSET"
	case "QUIT":
		return "QUIT"
	case "CAPA":
		return "CAPA"
	}
	return string(b)
}

func (c *conn) writeLine(s string) {
	w := c.writer()
	w.WriteString(s)
	w.WriteString("\r\n")
}

// countReader counts the octets and lines read from the client.
type countReader struct {
	r     io.Reader
	n     int64
	lines int
}

func (r *countReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	return n, err
}

// outWriter counts the octets written to the client, remembers the first
// write error and passes what it writes to the trace.
type outWriter struct {
	w       io.Writer
	n       int64
	total   *atomic.Int64 // the server's
	err     error
	trace   func([]byte)
	partial []byte // the traced line so far
}

func (w *outWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.w.Write(p)
	w.n += int64(n)
	w.total.Add(int64(n))
	if w.trace != nil {
		w.trace(p[:n])
	}
	if err != nil {
		w.err = err
	}
	return n, err
}
