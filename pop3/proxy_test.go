package pop3_test

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/pop3/pop3test"
)

var loopbackNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

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

// dialWith connects to the proxied listener and sends first before reading
// the greeting, as a proxy does.
func (env *testEnv) dialWith(t *testing.T, first []byte) *client {
	t.Helper()
	return dialAt(t, env.proxyAddr, first)
}

func dialAt(t *testing.T, addr string, first []byte) *client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Write(first); err != nil {
		t.Fatal(err)
	}
	c := pop3test.NewClient(t, conn)
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	c.Greeting = c.ReadLine()
	return c
}

func TestProxyHeaderFromATrustedProxy(t *testing.T) {
	env := testServer(t)
	c := env.dialWith(t, proxyV2(t, "203.0.113.7:4242", proxyproto.TLV{Type: 0xE0, Value: []byte("token-1")}))
	c.Expect("USER guest", "+OK")
	c.Expect("PASS visitor", "+OK")
	info := <-env.be.Infos
	if !info.Proxied || info.RemoteAddr.String() != "203.0.113.7:4242" {
		t.Errorf("ConnInfo: proxied %v, remote %v; want the header's client 203.0.113.7:4242", info.Proxied, info.RemoteAddr)
	}
	if got := string(info.ProxyTLVs[0xE0]); got != "token-1" {
		t.Errorf("TLV 0xE0 = %q, want token-1", got)
	}
	c.Expect("QUIT", "+OK")
	pop3test.WaitFor(t, func() bool { return strings.Contains(env.log.String(), "remote=203.0.113.7:4242") })
}

func TestProxyHeaderV1(t *testing.T) {
	env := testServer(t)
	c := env.dialWith(t, []byte("PROXY TCP4 198.51.100.2 127.0.0.1 5555 110\r\n"))
	c.Expect("USER guest", "+OK")
	c.Expect("PASS visitor", "+OK")
	if info := <-env.be.Infos; info.RemoteAddr.String() != "198.51.100.2:5555" {
		t.Errorf("remote %v, want 198.51.100.2:5555", info.RemoteAddr)
	}
}

// The public listener greets at once and refuses a header with words: a
// client may not choose its own address or TLVs, and a proxy pointed at
// the wrong port is told which one to use.
func TestProxyHeaderOnThePublicListenerIsRefused(t *testing.T) {
	env := testServer(t)
	c := dialAt(t, env.addr, proxyV2(t, "203.0.113.7:4242", proxyproto.TLV{Type: 0xE0, Value: []byte("stolen")}))
	if !strings.HasPrefix(c.Greeting, "+OK") {
		t.Errorf("greeting %q: the public listener greets before it reads anything", c.Greeting)
	}
	if got := c.ReadLine(); !strings.HasPrefix(got, "-ERR [SYS/PERM] PROXY header refused: this port serves POP3 clients directly") {
		t.Errorf("got %q, want a refusal in words", got)
	}
	c.ExpectClosed()
	select {
	case info := <-env.be.Infos:
		t.Errorf("a login happened: %+v", info)
	default:
	}
	if n := env.srv.Refused(pop3.RefusedProxy); n != 1 {
		t.Errorf("Refused(RefusedProxy) = %d, want 1", n)
	}
}

