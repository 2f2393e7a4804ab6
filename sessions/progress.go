package sessions

import (
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/pop3playground/pop3playground/pop3"
)

// A Progress is how far a visitor has come in a lesson.
type Progress struct {
	Lesson string `json:"lesson"`
	Done   int    `json:"done"` // steps done, in order
	Steps  int    `json:"steps"`
	// Where the next step must happen, when it names a connection: Tab is
	// the page (browser tab) whose terminal has it; NotTab, the page it
	// must not be done in ("log in a second time").
	Tab    string `json:"tab,omitempty"`
	NotTab string `json:"not_tab,omitempty"`
	// Blocked says why the next step cannot happen any more (the session
	// it needs has closed); Rewind is the step to start again from.
	Blocked string `json:"blocked,omitempty"`
	Rewind  int    `json:"rewind,omitempty"`
}

// A lessonRun is where a visitor is in one lesson beyond the steps done:
// which connection did each step, and the newest connection when the last
// step was done (or the lesson started), for "conn: new".
type lessonRun struct {
	mark  uint64
	conns []uint64
}

// currentLocked is the lesson v is doing: the one they started, else the
// first not finished. v.mu is held.
func (vs *Visitors) currentLocked(v *Visitor) *Lesson {
	var first *Lesson
	for _, l := range vs.Lessons {
		if l.ID == v.current {
			return l
		}
		if first == nil && v.progress[l.ID] < len(l.Steps) {
			first = l
		}
	}
	return first
}

// runLocked is v's run of lesson l, made if needed. v.mu is held.
func (v *Visitor) runLocked(l *Lesson) *lessonRun {
	if v.runs == nil {
		v.runs = make(map[string]*lessonRun)
	}
	r := v.runs[l.ID]
	if r == nil {
		r = &lessonRun{}
		v.runs[l.ID] = r
	}
	return r
}

// advance ticks the step e completes in the lesson v is doing, if any,
// and logs the progress. Only that lesson moves: an event never ticks a
// lesson the student is not doing.
func (vs *Visitors) advance(v *Visitor, e pop3.Event) {
	v.mu.Lock()
	if e.Conn > v.newestConn {
		v.newestConn = e.Conn
	}
	l := vs.currentLocked(v)
	var ticked *Progress
	if l != nil && v.progress[l.ID] < len(l.Steps) { // a finished lesson opened again ticks nothing
		done := v.progress[l.ID]
		st := &l.Steps[done]
		var args []string
		if e.Kind == pop3.EventReply { // the arguments of the command it answers
			_, rest, _ := strings.Cut(v.lastLine[e.Conn], " ")
			args = strings.Fields(rest)
		}
		run := v.runLocked(l)
		if st.Check.Match(e, args) && v.whereOK(st, run, done, e) {
			if v.progress == nil {
				v.progress = make(map[string]int)
			}
			v.progress[l.ID] = done + 1
			v.movedAt = time.Now()
			run.conns = append(run.conns[:done], e.Conn)
			run.mark = v.newestConn
			ticked = &Progress{Lesson: l.ID, Done: done + 1, Steps: len(l.Steps)}
			v.whereNextLocked(l, ticked)
			if done+1 == len(l.Steps) { // on to the next one not finished
				v.current = ""
				if next := vs.currentLocked(v); next != nil {
					v.current = next.ID
					v.runLocked(next).mark = v.newestConn
				}
			}
		}
	}
	// A session the next step needs has closed: say so, rather than
	// leave the student waiting for a tick that cannot come.
	if ticked == nil && e.Kind == pop3.EventClosed && l != nil && v.progress[l.ID] < len(l.Steps) {
		p := &Progress{Lesson: l.ID, Done: v.progress[l.ID], Steps: len(l.Steps)}
		if v.whereNextLocked(l, p); p.Blocked != "" {
			ticked = p
		}
	}
	if e.Kind == pop3.EventClosed {
		delete(v.connTab, e.Conn)
	}
	v.mu.Unlock()
	if ticked != nil {
		v.Events.Append(Entry{Type: EntryLesson, Lesson: ticked})
		if ticked.Done == ticked.Steps {
			vs.completions.Add(ticked.Lesson, 1)
		}
	}
}

