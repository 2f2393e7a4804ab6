package pop3

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// memMaildrop is a tiny in-memory Maildrop for the fuzzer.
type memMaildrop struct{ msgs []string }

func (m *memMaildrop) Stat() (int, int64) {
	var size int64
	for _, s := range m.msgs {
		size += int64(len(s))
	}
	return len(m.msgs), size
}
func (m *memMaildrop) Message(i int) MessageInfo {
	return MessageInfo{Size: int64(len(m.msgs[i])), UID: "uid" + string(rune('a'+i))}
}
func (m *memMaildrop) Open(i int) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(m.msgs[i])), nil
}
func (m *memMaildrop) Delete([]int) error { return nil }
func (m *memMaildrop) Close() error       { return nil }

// FuzzSession plays a client that sends the fuzzer's lines one at a time and
// reads each reply as RFC 1939 frames it. Every reply must be +OK, -ERR or a
// SASL challenge, and the server must never panic.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"USER guest\nPASS visitor\nSTAT\nLIST\nRETR 1\nTOP 2 1\nDELE 1\nLIST 1\nRSET\nUIDL\nNOOP\nQUIT",
		"CAPA\nAUTH\nAUTH PLAIN\n*\nAUTH PLAIN AGd1ZXN0AHZpc2l0b3I=\nLIST 99999",
		"APOP guest 0123456789abcdef0123456789abcdef\nUSER\nPASS\nSTLS\nRETR -1\nTOP 1 -1",
		"AUTH LOGIN\nZ3Vlc3Q=\ndmlzaXRvcg==\nRETR 2\nDELE 2\nRETR 2\nQUIT",
		"\x00\xff\xfe\nST\bAT\n\x1b[A\n" + strings.Repeat("x", 300),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, script string) {
		var logs bytes.Buffer
		srv := NewServer(BackendFunc(func(ctx context.Context, c *ConnInfo, user, pass string) (Maildrop, error) {
			if user == "guest" && pass == "visitor" {
				return &memMaildrop{msgs: []string{"A: b\r\n\r\n.dot\r\nline\r\n", "C: d\r\n\r\nx\r\n"}}, nil
			}
			return nil, ErrAuthFailed
		}))
		srv.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		srv.AuthFailureDelay = 0
		srv.MaxErrors = 1000
		srv.MaxAuthFailures = 1000
		server, clientConn := net.Pipe()
		c := newConn(srv, server, nil)
		srv.trackConn(c, true)
		done := make(chan struct{})
		go func() { c.serve(); close(done) }()
		defer func() { clientConn.Close(); <-done }()
		clientConn.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(clientConn)
		read := func() (string, bool) {
			l, err := r.ReadString('\n')
			if err != nil {
				return "", false
			}
			if !strings.HasSuffix(l, "\r\n") {
				t.Fatalf("reply line %q without CRLF", l)
			}
			return l[:len(l)-2], true
		}
		if g, _ := read(); !strings.HasPrefix(g, "+OK ") {
			t.Fatalf("greeting %q", g)
		}
		for _, line := range strings.Split(strings.ReplaceAll(script, "\r", ""), "\n") {
			if _, err := io.WriteString(clientConn, line+"\r\n"); err != nil {
				break // the server closed the connection, as it may
			}
			status, ok := read()
			if !ok {
				break
			}
			switch {
			case strings.HasPrefix(status, "+OK"):
				if MultiLine(line) && !strings.Contains(status, "begin TLS") {
					for {
						l, ok := read()
						if !ok || l == "." {
							break
						}
					}
				}
			case strings.HasPrefix(status, "-ERR"):
			case strings.HasPrefix(status, "+ "):
			default:
				t.Fatalf("reply %q to %q is neither +OK nor -ERR", status, line)
			}
		}
		clientConn.Close()
		<-done
		if strings.Contains(logs.String(), "panic") {
			t.Fatalf("server panicked:\n%s", logs.String())
		}
	})
}