// A proxied listener's peer outside its trusted networks is refused
// before anything is read.
func TestProxiedListenerRefusesAnUntrustedPeer(t *testing.T) {
	env := testServer(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go env.srv.ServeProxied(l, []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")})
	c := dialAt(t, l.Addr().String(), proxyV2(t, "203.0.113.7:4242"))
	if got := c.Greeting; !strings.HasPrefix(got, "-ERR [SYS/PERM] this port is for proxies that send a PROXY header, and 127.0.0.1 is not a trusted one") {
		t.Errorf("got %q, want a refusal", got)
	}
	c.ExpectClosed()
}

// A loopback client on the public listener is greeted at once: no timer
// waits for a header that will not come (the lab sheet's telnet). A
// listener that waited for one (300 ms, before) misses the deadline on
// every try; the rate is measured in BenchmarkSessionsFromLoopback.
func TestLoopbackClientIsGreetedAtOnce(t *testing.T) {
	env := testServer(t)
	greetedQuickly := func() (*client, bool) {
		conn, err := net.Dial("tcp", env.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		c := pop3test.NewClient(t, conn)
		conn.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		line, err := c.R.ReadString('\n')
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		return c, err == nil && strings.HasPrefix(line, "+OK")
	}
	var c *client
	for try := 0; ; try++ {
		var ok bool
		if c, ok = greetedQuickly(); ok {
			break
		}
		if try == 2 {
			t.Fatal("no greeting within 250 ms, three times: the public listener waits before greeting")
		}
	}
	c.Expect("", "-ERR") // an empty line is input, not half a signature
	c.Expect("USER guest", "+OK")
	c.Expect("PASS visitor", "+OK")
	if info := <-env.be.Infos; info.Proxied || !strings.HasPrefix(info.RemoteAddr.String(), "127.0.0.1:") {
		t.Errorf("ConnInfo %+v, want the socket's own address", info)
	}
}

// A person who reaches the proxied listener is told where to go, after
// the header's timeout, not greeted.
func TestProxiedListenerWithoutHeader(t *testing.T) {
	env := testServer(t)
	c := dialAt(t, env.proxyAddr, []byte("USER guest\r\n"))
	if got := c.Greeting; !strings.HasPrefix(got, "-ERR [SYS/PERM] this port is for proxies and expects a PROXY protocol header first") {
		t.Errorf("got %q, want the refusal in words", got)
	}
	c.ExpectClosed()
}

func TestBadProxyHeader(t *testing.T) {
	env := testServer(t)
	bad := append([]byte(nil), proxyV2(t, "203.0.113.7:4242")...)
	bad[12] = 0x99 // version 9
	c := env.dialWith(t, bad)
	if got := c.Greeting; !strings.HasPrefix(got, "-ERR [SYS/PERM] bad PROXY header") {
		t.Errorf("got %q, want the refusal first, never +OK", got)
	}
	c.ExpectClosed()
}

func TestPerIPLimitCountsTheProxiedClient(t *testing.T) {
	env := testServer(t, func(s *pop3.Server) { s.MaxConnsPerIP = 1 })
	a := env.dialWith(t, proxyV2(t, "203.0.113.7:1"))
	a.Expect("NOOP", "-ERR") // served: NOOP is for TRANSACTION
	b := env.dialWith(t, proxyV2(t, "203.0.113.8:1"))
	b.Expect("USER guest", "+OK") // another client through the same proxy
	c := env.dialWith(t, proxyV2(t, "203.0.113.7:2"))
	if got := c.Greeting; !strings.HasPrefix(got, "-ERR [SYS/TEMP] too many connections from your address") {
		t.Errorf("third connection: %q, want the per-address refusal first, never +OK", got)
	}
	c.ExpectClosed()
	if n := env.srv.Refused(pop3.RefusedPerAddress); n != 1 {
		t.Errorf("Refused(RefusedPerAddress) = %d, want 1", n)
	}
}

func TestProxyHeaderNotHonouredAfterTheFirstOctets(t *testing.T) {
	env := testServer(t)
	c := dialAt(t, env.proxyAddr, proxyV2(t, "203.0.113.7:4242"))
	c.Expect("USER guest", "+OK")
	// A header later in the stream is just input: the v2 signature reads as
	// two empty lines, a NUL and "QUIT", which is what its designers meant
	// a server that does not expect it to do.
	c.Conn.Write(proxyV2(t, "203.0.113.7:1"))
	for range 3 {
		if got := c.ReadLine(); !strings.HasPrefix(got, "-ERR") {
			t.Fatalf("got %q, want -ERR for junk", got)
		}
	}
	c.ExpectLine("+OK")
	c.ExpectClosed()
	select {
	case info := <-env.be.Infos:
		t.Errorf("a login happened: %+v", info)
	default:
	}
}

// A proxy's health check (a PROXY v2 header with the LOCAL command, and
// nothing more) is served, and logged only when debugging: HAProxy's
// "check" every two seconds must not fill the log.
func TestProxyHealthCheckIsNotLogged(t *testing.T) {
	env := testServer(t)
	b, err := (&proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}).Format()
	if err != nil {
		t.Fatal(err)
	}
	c := env.dialWith(t, b)
	if !strings.HasPrefix(c.Greeting, "+OK") {
		t.Fatalf("greeting after a LOCAL header: %q", c.Greeting)
	}
	c.Conn.Close()
	pop3test.WaitFor(t, func() bool { return env.srv.ActiveConns() == 0 })
	if strings.Contains(env.log.String(), "pop3 session") {
		t.Errorf("a health check was logged:\n%s", env.log)
	}
	// A session that sends a command through a LOCAL header is logged.
	c = env.dialWith(t, b)
	c.Expect("CAPA", "+OK")
	c.Conn.Close()
	pop3test.WaitFor(t, func() bool { return strings.Contains(env.log.String(), "pop3 session") })
}
