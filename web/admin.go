package web

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/pop3playground/pop3playground/pop3/limit"
	"github.com/pop3playground/pop3playground/sessions"
	"github.com/pop3playground/pop3playground/templates"
)

// AdminCookie holds a signed-in organiser's session: a random ID the
// server keeps (and forgets at sign-out), never the token itself.
const AdminCookie = "pop3pg_admin"

// BulletinFrom is the sender of bulletins posted from the admin page.
const BulletinFrom = "Workshop organiser <organiser@playground.invalid>"

// adminPages are the organiser's pages and API, mounted at /admin when
// there is a token.
type adminPages struct{ *Server }

func (a adminPages) Routes() chi.Router {
	r := chi.NewRouter()
	r.Group(func(r chi.Router) {
		r.Use(middleware.Timeout(requestTimeout))
		r.Get("/", a.handleAdmin)
		r.Post("/login", a.handleAdminLogin)
		r.Post("/logout", a.handleAdminLogout)
	})
	r.Group(func(r chi.Router) {
		r.Use(a.requireAdmin)
		r.Get("/visitors/{handle}/watch", a.handleWatch) // a stream: no timeout
		r.Group(func(r chi.Router) {
			r.Use(middleware.Timeout(requestTimeout))
			r.Get("/api/state", a.handleAdminState)
			r.Post("/bulletins", a.handlePostBulletin)
			r.Post("/announce", a.handleAnnounce)
			r.Post("/bulletins/{id}/withdraw", a.handleWithdrawBulletin)
			r.Get("/progress.csv", a.handleProgressCSV)
			r.Post("/reset-all", a.handleResetAll)
			r.Post("/visitors/{handle}/end", a.handleEndVisitor)
			r.Post("/visitors/{handle}/helped", a.handleHelped)
		})
	})
	return r
}

// tokenOK compares a token with the admin token in constant time,
// whatever the lengths.
func (s *Server) tokenOK(token string) bool {
	return s.cfg.AdminToken != "" && limit.Equal(token, s.cfg.AdminToken)
}

// isAdmin reports whether the request is an organiser's: a signed-in
// session's cookie, or the token as a bearer (a metrics scraper). Every
// failed attempt, whichever way it came, counts against the one limiter;
// past it the token is not even compared.
func (s *Server) isAdmin(r *http.Request) bool {
	ok, _ := s.checkAdmin(r)
	return ok
}

// checkAdmin is isAdmin, and says errAuthLimited when a credential was
// refused unchecked.
func (s *Server) checkAdmin(r *http.Request) (bool, error) {
	if s.cfg.AdminToken == "" {
		return false, nil
	}
	now := time.Now()
	key := limit.AddrKey(s.clientAddr(r).Addr().String())
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return s.presented(r, key, "bearer", now, func() bool { return s.tokenOK(strings.TrimSpace(tok)) })
	}
	c, err := r.Cookie(AdminCookie)
	if err != nil {
		return false, nil
	}
	if s.adminSessions.valid(c.Value, now) {
		return true, nil
	}
	// A stale cookie after sign-out or a restart is no guess: only
	// count values that could not have been ours.
	if len(c.Value) == 32 {
		return false, nil
	}
	return s.presented(r, key, "cookie", now, func() bool { return false })
}

// presented checks a credential under the failed-attempt limiter, and logs
// each failure (never the value tried).
func (s *Server) presented(r *http.Request, key, how string, now time.Time, check func() bool) (bool, error) {
	if s.authLimit.limited(key, now) {
		s.refused("admin", errAuthLimited)
		return false, errAuthLimited
	}
	if check() {
		return true, nil
	}
	s.authLimit.failed(key, now)
	s.cfg.Logger.Warn("web: wrong admin token", "via", how, "from", s.clientAddr(r).Addr(), "path", r.URL.Path)
	return false, nil
}

func (s *Server) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, err := s.checkAdmin(r); !ok {
			if err != nil {
				w.Header().Set("Retry-After", "60")
				jsonError(w, http.StatusTooManyRequests, "too many wrong admin tokens from your address: wait a minute")
				return
			}
			if wantsJSON(r) || r.Method == http.MethodGet {
				jsonError(w, http.StatusUnauthorized, "sign in at /admin with the admin token")
				return
			}
			http.Redirect(w, r, "/admin", http.StatusSeeOther)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) handleAdmin(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !s.isAdmin(r) {
		templates.AdminLogin("").Render(r.Context(), w)
		return
	}
	templates.Admin(s.adminState()).Render(r.Context(), w)
}

