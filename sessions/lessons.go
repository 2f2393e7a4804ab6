package sessions

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/pop3playground/pop3playground/pop3"
)

// A Lesson is a guided exercise: steps that tick off from what the POP3
// server does in the visitor's sandbox, never from what the browser shows
// (DESIGN §8).
//
// A lesson is a Markdown file: front matter, an introduction, and one
// "## " section per step, each with a "check:" line naming the event that
// completes it:
//
//	---
//	title: The classic lab sheet
//	summary: Log in, list the maildrop, read a message, quit.
//	---
//	Introduction.
//
//	## Log in
//	check: ok PASS | ok APOP | ok AUTH
//
//	Type `USER guest`, then `PASS visitor`.
//
// Checks are alternatives separated by "|", each one of:
//
//	ok VERB [ARG...]     a +OK reply to VERB (ARG "*" matches any argument)
//	err VERB [ARG...]    a -ERR reply to VERB
//	reply VERB [ARG...]  either
//	code CODE            a -ERR reply with the response code [CODE]
//	state STATE          the session entered AUTHORIZATION, TRANSACTION or UPDATE
//	event KIND           an event: marked, unmarked, update, lock-taken,
//	                     lock-refused, lock-released, connected, closed, reset
//
// After the check, two lines may say where it must happen:
//
//	conn: new       on a connection opened after the step before was done
//	                (for the first step: after the lesson was started)
//	conn: same      on the connection the step before was done on
//	conn: other     on another connection than the step before's
//	conn: step N    on the connection step N was done on
//	in: STATE       on a connection in AUTHORIZATION or TRANSACTION
//
// A "do:" line gives the step bar's buttons: the complete actions that
// finish the step, in order, separated by "|". Each is a POP3 command line,
// "smtp: LINE" for the SMTP terminal, or one of {connect} (connect the
// POP3 terminal again), {reset} (Reset mailbox), {compose} (send the
// compose panel's message) and {tab} (open the page in a second tab). A
// command line may hold {address} (the personal address), {count} (the
// number of messages the session has) and {apop} (the APOP digest for
// the greeting's timestamp and the password "visitor"). Without a do:
// line, the bar offers no button for the step.
//
// Steps tick in order, and only in the lesson the visitor is doing: the
// one they opened or started, else the first one not finished. A step
// counts only what happens after the one before it was done.
type Lesson struct {
	ID      string // the file name without ".md"
	Title   string
	Summary string
	Intro   string // Markdown
	Steps   []Step
}

// A Step is one exercise of a lesson.
type Step struct {
	Title string
	Text  string // Markdown
	Check Check
	// Conn says which connection the check must happen on: "" (any),
	// "new", "same", "other", or "step N" (StepConn is then N).
	Conn     string
	StepConn int
	// In is the state the connection must be in, or "".
	In string
	// Do is what the step bar offers to finish the step.
	Do []Action
}

// An Action is one button of the step bar: a command line for a terminal,
// or something the page does.
type Action struct {
	// Target is "" for the POP3 terminal, "smtp" for the SMTP terminal,
	// or the page's: "connect", "reset", "compose", "tab".
	Target string `json:"target,omitempty"`
	// Line is the command line, for a terminal; it may hold {address},
	// {count} or {apop}.
	Line string `json:"line,omitempty"`
}

// ParseDo parses a step's do: line.
func ParseDo(s string) ([]Action, error) {
	var do []Action
	for alt := range strings.SplitSeq(s, "|") {
		alt = strings.TrimSpace(alt)
		var a Action
		switch {
		case alt == "{connect}", alt == "{reset}", alt == "{compose}", alt == "{tab}":
			a.Target = strings.Trim(alt, "{}")
		case strings.HasPrefix(alt, "smtp:"):
			a.Target, a.Line = "smtp", strings.TrimSpace(strings.TrimPrefix(alt, "smtp:"))
			verb, _, _ := strings.Cut(a.Line, " ")
			verb, _, _ = strings.Cut(verb, ":")
			if !slices.Contains(SMTPCommands, strings.ToUpper(verb)) {
				return nil, fmt.Errorf("do: %q: the SMTP terminal's commands are %v", alt, SMTPCommands)
			}
		default:
			a.Line = alt
			verb, _, _ := strings.Cut(alt, " ")
			if !slices.ContainsFunc(pop3.Reference, func(d pop3.CommandDoc) bool { return d.Verb == strings.ToUpper(verb) }) {
				return nil, fmt.Errorf("do: %q: the server has no command %s (an action is a command line, smtp: LINE, {connect}, {reset}, {compose} or {tab})", alt, verb)
			}
		}
		for rest := a.Line; ; {
			i := strings.IndexByte(rest, '{')
			if i < 0 {
				break
			}
			j := strings.IndexByte(rest[i:], '}')
			if j < 0 || !slices.Contains([]string{"{address}", "{count}", "{apop}"}, rest[i:i+j+1]) {
				return nil, fmt.Errorf("do: %q: a line may hold {address}, {count} or {apop}", alt)
			}
			rest = rest[i+j+1:]
		}
		do = append(do, a)
	}
	return do, nil
}

// A Check is what completes a step: any of its alternatives.
type Check struct {
	alts []predicate
}

type predicate struct {
	kind  string   // ok, err, reply, code, state, event
	verb  string   // ok, err, reply
	args  []string // ok, err, reply: nil matches any arguments
	value string   // code, state, event
}

// MailLesson is the built-in lesson that needs the SMTP listener.
const MailLesson = "07-mail-in"

