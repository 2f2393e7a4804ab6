package pop3

import (
	"strings"
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
	EventState        EventKind = "state"         // the state machine moved; State (and Messages on entering TRANSACTION)
	EventLockTaken    EventKind = "lock-taken"    // the maildrop lock is this session's; User
	EventLockRefused  EventKind = "lock-refused"  // another session holds it; User
	EventLockReleased EventKind = "lock-released" // User
	EventMarked       EventKind = "marked"        // DELE; Msg
	EventUnmarked     EventKind = "unmarked"      // RSET; Msg
	EventUpdate       EventKind = "update"        // QUIT applied the marks; Deleted
	EventClosed       EventKind = "closed"        // the connection ended; Reason
)

// An Event is one thing a session did. Message numbers are 1-based, as on
// the wire.
type Event struct {
	Kind     EventKind     `json:"kind"`
	Conn     uint64        `json:"conn"`
	Time     time.Time     `json:"time"`
	Remote   string        `json:"remote,omitempty"`
	Verb     string        `json:"verb,omitempty"`
	Line     string        `json:"line,omitempty"`
	OK       bool          `json:"ok,omitempty"`
	Code     string        `json:"code,omitempty"`
	State    string        `json:"state,omitempty"`
	User     string        `json:"user,omitempty"`
	Msg      int           `json:"msg,omitempty"`
	Deleted  []int         `json:"deleted,omitempty"`
	Messages []MessageInfo `json:"messages,omitempty"`
	Reason   string        `json:"reason,omitempty"`
	// Explain says what a reply means, with the RFC and section.
	Explain string `json:"explain,omitempty"`

	// Info is the connection the event belongs to: an Observer finds the
	// visitor of a bridged connection by its PROXY TLVs.
	Info *ConnInfo `json:"-"`
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

// emitReply reports a status line just written.
func (c *conn) emitReply(line string) {
	if c.srv.Observer == nil {
		return
	}
	e := Event{Kind: EventReply, Verb: c.verb, Line: line, OK: strings.HasPrefix(line, "+OK"), Explain: c.explain(line)}
	if !e.OK && len(line) > 6 && line[5] == '[' {
		if end := strings.IndexByte(line[6:], ']'); end >= 0 {
			e.Code = line[6 : 6+end]
		}
	}
	c.emit(e)
}
