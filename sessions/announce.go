package sessions

import (
	"errors"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxAnnouncement bounds an announcement, in characters.
const MaxAnnouncement = 280

// An Announcement is a line the organiser puts on every student's page at
// once ("stop and look up"), beside the bulletins that reach maildrops at
// their next login. ID grows with every change; empty Text clears it.
type Announcement struct {
	ID     uint64    `json:"id"`
	Text   string    `json:"text"`
	Posted time.Time `json:"posted"`
}

// announcer holds the current announcement and wakes its readers.
type announcer struct {
	mu      sync.Mutex
	current Announcement
	changed chan struct{}
}

// Announce shows text on every page (empty clears it) and returns it.
func (vs *Visitors) Announce(text string) (Announcement, error) {
	text = strings.TrimSpace(text)
	switch {
	case utf8.RuneCountInString(text) > MaxAnnouncement:
		return Announcement{}, errors.New("an announcement is one line of at most 280 characters: post a bulletin for more")
	case strings.ContainsFunc(text, func(r rune) bool { return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' }):
		return Announcement{}, errors.New("an announcement is one line of text, without line breaks or control characters")
	}
	if vs.Store != nil {
		return vs.announceShared(text)
	}
	a := &vs.announce
	a.mu.Lock()
	defer a.mu.Unlock()
	a.setLocked(Announcement{ID: a.current.ID + 1, Text: text, Posted: time.Now()})
	return a.current, nil
}

// setLocked makes an the current announcement and wakes the readers.
// a.mu is held.
func (a *announcer) setLocked(an Announcement) {
	a.current = an
	if a.changed != nil {
		close(a.changed)
		a.changed = nil
	}
}

// Announcement is the current announcement (ID 0: there has been none),
// and a channel closed at the next change.
func (vs *Visitors) Announcement() (Announcement, <-chan struct{}) {
	a := &vs.announce
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.changed == nil {
		a.changed = make(chan struct{})
	}
	return a.current, a.changed
}
