package sessions

import (
	"context"
	"testing"

	"github.com/pop3playground/pop3playground/pop3"
)

func TestEventLog(t *testing.T) {
	var l EventLog
	entries, missed, wait := l.Since(0)
	if len(entries) != 0 || missed {
		t.Fatalf("empty log: %v, %v", entries, missed)
	}
	l.Append(Entry{Type: EntryPOP3, Event: Event{Kind: EventConnected}})
	select {
	case <-wait:
	default:
		t.Fatal("Append did not wake a waiting reader")
	}
	for range EventLogSize + 10 {
		l.Append(Entry{Type: EntryPOP3, Event: Event{Kind: EventCommand}})
	}
	entries, missed, _ = l.Since(0)
	if !missed || len(entries) != EventLogSize || entries[0].ID != 12 || entries[len(entries)-1].ID != EventLogSize+11 {
		t.Errorf("after overflow: missed %v, %d entries from %d", missed, len(entries), entries[0].ID)
	}
	entries, missed, _ = l.Since(EventLogSize + 9)
	if missed || len(entries) != 2 || entries[0].ID != EventLogSize+10 {
		t.Errorf("resume: missed %v, %v", missed, entries)
	}
	// An ID from before a restart (larger than any here) starts afresh.
	if entries, _, _ = l.Since(1 << 40); len(entries) != 0 {
		t.Errorf("an unknown future ID gave %d entries", len(entries))
	}
}

// A command does not wake a reader: its reply, which always follows, does,
// and the reader takes both in one read (one write to the browser).
func TestEventLogWakesForReplies(t *testing.T) {
	var l EventLog
	_, _, wait := l.Since(0)
	l.Append(Entry{Type: EntryPOP3, Event: Event{Kind: EventCommand, Line: "NOOP"}})
	select {
	case <-wait:
		t.Fatal("a command woke the reader")
	default:
	}
	l.Append(Entry{Type: EntryPOP3, Event: Event{Kind: EventReply, Line: "+OK"}})
	select {
	case <-wait:
	default:
		t.Fatal("the reply did not wake the reader")
	}
	if entries, _, _ := l.AppendSince(make([]Entry, 0, 4), 0); len(entries) != 2 || entries[0].Event.Line != "NOOP" {
		t.Errorf("the reader got %+v, want the command and its reply", entries)
	}
}

func TestEventsReachTheirVisitor(t *testing.T) {
	w := loadDefault(t)
	vs := NewVisitors(w)
	be := &Backend{World: w, Visitors: vs}
	alice, _ := vs.New("a")
	bob, _ := vs.New("b")
	ctx := context.Background()

	// A bridged connection is known by its token from the first event.
	bridged := &pop3.ConnInfo{ID: 1, Proxied: true, ProxyTLVs: map[byte][]byte{TLVToken: []byte(alice.Token)}}
	vs.Observe(pop3.Event{Kind: pop3.EventConnected, Conn: 1, Info: bridged})

	// A personal login from the moment it succeeds.
	direct := &pop3.ConnInfo{ID: 2}
	vs.Observe(pop3.Event{Kind: pop3.EventConnected, Conn: 2, Info: direct})
	if _, err := be.Login(ctx, direct, bob.PersonalLogin("guest"), "wrong"); err == nil {
		t.Fatal("wrong password accepted")
	}
	vs.Observe(pop3.Event{Kind: pop3.EventReply, Conn: 2, Info: direct})
	md, err := be.Login(ctx, direct, bob.PersonalLogin("guest"), "visitor")
	if err != nil {
		t.Fatal(err)
	}
	vs.Observe(pop3.Event{Kind: pop3.EventLockTaken, Conn: 2, Info: direct})
	md.Close()
	vs.Observe(pop3.Event{Kind: pop3.EventClosed, Conn: 2, Info: direct})
	vs.Observe(pop3.Event{Kind: pop3.EventConnected, Conn: 2, Info: direct}) // a reused ID: nobody's

	// A plain direct login is nobody's.
	vs.Observe(pop3.Event{Kind: pop3.EventConnected, Conn: 3, Info: &pop3.ConnInfo{ID: 3}})

	if got, _, _ := alice.Events.Since(0); len(got) != 1 || got[0].Event.Conn != 1 {
		t.Errorf("alice's events: %+v", got)
	}
	got, _, _ := bob.Events.Since(0)
	if len(got) != 2 || got[0].Event.Kind != EventLockTaken || got[1].Event.Kind != EventClosed {
		t.Errorf("bob's events: %+v", got)
	}
	if len(vs.conns) != 0 {
		t.Errorf("%d connection bindings left after close", len(vs.conns))
	}
}