// WithoutMail is lessons less the one that needs the SMTP listener, for
// a playground that runs none.
func WithoutMail(lessons []*Lesson) []*Lesson {
	return slices.DeleteFunc(slices.Clone(lessons), func(l *Lesson) bool { return l.ID == MailLesson })
}

// ParseCheck parses a step's check.
func ParseCheck(s string) (Check, error) {
	var c Check
	for alt := range strings.SplitSeq(s, "|") {
		f := strings.Fields(alt)
		if len(f) == 0 {
			return Check{}, fmt.Errorf("empty check in %q", s)
		}
		p := predicate{kind: f[0]}
		switch f[0] {
		case "ok", "err", "reply":
			if len(f) < 2 {
				return Check{}, fmt.Errorf("%q needs a command: %s VERB [ARG...]", alt, f[0])
			}
			p.verb = strings.ToUpper(f[1])
			if !slices.ContainsFunc(pop3.Reference, func(d pop3.CommandDoc) bool { return d.Verb == p.verb }) {
				return Check{}, fmt.Errorf("%q: the server has no command %s", strings.TrimSpace(alt), p.verb)
			}
			if len(f) > 2 {
				p.args = f[2:]
			}
		case "code", "state", "event":
			if len(f) != 2 {
				return Check{}, fmt.Errorf("%q: want %s and one word", strings.TrimSpace(alt), f[0])
			}
			p.value = f[1]
			switch {
			case f[0] == "code":
				p.value = strings.ToUpper(strings.Trim(p.value, "[]"))
			case f[0] == "state" && !slices.Contains([]string{"AUTHORIZATION", "TRANSACTION", "UPDATE"}, strings.ToUpper(p.value)):
				return Check{}, fmt.Errorf("%q: the states are AUTHORIZATION, TRANSACTION and UPDATE", strings.TrimSpace(alt))
			case f[0] == "state":
				p.value = strings.ToUpper(p.value)
			case f[0] == "event" && !slices.Contains(eventKinds, EventKind(p.value)):
				return Check{}, fmt.Errorf("%q: unknown event; the events are %v", strings.TrimSpace(alt), eventKinds)
			}
		default:
			return Check{}, fmt.Errorf("%q: a check starts with ok, err, reply, code, state or event", strings.TrimSpace(alt))
		}
		c.alts = append(c.alts, p)
	}
	return c, nil
}

// Match reports whether e completes the check. args are the arguments of
// the command e replies to (secrets masked), for ok, err and reply checks.
func (c Check) Match(e Event, args []string) bool {
	return slices.ContainsFunc(c.alts, func(p predicate) bool { return p.match(e, args) })
}

func (p predicate) match(e Event, args []string) bool {
	switch p.kind {
	case "ok", "err", "reply":
		if e.Kind != EventReply || e.Verb != p.verb || p.kind == "ok" && !e.OK || p.kind == "err" && e.OK {
			return false
		}
		if p.args == nil {
			return true
		}
		if len(args) != len(p.args) {
			return false
		}
		for i, a := range p.args {
			if a != "*" && !strings.EqualFold(a, args[i]) {
				return false
			}
		}
		return true
	case "code":
		return e.Kind == EventReply && strings.EqualFold(e.Code, p.value)
	case "state":
		return e.Kind == EventState && e.State == p.value
	case "event":
		return string(e.Kind) == p.value
	}
	return false
}

//go:embed lessons/*.md
var builtinLessons embed.FS

// BuiltinLessons are the lessons the playground ships with.
func BuiltinLessons() ([]*Lesson, error) {
	sub, err := fs.Sub(builtinLessons, "lessons")
	if err != nil {
		return nil, err
	}
	return LoadLessons(sub, nil)
}

// LoadLessons reads every *.md file of fsys as a lesson, in name order,
// after base: a file named like one of base's replaces it. A file that is
// not a valid lesson is an error naming the file and line.
func LoadLessons(fsys fs.FS, base []*Lesson) ([]*Lesson, error) {
	names, err := fs.Glob(fsys, "*.md")
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, errors.New("no lesson files (*.md)")
	}
	slices.Sort(names)
	lessons := slices.Clone(base)
	for _, name := range names {
		src, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		l, err := ParseLesson(strings.TrimSuffix(path.Base(name), ".md"), string(src))
		if err != nil {
			return nil, fmt.Errorf("%s:%w", name, err)
		}
		if i := slices.IndexFunc(lessons, func(o *Lesson) bool { return o.ID == l.ID }); i >= 0 {
			lessons[i] = l
		} else {
			lessons = append(lessons, l)
		}
	}
	return lessons, nil
}

// parseConn parses a step's conn: line; index is the step's, from 0.
func (st *Step) parseConn(v string, index int) error {
	switch f := strings.Fields(v); {
	case len(f) == 1 && (f[0] == "new" || f[0] == "same" || f[0] == "other"):
		if f[0] != "new" && index == 0 {
			return fmt.Errorf("conn: %s: the first step has no step before it", f[0])
		}
		st.Conn = f[0]
	case len(f) == 2 && f[0] == "step":
		n, err := strconv.Atoi(f[1])
		if err != nil || n < 1 || n > index {
			return fmt.Errorf("conn: %q: want the number of a step before this one (1–%d)", v, index)
		}
		st.Conn, st.StepConn = "step", n
	default:
		return fmt.Errorf("conn: %q: want new, same, other or step N", v)
	}
	return nil
}
