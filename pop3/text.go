package pop3

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// checkText refuses control characters: on a command line they come from a
// terminal's editing keys or from binary junk, never from a command.
// A password may hold any other octet.
func checkText(line string, password bool) error {
	for i := 0; i < len(line); i++ {
		if b := line[i]; b < ' ' && b != '\t' || b == 0x7f {
			return errorf(KindNotText, "the line holds the control character %s (your terminal may have sent it for an editing key); type the command again as plain text", caret(b))
		}
	}
	if !password {
		verb, _, _ := strings.Cut(line, " ")
		if strings.ContainsFunc(verb, func(r rune) bool { return r >= 0x80 }) {
			return errorf(KindUnknown, "unknown command %s: commands are plain ASCII words such as STAT", quoteArg(verb))
		}
	}
	return nil
}

// caret names a control character as terminals show it: ^@ for NUL, ^? for DEL.
func caret(b byte) string {
	if b == 0x7f {
		return "^?"
	}
	return "^" + string(rune(b+'@'))
}

// quoteArg quotes what the client sent for an error reply: ASCII only, at
// most 20 characters.
func quoteArg(s string) string {
	if len(s) > 20 {
		return strconv.QuoteToASCII(s[:20]) + "…"
	}
	return strconv.QuoteToASCII(s)
}

// printable makes a user-supplied name safe to echo in a reply: C0 and
// C1 controls and invalid UTF-8 become "?", and the characters that
// reorder text on screen (bidi overrides and isolates, RFC 9839 §4.3
// "problematic code points") are shown escaped, as \u202E, so that an
// echo can never hide or reverse what follows it.
func printable(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] >= 0x7f {
			return string(appendPrintable(nil, s))
		}
	}
	return s // plain ASCII: nothing to change
}

// appendPrintable appends printable(s) to b.
func appendPrintable(b []byte, s string) []byte {
	for _, r := range s {
		switch {
		case r < ' ' || r == 0x7f || 0x80 <= r && r <= 0x9f || r == utf8.RuneError:
			b = append(b, '?')
		case bidiControl(r):
			b = fmt.Appendf(b, "\\u%04X", r)
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return b
}

// bidiControl reports whether r changes the direction of the text around
// it: the embeddings and overrides U+202A–U+202E, the isolates
// U+2066–U+2069, and the marks U+200E, U+200F and U+061C.
func bidiControl(r rune) bool {
	return 0x202a <= r && r <= 0x202e || 0x2066 <= r && r <= 0x2069 || r == 0x200e || r == 0x200f || r == 0x061c
}

// noArgs checks that a command without arguments got none.
func noArgs(verb, arg string) error {
	if strings.TrimSpace(arg) != "" {
		return errorf(KindSyntax, "%s takes no arguments", verb)
	}
	return nil
}

// parseMsgNum turns a message-number argument into a message index, refusing
// numbers out of range and messages marked for deletion (RFC 1939 §5).
func (c *conn) parseMsgNum(verb, s string) (int, error) {
	n, ok := parseNumber(s)
	switch {
	case !ok:
		return 0, errorf(KindMsgArg, "%s is not a message number; e.g. %s 1", quoteArg(s), verb)
	case n == 0:
		return 0, errorf(KindNoMessage, "no message 0: messages are numbered from 1")
	case n > c.count:
		return 0, errorf(KindNoMessage, "no message %d: the maildrop has %s", n, plural(c.count, "message"))
	case c.marks.has(n - 1):
		return 0, errorf(KindMarked, "message %d is marked for deletion; RSET unmarks it", n)
	}
	return n - 1, nil
}

// parseNumber parses a non-negative decimal number of at most 9 digits.
func parseNumber(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

func plural(n int, word string) string {
	return string(appendPlural(nil, n, word))
}

func appendPlural(b []byte, n int, word string) []byte {
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, ' ')
	b = append(b, word...)
	if n != 1 {
		b = append(b, 's')
	}
	return b
}

// fields splits a command's arguments at white space, as strings.Fields
// does, without allocating: the first two, and how many there are.
func fields(s string) (f [2]string, n int) {
	for {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
		if s == "" {
			return f, n
		}
		end := strings.IndexFunc(s, unicode.IsSpace)
		if end < 0 {
			end = len(s)
		}
		if n < len(f) {
			f[n] = s[:end]
		}
		n++
		s = s[end:]
	}
}
