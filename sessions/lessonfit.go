package sessions

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Lessons fit the organiser's world: the built-in ones speak of the
// default world (guest's seven messages, "RETR 3 … dormitory network"), so
// with an organiser's world they are shown only where the organiser asks,
// in the order asked; and a lesson whose buttons name an account or a
// message the world does not have is reported before the workshop.

// SelectLessons is the built-in lessons spec names, in its order: "all",
// "none", or a comma-separated list of IDs or their numbers ("01-lab-sheet",
// "1", "03").
func SelectLessons(builtin []*Lesson, spec string) ([]*Lesson, error) {
	switch strings.TrimSpace(spec) {
	case "all":
		return slices.Clone(builtin), nil
	case "none", "":
		return nil, nil
	}
	var out []*Lesson
	for f := range strings.SplitSeq(spec, ",") {
		f = strings.TrimSpace(f)
		i := slices.IndexFunc(builtin, func(l *Lesson) bool {
			if l.ID == f {
				return true
			}
			num, _, _ := strings.Cut(l.ID, "-")
			a, errA := strconv.Atoi(num)
			b, errB := strconv.Atoi(f)
			return errA == nil && errB == nil && a == b
		})
		if i < 0 {
			var ids []string
			for _, l := range builtin {
				ids = append(ids, l.ID)
			}
			return nil, fmt.Errorf("no built-in lesson %q (they are %s)", f, strings.Join(ids, ", "))
		}
		if slices.Contains(out, builtin[i]) {
			return nil, fmt.Errorf("lesson %q named twice", f)
		}
		out = append(out, builtin[i])
	}
	return out, nil
}

// LessonWarnings checks each step's buttons (its do: line) against the
// world: the account USER names exists, PASS and APOP's password is that
// account's, and a message number RETR, TOP, DELE, LIST or UIDL names is
// one the account has. It returns one line a problem.
func (w *World) LessonWarnings(lessons []*Lesson) []string {
	var warns []string
	for _, l := range lessons {
		user := "" // the account the lesson logs in to, by its USER lines
		for i, st := range l.Steps {
			where := fmt.Sprintf("lesson %s, step %d (%s)", l.ID, i+1, st.Title)
			for _, a := range st.Do {
				if a.Target != "" {
					continue
				}
				f := strings.Fields(a.Line)
				verb := strings.ToUpper(f[0])
				switch {
				case verb == "USER" && len(f) == 2:
					user = f[1]
					if w.Account(user) == nil {
						warns = append(warns, fmt.Sprintf("%s: USER %s: the world has no account %s", where, user, user))
					}
				case verb == "PASS" && len(f) == 2:
					if acc := w.Account(user); acc != nil && !acc.CheckPassword(f[1]) {
						warns = append(warns, fmt.Sprintf("%s: PASS %s is not %s's password", where, f[1], user))
					}
				case verb == "APOP" && len(f) == 3:
					acc := w.Account(f[1])
					switch {
					case acc == nil:
						warns = append(warns, fmt.Sprintf("%s: APOP %s: the world has no account %s", where, f[1], f[1]))
					case f[2] == "{apop}" && !acc.CheckPassword("visitor"):
						warns = append(warns, fmt.Sprintf("%s: the step bar's APOP digest is made with the password \"visitor\", which is not %s's", where, f[1]))
					}
					user = f[1]
				case slices.Contains([]string{"RETR", "TOP", "DELE", "LIST", "UIDL"}, verb) && len(f) >= 2:
					n, err := strconv.Atoi(f[1])
					acc := w.Account(user)
					if err == nil && acc != nil && n > len(acc.Messages) {
						warns = append(warns, fmt.Sprintf("%s: %s names message %d, and %s has %d", where, a.Line, n, user, len(acc.Messages)))
					}
				}
			}
		}
	}
	return warns
}
