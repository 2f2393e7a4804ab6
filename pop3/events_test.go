package pop3_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pop3playground/pop3playground/pop3"
)

type recorder struct {
	mu     sync.Mutex
	events []pop3.Event
}

func (r *recorder) Observe(e pop3.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// of returns the events of one connection, each as a short string.
func (r *recorder) of(conn uint64) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.Conn != conn {
			continue
		}
		s := string(e.Kind)
		switch e.Kind {
		case pop3.EventCommand:
			s += " " + e.Line
		case pop3.EventReply:
			s += " " + e.Verb + " " + fmt.Sprint(e.OK) + " " + e.Code
		case pop3.EventState:
			s += " " + e.State + fmt.Sprintf(" %d", len(e.Messages))
		case pop3.EventMarked, pop3.EventUnmarked:
			s += fmt.Sprint(" ", e.Msg)
		case pop3.EventUpdate:
			s += fmt.Sprint(" ", e.Deleted)
		case pop3.EventClosed:
			s += " " + e.Reason
		case pop3.EventLockTaken, pop3.EventLockRefused, pop3.EventLockReleased:
			s += " " + e.User
		}
		out = append(out, strings.TrimSpace(s))
	}
	return out
}

func (r *recorder) conns() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []uint64
	for _, e := range r.events {
		if !slices.Contains(ids, e.Conn) {
			ids = append(ids, e.Conn)
		}
	}
	return ids
}

func TestEventsOfASession(t *testing.T) {
	rec := &recorder{}
	env := testServer(t, func(s *pop3.Server) { s.Observer = rec })
	c := env.greeted(t)
	c.expect("USER guest", "+OK")
	c.expect("PASS visitor", "+OK")
	c.expect("DELE 1", "+OK")
	c.expect("DELE 2", "+OK")
	c.expect("RSET", "+OK")
	c.expect("DELE 3", "+OK")
	c.expect("RETR 3", "-ERR")
	c.expect("QUIT", "+OK")
	c.expectClosed()
	id := rec.conns()[0]
	waitFor(t, func() bool { got := rec.of(id); return len(got) > 0 && strings.HasPrefix(got[len(got)-1], "closed") })
	want := []string{
		"connected",
		"reply  true",
		"command USER guest", "reply USER true",
		"command PASS ****", "lock-taken guest", "state TRANSACTION 7", "reply PASS true",
		"command DELE 1", "marked 1", "reply DELE true",
		"command DELE 2", "marked 2", "reply DELE true",
		"command RSET", "unmarked 1", "unmarked 2", "reply RSET true",
		"command DELE 3", "marked 3", "reply DELE true",
		"command RETR 3", "reply RETR false",
		"command QUIT", "state UPDATE 0", "update [3]", "lock-released guest", "reply QUIT true",
		"closed quit",
	}
	if got := rec.of(id); !slices.Equal(got, want) {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestEventsOfLockAndDrop(t *testing.T) {
	rec := &recorder{}
	env := testServer(t, func(s *pop3.Server) { s.Observer = rec })
	a := env.authenticated(t)
	b := env.greeted(t)
	b.expect("USER guest", "+OK")
	b.expect("PASS visitor", "-ERR [IN-USE]")
	a.conn.Close() // dropped: no UPDATE
	ids := rec.conns()
	waitFor(t, func() bool { got := rec.of(ids[0]); return strings.HasPrefix(got[len(got)-1], "closed") })
	got := rec.of(ids[1])
	if !slices.Contains(got, "lock-refused guest") || !slices.Contains(got, "reply PASS false IN-USE") {
		t.Errorf("second session's events: %q", got)
	}
	got = rec.of(ids[0])
	tail := got[len(got)-2:]
	if tail[0] != "lock-released guest" || tail[1] != "closed client closed the connection" || slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "update") }) {
		t.Errorf("dropped session's events end %q", got)
	}
}
