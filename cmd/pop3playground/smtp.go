package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/pires/go-proxyproto"

	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/sessions"
)

// Limits of the SMTP listener's connections: go-smtp has none of its own.
const (
	smtpMaxConns      = 500
	smtpMaxConnsPerIP = 20
)

// smtpDomain is the mail domain when the SMTP listener is on, else "".
func smtpDomain(cfg *config) string {
	if cfg.smtpAddr == "" {
		return ""
	}
	return mailDomain(cfg)
}

// mailDomain is the domain of the personal addresses.
func mailDomain(cfg *config) string {
	if cfg.mailDomain != "" {
		return strings.ToLower(cfg.mailDomain)
	}
	return strings.ToLower(publicHost(cfg))
}

// newSMTPServer is the SMTP listener's server: ESMTP with PIPELINING,
// 8BITMIME, SIZE, ENHANCEDSTATUSCODES and SMTPUTF8 (go-smtp announces
// them), and STARTTLS with the certificate of STLS. It never relays: the
// delivery backend accepts only playground addresses.
func newSMTPServer(cfg *config, d *sessions.Delivery, tlsConfig *tls.Config, logger *slog.Logger) *smtp.Server {
	s := smtp.NewServer(d)
	s.Domain = mailDomain(cfg)
	s.MaxMessageBytes = cfg.smtpMaxSize
	s.MaxRecipients = sessions.DefaultMaxRcpts
	s.ReadTimeout = 2 * time.Minute
	s.WriteTimeout = time.Minute
	s.TLSConfig = tlsConfig
	s.EnableSMTPUTF8 = true
	s.ErrorLog = slogPrintf{logger}
	return s
}

// slogPrintf adapts slog to go-smtp's Logger.
type slogPrintf struct{ l *slog.Logger }

func (s slogPrintf) Printf(format string, v ...any) { s.l.Warn("smtp: " + fmt.Sprintf(format, v...)) }
func (s slogPrintf) Println(v ...any)               { s.l.Warn("smtp: " + fmt.Sprint(v...)) }

// smtpListener is the SMTP listener as go-smtp sees it: PROXY headers
// honoured from trusted proxies (the page's bridge: the Received field
// then names the browser), refused from anyone else; connections bounded
// overall and per address, trusted proxies counted overall only.
func smtpListener(l net.Listener, trusted []netip.Prefix) net.Listener {
	isTrusted := func(a net.Addr) bool {
		ap, err := netip.ParseAddrPort(a.String())
		return err == nil && slices.ContainsFunc(trusted, func(p netip.Prefix) bool { return p.Contains(ap.Addr().Unmap()) })
	}
	limited := &connLimiter{Listener: l, max: smtpMaxConns, perIP: smtpMaxConnsPerIP, per: make(map[string]int), exempt: isTrusted}
	return &proxyproto.Listener{
		Listener: limited,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			if isTrusted(o.Upstream) {
				return proxyproto.USE, nil
			}
			return proxyproto.REJECT, nil
		},
		// A proxy sends its header at once; a person at a telnet prompt
		// on a trusted host waits this long for the greeting.
		ReadHeaderTimeout: pop3.DefaultProxyWait,
	}
}

type connLimiter struct {
	net.Listener
	max, perIP int
	exempt     func(net.Addr) bool // not counted per address
	mu         sync.Mutex
	total      int
	per        map[string]int
}

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		key := pop3.AddrKey(host)
		if l.exempt != nil && l.exempt(c.RemoteAddr()) {
			key = "" // a trusted proxy: its clients are many
		}
		l.mu.Lock()
		ok := l.total < l.max && (key == "" || l.per[key] < l.perIP)
		if ok {
			l.total++
			if key != "" {
				l.per[key]++
			}
		}
		l.mu.Unlock()
		if !ok {
			c.SetWriteDeadline(time.Now().Add(time.Second))
			c.Write([]byte("421 4.7.0 too many connections: try again later\r\n"))
			c.Close()
			continue
		}
		return &limitedConn{Conn: c, release: func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.total--
			if key == "" {
				return
			}
			if l.per[key]--; l.per[key] <= 0 {
				delete(l.per, key)
			}
		}}, nil
	}
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// smtpDialable is where the bridge dials the SMTP listener, or "".
func smtpDialable(l net.Listener) string {
	if l == nil {
		return ""
	}
	return dialable(l.Addr())
}

// smtpPort is the SMTP port the page shows.
func smtpPort(cfg *config, l net.Listener) string {
	if l == nil {
		return ""
	}
	return portOf(cfg.smtpAddr, l.Addr())
}
