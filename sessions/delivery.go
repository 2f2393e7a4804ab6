package sessions

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/pop3playground/pop3playground/pop3/limit"
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
	// DefaultMaxStored bounds the octets of delivered mail the process
	// holds: a class of 200 sending each other a hundred 10 KB messages
	// needs a fifth of it.
	DefaultMaxStored = 1 << 30
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
	PerVisitor limit.RateLimiter
	PerAddress limit.RateLimiter
	// MaxStored bounds the octets of delivered messages held at once, by
	// every sandbox together (0: no bound). A message counts until no
	// sandbox or session holds it any more.
	MaxStored int64
	// Now is the clock of the Received field's date (nil: time.Now).
	Now func() time.Time

	delivered, refused atomic.Int64
	stored             atomic.Int64
}

var _ smtp.Backend = (*Delivery)(nil)

// NewDelivery returns a Delivery for vs's personal addresses at domain.
func NewDelivery(vs *Visitors, domain string) *Delivery {
	return &Delivery{
		Visitors:     vs,
		Domain:       strings.ToLower(domain),
		MaxDelivered: DefaultMaxDelivered,
		PerVisitor:   limit.RateLimiter{Rate: 1.0 / 5, Burst: 20},
		PerAddress:   limit.RateLimiter{Rate: 1, Burst: 60},
		MaxStored:    DefaultMaxStored,
	}
}

// Stored is how many octets of delivered mail the sandboxes hold.
func (d *Delivery) Stored() int64 { return d.stored.Load() }

// Delivered and Refused count messages delivered and recipients or
// messages refused, for metrics.
func (d *Delivery) Delivered() int64 { return d.delivered.Load() }
func (d *Delivery) Refused() int64   { return d.refused.Load() }

// NewSession implements smtp.Backend.
func (d *Delivery) NewSession(c *smtp.Conn) (smtp.Session, error) {
	s := &smtpSession{d: d, helo: c.Hostname()}
	if nc := c.Conn(); nc != nil {
		s.remote = nc.RemoteAddr().String()
		s.ip = limit.Host(s.remote)
	}
	_, s.tls = c.TLSConnectionState()
	s.conn = c.Conn()
	return s, nil
}

// A ReplyShaper is a connection whose later replies can be delivered
// awkwardly (the client lab's smtp-slow and smtp-split scenarios).
type ReplyShaper interface {
	ShapeReplies(func(io.Writer) io.Writer)
}

// netConn is the session's connection under any TLS.
func (s *smtpSession) netConn() net.Conn {
	if tc, ok := s.conn.(interface{ NetConn() net.Conn }); ok {
		return tc.NetConn()
	}
	return s.conn
}

// A WireWatcher is a connection that tells how its client behaved on
// the wire (the SMTP listeners', in cmd/pop3playground), for the lab.
type WireWatcher interface {
	// BareLF reports whether the client ended a line with LF alone.
	BareLF() bool
	// GreetingHeld reports whether the greeting was held back (a lab
	// port), and SpokeFirst whether the client sent something meanwhile.
	GreetingHeld() bool
	SpokeFirst() bool
	// Unwaited are the first commands the client sent before a reply it
	// had to wait for (RFC 2920 §3.1), each with the one it did not
	// wait for: "MAIL before the reply to EHLO".
	Unwaited() []string
	// OutOfTurn are the first commands answered 503, bad sequence.
	OutOfTurn() []string
}

// wire is what the connection saw of the client, if it watches.
func (s *smtpSession) wire() labWire {
	w, ok := s.netConn().(WireWatcher)
	if !ok {
		return labWire{}
	}
	return labWire{Watched: true, BareLF: w.BareLF(), Held: w.GreetingHeld(), Early: w.SpokeFirst(), Unwaited: w.Unwaited(), OutOfTurn: w.OutOfTurn()}
}

// An smtpSession is one SMTP connection's transaction.
type smtpSession struct {
	d      *Delivery
	conn   net.Conn
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
	lab     bool // the visitor's lab address: graded, not delivered
}

