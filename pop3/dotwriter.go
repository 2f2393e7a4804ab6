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
// Unlike net/textproto's DotWriter, which goes byte by byte, it copies whole
// lines: message bodies are large and their dots rare.
type dotWriter struct {
	w   *bufio.Writer
	mid bool // inside a line: at least one octet of it has been written
	cr  bool // the last octet written was CR
}

func newDotWriter(w *bufio.Writer) *dotWriter { return &dotWriter{w: w} }

func (d *dotWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if !d.mid {
			if p[0] == '.' {
				d.w.WriteByte('.')
			}
			d.mid = true
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			d.w.Write(p)
			d.cr = p[len(p)-1] == '\r'
			break
		}
		hasCR := i > 0 && p[i-1] == '\r' || i == 0 && d.cr
		d.w.Write(p[:i])
		if !hasCR {
			d.w.WriteByte('\r')
		}
		if err := d.w.WriteByte('\n'); err != nil {
			return n - len(p), err
		}
		d.mid, d.cr = false, false
		p = p[i+1:]
	}
	return n, nil
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
