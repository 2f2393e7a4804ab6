package sessions

import (
	"sync"

	"github.com/pop3playground/pop3playground/pop3"
)

// EventLogSize is how many events a visitor's log keeps for a browser that
// reconnects (Last-Event-ID) or reads slowly.
const EventLogSize = 1024

// An Entry is an event of a visitor's log with its number.
type Entry struct {
	ID    uint64
	Event pop3.Event
}

// An EventLog is a visitor's POP3 events, numbered from 1, the last
// EventLogSize of them kept. Readers poll it: a slow reader costs the server
// nothing but falls behind, and learns that it missed some.
type EventLog struct {
	mu      sync.Mutex
	ring    [EventLogSize]Entry
	last    uint64        // ID of the newest entry; 0 when empty
	changed chan struct{} // closed by the next Append
}

// Append adds an event.
func (l *EventLog) Append(e pop3.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last++
	l.ring[l.last%EventLogSize] = Entry{ID: l.last, Event: e}
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

// Since returns the entries after ID after, oldest first; missed is true
// when some of them are no longer kept. wait is closed when another event
// arrives.
func (l *EventLog) Since(after uint64) (entries []Entry, missed bool, wait <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.changed == nil {
		l.changed = make(chan struct{})
	}
	if after > l.last {
		after = l.last // from another life of the server: start afresh
	}
	first := after + 1
	if l.last >= EventLogSize && first <= l.last-EventLogSize {
		first, missed = l.last-EventLogSize+1, true
	}
	for id := first; id <= l.last; id++ {
		entries = append(entries, l.ring[id%EventLogSize])
	}
	return entries, missed, l.changed
}

// Observe implements pop3.Observer: it files each event under the visitor
// whose sandbox the connection is in, if any.
func (vs *Visitors) Observe(e pop3.Event) {
	vs.observed.Store(true)
	var v *Visitor
	if tok, ok := e.Info.ProxyTLVs[TLVToken]; ok && e.Info.Proxied {
		vs.mu.Lock()
		v = vs.byToken[string(tok)]
		vs.mu.Unlock()
	} else {
		vs.mu.Lock()
		v = vs.conns[e.Conn]
		if e.Kind == pop3.EventClosed {
			delete(vs.conns, e.Conn)
		}
		vs.mu.Unlock()
	}
	if v != nil {
		v.Events.Append(e)
	}
}

// bindConn files a connection's later events under v (a personal login).
// The binding ends with the connection's closed event, so there is none
// unless the POP3 server reports to vs.
func (vs *Visitors) bindConn(conn uint64, v *Visitor) {
	if !vs.observed.Load() {
		return
	}
	vs.mu.Lock()
	defer vs.mu.Unlock()
	vs.conns[conn] = v
}
