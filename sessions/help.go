package sessions

import (
	"strconv"
	"time"
)

// A class with no dead ends: a student can raise a hand, and the organiser
// sees who asked and who looks stuck, by rules that can be read off the
// events the server saw.

// MaxHelpNote bounds the line a student adds to a raised hand.
const MaxHelpNote = 140

// The stuck rules.
const (
	// StuckErrors -ERR replies in a row (to commands, not the greeting).
	StuckErrors = 5
	// StuckIdle: a lesson under way and commands still coming, but no
	// step ticked for this long.
	StuckIdle = 10 * time.Minute
)

// A Hand is a student's request for help.
type Hand struct {
	Note  string    `json:"note"`
	Since time.Time `json:"since"`
}

// RaiseHand asks the organiser for help, with an optional line (cleaned
// as a display name is, at most MaxHelpNote characters). Raised again, it
// keeps its first time and takes the new line.
func (v *Visitor) RaiseHand(note string) Hand {
	h := Hand{Note: cleanLine(note, MaxHelpNote), Since: time.Now()}
	v.mu.Lock()
	if v.hand != nil {
		h.Since = v.hand.Since
	}
	v.mu.Unlock()
	v.vs.record(v, fact{Type: EntryHelp, Help: &h})
	return h
}

// LowerHand withdraws the request (the student's, or the organiser's who
// helped); by names who, for the page.
func (v *Visitor) LowerHand(by string) bool {
	_, raised := v.Hand()
	if raised {
		v.vs.record(v, fact{Type: EntryHelp, Account: by})
	}
	return raised
}

// applyHelp folds a hand raised (h) or lowered (nil, by).
func (v *Visitor) applyHelp(h *Hand, by string) {
	v.mu.Lock()
	raised := v.hand != nil
	if h != nil && raised {
		h.Since = v.hand.Since
	}
	v.hand = h
	v.mu.Unlock()
	if h != nil || raised {
		v.Events.Append(Entry{Type: EntryHelp, Help: h, Account: by})
	}
}

// Hand is the visitor's raised hand, if any.
func (v *Visitor) Hand() (Hand, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.hand == nil {
		return Hand{}, false
	}
	return *v.hand, true
}

// Stuck says why v looks stuck, by the rules above, or "" if not.
func (vs *Visitors) Stuck(v *Visitor, now time.Time) string {
	v.mu.Lock()
	streak, moved, last := v.errStreak, v.lessons.movedAt, v.status.LastTime
	v.mu.Unlock()
	if streak >= StuckErrors {
		return strconv.Itoa(streak) + " -ERR replies in a row"
	}
	if moved.IsZero() {
		moved = v.Created
	}
	l := vs.CurrentLesson(v)
	if l == "" || last.IsZero() {
		return ""
	}
	if now.Sub(last) < StuckIdle && last.Sub(moved) >= StuckIdle {
		return "no step for " + strconv.Itoa(int(now.Sub(moved).Minutes())) + " min"
	}
	return ""
}
