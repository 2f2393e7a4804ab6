package pop3

import (
	"bufio"
	"bytes"
	"io"
)

// dotWriter writes the body of a multi-line response (RFC 1939 §3): a line
// that begins with "." gets another "." in front, a bare LF becomes CRLF,
// and Close ends an unfinished last line and writes the terminating ".\r\n".
//
// Unlike net/textproto's DotWriter, which goes byte by byte, it passes on
// whole runs of lines that need no change in one Write: a message body is
// large and its dots are rare, and a bufio.Writer hands a run longer than
// its buffer to the connection directly, in one system call.
type dotWriter struct {
	w   *bufio.Writer
	mid bool // inside a line: at least one octet of it has been written
	cr  bool // the last octet written was CR
}

func (d *dotWriter) Write(p []byte) (int, error) {
	run := 0 // p[run:i] is written as it is, later, in one piece
	for i := 0; i < len(p); {
		if !d.mid {
			if p[i] == '.' {
				d.w.Write(p[run:i])
				d.w.WriteByte('.')
				run = i
			}
			d.mid = true
		}
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			d.cr = p[len(p)-1] == '\r'
			break
		}
		j += i
		if hasCR := j > 0 && p[j-1] == '\r' || j == 0 && d.cr; !hasCR {
			d.w.Write(p[run:j])
			d.w.WriteByte('\r')
			run = j
		}
		d.mid, d.cr = false, false
		i = j + 1
	}
	if _, err := d.w.Write(p[run:]); err != nil {
		return run, err
	}
	return len(p), nil
}

// Close ends the body. It does not close or flush the underlying writer.
func (d *dotWriter) Close() error {
	if d.mid {
		if !d.cr {
			d.w.WriteByte('\r')
		}
		d.w.WriteByte('\n')
		d.mid, d.cr = false, false
	}
	_, err := d.w.WriteString(".\r\n")
	return err
}

// copyTop copies the header of the message in r, the blank line after it,
// and at most n lines of its body to w (the TOP command, RFC 1939 §7).
func copyTop(w io.Writer, r io.Reader, n int) error {
	br := bufio.NewReaderSize(r, 4096)
	inHeader := true
	atLineStart := true
	for {
		if !inHeader && atLineStart && n <= 0 {
			return nil
		}
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			if _, werr := w.Write(chunk); werr != nil {
				return werr
			}
			complete := chunk[len(chunk)-1] == '\n'
			if complete {
				blank := len(chunk) == 1 || len(chunk) == 2 && chunk[0] == '\r'
				if inHeader && atLineStart && blank {
					inHeader = false
				} else if !inHeader {
					n--
				}
			}
			atLineStart = complete
		}
		switch err {
		case nil, bufio.ErrBufferFull:
		case io.EOF:
			return nil
		default:
			return err
		}
	}
}
