package web

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/pop3playground/pop3playground/sessions"
	"github.com/pop3playground/pop3playground/templates"
)

// adminState is the admin page's data, also served as JSON for its
// live refresh.
func (s *Server) adminState() templates.AdminState {
	vs := s.cfg.Visitors
	a, _ := vs.Announcement()
	all := vs.All() // with replicas, every replica's
	st := templates.AdminState{
		Visitors:     len(all),
		Bridges:      s.OpenBridges(),
		Lessons:      len(vs.Lessons),
		Announcement: a.Text,
	}
	if s.cfg.POP3Conns != nil {
		st.POP3Conns = s.cfg.POP3Conns()
	}
	now := time.Now()
	st.Summary = lessonSummary(vs.Lessons, all)
	needs := byNeed(vs, all, now)
	for _, v := range all {
		if v.Bridges() > 0 || now.Sub(v.LastSeen()) < ActiveWithin {
			st.Active++
		}
	}
	const shown = 500
	for _, v := range all[:min(len(all), shown)] {
		st.People = append(st.People, adminRow(vs, v, needs[v]))
	}
	for _, e := range vs.RecentErrors(30) {
		st.Errors = append(st.Errors, templates.AdminError{Time: e.Time, Visitor: e.Visitor, Handle: e.Handle, Command: e.Command, Reply: e.Reply})
	}
	for _, b := range vs.World().Bulletins.Bulletins() {
		st.Bulletins = append(st.Bulletins, templates.AdminBulletin{ID: b.ID, Subject: b.Subject, Source: b.Source, Posted: b.Posted, Withdrawn: b.Withdrawn})
	}
	return st
}

// lessonSummary counts, for each lesson, the visitors who started and
// who finished it.
func lessonSummary(lessons []*sessions.Lesson, all []*sessions.Visitor) []templates.AdminLesson {
	sum := make([]templates.AdminLesson, len(lessons))
	for i, l := range lessons {
		sum[i] = templates.AdminLesson{ID: l.ID, Title: l.Title, Steps: len(l.Steps), Of: len(all)}
	}
	for _, v := range all {
		p := v.Progress()
		for i, l := range lessons {
			switch done := p[l.ID]; {
			case done >= len(l.Steps):
				sum[i].Finished++
			case done > 0:
				sum[i].Started++
			}
		}
	}
	return sum
}

// A need is why a visitor may need the organiser: a raised hand, or the
// reason they look stuck.
type need struct {
	hand  *sessions.Hand
	stuck string
}

func (n need) rank() int {
	switch {
	case n.hand != nil:
		return 0
	case n.stuck != "":
		return 1
	}
	return 2
}

// byNeed sorts the visitors as the organiser reads them, and returns each
// one's need: raised hands first, oldest first, then the stuck, then the
// rest in a stable order (by the name shown, then the handle) so that rows
// do not move under the cursor.
func byNeed(vs *sessions.Visitors, all []*sessions.Visitor, now time.Time) map[*sessions.Visitor]need {
	slices.SortFunc(all, func(a, b *sessions.Visitor) int {
		if c := strings.Compare(strings.ToLower(shownName(a)), strings.ToLower(shownName(b))); c != 0 {
			return c
		}
		return strings.Compare(a.Handle, b.Handle)
	})
	needs := make(map[*sessions.Visitor]need, len(all))
	for _, v := range all {
		var n need
		if h, ok := v.Hand(); ok {
			n.hand = &h
		}
		n.stuck = vs.Stuck(v, now)
		needs[v] = n
	}
	slices.SortStableFunc(all, func(a, b *sessions.Visitor) int {
		na, nb := needs[a], needs[b]
		if c := na.rank() - nb.rank(); c != 0 {
			return c
		}
		if na.hand != nil {
			return na.hand.Since.Compare(nb.hand.Since)
		}
		return 0
	})
	return needs
}

// adminRow is a visitor's row on the admin page.
func adminRow(vs *sessions.Visitors, v *sessions.Visitor, n need) templates.AdminVisitor {
	vst := v.Status()
	p := v.Progress()
	row := templates.AdminVisitor{
		Handle: v.Handle, Name: v.Name(), DisplayName: v.DisplayName(), State: vst.State, User: vst.User,
		Conns: vst.Conns, Bridges: v.Bridges(), LastSeen: v.LastSeen(),
		LastCommand: vst.LastCommand, Watchers: vst.Watchers, MailIn: v.MailIn(),
		Stuck: n.stuck,
	}
	if n.hand != nil {
		row.Help = &templates.AdminHelp{Note: n.hand.Note, Since: n.hand.Since}
	}
	if ls := v.Lab.Summary(); ls.Used {
		row.Lab = fmt.Sprintf("%s: %d of %d checks passed, %d failed", ls.Scenario, ls.Passed, ls.Checks, ls.Failed)
	}
	current := vs.CurrentLesson(v)
	row.LessonID = current
	for _, l := range vs.Lessons {
		switch done := p[l.ID]; {
		case done >= len(l.Steps):
			row.LessonsDone++
		case l.ID == current:
			row.Lesson = fmt.Sprintf("%s: %d/%d", l.Title, done, len(l.Steps))
		}
	}
	return row
}

func (s *Server) handleAdminState(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.adminState())
}
