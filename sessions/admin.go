package sessions

import (
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// What an organiser sees of visitors: a pseudonym, a live summary of their
// sessions, and the errors they ran into. Nothing here names a visitor's
// token or personal login.

var (
	nameAdjectives = [16]string{"Amber", "Brave", "Calm", "Deft", "Eager", "Fond", "Gentle", "Happy", "Keen", "Lucky", "Merry", "Noble", "Quick", "Quiet", "Sunny", "Witty"}
	nameAnimals    = [16]string{"Otter", "Falcon", "Badger", "Heron", "Lynx", "Panda", "Robin", "Seal", "Tiger", "Whale", "Yak", "Zebra", "Koala", "Moose", "Owl", "Fox"}
)

// Name is the visitor's pseudonym for the organiser, e.g. "Sunny Heron 42",
// made from the handle.
func (v *Visitor) Name() string {
	h := v.Handle
	b := func(i int) int { return int(h[i%len(h)]) }
	return nameAdjectives[b(0)%16] + " " + nameAnimals[b(1)%16] + " " + string(rune('1'+b(2)%9)) + string(rune('0'+b(3)%10))
}

// MaxDisplayName bounds the name a visitor gives the organiser, in
// characters.
const MaxDisplayName = 40

// SetDisplayName sets the name the visitor gives the organiser, shown
// beside their pseudonym: trimmed, spaces collapsed, controls and
// characters that reorder text dropped, at most MaxDisplayName
// characters. It returns the name kept ("" clears it).
func (v *Visitor) SetDisplayName(name string) string {
	name = cleanLine(name, MaxDisplayName)
	if v.vs != nil && v.vs.Store != nil {
		v.vs.record(v, fact{Type: factName, Text: name})
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.display = name
	return v.display
}

// factName is the Type of a display name's fact.
const factName = "name"

// cleanLine is s trimmed, spaces collapsed, controls and characters that
// reorder text dropped, at most max characters.
func cleanLine(s string, max int) string {
	var b strings.Builder
	n, space := 0, false
	for _, r := range strings.TrimSpace(s) {
		switch {
		case unicode.IsSpace(r):
			space = true
			continue
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == utf8.RuneError || unicode.In(r, unicode.Cf):
			continue
		}
		if n >= max {
			break
		}
		if space && n > 0 {
			b.WriteByte(' ')
			n++
		}
		space = false
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// DisplayName is the name the visitor gave the organiser, or "".
func (v *Visitor) DisplayName() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.display
}

// A Status is what a visitor is doing, as the organiser sees it.
type Status struct {
	Conns       int       // POP3 sessions open in their sandbox
	State       string    // of the newest open session: AUTHORIZATION, TRANSACTION, UPDATE; "" with none
	User        string    // the account it logged in to
	LastCommand string    // secrets masked
	LastTime    time.Time // of the last command
	Watchers    int       // organisers watching the terminal
}

// noteLocked updates the visitor's summary with e; v.mu is held.
func (v *Visitor) noteLocked(e Event) {
	switch e.Kind {
	case EventCommand:
		v.status.LastCommand, v.status.LastTime = e.Line, e.Time
	case EventReply:
		if e.Verb == "" {
			break // the greeting
		}
		if e.OK {
			v.errStreak = 0
		} else {
			v.errStreak++
		}
	}
}

// Status returns the visitor's summary.
func (v *Visitor) Status() Status {
	v.mu.Lock()
	defer v.mu.Unlock()
	st := v.status
	st.Conns, st.State, st.User = v.open.summary()
	return st
}

// Watch records that an organiser started (+1) or stopped (-1) watching the
// visitor's terminal, and tells the visitor's pages.
func (v *Visitor) Watch(delta int) {
	v.vs.record(v, fact{Type: EntryWatch, Step: delta})
}

// applyWatch folds an organiser's watching starting or stopping.
func (v *Visitor) applyWatch(delta int) {
	v.mu.Lock()
	v.status.Watchers = max(0, v.status.Watchers+delta)
	n := v.status.Watchers
	v.mu.Unlock()
	v.Events.Append(Entry{Type: EntryWatch, Watchers: n})
}

// An ErrorNote is a -ERR a visitor got: what an organiser looks at first
// when someone is stuck.
type ErrorNote struct {
	Time    time.Time
	Visitor string // the pseudonym
	Handle  string
	Command string // secrets masked
	Reply   string
}

// errorRing keeps the newest errors.
type errorRing struct {
	mu   sync.Mutex
	ring [100]ErrorNote
	n    int
}

func (r *errorRing) add(e ErrorNote) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ring[r.n%len(r.ring)] = e
	r.n++
}

// RecentErrors returns up to max of the newest -ERR replies visitors got,
// newest first.
func (vs *Visitors) RecentErrors(max int) []ErrorNote {
	r := &vs.errors
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []ErrorNote
	for i := r.n - 1; i >= 0 && i >= r.n-len(r.ring) && len(out) < max; i-- {
		out = append(out, r.ring[i%len(r.ring)])
	}
	return out
}

// ByHandle returns the visitor with this handle, or nil.
func (vs *Visitors) ByHandle(handle string) *Visitor {
	if v := vs.heldByHandle(handle); v != nil || vs.Store == nil {
		return v
	}
	// With replicas, the organiser's request may reach one that does not
	// hold the visitor yet: every one is in the store.
	vs.heldAll.Store(0)
	vs.holdEveryone()
	v := vs.heldByHandle(handle)
	if v != nil {
		v.waitCaughtUp() // following it: what the organiser does next reaches it
	}
	return v
}

func (vs *Visitors) heldByHandle(handle string) *Visitor {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	for _, v := range vs.byToken {
		if v.Handle == handle {
			return v
		}
	}
	return nil
}
