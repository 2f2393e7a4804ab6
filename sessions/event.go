package sessions

import (
	"time"

	"github.com/pop3playground/pop3playground/pop3"
)

// An EventKind names what happened in a visitor's sandbox: what the POP3
// server reports (the same names as pop3's), and the sandbox's own.
type EventKind string

// The kinds of Event.
const (
	EventConnected    = EventKind(pop3.EventConnected)
	EventCommand      = EventKind(pop3.EventCommand)
	EventReply        = EventKind(pop3.EventReply)
	EventState        = EventKind(pop3.EventState)
	EventLockTaken    = EventKind(pop3.EventLockTaken)
	EventLockRefused  = EventKind(pop3.EventLockRefused)
	EventLockReleased = EventKind(pop3.EventLockReleased)
	EventMarked       = EventKind(pop3.EventMarked)
	EventUnmarked     = EventKind(pop3.EventUnmarked)
	EventUpdate       = EventKind(pop3.EventUpdate)
	EventClosed       = EventKind(pop3.EventClosed)

	EventReset EventKind = "reset" // the sandbox was reset
	EventMail  EventKind = "mail"  // SMTP delivered mail into the sandbox
)

// eventKinds are the kinds a lesson's "check: event" may name.
var eventKinds = []EventKind{
	EventConnected, EventCommand, EventReply, EventState,
	EventLockTaken, EventLockRefused, EventLockReleased,
	EventMarked, EventUnmarked, EventUpdate, EventClosed,
	EventReset, EventMail,
}

// An Event is what a visitor's pages, lessons and organisers are told of
// their sandbox: a POP3 session's event as plain values (the page reads
// it as JSON), or the sandbox's own. Message numbers are 1-based.
type Event struct {
	Kind    EventKind `json:"kind"`
	Conn    uint64    `json:"conn"`
	Time    time.Time `json:"time"`
	Remote  string    `json:"remote,omitempty"`
	Verb    string    `json:"verb,omitempty"`
	Line    string    `json:"line,omitempty"` // a command (secrets masked) or a reply's status line
	OK      bool      `json:"ok,omitempty"`
	Code    string    `json:"code,omitempty"`  // a reply's response code
	Reply   string    `json:"reply,omitempty"` // what a reply said happened (pop3.ReplyKind)
	State   string    `json:"state,omitempty"`
	User    string    `json:"user,omitempty"`
	Msg     int       `json:"msg,omitempty"`
	Deleted []int     `json:"deleted,omitempty"`
	Count   int       `json:"count,omitempty"`  // messages in the maildrop (entering TRANSACTION)
	Octets  int64     `json:"octets,omitempty"` // their size; a marked message's size
	Reason  string    `json:"reason,omitempty"`
	// Messages are the first messages of the maildrop entering
	// TRANSACTION (MaildropPage at most); Explain, what a reply means.
	Messages []MessageSummary `json:"messages,omitempty"`
	Explain  string           `json:"explain,omitempty"`
}

// A MessageSummary is what the inspector shows of a message.
type MessageSummary struct {
	Size    int64  `json:"size"`
	UID     string `json:"uid"`
	Subject string `json:"subject,omitempty"`
}

// eventOf makes the values of a POP3 event, during Observe.
func eventOf(e pop3.Event) Event {
	e = e.Complete(MaildropPage)
	ev := Event{Kind: EventKind(e.Kind), Conn: e.Conn, Time: e.Time, Remote: e.Remote, Verb: e.Verb, Line: e.Line,
		OK: e.OK, Code: e.Code, Reply: string(e.Reply), State: e.State, User: e.User, Msg: e.Msg, Deleted: e.Deleted,
		Count: e.Count, Octets: e.Octets, Reason: e.Reason, Explain: e.Explain}
	if len(e.Messages) > 0 {
		ev.Messages = make([]MessageSummary, len(e.Messages))
		for i, m := range e.Messages {
			ev.Messages[i] = MessageSummary{Size: m.Size, UID: m.UID, Subject: m.Subject}
		}
	}
	return ev
}
