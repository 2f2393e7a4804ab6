package sessions

import (
	"bytes"
	"fmt"
	"io"
	"net/mail"
	"strings"

	"github.com/emersion/go-smtp"
)

// The SMTP half of the client lab: a student's sending client sends the
// lab's test message to their lab address (LabAccount.ID@domain), and
// the lab grades what arrived.

// LabSMTPBody is the test message's body a student's SMTP client sends:
// lines that start with a dot, a line "." alone, 8-bit text, a long line.
var LabSMTPBody = strings.ReplaceAll("This is the client lab's test message. Send it as it is.\n"+
	".A line that starts with a dot.\n"+
	".\n"+
	"..\n"+
	"Above: a line \".\" alone and a line \"..\": a client dot-stuffs all three (RFC 5321 §4.5.2).\n"+
	"8-bit text: café, naïve, Zürich.\n"+
	"A long line: "+strings.Repeat("x", 960)+"\n"+
	"The end.\n", "\n", "\r\n")

// maxLabMail bounds the messages the lab keeps, and the octets of each
// (the test message is about 1 KB): a visitor's lab holds 320 KB at most.
const (
	maxLabMail   = 5
	maxLabMailSz = 64 << 10
)

// A labMail is one message a student's client sent to the lab.
type labMail struct {
	helo, from string
	wire       labWire
	refused    string // the reply the scenario refused it with, if any
	raw        []byte // as it arrived, dot-stuffing undone by the server
}

// labWire is what the connection that brought a message saw of the
// client (WireWatcher).
type labWire struct {
	Watched             bool `json:"watched,omitempty"` // the connection is a WireWatcher: the rest means something
	BareLF, Held, Early bool
	Unwaited            []string `json:"unwaited,omitempty"`
	OutOfTurn           []string `json:"out_of_turn,omitempty"`
}

// smtpPrelude is how the lab's SMTP port meets a connection of this lab:
// smtp-421 refuses the first with 421; smtp-split cuts every reply, the
// greeting and the EHLO reply among them.
func (l *Lab) smtpPrelude() LabSMTPPrelude {
	l.mu.Lock()
	defer l.mu.Unlock()
	sc := l.scenario
	switch {
	case sc == nil || sc.Protocol != "smtp":
		return LabSMTPPrelude{}
	case sc.greet421 && !l.gave421:
		l.gave421 = true // at once, here too: the next connection is greeted
		go l.record(labFact{Op: "421"})
		return LabSMTPPrelude{Refuse: "421 4.3.2 the service is not available right now (the client lab's smtp-421 scenario): try again in a moment"}
	case sc.ID == "smtp-split":
		return LabSMTPPrelude{Shape: sc.replies}
	}
	return LabSMTPPrelude{}
}

// labRcpt is the lab's answer to RCPT TO its address: the smtp-451
// scenario refuses the first, for a while; smtp-slow and smtp-split give
// the way the session's later replies go out.
func (l *Lab) labRcpt() (shape func(io.Writer) io.Writer, err error) {
	l.mu.Lock()
	sc := l.scenario
	refuse := sc != nil && sc.ID == "smtp-451" && l.rcpts == 0
	l.mu.Unlock()
	l.record(labFact{Op: "rcpt", Refused: refuse})
	switch {
	case sc == nil:
		return nil, nil
	case refuse:
		return nil, &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
			Message: "the recipient cannot take mail right now (the client lab's smtp-451 scenario): try again later"}
	}
	return sc.replies, nil
}

// A labMailFact is a message the lab took, as a fact.
type labMailFact struct {
	Helo    string  `json:"helo,omitempty"`
	From    string  `json:"from,omitempty"`
	Wire    labWire `json:"wire"`
	Refused string  `json:"refused,omitempty"`
	Raw     []byte  `json:"raw"`
}

func (f *labMailFact) mail() *labMail {
	return &labMail{helo: f.Helo, from: f.From, wire: f.Wire, refused: f.Refused, raw: f.Raw}
}

