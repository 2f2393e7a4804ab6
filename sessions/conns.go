package sessions

// openConns is what a visitor's POP3 connections are, kept from their
// events in one place: the organiser's summary and the lessons both read
// it, and neither keeps a table of its own.
type openConns struct {
	m      map[uint64]*connInfo
	newest uint64 // the connection whose state changed last
	// last is the order of the newest connection seen: connections are
	// numbered 1, 2, … as they are first seen, so that "a connection
	// opened since" holds for connections of several replicas, whose
	// numbers are not in the order they were made.
	last uint64
}

// connInfo is one connection of a visitor's.
type connInfo struct {
	state, user string // known from its connected or state events
	tab         string // the page (browser tab) of a bridged connection
	line        string // its last command line, secrets masked
	closed      bool   // its closed event is being handled
	order       uint64 // when it was first seen (openConns.last)
}

// observe updates the table with e; tab names the page of a bridged
// connection. It returns the command line a reply answers.
func (oc *openConns) observe(e Event, tab string) (answered string) {
	if e.Conn == 0 {
		return "" // not a connection's (a reset)
	}
	if oc.m == nil {
		oc.m = make(map[uint64]*connInfo)
	}
	c := oc.m[e.Conn]
	if c == nil {
		oc.last++
		c = &connInfo{order: oc.last}
		oc.m[e.Conn] = c
	}
	switch e.Kind {
	case EventConnected:
		c.state, c.tab = "AUTHORIZATION", tab
		oc.newest = e.Conn
	case EventState:
		c.state, c.user = e.State, e.User
		oc.newest = e.Conn
	case EventCommand:
		c.line = e.Line
	case EventReply:
		return c.line
	case EventClosed:
		c.closed = true
	}
	return ""
}

// forget drops a closed connection once everything that reads the table
// has seen its end.
func (oc *openConns) forget(conn uint64) { delete(oc.m, conn) }

// order is when a connection was first seen (openConns.last), or
// past every one so far for a connection not seen yet.
func (oc *openConns) order(conn uint64) uint64 {
	if c := oc.m[conn]; c != nil {
		return c.order
	}
	return oc.last + 1
}

// open reports whether a connection is open and known.
func (oc *openConns) open(conn uint64) bool {
	c := oc.m[conn]
	return c != nil && !c.closed && c.state != ""
}

// state is a connection's state, or "" if it is not open.
func (oc *openConns) state(conn uint64) string {
	if !oc.open(conn) {
		return ""
	}
	return oc.m[conn].state
}

// tab is the page a connection was made from, or "".
func (oc *openConns) tab(conn uint64) string {
	if c := oc.m[conn]; c != nil {
		return c.tab
	}
	return ""
}

// summary is how many connections are open, and the state and user of
// the one that changed state last (or the newest, if that one closed).
func (oc *openConns) summary() (n int, state, user string) {
	pick := oc.newest
	if !oc.open(pick) {
		pick = 0
	}
	for id := range oc.m {
		if oc.open(id) {
			n++
			if !oc.open(oc.newest) && id >= pick {
				pick = id
			}
		}
	}
	if n > 0 {
		state, user = oc.m[pick].state, oc.m[pick].user
	}
	return n, state, user
}
