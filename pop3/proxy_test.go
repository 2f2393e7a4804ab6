package pop3_test

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/pop3playground/pop3playground/pop3"
)

func trustLoopback(s *pop3.Server) {
	s.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
}

// proxyV2 is a PROXY v2 header for a client at src with the given TLVs.
func proxyV2(t *testing.T, src string, tlvs ...proxyproto.TLV) []byte {
	t.Helper()
	h := proxyproto.HeaderProxyFromAddrs(2, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)),
		net.TCPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:110")))
	if err := h.SetTLVs(tlvs); err != nil {
		t.Fatal(err)
	}
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dialWith connects and sends first before reading the greeting, as a proxy
// does.
func (env *testEnv) dialWith(t *testing.T, first []byte) *client {
	t.Helper()
	conn, err := net.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Write(first); err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, conn: conn, r: newReader(conn)}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	c.greeting = c.readLine()
	return c
}

func TestProxyHeaderFromATrustedProxy(t *testing.T) {
	env := testServer(t, trustLoopback)
	c := env.dialWith(t, proxyV2(t, "203.0.113.7:4242", proxyproto.TLV{Type: 0xE0, Value: []byte("token-1")}))
	c.expect("USER guest", "+OK")
	c.expect("PASS visitor", "+OK")
	info := <-env.be.infos
	if !info.Proxied || info.RemoteAddr.String() != "203.0.113.7:4242" {
		t.Errorf("ConnInfo: proxied %v, remote %v; want the header's client 203.0.113.7:4242", info.Proxied, info.RemoteAddr)
	}
	if got := string(info.ProxyTLVs[0xE0]); got != "token-1" {
		t.Errorf("TLV 0xE0 = %q, want token-1", got)
	}
	c.expect("QUIT", "+OK")
	waitFor(t, func() bool { return strings.Contains(env.log.String(), "remote=203.0.113.7:4242") })
}

func TestProxyHeaderV1(t *testing.T) {
	env := testServer(t, trustLoopback)
	c := env.dialWith(t, []byte("PROXY TCP4 198.51.100.2 127.0.0.1 5555 110\r\n"))
	c.expect("USER guest", "+OK")
	c.expect("PASS visitor", "+OK")
	if info := <-env.be.infos; info.RemoteAddr.String() != "198.51.100.2:5555" {
		t.Errorf("remote %v, want 198.51.100.2:5555", info.RemoteAddr)
	}
}

func TestProxyHeaderFromAnUntrustedAddressIsRefused(t *testing.T) {
	env := testServer(t) // trusts nobody
	c := env.dialWith(t, proxyV2(t, "203.0.113.7:4242", proxyproto.TLV{Type: 0xE0, Value: []byte("stolen")}))
	if got := c.readLine(); !strings.HasPrefix(got, "-ERR [SYS/PERM] PROXY header refused: 127.0.0.1 is not a trusted proxy") {
		t.Errorf("got %q, want a refusal", got)
	}
	c.expectClosed()
	select {
	case info := <-env.be.infos:
		t.Errorf("a login happened: %+v", info)
	default:
	}
}

func TestTrustedAddressWithoutHeader(t *testing.T) {
	env := testServer(t, trustLoopback)
	// An ordinary client on a trusted address: greeted after at most
	// ProxyWait, and an empty first line (a prefix of the v2 signature)
	// still gets its reply.
	start := time.Now()
	c := env.greeted(t)
	if d := time.Since(start); d > pop3.DefaultProxyWait+2*time.Second {
		t.Errorf("greeting took %v: the server must not wait long for a header", d)
	}
	c.expect("", "-ERR")
	c.expect("USER guest", "+OK")
	c.expect("PASS visitor", "+OK")
	if info := <-env.be.infos; info.Proxied || !strings.HasPrefix(info.RemoteAddr.String(), "127.0.0.1:") {
		t.Errorf("ConnInfo %+v, want the socket's own address", info)
	}
}

func TestBadProxyHeader(t *testing.T) {
	env := testServer(t, trustLoopback)
	bad := append([]byte(nil), proxyV2(t, "203.0.113.7:4242")...)
	bad[12] = 0x99 // version 9
	c := env.dialWith(t, bad)
	if got := c.greeting; !strings.HasPrefix(got, "-ERR [SYS/PERM] bad PROXY header") {
		t.Errorf("got %q, want the refusal first, never +OK", got)
	}
	c.expectClosed()
}

func TestPerIPLimitCountsTheProxiedClient(t *testing.T) {
	env := testServer(t, trustLoopback, func(s *pop3.Server) { s.MaxConnsPerIP = 1 })
	a := env.dialWith(t, proxyV2(t, "203.0.113.7:1"))
	a.expect("NOOP", "-ERR") // served: NOOP is for TRANSACTION
	b := env.dialWith(t, proxyV2(t, "203.0.113.8:1"))
	b.expect("USER guest", "+OK") // another client through the same proxy
	c := env.dialWith(t, proxyV2(t, "203.0.113.7:2"))
	if got := c.greeting; !strings.HasPrefix(got, "-ERR [SYS/TEMP] too many connections from your address") {
		t.Errorf("third connection: %q, want the per-address refusal first, never +OK", got)
	}
	c.expectClosed()
	if n := env.srv.Refused(pop3.RefusedPerAddress); n != 1 {
		t.Errorf("Refused(RefusedPerAddress) = %d, want 1", n)
	}
}

// Silent connections from a trusted network count from accept, and under
// the peer's own address once ProxyWait has passed, first come first
// served: they cannot fill the server for the browsers whose connections
// come through the same proxy for other clients.
func TestSilentTrustedConnectionsCountAtAccept(t *testing.T) {
	env := testServer(t, trustLoopback, func(s *pop3.Server) {
		s.MaxConnsPerIP, s.MaxConns = 2, 10
		s.ProxyWait = 50 * time.Millisecond
	})
	var silent []net.Conn
	for range 5 {
		conn, err := net.Dial("tcp", env.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		silent = append(silent, conn)
	}
	var greeted, refused int
	for _, conn := range silent {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		line, err := newReader(conn).ReadString('\n')
		switch {
		case err != nil:
			t.Fatalf("silent connection: %v", err)
		case strings.HasPrefix(line, "+OK"):
			greeted++
		case strings.HasPrefix(line, "-ERR [SYS/TEMP] too many connections from your address"):
			refused++
		default:
			t.Fatalf("silent connection got %q", line)
		}
	}
	if greeted != 2 || refused != 3 {
		t.Errorf("%d greeted, %d refused; want 2 and 3", greeted, refused)
	}
	// A browser's terminal through the trusted proxy still gets in.
	c := env.dialWith(t, proxyV2(t, "203.0.113.9:1"))
	if !strings.HasPrefix(c.greeting, "+OK") {
		t.Errorf("a proxied client while loopback is full: %q", c.greeting)
	}
}

func TestProxyHeaderNotHonouredAfterTheFirstOctets(t *testing.T) {
	env := testServer(t, trustLoopback)
	c := env.greeted(t)
	c.expect("USER guest", "+OK")
	// A header later in the stream is just input: the v2 signature reads as
	// two empty lines, a NUL and "QUIT", which is what its designers meant
	// a server that does not expect it to do.
	c.conn.Write(proxyV2(t, "203.0.113.7:1"))
	for range 3 {
		if got := c.readLine(); !strings.HasPrefix(got, "-ERR") {
			t.Fatalf("got %q, want -ERR for junk", got)
		}
	}
	c.expectLine("+OK")
	c.expectClosed()
	select {
	case info := <-env.be.infos:
		t.Errorf("a login happened: %+v", info)
	default:
	}
}