func (s *Server) handleAdminLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	token := r.PostFormValue("token")
	now := time.Now()
	key := limit.AddrKey(s.clientAddr(r).Addr().String())
	ok, err := s.presented(r, key, "form", now, func() bool { return s.tokenOK(token) })
	if !ok {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		msg := "That is not the admin token. It was printed when the server started (or set with --admin-token)."
		code := http.StatusForbidden
		if err != nil {
			msg = "Too many wrong tokens came from your address. Wait a minute, then try again."
			code = http.StatusTooManyRequests
			w.Header().Set("Retry-After", "60")
		}
		w.WriteHeader(code)
		templates.AdminLogin(msg).Render(r.Context(), w)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: AdminCookie, Value: s.adminSessions.create(now), Path: "/admin",
		HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteStrictMode,
		MaxAge: int(adminSessionTTL / time.Second),
	})
	s.cfg.Logger.Info("web: organiser signed in", "from", s.clientAddr(r).Addr())
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}

// handleAdminLogout ends the organiser's session on the server too: the
// cookie stops working even where a copy of it was kept.
func (s *Server) handleAdminLogout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(AdminCookie); err == nil {
		s.adminSessions.remove(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: AdminCookie, Value: "", Path: "/admin", MaxAge: -1, HttpOnly: true})
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}

// adminDone answers an admin action: JSON for the page's script, a
// redirect back for a plain form.
func adminDone(w http.ResponseWriter, r *http.Request, result map[string]any) {
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, result)
		return
	}
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}

func (s *Server) handlePostBulletin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, sessions.MaxBulletinSize)
	if err := r.ParseForm(); err != nil {
		jsonError(w, http.StatusRequestEntityTooLarge, "the bulletin is too long")
		return
	}
	b, err := s.cfg.Visitors.PostBulletin(BulletinFrom, r.PostFormValue("subject"), r.PostFormValue("body"))
	if err != nil {
		jsonError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.cfg.Logger.Info("web: bulletin posted", "id", b.ID, "subject", b.Subject)
	adminDone(w, r, map[string]any{"bulletin": b.ID, "subject": b.Subject})
}

// ActiveWithin is how recently a visitor without a terminal open must have
// done something to count as active now.
const ActiveWithin = 2 * time.Minute

// handleHelped lowers a visitor's raised hand: the organiser helped.
func (s *Server) handleHelped(w http.ResponseWriter, r *http.Request) {
	v := s.cfg.Visitors.ByHandle(chi.URLParam(r, "handle"))
	if v == nil {
		jsonError(w, http.StatusNotFound, "no such visitor (their session may have ended)")
		return
	}
	v.LowerHand("the organiser")
	adminDone(w, r, map[string]any{"helped": v.Handle})
}

// handleAnnounce puts a line (form field "text") on every student's page at
// once, over their event streams; an empty one takes it down.
func (s *Server) handleAnnounce(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		jsonError(w, http.StatusRequestEntityTooLarge, "an announcement is one line of at most 280 characters")
		return
	}
	a, err := s.cfg.Visitors.Announce(r.PostFormValue("text"))
	if err != nil {
		jsonError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.cfg.Logger.Info("web: announcement", "text", a.Text)
	adminDone(w, r, map[string]any{"announcement": a.Text, "id": a.ID})
}

// handleWithdrawBulletin stops delivering a bulletin; copies already
// delivered stay in their maildrops, as mail does.
func (s *Server) handleWithdrawBulletin(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(chi.URLParam(r, "id"))
	if err != nil || !s.cfg.Visitors.WithdrawBulletin(id) {
		jsonError(w, http.StatusNotFound, "no such bulletin on the board")
		return
	}
	s.cfg.Logger.Info("web: bulletin withdrawn", "id", id)
	adminDone(w, r, map[string]any{"withdrawn": id})
}

