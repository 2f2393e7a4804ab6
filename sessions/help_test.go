package sessions

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestRaiseAndLowerHand(t *testing.T) {
	vs := NewVisitors(loadDefault(t))
	v, _ := vs.New("192.0.2.1")
	if _, ok := v.Hand(); ok {
		t.Fatal("a new visitor has a hand up")
	}
	h := v.RaiseHand("  step 3\tdoes not\u202e tick  ")
	if h.Note != "step 3 does not tick" {
		t.Errorf("note %q: want it cleaned as a display name", h.Note)
	}
	again := v.RaiseHand(strings.Repeat("x", 200))
	if !again.Since.Equal(h.Since) || len(again.Note) != MaxHelpNote {
		t.Errorf("raised again: since %v (want the first %v), note of %d", again.Since, h.Since, len(again.Note))
	}
	if !v.LowerHand("the organiser") || v.LowerHand("the organiser") {
		t.Error("LowerHand reports wrongly")
	}
	entries, _, _ := v.Events.Since(0)
	var kinds []string
	for _, e := range entries {
		if e.Type == EntryHelp {
			kinds = append(kinds, fmt.Sprint(e.Data()))
		}
	}
	if len(kinds) != 3 || !strings.Contains(kinds[2], "false") || !strings.Contains(kinds[2], "the organiser") {
		t.Errorf("help entries %q", kinds)
	}
}

// Five -ERR replies in a row make a student stuck, a +OK ends it; a
// lesson under way with commands still coming but no step for 10 minutes
// does too.
func TestStuckRules(t *testing.T) {
	e := newLessonEnv(t)
	v, _ := e.vs.New("192.0.2.1")
	pc := e.connect(v)
	pc.login()
	for i := range StuckErrors {
		if got := e.vs.Stuck(v, time.Now()); got != "" {
			t.Fatalf("after %d -ERR: stuck %q", i, got)
		}
		pc.do("RETR 99", "-ERR")
	}
	waitStuck := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for e.vs.Stuck(v, time.Now()) != want {
			if time.Now().After(deadline) {
				t.Fatalf("stuck %q, want %q", e.vs.Stuck(v, time.Now()), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitStuck("5 -ERR replies in a row")
	pc.do("STAT", "+OK")
	waitStuck("")

	// Ten minutes of commands since the lesson last moved.
	v.mu.Lock()
	v.lessons.movedAt = time.Now().Add(-11 * time.Minute)
	v.status.LastTime = time.Now().Add(-30 * time.Second)
	v.mu.Unlock()
	if got := e.vs.Stuck(v, time.Now()); got != "no step for 11 min" {
		t.Errorf("stuck %q, want no step for 11 min", got)
	}
	// Gone quiet: not stuck, away.
	v.mu.Lock()
	v.status.LastTime = time.Now().Add(-StuckIdle)
	v.mu.Unlock()
	if got := e.vs.Stuck(v, time.Now()); got != "" {
		t.Errorf("a student who stopped typing 10 min ago: stuck %q", got)
	}
}