func smtpErr(code int, enh smtp.EnhancedCode, format string, args ...any) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: fmt.Sprintf(format, args...)}
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if hasControl(from) {
		s.d.refused.Add(1)
		return smtpErr(553, smtp.EnhancedCode{5, 1, 7}, "the sender address has a control character (a NUL, say) in it: an address is printable text (RFC 5321 §4.1.2)")
	}
	s.from = from
	s.rcpts = nil
	return nil
}

// hasControl reports whether s has an ASCII control character.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f })
}

// Rcpt accepts a personal address of a visitor who exists, and teaches
// about every other.
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	d := s.d
	if hasControl(to) {
		d.refused.Add(1)
		return smtpErr(553, smtp.EnhancedCode{5, 1, 3}, "the recipient address has a control character (a NUL, say) in it: an address is printable text (RFC 5321 §4.1.2)")
	}
	if len(s.rcpts) >= DefaultMaxRcpts {
		d.refused.Add(1)
		return smtpErr(452, smtp.EnhancedCode{4, 5, 3}, "too many recipients: at most %d a message", DefaultMaxRcpts)
	}
	local, domain, ok := strings.Cut(to, "@")
	if !ok || !strings.EqualFold(domain, d.Domain) {
		d.refused.Add(1)
		return smtpErr(550, smtp.EnhancedCode{5, 7, 1}, "%s: this server delivers only to playground addresses (NAME.ID@%s); it relays nothing", to, d.Domain)
	}
	if v := d.Visitors.labVisitor(local); v != nil {
		shape, err := v.Lab.labRcpt()
		if err != nil {
			return err
		}
		if rs, ok := s.netConn().(ReplyShaper); ok && shape != nil {
			rs.ShapeReplies(shape)
		}
		s.rcpts = append(s.rcpts, rcpt{addr: to, v: v, lab: true})
		return nil
	}
	if a := d.Visitors.World().Account(local); a != nil {
		d.refused.Add(1)
		return smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "%s is the shared lab account; send to your personal address, shown on the playground page", to)
	}
	account, id, ok := splitPersonal(local)
	v, err := d.Visitors.Lookup(id)
	if err != nil {
		return smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "the playground's store is not answering right now: try again later")
	}
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
	if err := checkText(raw); err != nil {
		d.refused.Add(1)
		return err
	}
	now := time.Now()
	if d.Now != nil {
		now = d.Now()
	}
	if !d.PerAddress.Allow(limit.AddrKey(s.ip), now) {
		d.refused.Add(1)
		return smtpErr(451, smtp.EnhancedCode{4, 7, 1}, "too many messages from your address: wait a little and send again")
	}
	msgID := d.Visitors.newHopID()
	var errs []string
	delivered, full := 0, false
	for _, rc := range s.rcpts {
		if rc.lab {
			if !d.PerVisitor.Allow(rc.v.Token, now) {
				errs = append(errs, rc.addr+": too many messages lately")
				continue
			}
			if err := rc.v.Lab.labData(raw, s.helo, s.from, s.wire()); err != nil {
				return err
			}
			delivered++
			continue
		}
		if !d.PerVisitor.Allow(rc.v.Token, now) {
			errs = append(errs, rc.addr+": too many messages lately")
			continue
		}
		msg, err := s.message(raw, rc, msgID, now)
		if err != nil {
			d.refused.Add(1)
			return smtpErr(554, smtp.EnhancedCode{5, 6, 0}, "the message is not a mail message: %v", err)
		}
		if !d.store(msg) {
			full = true
			errs = append(errs, rc.addr+": the playground holds all the delivered mail it may")
			continue
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
		if delivered == 0 && full {
			return smtpErr(452, smtp.EnhancedCode{4, 3, 1}, "the playground holds all the delivered mail it may (%s): send again later, or ask the organiser to end some sessions", octets(d.MaxStored))
		}
		if delivered == 0 {
			return smtpErr(452, smtp.EnhancedCode{4, 2, 2}, "not delivered: %s", strings.Join(errs, "; "))
		}
	}
	return nil
}