// labData takes a message for the lab: the smtp-552 scenario refuses the
// first as too large.
func (l *Lab) labData(raw []byte, helo, from string, wire labWire) error {
	l.mu.Lock()
	refuse := l.scenario != nil && l.scenario.ID == "smtp-552" && len(l.mail) == 0
	l.mu.Unlock()
	m := &labMailFact{Helo: helo, From: from, Wire: wire, Raw: raw[:min(len(raw), maxLabMailSz)]}
	var err error
	if refuse {
		m.Refused = "552 5.3.4"
		err = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4},
			Message: "the message is larger than this mailbox accepts (the client lab's smtp-552 scenario): a permanent refusal, not to be retried as it is"}
	}
	l.record(labFact{Op: "mail", Mail: m})
	return err
}

// smtpChecks grade the messages the client sent.
func (l *Lab) smtpChecks(sc *LabScenario) []LabCheck {
	ehlo := LabCheck{ID: "smtp-ehlo", Title: "Says EHLO (or HELO) first, then MAIL, RCPT and DATA in order", RFC: "RFC 5321 §4.1.1.1, §4.1.4", Status: LabNone}
	crlf := LabCheck{ID: "smtp-crlf", Title: "Ends every line with CRLF", RFC: "RFC 5321 §2.3.8", Status: LabNone}
	headers := LabCheck{ID: "smtp-headers", Title: "Sends the header fields every message needs (Date, From)", RFC: "RFC 5322 §3.6", Status: LabNone}
	body := LabCheck{ID: "smtp-body", Title: "Sends the test message's body as given, dot-stuffed", RFC: "RFC 5321 §4.5.2", Status: LabNone}
	retry := LabCheck{ID: "smtp-retry", Title: "Sends again after a temporary refusal (4xx)", RFC: "RFC 5321 §4.2.1, §4.5.4.1", Status: LabNone,
		Seen: "only the smtp-451 scenario refuses a recipient for a while"}
	permanent := LabCheck{ID: "smtp-permanent", Title: "Does not resend a message refused for good (5xx)", RFC: "RFC 5321 §4.2.1", Status: LabNone,
		Seen: "only the smtp-552 scenario refuses a message for good"}
	greeting := LabCheck{ID: "smtp-greeting", Title: "Waits for the 220 greeting before EHLO", RFC: "RFC 5321 §3.1, §4.3.2", Status: LabNone,
		Seen: "send through the lab SMTP port, which greets after a second, to check"}
	waits := LabCheck{ID: "smtp-pipelining", Title: "Waits for the replies it must wait for", RFC: "RFC 2920 §3.1, RFC 5321 §4.3.2", Status: LabNone}
	for _, m := range l.mail {
		ehlo.Status, crlf.Status = LabPass, LabPass
		if m.wire.Watched && waits.Status != LabFail {
			waits.Status = LabPass
		}
		if m.wire.Held && greeting.Status != LabFail {
			greeting.Status, greeting.Seen = LabPass, ""
			if m.wire.Early {
				greeting.Status, greeting.Seen = LabFail, "the client sent before the 220 greeting came: a server may refuse with 421 or 554 at the greeting, and a client that does not read it sends into a closed session"
			}
		}
		if len(m.wire.Unwaited) > 0 && waits.Status != LabFail {
			waits.Status, waits.Seen = LabFail, "the client sent "+strings.Join(m.wire.Unwaited, "; ")+": with PIPELINING, EHLO, DATA and QUIT still end a group whose replies the client reads first, and the message waits for 354; without it, every command waits for its reply"
		}
		switch {
		case m.helo == "":
			ehlo.Status, ehlo.Seen = LabFail, "MAIL came without EHLO or HELO first"
		case len(m.wire.OutOfTurn) > 0:
			ehlo.Status, ehlo.Seen = LabFail, "the server refused "+strings.Join(m.wire.OutOfTurn, ", ")+" as sent out of turn (503, or go-smtp's 502 5.5.1): EHLO, then MAIL, then RCPT, then DATA"
		}
		if m.wire.BareLF {
			crlf.Status, crlf.Seen = LabFail, "a line ended with LF alone (\\n); SMTP lines end with CR LF (\\r\\n), and a bare LF in a message is refused by many servers"
		}
		if m.refused != "" {
			continue
		}
		headers.Status, headers.Seen = LabPass, ""
		msg, err := mail.ReadMessage(bytes.NewReader(m.raw))
		if err != nil {
			headers.Status, headers.Seen = LabFail, "the message has no header a reader can parse: "+err.Error()
		} else {
			var missing []string
			for _, f := range []string{"Date", "From"} {
				if msg.Header.Get(f) == "" {
					missing = append(missing, f)
				}
			}
			if len(missing) > 0 {
				headers.Status, headers.Seen = LabFail, "no "+strings.Join(missing, " and ")+" field"
			}
		}
		body.Status, body.Seen = LabPass, ""
		if _, b, ok := bytes.Cut(m.raw, []byte("\r\n\r\n")); !ok || string(b) != LabSMTPBody {
			body.Status, body.Seen = LabFail, bodyCause(b)
		}
	}
	if sc.ID == "smtp-451" && l.rcptRefused {
		retry.Status, retry.Seen = LabFail, "the recipient was refused with 451 and the client has not sent again (yet)"
		if l.rcptLater {
			retry.Status, retry.Seen = LabPass, ""
		}
	}
	if sc.ID == "smtp-552" && len(l.mail) > 0 {
		permanent.Status, permanent.Seen = LabPass, ""
		if len(l.mail) > 1 {
			permanent.Status, permanent.Seen = LabFail, fmt.Sprintf("after 552 the client sent the message %d more time(s): a 5xx reply is permanent", len(l.mail)-1)
		}
	}
	return []LabCheck{greeting, ehlo, crlf, waits, headers, body, retry, l.check421(sc), permanent}
}

