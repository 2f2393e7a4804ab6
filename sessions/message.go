package sessions

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"strconv"
	"strings"
)

// A Message is one message of the world: read once, CRLF line ends,
// immutable, shared by every sandbox.
type Message struct {
	// The content is head followed by data. head is nil but for a
	// bulletin's copy, whose own header goes before a body (data) shared
	// with every other copy.
	head    []byte
	data    []byte
	uid     string
	Subject string // decoded (RFC 2047), for display
	From    string // decoded, for display
	Source  string // the file it came from, with its line in an mbox
	// ref names a message that arrived in a sandbox, in a Store
	// (SandboxState.Extra); empty for the world's.
	ref string
}

// Size is the message's size in octets, as RETR sends it before dot-stuffing.
func (m *Message) Size() int64 { return int64(len(m.head) + len(m.data)) }

// UID is the message's unique-id (UIDL): stable across sessions and restarts.
func (m *Message) UID() string { return m.uid }

// Reader returns the message's content.
func (m *Message) Reader() io.Reader {
	if m.head == nil {
		return bytes.NewReader(m.data)
	}
	return io.MultiReader(bytes.NewReader(m.head), bytes.NewReader(m.data))
}

// parseMbox splits an mbox file at its "From " lines and undoes mboxrd
// quoting (">From " back to "From ").
func parseMbox(data []byte, file string) ([]*Message, error) {
	var msgs []*Message
	// A message is a slice of data, from the line after its "From " line
	// to the next one: no copy is made until newMessage normalises its
	// line ends (one allocation of the right size), unless a quoted
	// ">From " line has to lose a ">".
	begin, startLine, lineNo, quoted := -1, 0, 0, false
	pos := 0
	flush := func(end int) error {
		if begin < 0 {
			return nil
		}
		cur := data[begin:end]
		// The blank line before the next "From " belongs to the mbox.
		cur = bytes.TrimSuffix(cur, []byte("\n"))
		cur = bytes.TrimSuffix(cur, []byte("\r"))
		if quoted {
			cur = unquoteFrom(cur)
		}
		m, err := newMessage(cur, file, startLine+1)
		if err != nil {
			return err
		}
		m.Source = file + ":" + strconv.Itoa(startLine)
		msgs = append(msgs, m)
		return nil
	}
	for pos < len(data) {
		lineNo++
		end := len(data)
		if i := bytes.IndexByte(data[pos:], '\n'); i >= 0 {
			end = pos + i + 1
		}
		line := data[pos:end]
		switch {
		case bytes.HasPrefix(line, []byte("From ")):
			if err := flush(pos); err != nil {
				return nil, err
			}
			begin, startLine, quoted = end, lineNo, false
		case begin < 0:
			if len(bytes.TrimSpace(line)) != 0 {
				return nil, &LoadError{File: file, Line: lineNo, Msg: `not an mbox file: a message must begin with a "From " line`}
			}
		case line[0] == '>':
			if q := bytes.TrimLeft(line, ">"); bytes.HasPrefix(q, []byte("From ")) {
				quoted = true
			}
		}
		pos = end
	}
	if err := flush(len(data)); err != nil {
		return nil, err
	}
	return msgs, nil
}

// unquoteFrom removes one ">" from each ">From " line (mboxrd: any
// number of ">" before "From ").
func unquoteFrom(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line = b[:i+1]
		}
		b = b[len(line):]
		if q := bytes.TrimLeft(line, ">"); len(q) < len(line) && bytes.HasPrefix(q, []byte("From ")) {
			line = line[1:]
		}
		out = append(out, line...)
	}
	return out
}

// newMessage checks a message's header and normalises its line ends. first
// is the file line the message starts on, for errors.
func newMessage(raw []byte, file string, first int) (*Message, error) {
	return parseMessage(normalizeCRLF(raw), file, first)
}

// parseMessage is newMessage for data whose line ends are CRLF already.
func parseMessage(data []byte, file string, first int) (*Message, error) {
	m := &Message{data: data, Source: file}
	if len(data) == 0 {
		return nil, &LoadError{File: file, Line: first, Msg: "empty message"}
	}
	lineNo := first
	var field []byte // the header field being read, with continuations
	takeField := func() {
		if field == nil {
			return
		}
		name, value, _ := bytes.Cut(field, []byte(":"))
		switch strings.ToLower(string(bytes.TrimSpace(name))) {
		case "subject":
			m.Subject = decodeHeader(value)
		case "from":
			m.From = decodeHeader(value)
		}
		field = nil
	}
	for rest := data; len(rest) > 0; lineNo++ {
		i := bytes.Index(rest, []byte("\r\n"))
		line := rest[:i]
		rest = rest[i+2:]
		if len(line) == 0 {
			break // end of the header
		}
		if line[0] == ' ' || line[0] == '\t' {
			if field == nil {
				return nil, &LoadError{File: file, Line: lineNo, Msg: "the header begins with a continuation line"}
			}
			field = append(field, line...)
			continue
		}
		takeField()
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || bytes.ContainsFunc(line[:colon], func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
			return nil, &LoadError{File: file, Line: lineNo, Msg: fmt.Sprintf("malformed header line %q: expected Name: value, then a blank line before the body", truncate(string(line), 40))}
		}
		field = append([]byte(nil), line...)
	}
	takeField()
	return m, nil
}

// normalizeCRLF turns every line end into CRLF and ends the last line.
// A bare LF (nc without -C) and a lone CR are line ends too: RFC 5322 §2.3
// lets CR and LF appear only together, and a client that splits lines at
// CR must read the same lines as one that splits at LF (a lone-CR "."
// line would end a POP3 reply early for it).
func normalizeCRLF(b []byte) []byte { return appendCRLF(make([]byte, 0, crlfLen(b)), b) }

// crlfLen is len(normalizeCRLF(b)).
func crlfLen(b []byte) int {
	n := len(b)
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n':
			i++
		case b[i] == '\r', b[i] == '\n':
			n++
		}
	}
	if len(b) > 0 && b[len(b)-1] != '\n' && b[len(b)-1] != '\r' {
		n += 2
	}
	return n
}

// appendCRLF appends b to out with every line end CRLF and the last line
// ended.
func appendCRLF(out, b []byte) []byte {
	for len(b) > 0 {
		i := bytes.IndexAny(b, "\r\n")
		if i < 0 {
			out = append(out, b...)
			return append(out, '\r', '\n')
		}
		out = append(out, b[:i]...)
		out = append(out, '\r', '\n')
		if b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n' {
			i++
		}
		b = b[i+1:]
	}
	return out
}

var headerDecoder = mime.WordDecoder{CharsetReader: func(charset string, input io.Reader) (io.Reader, error) {
	return nil, fmt.Errorf("unhandled charset %q", charset)
}}

func decodeHeader(v []byte) string {
	s := strings.TrimSpace(string(v))
	if d, err := headerDecoder.DecodeHeader(s); err == nil {
		return d
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// assignUIDs gives each message a unique-id from a digest of its content, so
// the same fixture has the same UIDLs on every run (RFC 1939 §7); identical
// messages in one maildrop get a suffix to stay distinct.
func assignUIDs(msgs []*Message) {
	seen := make(map[string]int)
	for _, m := range msgs {
		sum := sha256.Sum256(m.data)
		uid := hex.EncodeToString(sum[:12])
		if n := seen[uid]; n > 0 {
			seen[uid] = n + 1
			uid += "-" + strconv.Itoa(n+1)
		} else {
			seen[uid] = 1
		}
		m.uid = uid
	}
}