// handleProgressCSV exports every visitor's progress: handle, pseudonym,
// the name they gave, the steps done in each lesson, last activity.
func (s *Server) handleProgressCSV(w http.ResponseWriter, r *http.Request) {
	vs := s.cfg.Visitors
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="progress.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	cw := csv.NewWriter(w)
	head := []string{"handle", "pseudonym", "name"}
	for _, l := range vs.Lessons {
		head = append(head, l.ID+" ("+strconv.Itoa(len(l.Steps))+" steps)")
	}
	cw.Write(append(head, "lab_scenario", "lab_checks_passed", "lab_checks_failed", "last_activity"))
	all := vs.All()
	slices.SortFunc(all, func(a, b *sessions.Visitor) int { return strings.Compare(a.Handle, b.Handle) })
	for _, v := range all {
		p := v.Progress()
		rec := []string{v.Handle, v.Name(), csvSafe(v.DisplayName())}
		for _, l := range vs.Lessons {
			rec = append(rec, strconv.Itoa(p[l.ID]))
		}
		if ls := v.Lab.Summary(); ls.Used {
			rec = append(rec, ls.Scenario, strconv.Itoa(ls.Passed), strconv.Itoa(ls.Failed))
		} else {
			rec = append(rec, "", "", "")
		}
		cw.Write(append(rec, v.LastSeen().UTC().Format(time.RFC3339)))
	}
	cw.Flush()
}

// csvSafe keeps a student's text from being read as a formula by a
// spreadsheet (CSV injection).
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// shownName is how the organiser's page names a visitor.
func shownName(v *sessions.Visitor) string {
	if n := v.DisplayName(); n != "" {
		return n
	}
	return v.Name()
}

func (s *Server) handleResetAll(w http.ResponseWriter, r *http.Request) {
	n := s.cfg.Visitors.ResetAll()
	s.cfg.Logger.Info("web: every sandbox reset", "visitors", n)
	adminDone(w, r, map[string]any{"reset": n})
}

func (s *Server) handleEndVisitor(w http.ResponseWriter, r *http.Request) {
	v := s.cfg.Visitors.ByHandle(chi.URLParam(r, "handle"))
	if v == nil {
		jsonError(w, http.StatusNotFound, "no such visitor (their session may have ended)")
		return
	}
	s.cfg.Visitors.End(v.Token)
	s.closeBridgesOf(v)
	s.cfg.Logger.Info("web: visitor's session ended by the organiser", "visitor", v.Name())
	adminDone(w, r, map[string]any{"ended": v.Name()})
}

// transcriptLine is one line of a watched terminal: C (client), S
// (server) or * (the connection).
type transcriptLine struct {
	Time time.Time `json:"time"`
	Conn uint64    `json:"conn"`
	Who  string    `json:"who"`
	Text string    `json:"text"`
}

// handleWatch streams a visitor's session as a transcript (commands with
// secrets masked, status lines) for an organiser helping them; the
// visitor's page says that it is being watched.
func (s *Server) handleWatch(w http.ResponseWriter, r *http.Request) {
	v := s.cfg.Visitors.ByHandle(chi.URLParam(r, "handle"))
	if v == nil {
		jsonError(w, http.StatusNotFound, "no such visitor (their session may have ended)")
		return
	}
	v.Watch(+1)
	defer v.Watch(-1)
	s.stream(w, r, v, 0, false, func(w io.Writer, e sessions.Entry) {
		if l, ok := transcriptOf(e); ok {
			data, _ := json.Marshal(l)
			fmt.Fprintf(w, "id: %d\nevent: line\ndata: %s\n\n", e.ID, data)
		}
	})
}

func transcriptOf(e sessions.Entry) (transcriptLine, bool) {
	ev := e.Event
	l := transcriptLine{Time: ev.Time, Conn: ev.Conn}
	switch {
	case e.Type == sessions.EntryReset:
		l.Who, l.Text = "*", "the sandbox was reset"
	case e.Type != sessions.EntryPOP3:
		return l, false
	case ev.Kind == sessions.EventConnected:
		l.Who, l.Text = "*", "connected ("+e.Via+")"
	case ev.Kind == sessions.EventCommand:
		l.Who, l.Text = "C", ev.Line
	case ev.Kind == sessions.EventReply:
		l.Who, l.Text = "S", ev.Line
	case ev.Kind == sessions.EventClosed:
		l.Who, l.Text = "*", "connection closed: "+ev.Reason
	default:
		return l, false
	}
	return l, true
}
