package pop3

import (
	"fmt"
	"strconv"
	"strings"
)

// replyState is what a reply's explanation needs of its session, as it was
// when the reply went out: kept in the Event by value, so that nothing is
// built unless an Observer asks (Event.Complete).
type replyState struct {
	state   state
	count   int   // messages in the maildrop
	size    int64 // their octets
	removed int   // by QUIT
}

// explain says in one line what a status line means and where the RFCs
// say so. It is made from what the session did (the command, its outcome,
// the state it left), for the playground's "explained replies".
func explain(verb, line string, c replyState) string {
	ok := strings.HasPrefix(line, "+OK")
	text := strings.TrimPrefix(strings.TrimPrefix(line, "+OK"), "-ERR")
	text = strings.TrimSpace(text)
	code := ""
	if strings.HasPrefix(text, "[") {
		if end := strings.IndexByte(text, ']'); end > 0 {
			code, text = text[1:end], strings.TrimSpace(text[end+1:])
		}
	}
	if !ok {
		return explainErr(code, text)
	}
	fields := strings.Fields(text)
	num := func(i int) int {
		if i < len(fields) {
			n, _ := strconv.Atoi(fields[i])
			return n
		}
		return 0
	}
	switch verb {
	case "":
		return "The greeting: the server is ready and the session is in the AUTHORIZATION state. The <…> part is the APOP timestamp (RFC 1939 §4, §7)."
	case "USER":
		return "USER names the mailbox; the server waits for PASS before saying whether the pair is right (RFC 1939 §7)."
	case "PASS", "APOP", "AUTH":
		if c.state != stateTransaction { // AUTH without a mechanism
			return "AUTH without a mechanism lists the SASL mechanisms this server offers, one a line, ending with \".\"; CAPA's SASL line says the same (RFC 1734, RFC 5034 §3)."
		}
		how := map[string]string{
			"PASS": "USER and PASS",
			"APOP": "APOP: the password itself never crossed the network, only the MD5 digest of the timestamp and the password",
			"AUTH": "SASL AUTH",
		}[verb]
		ref := map[string]string{"PASS": "RFC 1939 §7", "APOP": "RFC 1939 §7", "AUTH": "RFC 5034"}[verb]
		return fmt.Sprintf("Logged in with %s. The maildrop is now locked for this session and the state is TRANSACTION: %s, %d octets (%s, §4).", how, plural(c.count, "message"), c.size, ref)
	case "STAT":
		return fmt.Sprintf("STAT: %s, %d octets in total; messages marked for deletion are not counted (RFC 1939 §5).", plural(num(0), "message"), num(1))
	case "LIST":
		if len(fields) >= 2 && fields[1] != "messages" && fields[1] != "message" {
			return fmt.Sprintf("LIST %d: message %d is %d octets as RETR sends it, CRLF line ends included, before dot-stuffing (RFC 1939 §5).", num(0), num(0), num(1))
		}
		return "LIST: one line per message, \"number size\", ending with a line holding only \".\"; marked messages are left out (RFC 1939 §5)."
	case "UIDL":
		if len(fields) == 2 {
			return fmt.Sprintf("UIDL %d: the unique-id %s stays the same across sessions, so a client can tell which messages it has already seen (RFC 1939 §7).", num(0), fields[1])
		}
		return "UIDL: \"number unique-id\" for every message; a client that leaves mail on the server compares these to download only new messages (RFC 1939 §7)."
	case "RETR":
		return fmt.Sprintf("RETR: the whole message follows, %d octets, ending with \".\"; lines that start with \".\" get another \".\" in front on the wire (dot-stuffing, RFC 1939 §3, §5).", num(0))
	case "TOP":
		return "TOP: the header, a blank line and the first lines of the body, ending with \".\"; TOP n 0 shows the header alone, how clients preview without downloading (RFC 1939 §7)."
	case "DELE":
		return "DELE only marks the message: it disappears from STAT and LIST now, but is removed only when you QUIT; RSET takes the marks back (RFC 1939 §5, §6)."
	case "RSET":
		return "RSET: every mark for deletion is taken back; nothing has been deleted, since that happens only at QUIT (RFC 1939 §5)."
	case "NOOP":
		return "NOOP does nothing but get +OK: clients use it to keep the session from the autologout timer (RFC 1939 §5)."
	case "CAPA":
		return "CAPA lists what this server supports, one capability per line, so a client knows before it tries (RFC 2449 §5)."
	case "STLS":
		return "STLS: a TLS handshake starts now on this connection; afterwards the server forgets everything said before (RFC 2595 §4)."
	case "QUIT":
		if c.state == stateUpdate {
			return fmt.Sprintf("QUIT from TRANSACTION entered the UPDATE state: the marked messages were removed and the lock released before this +OK (RFC 1939 §6). %s", c.deletedSentence())
		}
		return "QUIT before logging in ends the session; there was no maildrop to update (RFC 1939 §4)."
	}
	return "The command succeeded (+OK)."
}

func explainErr(code, text string) string {
	switch code {
	case "IN-USE":
		return "Another session holds the maildrop lock; only one session may hold it at a time (RFC 1939 §4, RFC 2449 §8.1.1)."
	case "AUTH":
		return "The user name or password was wrong ([AUTH]: a credentials problem, not a server problem, RFC 3206 §4). Each failure makes the next reply slower."
	case "SYS/TEMP":
		return "A temporary problem on the server's side ([SYS/TEMP], RFC 3206 §3): trying again later may work."
	case "SYS/PERM":
		return "A permanent problem on the server's side ([SYS/PERM], RFC 3206 §3): trying again will not help as it is."
	}
	switch {
	case strings.Contains(text, "is only valid after you log in"):
		return "This command belongs to the TRANSACTION state, which begins after a successful login (RFC 1939 §3, §5)."
	case strings.Contains(text, "is only valid before logging in"):
		return "This command belongs to the AUTHORIZATION state; the session is already in TRANSACTION (RFC 1939 §3, §4)."
	case strings.HasPrefix(text, "unknown command"):
		return "POP3 knows a few four-letter commands (three or four letters, case-insensitive); anything else gets -ERR (RFC 1939 §3)."
	case strings.HasPrefix(text, "no message"), strings.Contains(text, "marked for deletion"):
		return "Messages are named by their numbers from 1 to the count STAT gives; a message marked for deletion may not be used again until RSET (RFC 1939 §5)."
	case strings.Contains(text, "not a message number"), strings.Contains(text, "needs a message number"):
		return "This command needs a message number as its argument (RFC 1939 §5)."
	case strings.HasPrefix(text, "line too long"):
		return "A command line may be at most 255 octets with its CRLF (RFC 2449 §4)."
	case strings.HasPrefix(text, "autologout"):
		return "The autologout timer ran out: a session that sends nothing for at least 10 minutes is closed without entering UPDATE (RFC 1939 §3)."
	case strings.HasPrefix(text, "PASS must follow USER"):
		return "PASS only makes sense right after USER has named the mailbox (RFC 1939 §7)."
	}
	return "The command failed (-ERR); the text says why. The session's state did not change (RFC 1939 §3)."
}

func (c replyState) deletedSentence() string {
	if c.removed == 0 {
		return "No messages were marked, so none were removed."
	}
	return fmt.Sprintf("Removed: %s.", plural(c.removed, "message"))
}
