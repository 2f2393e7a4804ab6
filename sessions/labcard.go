package sessions

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/pop3playground/pop3playground/pop3"
)

// A LabCheck is one line of the lab's report card.
type LabCheck struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	RFC    string `json:"rfc"`
	Status string `json:"status"` // pass, fail or not exercised
	Seen   string `json:"seen,omitempty"`
}

// The statuses of a LabCheck.
const (
	LabPass = "pass"
	LabFail = "fail"
	LabNone = "not exercised"
)

// A LabCard is the client lab's report card.
type LabCard struct {
	Scenario LabScenario  `json:"scenario"`
	Sessions int          `json:"sessions"` // POP3 connections, or SMTP messages, seen
	Checks   []LabCheck   `json:"checks"`
	Messages []LabMessage `json:"messages,omitempty"` // the POP3 maildrop
	Proofs   []Proof      `json:"proofs,omitempty"`
}

// Card grades what the lab saw of the client.
func (l *Lab) Card() LabCard {
	l.mu.Lock()
	defer l.mu.Unlock()
	sc := l.scenario
	if sc == nil {
		sc = &LabScenarios[0]
	}
	card := LabCard{Scenario: *sc, Sessions: len(l.sessions), Proofs: slices.Clone(l.proofs)}
	if sc.Protocol == "smtp" {
		card.Sessions = len(l.mail)
		card.Checks = l.smtpChecks(sc)
		return card
	}
	card.Messages = LabMaildrop()
	card.Checks = []LabCheck{
		l.checkGreeting(), l.checkCRLF(), l.checkLogin(), l.checkLoginOrder(), l.checkWaits(), l.checkAfterError(), l.checkCommands(),
		l.checkRetrieved(), l.checkQuit(sc), l.checkRetry(sc), l.checkFallback(sc), l.checkAPOP(sc), l.checkSaved(),
	}
	return card
}

func (l *Lab) checkGreeting() LabCheck {
	c := LabCheck{ID: "greeting", Title: "Waits for the greeting before the first command", RFC: "RFC 1939 §4", Status: LabNone,
		Seen: "connect to the lab POP3 port, which greets after a second, to check"}
	for _, s := range l.sessions {
		if !s.port {
			continue
		}
		c.Status, c.Seen = LabPass, ""
		if s.early {
			c.Status, c.Seen = LabFail, fmt.Sprintf("connection %d sent before the +OK greeting came: the greeting may be -ERR, and it carries the APOP timestamp", s.conn)
			return c
		}
	}
	return c
}

func (l *Lab) checkWaits() LabCheck {
	c := LabCheck{ID: "pipelining", Title: "Waits for each reply unless CAPA listed PIPELINING", RFC: "RFC 2449 §6.6, RFC 1939 §3", Status: LabNone}
	for _, s := range l.sessions {
		if s.end == "" {
			continue
		}
		c.Status = LabPass
		if len(s.unwaited) > 0 {
			c.Status, c.Seen = LabFail, fmt.Sprintf("connection %d sent %s before the reply to the command before, and no CAPA reply had listed PIPELINING", s.conn, strings.Join(s.unwaited, ", "))
			return c
		}
	}
	return c
}

func (l *Lab) checkCRLF() LabCheck {
	c := LabCheck{ID: "crlf", Title: "Ends every command line with CRLF", RFC: "RFC 1939 §3", Status: LabNone}
	for _, s := range l.sessions {
		c.Status = LabPass
		if s.bareLF {
			c.Status, c.Seen = LabFail, fmt.Sprintf("connection %d ended a line with LF alone (\\n); POP3 lines end with CR LF (\\r\\n)", s.conn)
			return c
		}
	}
	return c
}

func (l *Lab) checkLogin() LabCheck {
	c := LabCheck{ID: "login", Title: "Logs in with the lab login", RFC: "RFC 1939 §7", Status: LabNone}
	for _, s := range l.sessions {
		if s.loggedIn {
			c.Status, c.Seen = LabPass, ""
			return c
		}
		c.Status, c.Seen = LabFail, "no login succeeded: the lab's login is "+LabAccount+".ID, password "+LabPassword
	}
	return c
}

// transactionOnly are the commands valid only once logged in, from the
// command table.
var transactionOnly = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	for _, d := range pop3.Reference {
		if len(d.States) == 1 && d.States[0] == "TRANSACTION" {
			m[d.Verb] = true
		}
	}
	return m
})

