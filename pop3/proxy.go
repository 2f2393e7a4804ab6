package pop3

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/pires/go-proxyproto"
)

// PROXY protocol (HAProxy's proxy-protocol.txt, v1 and v2). A proxy in
// front of the server (HAProxy, nginx stream, the playground's own WebSocket
// bridge) prefixes the connection with a header that names the real client
// and may carry TLVs. POP3 is server-speaks-first, so the server cannot wait
// to see whether a header comes without delaying the greeting. From a
// trusted network it waits a moment (Server.ProxyWait) for the header, so
// that a refusal of the client it names comes before any greeting; from
// anywhere else it greets at once and looks at the first octets the client
// sends only to refuse a header there. A proxy sends its header as soon as
// it connects, before anything of the client's, so the header is always
// those first octets.
//
// Headers are honoured only from Server.TrustedProxies. From anywhere else a
// header is refused and the connection closed: an untrusted client must not
// choose its own address or TLVs.

// proxyHeaderTimeout bounds reading a header once its signature has begun.
const proxyHeaderTimeout = 5 * time.Second

// proxySigWait is how long a connection whose first octets could begin a
// signature ("\r\n", "PRO") waits for the rest before they count as input.
const proxySigWait = time.Second

var (
	errProxyUntrusted = errors.New("PROXY header from an untrusted address")
	errBadProxy       = errors.New("bad PROXY header")
)

// trusted reports whether PROXY headers are honoured from addr.
func (s *Server) trusted(addr net.Addr) bool {
	if len(s.TrustedProxies) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range s.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// startsWithProxySig reports whether the first octets the client sent are a
// PROXY signature. It waits for more octets only while those buffered are a
// strict prefix of one, and not longer than proxySigWait.
func (c *conn) startsWithProxySig() (bool, error) {
	if _, err := c.br.Peek(1); err != nil {
		return false, err
	}
	for {
		buf, _ := c.br.Peek(c.br.Buffered())
		prefix, full := false, false
		for _, sig := range [][]byte{proxyproto.SIGV2, proxyproto.SIGV1} {
			n := min(len(buf), len(sig))
			if bytes.Equal(buf[:n], sig[:n]) {
				prefix = true
				full = full || n == len(sig)
			}
		}
		if full || !prefix {
			return full, nil
		}
		c.raw.SetReadDeadline(time.Now().Add(proxySigWait))
		_, err := c.br.Peek(len(buf) + 1)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return false, nil // a human's empty line, not a proxy
		}
		if err != nil {
			return false, err
		}
	}
}

// awaitProxyHeader waits up to ProxyWait for a trusted peer's first
// octets and applies the PROXY header they begin, if they do. A peer that
// sends nothing in that time is a plain client (a person at a telnet
// prompt): it gets the greeting, and its own address counts.
func (c *conn) awaitProxyHeader() (ip string, err error) {
	if c.srv.inShutdown.Load() {
		return c.ip, errShutdown
	}
	wait := c.srv.ProxyWait
	if wait <= 0 {
		wait = DefaultProxyWait
	}
	c.raw.SetReadDeadline(time.Now().Add(wait))
	_, err = c.br.Peek(1)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return c.ip, nil // nothing yet: not a proxy
	case err != nil:
		return c.ip, err
	}
	return c.readProxyHeader()
}

// readProxyHeader looks for a PROXY header at the start of the client's
// input. From a trusted proxy it applies it: ConnInfo's addresses become
// the real client's and its TLVs are kept. It returns the client address
// that per-address limits count.
func (c *conn) readProxyHeader() (ip string, err error) {
	ip = c.ip
	deadline := time.Time{}
	if c.srv.IdleTimeout > 0 {
		deadline = time.Now().Add(c.srv.IdleTimeout)
	}
	c.raw.SetReadDeadline(deadline)
	if c.srv.inShutdown.Load() { // as in readLine
		return ip, errShutdown
	}
	sig, err := c.startsWithProxySig()
	if err != nil || !sig {
		return ip, err
	}
	if !c.srv.trusted(c.raw.RemoteAddr()) {
		return ip, errProxyUntrusted
	}
	c.raw.SetReadDeadline(time.Now().Add(proxyHeaderTimeout))
	h, err := proxyproto.Read(c.br)
	if err != nil {
		return ip, fmt.Errorf("%w: %v", errBadProxy, err)
	}
	c.traceClient("(PROXY header)")
	c.info.Proxied = true
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
