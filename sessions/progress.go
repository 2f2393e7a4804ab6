package sessions

import (
	"fmt"
	"maps"
	"strings"
	"time"
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

// lessonState is where a visitor is in the lessons. It changes only by its
// methods, each a function of the state, the lessons, the event and the
// visitor's connections (openConns): it reads nothing another part of the
// visitor keeps. Its Visitor's mu guards it.
type lessonState struct {
	progress map[string]int // lesson ID → steps done
	current  string         // the lesson started; "" for the first not finished
	runs     map[string]*lessonRun
	movedAt  time.Time // a step ticked, or a lesson was (re)started
}

// currentLesson is the lesson being done: the one started, else the first
// not finished.
func (ls *lessonState) currentLesson(lessons []*Lesson) *Lesson {
	var first *Lesson
	for _, l := range lessons {
		if l.ID == ls.current {
			return l
		}
		if first == nil && ls.progress[l.ID] < len(l.Steps) {
			first = l
		}
	}
	return first
}

// run is the run of lesson l, made if needed.
func (ls *lessonState) run(l *Lesson) *lessonRun {
	if ls.runs == nil {
		ls.runs = make(map[string]*lessonRun)
	}
	r := ls.runs[l.ID]
	if r == nil {
		r = &lessonRun{}
		ls.runs[l.ID] = r
	}
	return r
}

func (ls *lessonState) setDone(l *Lesson, n int, now time.Time) {
	if ls.progress == nil {
		ls.progress = make(map[string]int)
	}
	ls.progress[l.ID] = n
	ls.movedAt = now
}

// advance ticks the step e completes in the lesson being done, if any, and
// returns the progress to announce, or nil. args are the arguments of the
// command a reply answers. Only that lesson moves: an event never ticks a
// lesson the student is not doing. A session the next step needs having
// closed is announced too (Blocked), rather than leave the student
// waiting for a tick that cannot come.
func (ls *lessonState) advance(lessons []*Lesson, e Event, args []string, oc *openConns, now time.Time) *Progress {
	l := ls.currentLesson(lessons)
	if l == nil || ls.progress[l.ID] >= len(l.Steps) { // a finished lesson opened again ticks nothing
		return nil
	}
	done := ls.progress[l.ID]
	st := &l.Steps[done]
	run := ls.run(l)
	if !st.Check.Match(e, args) || !whereOK(st, run, done, e, oc) {
		if e.Kind != EventClosed {
			return nil
		}
		p := &Progress{Lesson: l.ID, Done: done, Steps: len(l.Steps)}
		if ls.whereNext(l, p, oc); p.Blocked != "" {
			return p
		}
		return nil
	}
	ls.setDone(l, done+1, now)
	run.conns = append(run.conns[:done], e.Conn)
	run.mark = oc.last
	p := &Progress{Lesson: l.ID, Done: done + 1, Steps: len(l.Steps)}
	ls.whereNext(l, p, oc)
	if done+1 == len(l.Steps) { // on to the next one not finished
		ls.current = ""
		if next := ls.currentLesson(lessons); next != nil {
			ls.current = next.ID
			ls.run(next).mark = oc.last
		}
	}
	return p
}

// whereNext fills in where p's next step must happen, and whether it or a
// later one is blocked.
func (ls *lessonState) whereNext(l *Lesson, p *Progress, oc *openConns) {
	if p.Done >= len(l.Steps) {
		return
	}
	st := &l.Steps[p.Done]
	run := ls.run(l)
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
		if c := conn(later.StepConn); c != 0 && !oc.open(c) {
			p.Blocked = fmt.Sprintf("step %d needs the session of step %d, which has closed", i+1, later.StepConn)
			p.Rewind = later.StepConn
			return
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
		p.NotTab = oc.tab(conn(p.Done))
		return
	default:
		return
	}
	switch {
	case need == 0: // restored from the browser: not known
	case !oc.open(need):
		p.Blocked = fmt.Sprintf("the session this step needs (the one of step %d) has closed", from)
		p.Rewind = from
	default:
		p.Tab = oc.tab(need)
	}
}

// whereOK reports whether e happened where step st (the done-th, from 0)
// must happen: on the right connection, in the right state.
func whereOK(st *Step, run *lessonRun, done int, e Event, oc *openConns) bool {
	if e.Conn == 0 { // not a connection's event (a reset)
		return st.Conn == "" && st.In == ""
	}
	if st.In != "" && oc.state(e.Conn) != st.In {
		return false
	}
	prev := func(i int) uint64 {
		if i >= 0 && i < len(run.conns) {
			return run.conns[i]
		}
		return 0
	}
	// A step restored from the browser (RestoreProgress) has no known
	// connection (0): any will do for the steps that refer to it.
	switch st.Conn {
	case "new":
		return oc.order(e.Conn) > run.mark
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

// start makes l the lesson being done: only its steps tick, and "conn:
// new" means a connection opened after newest. With over, it starts
// again from no step done.
func (ls *lessonState) start(l *Lesson, newest uint64, over bool, now time.Time) {
	if over {
		delete(ls.progress, l.ID)
	}
	ls.current, ls.movedAt = l.ID, now
	r := ls.run(l)
	r.mark = newest
	if over {
		r.conns = nil
	}
}

// rewind takes l back to before step (from 1).
func (ls *lessonState) rewind(l *Lesson, step int, newest uint64, now time.Time) error {
	done := ls.progress[l.ID]
	if step < 1 || step > done {
		return fmt.Errorf("step %d is not one you have done (%d done)", step, done)
	}
	ls.setDone(l, step-1, now)
	ls.current = l.ID
	r := ls.run(l)
	r.conns, r.mark = r.conns[:min(len(r.conns), step-1)], newest
	return nil
}

// restore raises the progress to what a browser remembers (lesson ID →
// steps done), lesson by lesson, never lowering it and never past a
// lesson's end; unknown lessons are ignored.
func (ls *lessonState) restore(lessons []*Lesson, saved map[string]int, newest uint64) {
	for _, l := range lessons {
		n := min(saved[l.ID], len(l.Steps))
		if n <= ls.progress[l.ID] {
			continue
		}
		if ls.progress == nil {
			ls.progress = make(map[string]int)
		}
		ls.progress[l.ID] = n
		r := ls.run(l)
		r.conns, r.mark = make([]uint64, n), newest
	}
	if l := ls.currentLesson(lessons); l != nil && ls.progress[l.ID] >= len(l.Steps) {
		ls.current = ""
	}
}

// advance files e with the visitor's connections and lessons, and logs
// the progress it made.
func (vs *Visitors) advance(v *Visitor, e Event, tab string) {
	v.mu.Lock()
	answered := v.open.observe(e, tab)
	v.noteLocked(e)
	var args []string
	if e.Kind == EventReply {
		_, rest, _ := strings.Cut(answered, " ")
		args = strings.Fields(rest)
	}
	p := v.lessons.advance(vs.Lessons, e, args, &v.open, time.Now())
	if e.Kind == EventClosed {
		v.open.forget(e.Conn)
	}
	v.mu.Unlock()
	if e.Kind == EventReply && !e.OK && e.Verb != "" {
		vs.errors.add(ErrorNote{Time: e.Time, Visitor: v.Name(), Handle: v.Handle, Command: answered, Reply: strings.TrimSpace(e.Line)})
	}
	if p != nil {
		v.Events.Append(Entry{Type: EntryLesson, Lesson: p})
		if p.Done == p.Steps {
			vs.completions.Add(p.Lesson, 1)
		}
	}
}

// StartLesson records that the visitor is doing lesson l now: only its
// steps tick, and its first step's "conn: new" means a connection opened
// from now on.
func (vs *Visitors) StartLesson(v *Visitor, l *Lesson) {
	vs.record(v, fact{Type: factControl, Op: "start", Lesson: l.ID, Event: &Event{Time: time.Now()}})
}

// RestartLesson starts lesson l over: no step done, and it is the lesson
// the visitor is doing.
func (vs *Visitors) RestartLesson(v *Visitor, l *Lesson) {
	vs.record(v, fact{Type: factControl, Op: "restart", Lesson: l.ID, Event: &Event{Time: time.Now()}})
}

// RewindLesson takes the visitor back to before step (from 1) of lesson l,
// so that a step whose session has closed can be done again.
func (vs *Visitors) RewindLesson(v *Visitor, l *Lesson, step int) error {
	v.mu.Lock()
	done := v.lessons.progress[l.ID]
	v.mu.Unlock()
	if step < 1 || step > done {
		return fmt.Errorf("step %d is not one you have done (%d done)", step, done)
	}
	vs.record(v, fact{Type: factControl, Op: "rewind", Lesson: l.ID, Step: step, Event: &Event{Time: time.Now()}})
	return nil
}

// RestoreProgress raises the visitor's progress to what their browser
// remembers. It is the student's own progress: a browser can only claim
// what it could have done.
func (vs *Visitors) RestoreProgress(v *Visitor, saved map[string]int) {
	vs.record(v, fact{Type: factControl, Op: "restore", Saved: saved})
}

// CurrentLesson is the ID of the lesson the visitor is doing, or "".
func (vs *Visitors) CurrentLesson(v *Visitor) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	if l := v.lessons.currentLesson(vs.Lessons); l != nil {
		return l.ID
	}
	return ""
}

// Progress is how many steps of each lesson the visitor has done.
func (v *Visitor) Progress() map[string]int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return maps.Clone(v.lessons.progress)
}
