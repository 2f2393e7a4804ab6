package pop3

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/pop3playground/pop3playground/pop3/limit"
)

// PROXY protocol (HAProxy's proxy-protocol.txt, v1 and v2). A proxy in
// front of the server (HAProxy, nginx stream, the playground's own WebSocket
// bridge) prefixes the connection with a header that names the real client
// and may carry TLVs.
//
// POP3 is server-speaks-first, so a listener cannot wait to see whether a
// header comes without delaying every plain client's greeting. So, as
// Dovecot does (inet_listener with haproxy = yes), there are two kinds of
// listener. One served by Serve greets at once and never honours a header:
// one sent as a client's first octets is refused with words. One served by
// ServeProxied requires a header as the first octets, from a peer of the
// networks it trusts, before it greets the client the header names.

// proxyHeaderTimeout bounds reading the header a proxied listener needs.
const proxyHeaderTimeout = 5 * time.Second

var (
	errProxyUntrusted = errors.New("a PROXY listener's peer outside the trusted networks")
	errProxyHere      = errors.New("a PROXY header on a public listener")
	errNoProxy        = errors.New("no PROXY header on a PROXY listener")
	errBadProxy       = errors.New("bad PROXY header")
)

// A proxyPolicy is what a proxied listener accepts headers from.
type proxyPolicy struct {
	trusted []netip.Prefix
}

// trusts reports whether headers are honoured from addr.
func (p *proxyPolicy) trusts(addr net.Addr) bool {
	return limit.Networks(p.trusted).ContainsAddr(addr)
}

// startsWithProxySig reports whether the first octets the client sent
// begin with a PROXY signature. A proxy writes its header in one piece as
// soon as it connects, so it decides on the first read alone: a person who
// presses Enter first ("\r\n", a prefix of the v2 signature) is not kept
// waiting to see whether the rest follows.
func (c *conn) startsWithProxySig() (bool, error) {
	if _, err := c.br.Peek(1); err != nil {
		return false, err
	}
	buf, _ := c.br.Peek(c.br.Buffered())
	for _, sig := range [][]byte{proxyproto.SIGV2, proxyproto.SIGV1} {
		if bytes.HasPrefix(buf, sig) {
			return true, nil
		}
	}
	return false, nil
}

// refuseProxyHeader looks at a public listener's first octets from the
// client, once greeted: a PROXY header there is refused (errProxyHere), for
// a client may not choose its own address or TLVs.
func (c *conn) refuseProxyHeader() error {
	// The deadlines of a first command (readLine's): a silent client is
	// closed at the login timeout, as it would be waiting for a command.
	deadline := time.Time{}
	if c.srv.IdleTimeout > 0 {
		deadline = time.Now().Add(c.srv.IdleTimeout)
	}
	if login := c.loginDeadline(); !login.IsZero() && (deadline.IsZero() || login.Before(deadline)) {
		deadline = login
	}
	c.raw.SetReadDeadline(deadline)
	if c.srv.inShutdown.Load() { // as in readLine
		return errShutdown
	}
	sig, err := c.startsWithProxySig()
	if err == nil && sig {
		err = errProxyHere
	}
	return err
}

// readProxyHeader reads the header a proxied listener requires as the
// client's first octets and applies it: ConnInfo's addresses become the
// real client's and its TLVs are kept. It returns the client address that
// per-address limits count.
func (c *conn) readProxyHeader() (ip string, err error) {
	ip = c.ip
	c.raw.SetReadDeadline(time.Now().Add(proxyHeaderTimeout))
	if c.srv.inShutdown.Load() { // as in readLine
		return ip, errShutdown
	}
	var ne net.Error
	if _, err := c.br.Peek(1); err != nil {
		if errors.As(err, &ne) && ne.Timeout() {
			return ip, errNoProxy // a person at a telnet prompt, waiting
		}
		return ip, err
	}
	h, err := proxyproto.Read(c.br)
	switch {
	case errors.Is(err, proxyproto.ErrNoProxyProtocol), errors.As(err, &ne) && ne.Timeout():
		return ip, errNoProxy
	case err != nil:
		return ip, fmt.Errorf("%w: %v", errBadProxy, err)
	}
	c.traceClient("(PROXY header)")
	c.info.Proxied = true
	c.probe = h.Command.IsLocal() // the proxy's own connection: a health check
	if h.Command.IsProxy() {
		if src, dst, ok := h.TCPAddrs(); ok {
			c.info.RemoteAddr, c.info.LocalAddr = src, dst
			c.rem = ""
			ip = src.IP.String()
		}
	}
	tlvs, err := h.TLVs()
	if err != nil {
		return ip, fmt.Errorf("%w: TLVs: %v", errBadProxy, err)
	}
	for _, t := range tlvs {
		if c.info.ProxyTLVs == nil {
			c.info.ProxyTLVs = make(map[byte][]byte)
		}
		c.info.ProxyTLVs[byte(t.Type)] = t.Value
	}
	return ip, nil
}
