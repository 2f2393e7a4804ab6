package sessions_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/sessions"
)

// fuzzTarget is one playground POP3 server on a real loopback listener,
// with the real sessions backend, trusting loopback PROXY headers, with
// STLS: shared by every run of the whole-session fuzzer.
type fuzzTarget struct {
	addr string
	// proxyAddr is the listener for proxies, as the bridge's.
	proxyAddr string
	token     string // a visitor's, for PROXY headers that name one
	log       *lockedBuffer
	srv       *pop3.Server
}

var target = sync.OnceValues(func() (*fuzzTarget, error) {
	w, err := sessions.DefaultWorld()
	if err != nil {
		return nil, err
	}
	vs := sessions.NewVisitors(w)
	v, err := vs.New("127.0.0.1")
	if err != nil {
		return nil, err
	}
	ft := &fuzzTarget{token: v.Token, log: &lockedBuffer{}}
	srv := pop3.NewServer(&sessions.Backend{World: w, Visitors: vs})
	srv.Observer = vs
	srv.AuthFailureDelay = time.Microsecond
	srv.Logger = slog.New(slog.NewTextHandler(ft.log, nil))
	cert, err := pop3.SelfSignedCertificate("localhost")
	if err != nil {
		return nil, err
	}
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	lp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go srv.Serve(l)
	go srv.ServeProxied(lp, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	ft.addr, ft.proxyAddr, ft.srv = l.Addr().String(), lp.Addr().String(), srv
	return ft, nil
})

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The modes of a fuzzed session, as bits.
const (
	modeProxy    = 1 << iota // send a PROXY v2 header naming the visitor
	modeRawProxy             // send the fuzzer's bytes as the PROXY header
	modeSTLS                 // STLS and a real TLS handshake before the script
	modeLines                // one line at a time, reading replies between
)

// FuzzWholeSession plays a client against the real server over TCP: a
// PROXY header (the visitor's, or the fuzzer's bytes), STLS with a real
// handshake, then the script pipelined or line by line, through the
// sessions backend. The server must never panic, every status line must
// be +OK, -ERR or a SASL "+ " challenge, and it must still greet the
// next client.
func FuzzWholeSession(f *testing.F) {
	scripts := []string{
		"USER guest\r\nPASS visitor\r\nSTAT\r\nLIST\r\nRETR 1\r\nTOP 2 1\r\nDELE 1\r\nRSET\r\nUIDL\r\nNOOP\r\nQUIT\r\n",
		"CAPA\r\nAUTH\r\nAUTH PLAIN\r\n*\r\nAUTH PLAIN AGd1ZXN0AHZpc2l0b3I=\r\nDELE 1\r\nQUIT\r\n",
		"AUTH LOGIN\r\nZ3Vlc3Q=\r\ndmlzaXRvcg==\r\nRETR 2\r\nQUIT\r\n",
		"APOP guest 0123456789abcdef0123456789abcdef\r\nUSER guest.aaaaaaaaaa\r\nPASS visitor\r\n\x00\xff\r\n" + strings.Repeat("A", 300) + "\r\nQUIT\r\n",
		"USER guest\r\n\r\nPASS visitor\r\n\r\nDELE 1\r\nDELE 99\r\nQUIT\r\n",
	}
	for i, s := range scripts {
		f.Add(uint8(i%16), []byte(nil), s)
	}
	f.Add(uint8(modeRawProxy), []byte("PROXY TCP4 192.0.2.1 127.0.0.1 1 110\r\n"), scripts[0])
	f.Add(uint8(modeRawProxy), append([]byte(nil), proxyproto.SIGV2...), scripts[1])
	f.Add(uint8(modeProxy|modeSTLS|modeLines), []byte(nil), scripts[0])
	f.Fuzz(func(t *testing.T, mode uint8, header []byte, script string) {
		ft, err := target()
		if err != nil {
			t.Fatal(err)
		}
		if len(script) > 8<<10 || len(header) > 1<<10 {
			return
		}
		runSession(t, ft, mode, header, script)
		if strings.Contains(ft.log.String(), "panic") {
			t.Fatalf("the server panicked:\n%s", ft.log.String())
		}
		// The server still serves.
		c, err := net.Dial("tcp", ft.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "QUIT\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if g, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.HasPrefix(g, "+OK") {
			t.Fatalf("the next client got %q, %v", g, err)
		}
	})
}

func runSession(t *testing.T, ft *fuzzTarget, mode uint8, header []byte, script string) {
	addr := ft.addr
	if mode&(modeProxy|modeRawProxy) != 0 {
		addr = ft.proxyAddr
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	switch {
	case mode&modeRawProxy != 0:
		// As a proxy would: the header and the client's bytes at once.
		c.Write(append(header, script...))
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c)
		return
	case mode&modeProxy != 0:
		h := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 1}, c.RemoteAddr())
		h.SetTLVs([]proxyproto.TLV{{Type: sessions.TLVToken, Value: []byte(ft.token)}})
		h.WriteTo(c)
	}
	var conn net.Conn = c
	r := bufio.NewReader(conn)
	status := func(line string) {
		if !strings.HasPrefix(line, "+OK") && !strings.HasPrefix(line, "-ERR") && !strings.HasPrefix(line, "+ ") && line != "+" {
			t.Fatalf("status line %q (mode %d, script %q)", line, mode, script)
		}
	}
	greeting, err := r.ReadString('\n')
	if err != nil {
		return // refused and closed, e.g. a bad header
	}
	status(strings.TrimRight(greeting, "\r\n"))
	if mode&modeSTLS != 0 && strings.HasPrefix(greeting, "+OK") {
		io.WriteString(conn, "STLS\r\n")
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		status(strings.TrimRight(line, "\r\n"))
		if strings.HasPrefix(line, "+OK") {
			tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
			if err := tc.Handshake(); err != nil {
				t.Fatalf("STLS handshake: %v", err)
			}
			conn, r = tc, bufio.NewReader(tc)
		}
	}
	if mode&modeLines == 0 {
		io.WriteString(conn, script)
		// Then hang up, as a client piping a file does: the server sees
		// the end and closes, whatever state the script left.
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		io.Copy(io.Discard, r)
		return
	}
	// Line by line, reading each reply as RFC 1939 frames it.
	for line := range strings.SplitSeq(script, "\n") {
		if _, err := io.WriteString(conn, line+"\n"); err != nil {
			return
		}
		first, err := r.ReadString('\n')
		if err != nil {
			return
		}
		first = strings.TrimRight(first, "\r\n")
		status(first)
		if strings.HasPrefix(first, "+OK") && pop3.MultiLine(line) {
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
			}
		}
	}
}
