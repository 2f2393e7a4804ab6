package pop3

import (
	"time"
)

// An EventKind names what happened in a session.
type EventKind string

// The events a session emits, in the order they happen (DESIGN §8: the
// playground teaches from what the server really did).
const (
	EventConnected    EventKind = "connected"     // admitted; Remote set
	EventCommand      EventKind = "command"       // a command line, secrets masked; Verb, Line
	EventReply        EventKind = "reply"         // a status line sent; Verb, Line, OK, Code
	EventState        EventKind = "state"         // the state machine moved; State (and Count, Octets on entering TRANSACTION)
	EventLockTaken    EventKind = "lock-taken"    // the maildrop lock is this session's; User
	EventLockRefused  EventKind = "lock-refused"  // another session holds it; User
	EventLockReleased EventKind = "lock-released" // User
	EventMarked       EventKind = "marked"        // DELE; Msg, Octets
	EventUnmarked     EventKind = "unmarked"      // RSET; Msg
	EventUpdate       EventKind = "update"        // QUIT applied the marks; Deleted
	EventClosed       EventKind = "closed"        // the connection ended; Reason
)

// An Event is one thing a session did. Message numbers are 1-based, as on
// the wire.
type Event struct {
	Kind   EventKind
	Conn   uint64
	Time   time.Time
	Remote string
	Verb   string
	Line   string // of a reply: see Complete
	OK     bool
	Code   string
	// Reply is what a reply said happened: explanations are keyed by it.
	Reply   ReplyKind
	State   string
	User    string
	Msg     int
	Deleted []int
	Count   int   // messages in the maildrop (entering TRANSACTION)
	Octets  int64 // their size; a marked message's size
	Reason  string

	// Filled in by Complete, for an Observer that shows them:
	// Messages, the first messages of the maildrop entering TRANSACTION;
	// Explain, what a reply means, with the RFC and section.
	Messages []MessageInfo
	Explain  string

	// Info is the connection the event belongs to: an Observer finds the
	// visitor of a bridged connection by its PROXY TLVs.
	Info *ConnInfo

	md   Maildrop   // entering TRANSACTION, for Complete; valid during Observe
	at   replyState // for a reply's explanation
	line []byte     // a reply's Line before Complete, in the session's buffer
}

// Complete returns e with what is built only for an Observer that shows
// it: the Line of a reply that was built in the session's buffer, the
// explanation of a reply, and the first max messages of a maildrop
// entering TRANSACTION. It may be called only during Observe; what it
// returns refers to nothing of the session and may be kept.
func (e Event) Complete(max int) Event {
	switch {
	case e.Kind == EventReply:
		if e.line != nil {
			e.Line, e.line = string(e.line), nil
		}
		e.Explain = explain(e.Verb, e.at)
	case e.md != nil:
		e.Messages = make([]MessageInfo, min(max, e.Count))
		for i := range e.Messages {
			e.Messages[i] = e.md.Message(i)
		}
	}
	e.md, e.at = nil, replyState{}
	return e
}

// An Observer is told every Event of every session. Observe is called on
// the session's goroutine, in order: it must not block.
type Observer interface {
	Observe(Event)
}

// emit tells the Server's Observer, if any.
func (c *conn) emit(e Event) {
	if c.srv.Observer == nil {
		return
	}
	e.Conn = c.info.ID
	e.Time = time.Now()
	e.Info = &c.info
	c.srv.Observer.Observe(e)
}

// emitReply reports a status line just written, with what it said
// (c.said, which it clears).
func (c *conn) emitReply(line string) {
	if c.srv.Observer == nil {
		c.said = said{}
		return
	}
	e := Event{Kind: EventReply, Verb: c.verb, Line: line, OK: c.said.kind == "" || c.said.kind == KindOK || c.said.kind == KindGreeting}
	c.emitSaid(e)
}

// emitOK reports a +OK status line built in the session's buffer (send):
// its Line is made a string only by Complete, for an Observer that keeps
// it, so that a reply costs no allocation.
func (c *conn) emitOK(line []byte) {
	if c.srv.Observer == nil {
		c.said = said{}
		return
	}
	c.emitSaid(Event{Kind: EventReply, Verb: c.verb, line: line, OK: true})
}

func (c *conn) emitSaid(e Event) {
	if c.said.kind == "" {
		c.said.kind = KindOK
	}
	e.Reply, e.Code = c.said.kind, c.said.kind.Code()
	e.at = replyState{said: c.said, state: c.state, count: c.count, size: c.size, removed: c.removed}
	c.said = said{}
	c.emit(e)
}
