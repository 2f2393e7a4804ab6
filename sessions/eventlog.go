package sessions

import (
	"sort"
	"sync"
	"time"
)

// EventLogSize is how many events a visitor's log keeps for a browser that
// reconnects (Last-Event-ID) or reads slowly.
const EventLogSize = 1024

// An Entry is what a visitor's log records, numbered.
type Entry struct {
	ID   uint64
	Type string
	// Event is what the POP3 server did (EntryPOP3, EntryReset).
	Event Event
	// Tab names the page whose terminal made a bridged connection (the
	// page's choice, to find its own replies); Via is "web" for a bridged
	// connection, "pop3" for a personal login from another client.
	Tab, Via string
	// Lesson is the progress a step made (EntryLesson).
	Lesson *Progress
	// Watchers is how many organisers watch the visitor (EntryWatch).
	Watchers int
	// Account received mail (EntryMail); who lowered a hand (EntryHelp).
	Account string
	// Help is a raised hand (EntryHelp); nil when it was lowered.
	Help *Hand
}

// Data is what the entry shows the browser.
func (e Entry) Data() any {
	switch e.Type {
	case EntryLesson:
		return e.Lesson
	case EntryWatch:
		return struct {
			Watchers int `json:"watchers"`
		}{e.Watchers}
	case EntryReset:
		return struct {
			Time time.Time `json:"time"`
		}{e.Event.Time}
	case EntryHelp:
		return struct {
			Raised bool   `json:"raised"`
			Note   string `json:"note,omitempty"`
			By     string `json:"by,omitempty"`
		}{e.Help != nil, helpNote(e.Help), e.Account}
	case EntryMail:
		return struct {
			Account string `json:"account"`
			Note    string `json:"note"`
		}{e.Account, "New mail arrived for " + e.Account + "; you will see it when you log in again (RFC 1939: a session's maildrop is fixed at its login)."}
	}
	return struct {
		Event
		Tab string `json:"tab,omitempty"`
		Via string `json:"via"`
	}{e.Event, e.Tab, e.Via}
}

// An EventLog is a visitor's POP3 events, numbered, the last EventLogSize
// of them kept. It grows as events come (a visitor who does nothing
// costs nothing) and then wraps around. Readers poll it: a slow reader
// costs the server nothing but falls behind, and learns that it missed
// some. In one process entries are numbered 1, 2, …; on a replica (a
// Store), from their place in the visitor's stream (skipTo), the same on
// every replica, with gaps between.
type EventLog struct {
	mu      sync.Mutex
	ring    []Entry       // oldest at head once full
	head    int           // where the oldest entry is, once the ring is full
	last    uint64        // ID of the newest entry; 0 when empty
	wrapped bool          // entries were dropped
	changed chan struct{} // closed by the next Append
	// shared: the numbers come from a stream every replica shares, so a
	// reader's number past the newest is ahead, not from another life.
	shared bool
}

// Append adds an entry and gives it the next ID.
func (l *EventLog) Append(e Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last++
	e.ID = l.last
	if len(l.ring) < EventLogSize {
		l.ring = append(l.ring, e)
	} else {
		l.ring[l.head] = e
		l.head = (l.head + 1) % EventLogSize
		l.wrapped = true
	}
	// A command is always followed by its reply (or the end of the
	// connection): readers wake for the reply and read both, one wake-up
	// and one write per command instead of two.
	if l.changed != nil && !(e.Type == EntryPOP3 && e.Event.Kind == EventCommand) {
		close(l.changed)
		l.changed = nil
	}
}

// skipTo makes the next entry's ID at least id.
func (l *EventLog) skipTo(id uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last = max(l.last, id-1)
}

// at is the i-th entry kept, oldest first. l.mu is held.
func (l *EventLog) at(i int) *Entry { return &l.ring[(l.head+i)%len(l.ring)] }

// Since returns the entries after ID after, oldest first; missed is true
// when some of them are no longer kept. wait is closed when another event
// arrives.
func (l *EventLog) Since(after uint64) (entries []Entry, missed bool, wait <-chan struct{}) {
	return l.AppendSince(nil, after)
}

// AppendSince is Since appending to entries, for a reader that reuses its
// slice from one call to the next.
func (l *EventLog) AppendSince(entries []Entry, after uint64) (_ []Entry, missed bool, wait <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.changed == nil {
		l.changed = make(chan struct{})
	}
	if after > l.last && !l.shared {
		after = l.last // from another life of the server: start afresh
	}
	n := len(l.ring)
	first := sort.Search(n, func(i int) bool { return l.at(i).ID > after })
	missed = first == 0 && n > 0 && l.wrapped && after+1 < l.at(0).ID
	for i := first; i < n; i++ {
		entries = append(entries, *l.at(i))
	}
	return entries, missed, l.changed
}

// The types of Entry.
const (
	EntryPOP3   = "pop3"   // Event, Tab and Via
	EntryLesson = "lesson" // Lesson
	EntryReset  = "reset"  // the sandbox was reset; Event.Kind is EventReset
	EntryWatch  = "watch"  // Watchers organisers now watch the terminal
	EntryMail   = "mail"   // Account received mail (SMTP); seen at the next login
	EntryHelp   = "help"   // the student raised their hand (Help), or it was lowered (by Account)
)

func helpNote(h *Hand) string {
	if h == nil {
		return ""
	}
	return h.Note
}
