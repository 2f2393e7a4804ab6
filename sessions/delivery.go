package sessions

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/pop3playground/pop3playground/pop3"
)

// Mail in (DESIGN §11): an SMTP listener (github.com/emersion/go-smtp at
// the edge) delivers into visitors' sandboxes. Only playground addresses
// are accepted, NAME.ID@Domain for a personal login: never a relay, no DNS
// lookup, nothing leaves the machine, nothing is written to the
// organiser's files. A delivered message is immutable and shared like a
// fixture message; the sandbox gains a reference, seen at the next login
// (RFC 1939: a session's maildrop is fixed at its login).

// Defaults of a Delivery.
const (
	DefaultMaxDelivered = 200 // messages delivered into one sandbox
	DefaultMaxRcpts     = 10  // recipients of one message
)

// Delivery is the SMTP backend: it accepts mail for personal addresses and
// puts it in their sandboxes.
type Delivery struct {
	Visitors *Visitors
	// Domain is the mail domain of the playground's addresses.
	Domain string
	// MaxDelivered bounds the messages delivered into one sandbox.
	MaxDelivered int
	// PerVisitor and PerAddress bound the messages delivered to one
	// visitor and sent from one client address (IPv6 by /64).
	PerVisitor pop3.RateLimiter
	PerAddress pop3.RateLimiter

	delivered, refused atomic.Int64
	seq                atomic.Uint64
}

var _ smtp.Backend = (*Delivery)(nil)

// NewDelivery returns a Delivery for vs's personal addresses at domain.
func NewDelivery(vs *Visitors, domain string) *Delivery {
	return &Delivery{
		Visitors:     vs,
		Domain:       strings.ToLower(domain),
		MaxDelivered: DefaultMaxDelivered,
		PerVisitor:   pop3.RateLimiter{Rate: 1.0 / 5, Burst: 20},
		PerAddress:   pop3.RateLimiter{Rate: 1, Burst: 60},
	}
}

// Delivered and Refused count messages delivered and recipients or
// messages refused, for metrics.
func (d *Delivery) Delivered() int64 { return d.delivered.Load() }
func (d *Delivery) Refused() int64   { return d.refused.Load() }

// NewSession implements smtp.Backend.
func (d *Delivery) NewSession(c *smtp.Conn) (smtp.Session, error) {
	s := &smtpSession{d: d, helo: c.Hostname()}
	if nc := c.Conn(); nc != nil {
		s.remote = nc.RemoteAddr().String()
		if host, _, err := net.SplitHostPort(s.remote); err == nil {
			s.ip = host
		}
	}
	_, s.tls = c.TLSConnectionState()
	return s, nil
}

// An smtpSession is one SMTP connection's transaction.
type smtpSession struct {
	d      *Delivery
	helo   string
	remote string
	ip     string
	tls    bool

	from  string
	rcpts []rcpt
}

type rcpt struct {
	addr    string
	v       *Visitor
	account string
}

func smtpErr(code int, enh smtp.EnhancedCode, format string, args ...any) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: fmt.Sprintf(format, args...)}
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	s.rcpts = nil
	return nil
}

// Rcpt accepts a personal address of a visitor who exists, and teaches
// about every other.
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	d := s.d
	if len(s.rcpts) >= DefaultMaxRcpts {
		d.refused.Add(1)
		return smtpErr(452, smtp.EnhancedCode{4, 5, 3}, "too many recipients: at most %d a message", DefaultMaxRcpts)
	}
	local, domain, ok := strings.Cut(to, "@")
	if !ok || !strings.EqualFold(domain, d.Domain) {
		d.refused.Add(1)
		return smtpErr(550, smtp.EnhancedCode{5, 7, 1}, "%s: this server delivers only to playground addresses (NAME.ID@%s); it relays nothing", to, d.Domain)
	}
	if a := d.Visitors.World().Account(local); a != nil {
		d.refused.Add(1)
		return smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "%s is the shared lab account; send to your personal address, shown on the playground page", to)
	}
	account, id, ok := splitPersonal(local)
	v := d.Visitors.ByID(id)
	if !ok || v == nil || d.Visitors.World().Account(account) == nil {
		d.refused.Add(1)
		return smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "%s: no such playground address (personal addresses are NAME.ID@%s, shown on the playground page)", to, d.Domain)
	}
	s.rcpts = append(s.rcpts, rcpt{addr: to, v: v, account: account})
	return nil
}