func (l *Lab) checkLoginOrder() LabCheck {
	c := LabCheck{ID: "login-order", Title: "Logs in in order: USER, then PASS, before anything else", RFC: "RFC 1939 §7, §3", Status: LabNone}
	for _, s := range l.sessions {
		if s.before == nil {
			continue
		}
		c.Status = LabPass
		user := false
		for _, verb := range s.before {
			switch {
			case verb == "USER":
				user = true
			case verb == "PASS" && !user:
				c.Status, c.Seen = LabFail, fmt.Sprintf("connection %d sent PASS before USER (it sent %s)", s.conn, strings.Join(s.before, ", "))
				return c
			case transactionOnly()[verb]:
				c.Status, c.Seen = LabFail, fmt.Sprintf("connection %d sent %s before logging in (it sent %s)", s.conn, verb, strings.Join(s.before, ", "))
				return c
			}
		}
	}
	return c
}

func (l *Lab) checkAfterError() LabCheck {
	c := LabCheck{ID: "after-error", Title: "Does not go on after a refused login", RFC: "RFC 1939 §4", Status: LabNone}
	for _, s := range l.sessions {
		if !s.refused {
			continue
		}
		c.Status = LabPass
		for _, ln := range s.lines[s.afterRef:] {
			if ln.Kind == pop3.KindNeedLogin {
				c.Status, c.Seen = LabFail, fmt.Sprintf("after the login was refused, connection %d sent %q and got %q: the client ignored the -ERR", s.conn, ln.Command, ln.Reply)
				return c
			}
		}
	}
	return c
}

func (l *Lab) checkCommands() LabCheck {
	c := LabCheck{ID: "commands", Title: "Sends well-formed POP3 commands", RFC: "RFC 1939 §3, RFC 2449 §4", Status: LabNone}
	for _, s := range l.sessions {
		for _, ln := range s.lines {
			c.Status = LabPass
			if ln.Kind == pop3.KindUnknown && offered(ln.Command) {
				continue // a command the scenario took away: not malformed
			}
			switch ln.Kind {
			case pop3.KindUnknown, pop3.KindNotText, pop3.KindLineTooLong, pop3.KindSyntax, pop3.KindMsgArg, pop3.KindEmpty, pop3.KindLoggedIn:
				c.Status, c.Seen = LabFail, fmt.Sprintf("connection %d sent %q and got %q", s.conn, ln.Command, ln.Reply)
				return c
			}
		}
	}
	return c
}

// offered reports whether the command line's verb is one of POP3's.
func offered(command string) bool {
	verb, _, _ := strings.Cut(command, " ")
	return pop3Verbs()[strings.ToUpper(verb)]
}

var pop3Verbs = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	for _, d := range pop3.Reference {
		m[d.Verb] = true
	}
	return m
})

func (l *Lab) checkRetrieved() LabCheck {
	c := LabCheck{ID: "retrieved", Title: "Retrieves every message of the maildrop", RFC: "RFC 1939 §5", Status: LabNone}
	n := len(labMessages)
	got := map[int]bool{}
	for _, s := range l.sessions {
		for _, ln := range s.lines {
			verb, arg, _ := strings.Cut(ln.Command, " ")
			if k, err := strconv.Atoi(strings.TrimSpace(arg)); err == nil && ln.OK && strings.EqualFold(verb, "RETR") {
				got[k] = true
			}
		}
	}
	if len(got) == 0 {
		return c
	}
	var missing []string
	for i := 1; i <= n; i++ {
		if !got[i] {
			missing = append(missing, strconv.Itoa(i))
		}
	}
	c.Status = LabPass
	if len(missing) > 0 {
		c.Status, c.Seen = LabFail, fmt.Sprintf("message %s not retrieved (of %d)", strings.Join(missing, ", "), n)
	}
	return c
}

func (l *Lab) checkQuit(sc *LabScenario) LabCheck {
	c := LabCheck{ID: "quit", Title: "Ends the session with QUIT", RFC: "RFC 1939 §6", Status: LabNone}
	for _, s := range l.sessions {
		if !s.loggedIn || s.end == "" || strings.Contains(s.end, errDropped.Error()) {
			continue // open, refused, or cut by the drop-retr scenario
		}
		c.Status = LabPass
		if !s.quit {
			c.Status, c.Seen = LabFail, fmt.Sprintf("connection %d closed without QUIT (%s): the session never reached UPDATE, so nothing it marked was deleted", s.conn, s.end)
			return c
		}
	}
	return c
}

func (l *Lab) checkRetry(sc *LabScenario) LabCheck {
	c := LabCheck{ID: "retry", Title: "Logs in again after a temporary refusal", RFC: "RFC 3206 §3, RFC 2449 §8.1.1", Status: LabNone}
	if sc.ID != "sys-temp" && sc.ID != "in-use" {
		c.Seen = "only the sys-temp and in-use scenarios refuse a login for a while"
		return c
	}
	refused := false
	for _, s := range l.sessions {
		switch {
		case s.refused && !s.loggedIn:
			refused = true
			c.Status, c.Seen = LabFail, "the login was refused and the client has not logged in again (yet)"
		case refused && s.loggedIn:
			c.Status, c.Seen = LabPass, ""
			return c
		}
	}
	return c
}

