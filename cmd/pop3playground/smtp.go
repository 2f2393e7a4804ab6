package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

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

// limitConns bounds a listener's connections, overall and per address
// (IPv6 by /64): one past a bound is told so in SMTP's words (421) and
// closed.
func limitConns(l net.Listener, max, perIP int) net.Listener {
	return &connLimiter{Listener: l, max: max, perIP: perIP, per: make(map[string]int)}
}

type connLimiter struct {
	net.Listener
	max, perIP int

	mu    sync.Mutex
	total int
	per   map[string]int
}

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		key := pop3.AddrKey(host)
		l.mu.Lock()
		ok := l.total < l.max && l.per[key] < l.perIP
		if ok {
			l.total++
			l.per[key]++
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