// Data delivers the message into each recipient's sandbox, with the
// playground's own Return-Path and Received fields on top.
func (s *smtpSession) Data(r io.Reader) error {
	d := s.d
	raw, err := io.ReadAll(r)
	if err != nil {
		return err // too large: go-smtp answers 552
	}
	now := time.Now()
	if !d.PerAddress.Allow(pop3.AddrKey(s.ip), now) {
		d.refused.Add(1)
		return smtpErr(451, smtp.EnhancedCode{4, 7, 1}, "too many messages from your address: wait a little and send again")
	}
	var id [6]byte
	rand.Read(id[:])
	msgID := fmt.Sprintf("%x.%d", id, d.seq.Add(1))
	var errs []string
	delivered := 0
	for _, rc := range s.rcpts {
		if !d.PerVisitor.Allow(rc.v.Token, now) {
			errs = append(errs, rc.addr+": too many messages lately")
			continue
		}
		msg, err := s.message(raw, rc, msgID, now)
		if err != nil {
			d.refused.Add(1)
			return smtpErr(554, smtp.EnhancedCode{5, 6, 0}, "the message is not a mail message: %v", err)
		}
		if err := rc.v.Sandbox.Deliver(rc.account, msg, d.MaxDelivered); err != nil {
			errs = append(errs, rc.addr+": "+err.Error())
			continue
		}
		d.Visitors.mailArrived(rc.v, rc.account)
		delivered++
	}
	d.delivered.Add(int64(delivered))
	if len(errs) > 0 {
		d.refused.Add(int64(len(errs)))
		if delivered == 0 {
			return smtpErr(452, smtp.EnhancedCode{4, 2, 2}, "not delivered: %s", strings.Join(errs, "; "))
		}
	}
	return nil
}

// message is raw as it arrives in rc's maildrop: the playground's hop on
// top, so that the route grows by one.
func (s *smtpSession) message(raw []byte, rc rcpt, id string, now time.Time) (*Message, error) {
	with := "ESMTP"
	if s.tls {
		with = "ESMTPS"
	}
	helo := strings.Map(func(r rune) rune {
		if r <= ' ' || r >= 0x7f || r == '(' || r == ')' {
			return -1
		}
		return r
	}, s.helo)
	if helo == "" {
		helo = "unknown"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "Return-Path: <%s>\r\n", s.from)
	fmt.Fprintf(&b, "Received: from %s ([%s])\r\n\tby %s (POP3 Playground) with %s id %s\r\n\tfor <%s>; %s\r\n",
		helo, s.ip, s.d.Domain, with, id, rc.addr, now.Format(time.RFC1123Z))
	b.Write(raw)
	m, err := newMessage(b.Bytes(), "delivered "+id, 1)
	if err != nil {
		var le *LoadError
		if errors.As(err, &le) {
			return nil, errors.New(le.Msg)
		}
		return nil, err
	}
	assignUIDs([]*Message{m})
	m.uid = "smtp." + id + "." + m.uid[:8]
	if _, err := mail.ParseAddress(s.from); s.from != "" && err != nil {
		m.From = s.from
	}
	return m, nil
}

func (s *smtpSession) Reset()        { s.from, s.rcpts = "", nil }
func (s *smtpSession) Logout() error { return nil }

// Deliver adds a delivered message to an account's maildrop in the
// sandbox. A session logged in keeps the list it had (RFC 1939 §8); the
// next login sees it. At most max messages are delivered into one
// sandbox between resets.
func (sb *Sandbox) Deliver(account string, m *Message, max int) error {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if max > 0 && sb.delivered >= max {
		return fmt.Errorf("the mailbox is full (%d delivered messages; Reset mailbox empties it)", max)
	}
	sb.delivered++
	sb.setViewLocked(account, sb.viewLocked(account).with(m))
	return nil
}
