package pop3

import (
	"bufio"
	"bytes"
	"io"
	"net/textproto"
	"strings"
	"testing"
)

func dotStuff(chunks ...string) string {
	var b bytes.Buffer
	bw := bufio.NewWriter(&b)
	d := &dotWriter{w: bw}
	for _, c := range chunks {
		d.Write([]byte(c))
	}
	d.Close()
	bw.Flush()
	return b.String()
}

func TestDotWriterWireBytes(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, ".\r\n"},
		{[]string{"a\r\n"}, "a\r\n.\r\n"},
		{[]string{".first\r\n"}, "..first\r\n.\r\n"},
		{[]string{"a\r\n.\r\nb\r\n"}, "a\r\n..\r\nb\r\n.\r\n"},
		{[]string{"a\r\n..\r\n"}, "a\r\n...\r\n.\r\n"},
		{[]string{"no end"}, "no end\r\n.\r\n"},
		{[]string{"bare\nlf\n"}, "bare\r\nlf\r\n.\r\n"},
		{[]string{"a\r", "\n.b\r\n"}, "a\r\n..b\r\n.\r\n"},
		{[]string{"a\r\n", ".", "b\r\n"}, "a\r\n..b\r\n.\r\n"},
		{[]string{"x.\r\n"}, "x.\r\n.\r\n"},
		{[]string{"ends with cr\r"}, "ends with cr\r\n.\r\n"},
		{[]string{"\r\n\r\n"}, "\r\n\r\n.\r\n"},
	} {
		if got := dotStuff(tc.in...); got != tc.want {
			t.Errorf("dotStuff(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// normalizeLines is what the body must read back as: every line end CRLF
// (a CR before LF kept), the last line ended.
func normalizeLines(s string) string {
	if s == "" {
		return ""
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\n", "\r\n")
	if !strings.HasSuffix(s, "\r\n") {
		s += "\r\n"
	}
	return s
}

func FuzzDotWriter(f *testing.F) {
	for _, s := range []string{"", ".", "..\r\n.", "a\r\n.\r\nb", "\r\n.\r\n", "x\ny\r\n.z", "\r"} {
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, in string, split int) {
		if strings.Contains(in, "\r") && strings.Contains(strings.ReplaceAll(in, "\r\n", ""), "\r") {
			t.Skip("bare CR: not a line end, kept as is")
		}
		split = max(1, split%16+1)
		var chunks []string
		for s := in; s != ""; {
			n := min(split, len(s))
			chunks, s = append(chunks, s[:n]), s[n:]
		}
		wire := dotStuff(chunks...)
		if !strings.HasSuffix(wire, "\r\n.\r\n") && wire != ".\r\n" {
			t.Fatalf("%q does not end with CRLF . CRLF", wire)
		}
		for _, line := range strings.SplitAfter(strings.TrimSuffix(wire, ".\r\n"), "\r\n") {
			if strings.HasPrefix(line, ".") && !strings.HasPrefix(line, "..") {
				t.Fatalf("unstuffed line %q in %q", line, wire)
			}
		}
		got, err := io.ReadAll(textproto.NewReader(bufio.NewReader(strings.NewReader(wire))).DotReader())
		if err != nil {
			t.Fatal(err)
		}
		// DotReader turns CRLF into LF.
		if want := strings.ReplaceAll(normalizeLines(in), "\r\n", "\n"); string(got) != want {
			t.Fatalf("read back %q, want %q (wire %q)", got, want, wire)
		}
	})
}

func TestCopyTop(t *testing.T) {
	msg := "A: 1\r\nB: 2\r\n cont\r\n\r\nl1\r\nl2\r\nl3\r\n"
	for _, tc := range []struct {
		n    int
		want string
	}{
		{0, "A: 1\r\nB: 2\r\n cont\r\n\r\n"},
		{2, "A: 1\r\nB: 2\r\n cont\r\n\r\nl1\r\nl2\r\n"},
		{9, msg},
	} {
		var b strings.Builder
		if err := copyTop(&b, strings.NewReader(msg), tc.n); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("copyTop(%d) = %q, want %q", tc.n, b.String(), tc.want)
		}
	}
	// A header line longer than the reader's buffer still counts once.
	long := "X: " + strings.Repeat("y", 10000) + "\r\n\r\nbody1\r\nbody2\r\n"
	var b strings.Builder
	copyTop(&b, strings.NewReader(long), 1)
	if want := strings.TrimSuffix(long, "body2\r\n"); b.String() != want {
		t.Errorf("copyTop of a long header line: %d octets, want %d", b.Len(), len(want))
	}
}

// BenchmarkDotWriter stuffs a 50 KB body with a dot-leading line in every 20.
func BenchmarkDotWriter(b *testing.B) {
	var body bytes.Buffer
	for i := 0; body.Len() < 50_000; i++ {
		if i%20 == 0 {
			body.WriteString(".a line that starts with a dot\r\n")
		}
		body.WriteString("an ordinary line of a message body, about seventy octets in all\r\n")
	}
	bw := bufio.NewWriterSize(io.Discard, 4096)
	b.SetBytes(int64(body.Len()))
	b.ReportAllocs()
	for b.Loop() {
		d := &dotWriter{w: bw}
		d.Write(body.Bytes())
		d.Close()
	}
}
