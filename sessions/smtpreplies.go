package sessions

import (
	"regexp"
)

// SMTPCommands are the SMTP commands the playground's SMTP server takes
// from a student (RFC 5321 §4.1, RFC 3207): what a lesson's smtp: line
// may type. A test sends each to the server.
var SMTPCommands = []string{"EHLO", "HELO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT", "STARTTLS"}

// SMTPExplanations says what the SMTP replies a student meets mean: by
// the enhanced status code (RFC 3463) where it says more, else by the
// reply code (RFC 5321 §4.2). The page's SMTP terminal shows them under
// each final reply line; a test checks that every reply the playground's
// SMTP server gives has one.
var SMTPExplanations = map[string]string{
	"220":   "The greeting: the server is ready. Say who you are with EHLO (or HELO) (RFC 5321 §4.2).",
	"221":   "The server closes the connection: the session is over (RFC 5321 §4.1.1.10).",
	"250":   "Done: the command was accepted (RFC 5321 §4.2). After the final \".\", the message is in the recipient's maildrop.",
	"251":   "Accepted: the server will forward it (RFC 5321 §3.4).",
	"252":   "The server will not say whether the mailbox exists (VRFY is a way to harvest addresses), but it takes mail for it (RFC 5321 §3.5.3).",
	"354":   "Send the message now: header lines, an empty line, the text, then a line holding only \".\" (RFC 5321 §4.1.1.4). A line that starts with \".\" gets a second one (dot-stuffing).",
	"421":   "The server cannot serve you now and closes the connection; try again later (RFC 5321 §4.2.2).",
	"450":   "Not now: the mailbox is busy or unavailable for the moment; 4xx replies are temporary (RFC 5321 §4.2.2).",
	"451":   "Not now: a temporary problem, such as too many messages in a short time; try again later (4xx replies are temporary).",
	"452":   "Not now: a limit was reached (too many recipients, or a full mailbox); 4xx replies are temporary.",
	"454":   "TLS cannot start now; the session goes on without it (RFC 3207 §4).",
	"500":   "The server did not understand that line: SMTP commands are EHLO, MAIL FROM:<…>, RCPT TO:<…>, DATA, RSET, NOOP and QUIT.",
	"501":   "The command's argument is wrong: addresses go in angle brackets, as in MAIL FROM:<me@example.org>.",
	"502":   "The server does not do that command.",
	"503":   "Wrong order: EHLO, then MAIL FROM, then RCPT TO, then DATA (RFC 5321 §4.1.4).",
	"504":   "The server does not take that parameter of the command (RFC 5321 §4.2.3).",
	"550":   "Refused for good (5xx replies are permanent): the mailbox is not one this server delivers to.",
	"552":   "Refused: the message is larger than the server accepts (SIZE in the EHLO reply says how large it may be).",
	"553":   "Refused for good: the address is not a valid mailbox name (RFC 5321 §4.2.3).",
	"554":   "The transaction failed: see the text for why.",
	"555":   "The server does not know a parameter given with MAIL FROM or RCPT TO (RFC 5321 §4.1.1.11).",
	"5.5.1": "Not now, or not here: the commands come in order, EHLO (or HELO), then MAIL FROM, then RCPT TO, then DATA (RFC 5321 §4.1.4; RFC 3463 5.5.1: invalid command).",
	"5.7.1": "Refused for good: this server is not a relay; it delivers only to playground addresses (RFC 3463 5.7.1: delivery not authorised).",
	"5.1.1": "Refused for good: no such mailbox here (RFC 3463 5.1.1: bad destination mailbox address).",
	"5.6.0": "Refused for good: the message is not plain mail text (a NUL, a lone CR, or a header that starts with a continuation line, RFC 5322 §2.3).",
	"4.3.1": "Not now: the server holds all the mail it may for the moment (RFC 3463 4.3.1: mail system full); try again later.",
	"4.7.1": "Not now: too many messages from your address in a short time (RFC 3463 4.7.1); wait a little and send again.",
}

var smtpReply = regexp.MustCompile(`^(\d{3}) (\d\.\d{1,3}\.\d{1,3})?`)

// ExplainSMTP explains a final SMTP reply line ("250 2.0.0 OK"), or
// returns "" for a line that is not one (a continuation "250-…").
func ExplainSMTP(line string) string {
	m := smtpReply.FindStringSubmatch(line)
	if m == nil {
		return ""
	}
	if s, ok := SMTPExplanations[m[2]]; ok {
		return s
	}
	return SMTPExplanations[m[1]]
}