func (l *Lab) checkFallback(sc *LabScenario) LabCheck {
	c := LabCheck{ID: "fallback", Title: "Does without optional commands the server lacks", RFC: "RFC 1939 §7, RFC 2449 §5", Status: LabNone}
	switch {
	case sc.ID != "minimal" && sc.ID != "rfc1939":
		c.Seen = "only the minimal and rfc1939 scenarios take commands away"
		return c
	case sc.ID == "rfc1939" && !slices.ContainsFunc(l.sessions, func(s *labSession) bool { return s.met }):
		c.Seen = "the rfc1939 scenario takes CAPA, STLS and AUTH away on the lab POP3 port: connect there"
		if l.sharedBy > 1 {
			c.Seen = fmt.Sprintf("%d visitors used the lab from your network address at once, so the lab POP3 port could not tell which connection was yours before the login: this scenario needs an address of your own", l.sharedBy)
		}
		return c
	}
	for _, s := range l.sessions {
		refused := map[string]bool{}
		for _, ln := range s.lines {
			verb, _, _ := strings.Cut(strings.ToUpper(ln.Command), " ")
			if ln.Kind == pop3.KindUnknown {
				if refused[verb] {
					c.Status, c.Seen = LabFail, fmt.Sprintf("connection %d sent %s again after it was refused as unknown", s.conn, verb)
					return c
				}
				refused[verb] = true
			}
		}
	}
	if r := l.checkRetrieved(); r.Status != LabNone {
		c.Status, c.Seen = r.Status, r.Seen
	}
	return c
}

func (l *Lab) checkAPOP(sc *LabScenario) LabCheck {
	c := LabCheck{ID: "apop", Title: "Logs in with APOP when that is all the server takes", RFC: "RFC 1939 §7", Status: LabNone}
	if !sc.apopOnly {
		c.Seen = "only the apop-only scenario refuses USER/PASS"
		return c
	}
	for _, s := range l.sessions {
		switch {
		case s.loggedIn:
			c.Status, c.Seen = LabPass, ""
			return c
		case s.refused:
			c.Status, c.Seen = LabFail, "USER/PASS (or AUTH) was refused and no APOP login followed"
		}
	}
	return c
}

func (l *Lab) checkSaved() LabCheck {
	c := LabCheck{ID: "saved", Title: "Saves each message as sent, dot-stuffing undone", RFC: "RFC 1939 §3", Status: LabNone,
		Seen: "submit the client's saved messages or their SHA-256 digests to check"}
	for _, p := range l.proofs {
		c.Status, c.Seen = LabPass, ""
		if !p.OK {
			c.Status, c.Seen = LabFail, p.Name+": "+p.Why
			return c
		}
	}
	return c
}

// Markdown is the card as a document a student hands in.
func (c LabCard) Markdown(login string) string {
	var b strings.Builder
	seen := "connection(s) seen"
	if c.Scenario.Protocol == "smtp" {
		seen = "message(s) received"
	}
	fmt.Fprintf(&b, "# Client lab report card\n\nLogin `%s`, scenario **%s** (`%s`): %s\n\n%d %s.\n\n",
		login, c.Scenario.Title, c.Scenario.ID, c.Scenario.Does, c.Sessions, seen)
	b.WriteString("| check | status | RFC | seen |\n| --- | --- | --- | --- |\n")
	cell := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", "\\|"), "\n", " ") }
	for _, ch := range c.Checks {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", cell(ch.Title), ch.Status, ch.RFC, cell(ch.Seen))
	}
	if len(c.Proofs) > 0 {
		b.WriteString("\n## Saved messages\n\n| file | verdict |\n| --- | --- |\n")
		for _, p := range c.Proofs {
			v := "as sent"
			if !p.OK {
				v = p.Why
			}
			fmt.Fprintf(&b, "| %s | %s |\n", cell(p.Name), cell(v))
		}
	}
	return b.String()
}

// LabSummary is what the organiser sees of a student's lab: the scenario,
// and how many checks passed and failed; Used is false for a student who
// never chose a scenario nor connected to the lab.
type LabSummary struct {
	Scenario       string
	Passed, Failed int
	Checks         int
	Used           bool
}

// Summary sums the card up for the organiser.
func (l *Lab) Summary() LabSummary {
	card := l.Card()
	l.mu.Lock()
	used := l.scenario != nil || len(l.sessions) > 0 || len(l.proofs) > 0 || len(l.mail) > 0
	l.mu.Unlock()
	s := LabSummary{Scenario: card.Scenario.ID, Checks: len(card.Checks), Used: used}
	for _, c := range card.Checks {
		switch c.Status {
		case LabPass:
			s.Passed++
		case LabFail:
			s.Failed++
		}
	}
	return s
}
