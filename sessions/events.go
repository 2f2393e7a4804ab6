package sessions

import (
	"sync"
	"time"

	"github.com/pop3playground/pop3playground/pop3"
)

// MaildropPage is how many messages of a maildrop a login's event lists:
// the page shows the first ones and the count, so that a login to a huge
// maildrop does not send megabytes down /events or keep them in the log.
const MaildropPage = 100

// Observe implements pop3.Observer: it files each event under the visitor
// whose sandbox the connection is in, if any.
func (vs *Visitors) Observe(e pop3.Event) {
	vs.observed.Store(true)
	var v *Visitor
	via, tab := "pop3", ""
	if tok, ok := e.Info.ProxyTLVs[TLVToken]; ok && e.Info.Proxied {
		via, tab = "web", string(e.Info.ProxyTLVs[TLVTab])
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
		ev := eventOf(e)
		f := fact{Type: EntryPOP3, Event: &ev, Tab: tab, Via: via}
		if via == "pop3" {
			f.Wire = wireOf(e.Info) // for the client lab, if it is the lab's connection
		}
		vs.record(v, f)
	}
}

// Reset gives the visitor's sandbox back its pristine mailboxes, and tells
// the visitor's pages and lessons.
func (vs *Visitors) Reset(v *Visitor) {
	v.Sandbox.Reset()
	v.Lab.Reset()
	vs.record(v, fact{Type: EntryReset, Event: &Event{Kind: EventReset, Time: time.Now()}})
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

// ResetAll resets every visitor's sandbox (the organiser's "reset
// everything") and returns how many there were.
func (vs *Visitors) ResetAll() int {
	all := vs.All()
	for _, v := range all {
		vs.Reset(v)
	}
	return len(all)
}

// Completions is how many times visitors have finished the lesson with
// this ID.
func (vs *Visitors) Completions(lesson string) uint64 { return vs.completions.Get(lesson) }

// counters is a set of named counters, safe for concurrent use.
type counters struct {
	mu sync.Mutex
	m  map[string]uint64
}

func (c *counters) Add(name string, n uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]uint64)
	}
	c.m[name] += n
}

func (c *counters) Get(name string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[name]
}

// mailArrived tells the visitor's pages that account received mail, and
// ticks a lesson step waiting for it.
func (vs *Visitors) mailArrived(v *Visitor, account string) {
	v.mailIn.Add(1)
	vs.record(v, fact{Type: EntryMail, Account: account, Event: &Event{Kind: EventMail, Time: time.Now()}})
}