// whereNextLocked fills in where p's next step must happen, and whether it
// or a later one is blocked. v.mu is held.
func (v *Visitor) whereNextLocked(l *Lesson, p *Progress) {
	if p.Done >= len(l.Steps) {
		return
	}
	st := &l.Steps[p.Done]
	run := v.runLocked(l)
	conn := func(step int) uint64 { // the connection step (from 1) was done on
		if step >= 1 && step <= len(run.conns) {
			return run.conns[step-1]
		}
		return 0
	}
	// A later step that needs a session already made (conn: step N) is
	// blocked as soon as that session closes: say so now, not when the
	// student gets there.
	for i := p.Done + 1; i < len(l.Steps); i++ {
		later := &l.Steps[i]
		if later.Conn != "step" || later.StepConn > p.Done {
			continue
		}
		if c := conn(later.StepConn); c != 0 {
			if _, open := v.conns[c]; !open {
				p.Blocked = fmt.Sprintf("step %d needs the session of step %d, which has closed", i+1, later.StepConn)
				p.Rewind = later.StepConn
				return
			}
		}
	}
	var need uint64
	var from int // the step that opened it, from 1
	switch st.Conn {
	case "same":
		need, from = conn(p.Done), p.Done
	case "step":
		need, from = conn(st.StepConn), st.StepConn
	case "other":
		p.NotTab = v.connTab[conn(p.Done)]
		return
	default:
		return
	}
	if need == 0 {
		return // restored from the browser: not known
	}
	if _, open := v.conns[need]; !open {
		p.Blocked = fmt.Sprintf("the session this step needs (the one of step %d) has closed", from)
		p.Rewind = from
		return
	}
	p.Tab = v.connTab[need]
	return
}

// RewindLesson takes the visitor back to before step (from 1) of lesson l,
// so that a step whose session has closed can be done again.
func (vs *Visitors) RewindLesson(v *Visitor, l *Lesson, step int) error {
	v.mu.Lock()
	done := v.progress[l.ID]
	if step < 1 || step > done {
		v.mu.Unlock()
		return fmt.Errorf("step %d is not one you have done (%d done)", step, done)
	}
	v.progress[l.ID] = step - 1
	v.current = l.ID
	v.movedAt = time.Now()
	r := v.runLocked(l)
	r.conns, r.mark = r.conns[:min(len(r.conns), step-1)], v.newestConn
	v.mu.Unlock()
	v.Events.Append(Entry{Type: EntryLesson, Lesson: &Progress{Lesson: l.ID, Done: step - 1, Steps: len(l.Steps)}})
	return nil
}

// whereOK reports whether e happened where step st (the done-th, from 0)
// must happen: on the right connection, in the right state. v.mu is held.
func (v *Visitor) whereOK(st *Step, run *lessonRun, done int, e pop3.Event) bool {
	if e.Conn == 0 { // not a connection's event (a reset)
		return st.Conn == "" && st.In == ""
	}
	if st.In != "" && v.conns[e.Conn].state != st.In {
		return false
	}
	prev := func(i int) uint64 {
		if i < len(run.conns) {
			return run.conns[i]
		}
		return 0
	}
	// A step restored from the browser (RestoreProgress) has no known
	// connection (0): any will do for the steps that refer to it.
	switch st.Conn {
	case "new":
		return e.Conn > run.mark
	case "same":
		p := prev(done - 1)
		return p == 0 || e.Conn == p
	case "other":
		return e.Conn != prev(done-1)
	case "step":
		p := prev(st.StepConn - 1)
		return p == 0 || e.Conn == p
	}
	return true
}

// StartLesson records that the visitor is doing lesson l now: only its
// steps tick, and its first step's "conn: new" means a connection opened
// from now on.
func (vs *Visitors) StartLesson(v *Visitor, l *Lesson) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.current = l.ID
	v.movedAt = time.Now()
	v.runLocked(l).mark = v.newestConn
}

// RestoreProgress raises the visitor's progress to what their browser
// remembers (lesson ID → steps done), lesson by lesson, never lowering
// it and never past a lesson's end; unknown lessons are ignored. It is
// the student's own progress: a browser can only claim what it could
// have done.
func (vs *Visitors) RestoreProgress(v *Visitor, saved map[string]int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, l := range vs.Lessons {
		n := min(saved[l.ID], len(l.Steps))
		if n <= v.progress[l.ID] {
			continue
		}
		if v.progress == nil {
			v.progress = make(map[string]int)
		}
		v.progress[l.ID] = n
		r := v.runLocked(l)
		r.conns, r.mark = make([]uint64, n), v.newestConn
	}
	if l := vs.currentLocked(v); l != nil && v.progress[l.ID] >= len(l.Steps) {
		v.current = ""
	}
}

// CurrentLesson is the ID of the lesson the visitor is doing, or "".
func (vs *Visitors) CurrentLesson(v *Visitor) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	if l := vs.currentLocked(v); l != nil {
		return l.ID
	}
	return ""
}

// Progress is how many steps of each lesson the visitor has done.
func (v *Visitor) Progress() map[string]int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return maps.Clone(v.progress)
}

// RestartLesson starts the lesson with this ID over: no step done, and it
// is the lesson the visitor is doing.
func (v *Visitor) RestartLesson(l *Lesson) {
	v.mu.Lock()
	delete(v.progress, l.ID)
	v.current = l.ID
	v.movedAt = time.Now()
	r := v.runLocked(l)
	r.conns, r.mark = nil, v.newestConn
	v.mu.Unlock()
	v.Events.Append(Entry{Type: EntryLesson, Lesson: &Progress{Lesson: l.ID, Steps: len(l.Steps)}})
}