// check421 grades smtp-421: after 421 for a greeting, a message later.
func (l *Lab) check421(sc *LabScenario) LabCheck {
	c := LabCheck{ID: "smtp-421", Title: "Connects again later after 421 at the greeting", RFC: "RFC 5321 §3.8, §4.2.1", Status: LabNone}
	switch {
	case !sc.greet421:
		c.Seen = "only the smtp-421 scenario refuses a greeting"
	case !l.gave421 && l.sharedBy > 1:
		c.Seen = fmt.Sprintf("%d visitors used the lab from your network address at once, so the lab SMTP port could not tell which connection was yours: the 421 waits for an address of your own", l.sharedBy)
	case !l.gave421:
		c.Seen = "the 421 goes to the first connection to the lab SMTP port from the address that chose the scenario"
	case len(l.mail) == 0:
		c.Status, c.Seen = LabFail, "the first connection got 421 and the client has not come back with the message (yet)"
	default:
		c.Status = LabPass
	}
	return c
}

// bodyCause names the first line where a body that arrived differs from
// the test body, and the likely cause.
func bodyCause(got []byte) string {
	want := strings.Split(LabSMTPBody, "\r\n")
	lines := strings.Split(string(got), "\r\n")
	for i, w := range want {
		if i >= len(lines) {
			return fmt.Sprintf("the body ends before line %d (%q): a line \".\" alone ends DATA unless the client dot-stuffs it to \"..\" (RFC 5321 §4.5.2)", i+1, truncate(w, 40))
		}
		g := lines[i]
		switch {
		case g == w:
			continue
		case strings.HasPrefix(w, ".") && g == w[1:]:
			return fmt.Sprintf("body line %d arrived as %q, not %q: the client did not dot-stuff it, so the server removed its first dot (RFC 5321 §4.5.2)", i+1, truncate(g, 40), truncate(w, 40))
		case len(g) < len(w) && strings.HasPrefix(w, g):
			return fmt.Sprintf("body line %d is cut at %d octets of %d", i+1, len(g), len(w))
		}
		return fmt.Sprintf("body line %d is %q, the test message has %q", i+1, truncate(g, 40), truncate(w, 40))
	}
	return "the body goes on after the test message's last line"
}
