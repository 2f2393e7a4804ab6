package pop3_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/pop3/pop3test"
)

// recorder keeps every event as an Observer that shows them would: with
// its explanation and maildrop page built (Event.Complete). raw keeps them
// as the server hands them over.
type recorder struct {
	mu     sync.Mutex
	events []pop3.Event
	raw    []pop3.Event
}

func (r *recorder) Observe(e pop3.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.raw = append(r.raw, e)
	r.events = append(r.events, e.Complete(100))
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
			s += " " + e.State + fmt.Sprintf(" %d", e.Count)
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
	c.Expect("USER guest", "+OK")
	c.Expect("PASS visitor", "+OK")
	c.Expect("DELE 1", "+OK")
	c.Expect("DELE 2", "+OK")
	c.Expect("RSET", "+OK")
	c.Expect("DELE 3", "+OK")
	c.Expect("RETR 3", "-ERR")
	c.Expect("QUIT", "+OK")
	c.ExpectClosed()
	id := rec.conns()[0]
	pop3test.WaitFor(t, func() bool { got := rec.of(id); return len(got) > 0 && strings.HasPrefix(got[len(got)-1], "closed") })
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
	b.Expect("USER guest", "+OK")
	b.Expect("PASS visitor", "-ERR [IN-USE]")
	a.Conn.Close() // dropped: no UPDATE
	ids := rec.conns()
	pop3test.WaitFor(t, func() bool { got := rec.of(ids[0]); return strings.HasPrefix(got[len(got)-1], "closed") })
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

// Every kind of reply comes with an explanation that cites its RFC.
func TestRepliesAreExplained(t *testing.T) {
	rec := &recorder{}
	env := testServer(t, func(s *pop3.Server) { s.Observer = rec })
	other := env.authenticated(t) // holds guest's lock for the IN-USE case
	c := env.greeted(t)
	steps := []struct{ cmd, reply, explain string }{
		{"", "", "greeting"},
		{"STAT", "-ERR", "TRANSACTION state, which begins after a successful login (RFC 1939 §3, §5)"},
		{"HELO", "-ERR", "(RFC 1939 §3)"},
		{"PASS x", "-ERR", "right after USER"},
		{"USER mrose", "+OK", "waits for PASS"},
		{"PASS wrong", "-ERR [AUTH]", "RFC 3206 §4"},
		{"USER guest", "+OK", ""},
		{"PASS visitor", "-ERR [IN-USE]", "RFC 2449 §8.1.1"},
		{"CAPA", "+OK", "RFC 2449 §5"},
		{"AUTH", "+OK", "lists the SASL mechanisms"},
		{"USER mrose", "+OK", ""},
		{"PASS tanstaaf", "+OK", "TRANSACTION: 2 messages"},
		{"STAT", "+OK", "STAT: 2 messages"},
		{"LIST", "+OK", "marked messages are left out (RFC 1939 §5)"},
		{"LIST 1", "+OK", "LIST 1: message 1 is"},
		{"UIDL", "+OK", "only new messages (RFC 1939 §7)"},
		{"UIDL 1", "+OK", "stays the same across sessions"},
		{"RETR 1", "+OK", "dot-stuffing, RFC 1939 §3, §5"},
		{"TOP 1 0", "+OK", "TOP n 0 shows the header alone"},
		{"NOOP", "+OK", "autologout timer (RFC 1939 §5)"},
		{"DELE 1", "+OK", "removed only when you QUIT"},
		{"RETR 1", "-ERR", "may not be used again until RSET"},
		{"RETR 9", "-ERR", "numbers from 1 to the count STAT gives"},
		{"RETR x", "-ERR", "needs a message number"},
		{"RSET", "+OK", "every mark for deletion is taken back"},
		{"USER x", "-ERR", "AUTHORIZATION state; the session is already in TRANSACTION"},
		{strings.Repeat("X", 300), "-ERR", "255 octets"},
		{"DELE 2", "+OK", ""},
		{"QUIT", "+OK", "entered the UPDATE state"},
	}
	for _, s := range steps {
		if s.cmd == "" {
			continue
		}
		c.Expect(s.cmd, s.reply)
		if pop3.MultiLine(s.cmd) && strings.HasPrefix(s.reply, "+OK") {
			c.Body()
		}
	}
	c.ExpectClosed()
	other.Expect("QUIT", "+OK")
	id := rec.conns()[1]
	pop3test.WaitFor(t, func() bool { got := rec.of(id); return strings.HasPrefix(got[len(got)-1], "closed") })
	var replies []pop3.Event
	rec.mu.Lock()
	for _, e := range rec.events {
		if e.Conn == id && e.Kind == pop3.EventReply {
			replies = append(replies, e)
		}
	}
	rec.mu.Unlock()
	if len(replies) != len(steps) {
		t.Fatalf("%d replies for %d steps", len(replies), len(steps))
	}
	for i, s := range steps {
		e := replies[i]
		if e.Explain == "" || !strings.Contains(e.Explain, "RFC") && s.explain != "greeting" {
			t.Errorf("%q → %q: explanation %q cites no RFC", s.cmd, e.Line, e.Explain)
		}
		if s.explain != "" && s.explain != "greeting" && !strings.Contains(e.Explain, s.explain) {
			t.Errorf("%q → %q:\n explained %q\n want it to contain %q", s.cmd, e.Line, e.Explain, s.explain)
		}
	}
	if !strings.Contains(replies[len(replies)-1].Explain, "Removed: 1 message.") {
		t.Errorf("QUIT explanation %q does not say what was removed", replies[len(replies)-1].Explain)
	}
}

// What only a showing Observer needs is built by Complete, not for every
// event: a reply's line built in the session's buffer, its explanation,
// and the maildrop's first messages, at most as many as asked for.
func TestEventsAreBuiltOnRequest(t *testing.T) {
	rec := &recorder{}
	env := testServer(t, func(s *pop3.Server) {
		s.Observer = rec
		s.Backend = pop3test.NewLargeBackend(100_000)
	})
	c := env.greeted(t)
	c.Expect("USER guest", "+OK")
	c.Expect("PASS visitor", "+OK guest's maildrop has 100000 messages")
	c.Expect("QUIT", "+OK")
	c.ExpectClosed()
	pop3test.WaitFor(t, func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.raw) > 0 && rec.raw[len(rec.raw)-1].Kind == pop3.EventClosed
	})
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i, raw := range rec.raw {
		done := rec.events[i]
		switch {
		case raw.Kind == pop3.EventReply:
			if raw.Explain != "" {
				t.Errorf("reply %q explained before Complete", done.Line)
			}
			if raw.OK && raw.Verb != "" && raw.Line != "" {
				t.Errorf("+OK reply %q made a string before Complete", raw.Line)
			}
			if done.Line == "" || done.Explain == "" {
				t.Errorf("after Complete: line %q, explanation %q", done.Line, done.Explain)
			}
		case raw.Kind == pop3.EventState && raw.State == "TRANSACTION":
			if raw.Count != 100_000 || raw.Octets == 0 || raw.Messages != nil {
				t.Errorf("state event: count %d, octets %d, %d messages before Complete", raw.Count, raw.Octets, len(raw.Messages))
			}
			if len(done.Messages) != 100 || done.Messages[99].Subject != "message 99" {
				t.Errorf("Complete(100) listed %d messages", len(done.Messages))
			}
		}
	}
}