// newHopID is the id of a Received field the playground adds: 48 random
// bits and a MAC of them under HopKey, so that IsOwnHop knows it again.
func (vs *Visitors) newHopID() string {
	var r [6]byte
	rand.Read(r[:])
	return hopID(vs.HopKey, hex.EncodeToString(r[:]))
}

func hopID(key []byte, nonce string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("pop3playground hop " + nonce))
	return nonce + "." + hex.EncodeToString(m.Sum(nil)[:6])
}

// IsOwnHop reports whether id is one this playground gave a Received field.
func (vs *Visitors) IsOwnHop(id string) bool {
	nonce, _, ok := strings.Cut(id, ".")
	return ok && len(nonce) == 12 && hmac.Equal([]byte(hopID(vs.HopKey, nonce)), []byte(id))
}

// checkText refuses a message that is not RFC 5322 text: what SMTP
// stores, POP3 serves as it is, so it must read the same to every client.
// Bare LFs are line ends (nc without -C) and become CRLF.
func checkText(raw []byte) error {
	line := func(i int) int { return bytes.Count(raw[:i], []byte("\n")) + 1 }
	if i := bytes.IndexByte(raw, 0); i >= 0 {
		return smtpErr(550, smtp.EnhancedCode{5, 6, 0}, "line %d has a NUL octet: mail is text, and RFC 5322 §2.3 keeps NUL out of it; send binary content as a base64 attachment", line(i))
	}
	for i := bytes.IndexByte(raw, '\r'); i >= 0; {
		if i+1 == len(raw) || raw[i+1] != '\n' {
			return smtpErr(550, smtp.EnhancedCode{5, 6, 0}, "line %d has a CR that no LF follows: RFC 5322 §2.3 lets CR and LF appear only together, as CRLF (a client that splits lines at CR would read another message)", line(i))
		}
		j := bytes.IndexByte(raw[i+1:], '\r')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	if len(raw) > 0 && (raw[0] == ' ' || raw[0] == '\t') {
		return smtpErr(550, smtp.EnhancedCode{5, 6, 0}, "the message begins with white space: a header cannot begin with a continuation line (RFC 5322 §2.2.3), and this one would continue the playground's own Received field; begin with a field such as Subject:")
	}
	return nil
}

// octets is n in the largest binary unit that keeps it whole.
func octets(n int64) string {
	for _, u := range []struct {
		shift int
		name  string
	}{{30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d %s", n>>u.shift, u.name)
		}
	}
	return fmt.Sprintf("%d octets", n)
}

// store counts m's octets against MaxStored until no one holds m.
func (d *Delivery) store(m *Message) bool {
	n := m.Size()
	if d.stored.Add(n) > d.MaxStored && d.MaxStored > 0 {
		d.stored.Add(-n)
		return false
	}
	runtime.AddCleanup(m, func(n int64) { d.stored.Add(-n) }, n)
	return true
}

// message is raw as it arrives in rc's maildrop: the playground's hop on
// top, so that the route grows by one. It is made in one allocation of
// its exact size: delivered mail costs the heap its octets, little more.
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
	top := fmt.Sprintf("Return-Path: <%s>\r\nReceived: from %s ([%s])\r\n\tby %s (POP3 Playground) with %s id %s\r\n\tfor <%s>; %s\r\n",
		s.from, helo, s.ip, s.d.Domain, with, id, rc.addr, now.Format(time.RFC1123Z))
	data := make([]byte, 0, len(top)+crlfLen(raw))
	data = appendCRLF(append(data, top...), raw)
	m, err := parseMessage(data, "delivered "+id, 1)
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
	if sb.store != nil {
		return sb.deliverShared(account, m, max)
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if max > 0 && sb.delivered >= max {
		return fmt.Errorf("the mailbox is full (%d delivered messages; Reset mailbox empties it)", max)
	}
	sb.delivered++
	sb.setViewLocked(account, sb.viewLocked(account).with(m))
	return nil
}
