package web

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/pop3playground/pop3playground/sessions"
	"github.com/pop3playground/pop3playground/templates"
)

// lessonInfo is a lesson in GET /api/lessons.
type lessonInfo struct {
	ID      string   `json:"id"`
	Title   string   `json:"title"`
	Summary string   `json:"summary"`
	Steps   []string `json:"steps"`
	Done    int      `json:"done"`
	Current bool     `json:"current"` // the lesson the visitor is doing
}

// handleLessons lists the lessons and the visitor's progress in them.
func (s *Server) handleLessons(w http.ResponseWriter, r *http.Request) {
	v := visitorOf(r)
	progress := v.Progress()
	current := s.cfg.Visitors.CurrentLesson(v)
	list := []lessonInfo{}
	for _, l := range s.cfg.Visitors.Lessons {
		li := lessonInfo{ID: l.ID, Title: l.Title, Summary: l.Summary, Done: progress[l.ID], Current: l.ID == current}
		for _, st := range l.Steps {
			li.Steps = append(li.Steps, st.Title)
		}
		list = append(list, li)
	}
	writeJSON(w, http.StatusOK, list)
}

// handleRestartLesson starts one lesson over for the visitor; the page
// hears of it on the event stream.
func (s *Server) handleRestartLesson(w http.ResponseWriter, r *http.Request) {
	s.withLesson(w, r, func(v *sessions.Visitor, l *sessions.Lesson) error { s.cfg.Visitors.RestartLesson(v, l); return nil })
}

// handleStartLesson records that the visitor is doing this lesson now
// (they opened it): from now on only its steps tick.
func (s *Server) handleStartLesson(w http.ResponseWriter, r *http.Request) {
	s.withLesson(w, r, func(v *sessions.Visitor, l *sessions.Lesson) error { s.cfg.Visitors.StartLesson(v, l); return nil })
}

// handleRewindLesson takes the visitor back to before step N (form field
// "step", from 1): a step whose session has closed is done again from the
// step that opened it.
func (s *Server) handleRewindLesson(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<10)
	step, err := strconv.Atoi(r.PostFormValue("step"))
	if err != nil {
		jsonError(w, http.StatusBadRequest, "want step=N, the step to start again from")
		return
	}
	s.withLesson(w, r, func(v *sessions.Visitor, l *sessions.Lesson) error { return s.cfg.Visitors.RewindLesson(v, l, step) })
}

// withLesson runs do on the request's visitor and the lesson its {id}
// names, and answers the lesson's progress after it.
func (s *Server) withLesson(w http.ResponseWriter, r *http.Request, do func(*sessions.Visitor, *sessions.Lesson) error) {
	v := visitorOf(r)
	id := chi.URLParam(r, "id")
	for _, l := range s.cfg.Visitors.Lessons {
		if l.ID == id {
			if err := do(v, l); err != nil {
				jsonError(w, http.StatusBadRequest, err.Error())
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"lesson": l.ID, "done": v.Progress()[l.ID], "steps": len(l.Steps)})
			return
		}
	}
	jsonError(w, http.StatusNotFound, "no lesson "+strconv.Quote(id))
}

// handleRestoreLessons gives the visitor the progress their browser
// remembers ({"lesson-id": steps done, ...}), where it is ahead of the
// server's: after a restart the server has forgotten it. It answers the
// lessons' progress now.
func (s *Server) handleRestoreLessons(w http.ResponseWriter, r *http.Request) {
	v := visitorOf(r)
	var saved map[string]int
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&saved); err != nil {
		jsonError(w, http.StatusBadRequest, "want a JSON object of lesson IDs and steps done")
		return
	}
	s.cfg.Visitors.RestoreProgress(v, saved)
	progress := v.Progress()
	out := []map[string]any{}
	for _, l := range s.cfg.Visitors.Lessons {
		out = append(out, map[string]any{"id": l.ID, "done": progress[l.ID], "steps": len(l.Steps)})
	}
	writeJSON(w, http.StatusOK, out)
}

// lessonViews are the lessons as the page renders them.
func lessonViews(lessons []*sessions.Lesson) []templates.Lesson {
	views := make([]templates.Lesson, len(lessons))
	for i, l := range lessons {
		v := templates.Lesson{ID: l.ID, Title: l.Title, Intro: l.Intro, Steps: make([]templates.Step, len(l.Steps))}
		for k, st := range l.Steps {
			do := []byte("[]")
			if len(st.Do) > 0 {
				do, _ = json.Marshal(st.Do)
			}
			v.Steps[k] = templates.Step{Title: st.Title, Text: st.Text, Do: string(do)}
		}
		views[i] = v
	}
	return views
}