// A session on a maildrop of 100,000 messages: marks and totals without a
// scan, numbers checked against the count.
func TestLargeMaildrop(t *testing.T) {
	env := testServer(t, func(s *pop3.Server) { s.Backend = pop3test.NewLargeBackend(100_000) })
	c := env.greeted(t)
	c.Expect("USER guest", "+OK")
	login := c.Expect("PASS visitor", "+OK guest's maildrop has 100000 messages (")
	stat := c.Expect("STAT", "+OK 100000 ")
	var size, last int64
	fmt.Sscanf(stat, "+OK 100000 %d", &size)
	fmt.Sscanf(c.Expect("LIST 100000", "+OK 100000 "), "+OK 100000 %d", &last)
	c.Expect("DELE 100000", "+OK message 100000 marked")
	c.Expect("LIST 100000", "-ERR message 100000 is marked for deletion")
	c.Expect("LIST 100001", "-ERR no message 100001: the maildrop has 100000 messages")
	c.Expect("STAT", fmt.Sprintf("+OK 99999 %d", size-last))
	c.Expect("RSET", fmt.Sprintf("+OK maildrop has 100000 messages (%d octets)", size))
	if !strings.Contains(login, fmt.Sprintf("(%d octets)", size)) {
		t.Errorf("login %q and STAT %q disagree", login, stat)
	}
	c.Expect("QUIT", "+OK signing off: 0 messages deleted, 100000 left")
}

// A direct client that has not typed anything yet is connected, for the
// observers (metrics, the admin page) too: the public listener greets at
// once and only then looks for a PROXY header among the first octets.
func TestSilentClientIsConnected(t *testing.T) {
	rec := &recorder{}
	env := testServer(t, func(s *pop3.Server) { s.Observer = rec })
	env.greeted(t) // and says nothing
	pop3test.WaitFor(t, func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.events) >= 2 && rec.events[0].Kind == pop3.EventConnected && rec.events[1].Kind == pop3.EventReply
	})
}
