package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/pop3playground/pop3playground/sessions"
)

// smtpReadTimeout closes an SMTP session that sends nothing for this
// long (RFC 5321 §4.5.3.2.7 asks 5 minutes of a server waiting for a
// command; a playground's idle senders are students who went away).
const smtpReadTimeout = 2 * time.Minute

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
	s := smtp.NewServer(gatedBackend{d})
	s.Domain = mailDomain(cfg)
	s.MaxMessageBytes = int64(cfg.smtpMaxSize)
	s.MaxRecipients = sessions.DefaultMaxRcpts
	s.ReadTimeout = smtpReadTimeout
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

// smtpPort is the SMTP port the page shows.
func smtpPort(cfg *config, l net.Listener) string {
	if l == nil {
		return ""
	}
	return portOf(cfg.smtpAddr, l.Addr())
}
