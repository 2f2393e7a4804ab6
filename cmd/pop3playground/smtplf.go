// smtplf.go: line ends on the SMTP edge: the bare LF the client lab
// notes, and the rewriting that lets a typed-by-hand session end DATA.

package main

import "bytes"

// noteBareLF remembers whether the client ended a line with LF alone,
// for the client lab (sessions.BareLFer).
func (c *smtpConn) noteBareLF(p []byte) {
	for i := bytes.IndexByte(p, '\n'); i >= 0 && !c.bareLF.Load(); {
		if i == 0 && !c.lastCR || i > 0 && p[i-1] != '\r' {
			c.bareLF.Store(true)
		}
		j := bytes.IndexByte(p[i+1:], '\n')
		if j < 0 {
			break
		}
		i += j + 1
	}
	c.lastCR = p[len(p)-1] == '\r'
}

// BareLF reports whether the client has ended a line with LF alone.
func (c *smtpConn) BareLF() bool { return c.bareLF.Load() }

// An lfRewriter turns a bare-LF client's line ends into CRLF: a student
// typing into nc without -C can end DATA with "." and Enter. It stays on
// only while the client has sent no CR at all, so that mixed input never
// ends DATA on <LF>.<LF> (the SMTP smuggling pattern), and stops for good
// at STARTTLS and BDAT, after which octets are not lines.
type lfRewriter struct {
	off  bool
	line []byte // the start of the current line, up to 9 octets
}

func (w *lfRewriter) active() bool { return !w.off }

// rewrite returns p with bare LFs made CRLF, split into what fits in
// len(p) and the rest.
func (w *lfRewriter) rewrite(p []byte) (fits, rest []byte) {
	if bytes.IndexByte(p, '\n') < 0 && bytes.IndexByte(p, '\r') < 0 {
		w.remember(p)
		return p, nil
	}
	out := make([]byte, 0, len(p)+8)
scan:
	for i, b := range p {
		switch b {
		case '\r':
			w.off = true
			out = append(out, p[i:]...)
			break scan
		case '\n':
			out = append(out, '\r', '\n')
			if startsCommand(w.line, "STARTTLS") || startsCommand(w.line, "BDAT ") {
				w.off = true
				out = append(out, p[i+1:]...)
				break scan
			}
			w.line = w.line[:0]
		default:
			out = append(out, b)
			w.remember(p[i : i+1])
		}
	}
	if len(out) <= len(p) {
		return out, nil
	}
	return out[:len(p)], out[len(p):]
}

func (w *lfRewriter) remember(p []byte) {
	if n := 9 - len(w.line); n > 0 {
		w.line = append(w.line, p[:min(n, len(p))]...)
	}
}

func startsCommand(line []byte, verb string) bool {
	return len(line) >= len(verb) && bytes.EqualFold(line[:len(verb)], []byte(verb))
}
