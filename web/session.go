package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pop3playground/pop3playground/sessions"
	"github.com/pop3playground/pop3playground/templates"
)

// The visitor cookie is the visitor's token (32 hex digits) followed by a
// MAC of it (32 hex digits) under the server's cookie key. A bare GET /
// only mints one: no visitor exists until a browser comes back with it
// (DESIGN §10). The MAC means the server made every token it accepts, so
// a client cannot choose its own.
const cookieLen = 64

// cookieValue is the cookie that carries token.
func (s *Server) cookieValue(token string) string {
	m := hmac.New(sha256.New, s.cookieKey)
	m.Write([]byte(token))
	return token + hex.EncodeToString(m.Sum(nil)[:16])
}

// cookieToken returns the token of the request's visitor cookie, if the
// server made it.
func (s *Server) cookieToken(r *http.Request) (string, bool) {
	c, err := r.Cookie(CookieName)
	if err != nil || len(c.Value) != cookieLen {
		return "", false
	}
	tok := c.Value[:cookieLen/2]
	return tok, hmac.Equal([]byte(c.Value), []byte(s.cookieValue(tok)))
}

// visitor returns the visitor of the request's cookie, or nil.
func (s *Server) visitor(r *http.Request) *sessions.Visitor {
	tok, ok := s.cookieToken(r)
	if !ok {
		return nil
	}
	return s.cfg.Visitors.Get(tok)
}

// errNoCookie: the request has no visitor cookie the server made.
var errNoCookie = errors.New("no playground session: load the page first")

// visitorOrCreate returns the visitor of the request's cookie, making it
// now if the cookie is one the server set and the limits allow another.
func (s *Server) visitorOrCreate(r *http.Request) (*sessions.Visitor, error) {
	tok, ok := s.cookieToken(r)
	if !ok {
		return nil, errNoCookie
	}
	v, err := s.cfg.Visitors.Create(tok, s.clientAddr(r).Addr().String())
	if err != nil {
		s.refused("visitor", err)
	}
	return v, err
}

// refusal says why a visitor could not be made, for the page and the
// status line.
func refusal(err error) (code int, why string) {
	switch {
	case errors.Is(err, errNoCookie):
		return http.StatusUnauthorized, "No playground session: load the page first."
	case errors.Is(err, sessions.ErrIPTooMany):
		return http.StatusServiceUnavailable, "Too many playground sessions come from your network address. Sessions of people who left are freed regularly."
	case errors.Is(err, sessions.ErrTooFast):
		return http.StatusServiceUnavailable, "Many people from your network address arrived at once. Please wait a few seconds and reload the page."
	case errors.Is(err, sessions.ErrStore):
		return http.StatusServiceUnavailable, "The playground's store is not answering right now. Please reload the page in a moment."
	default:
		return http.StatusServiceUnavailable, "The playground holds as many visitors as its organiser allowed. Sandboxes of people who left are freed regularly."
	}
}

func fullPage(w http.ResponseWriter, r *http.Request, why string) {
	templates.Full(why).Render(r.Context(), w)
}

// refuseJSON answers a script whose visitor could not be made.
func refuseJSON(w http.ResponseWriter, err error) {
	code, why := refusal(err)
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "30")
	}
	jsonError(w, code, why) // writeJSON sets Cache-Control: no-store
}

// refuseVisitor answers a request whose visitor could not be made: JSON
// for scripts, the "full" page for browsers, plain text otherwise.
func (s *Server) refuseVisitor(w http.ResponseWriter, r *http.Request, err error) {
	if wantsJSON(r) {
		refuseJSON(w, err)
		return
	}
	code, why := refusal(err)
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "30")
	}
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case r.URL.Path == "/" || strings.Contains(r.Header.Get("Accept"), "text/html"):
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(code)
		fullPage(w, r, why)
	default:
		http.Error(w, why, code)
	}
}

// handlePage serves the playground. A browser without a visitor cookie
// gets a new one and the page, and nothing else is made: its script asks
// /api/session, which makes the visitor and their sandbox. A browser that
// comes back with the cookie is a visitor now.
func (s *Server) handlePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	var v *sessions.Visitor
	if _, ok := s.cookieToken(r); ok {
		var err error
		if v, err = s.visitorOrCreate(r); err != nil {
			s.refuseVisitor(w, r, err)
			return
		}
	} else {
		// Refuse at once if the visitor could not be made anyway.
		if err := s.cfg.Visitors.Admits(s.clientAddr(r).Addr().String()); err != nil {
			s.refused("visitor", err)
			s.refuseVisitor(w, r, err)
			return
		}
		http.SetCookie(w, &http.Cookie{
			Name:     CookieName,
			Value:    s.cookieValue(sessions.NewToken()),
			Path:     "/",
			HttpOnly: true,
			Secure:   s.secure(r),
			SameSite: http.SameSiteLaxMode,
		})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	teaching := templates.Teaching{Lessons: s.lessonViews, SMTPExplanations: sessions.SMTPExplanations}
	c := s.connection(nil)
	if v != nil {
		teaching.Progress = v.Progress()
		teaching.Current = s.cfg.Visitors.CurrentLesson(v)
		c = s.connection(v)
	}
	templates.Playground(c, teaching).Render(r.Context(), w)
}

func (s *Server) connection(v *sessions.Visitor) templates.Connection {
	world := s.cfg.Visitors.World()
	account, password, _ := world.FirstLogin()
	var names []string
	for _, a := range world.Accounts() {
		names = append(names, a.Name)
	}
	c := templates.Connection{
		Account:  account,
		Password: password,
		Host:     s.cfg.PublicHost,
		Port:     s.cfg.PublicPort,
		Dialed:   s.cfg.POP3Addr,
		SMTPPort: s.cfg.SMTPPort,
		SMTPDial: s.cfg.SMTPAddr,
		Accounts: names,
	}
	c.LabPort, c.LabSMTPPort = s.cfg.PublicPort, s.cfg.SMTPPort
	if s.cfg.LabPort != "" {
		c.LabPort = s.cfg.LabPort
	}
	if s.cfg.LabSMTPPort != "" {
		c.LabSMTPPort = s.cfg.LabSMTPPort
	}
	if v != nil {
		c.Login, c.ID = v.PersonalLogin(account), v.ID
	}
	return c
}

// sessionInfo is the JSON of GET /api/session.
type sessionInfo struct {
	Login         string    `json:"login"`
	ID            string    `json:"id"`
	Account       string    `json:"account"`
	Password      string    `json:"password"`
	Host          string    `json:"host"`
	Port          int       `json:"port"`
	Accounts      []string  `json:"accounts"`
	Created       time.Time `json:"created"`
	SandboxFresh  time.Time `json:"sandbox_fresh"`
	SandboxAgeSec int64     `json:"sandbox_age_seconds"`
	Bridges       int       `json:"bridges"`
	// Handle and Pseudonym name the visitor on the organiser's page;
	// DisplayName is the name they gave it.
	Handle      string `json:"handle"`
	Pseudonym   string `json:"pseudonym"`
	DisplayName string `json:"display_name"`
	// Address is the personal mail address, when mail in is on.
	Address string `json:"address,omitempty"`
	// Help is the visitor's raised hand, if any.
	Help *sessions.Hand `json:"help,omitempty"`
}

func (s *Server) info(v *sessions.Visitor) sessionInfo {
	c := s.connection(v)
	port, _ := strconv.Atoi(c.Port)
	fresh := v.Sandbox.Fresh()
	si := sessionInfo{
		Login: c.Login, ID: c.ID, Account: c.Account, Password: c.Password,
		Host: c.Host, Port: port, Accounts: c.Accounts,
		Created: v.Created.UTC().Truncate(time.Second), SandboxFresh: fresh.UTC().Truncate(time.Second),
		SandboxAgeSec: int64(time.Since(fresh).Seconds()), Bridges: v.Bridges(),
		Handle: v.Handle, Pseudonym: v.Name(), DisplayName: v.DisplayName(),
	}
	if s.cfg.MailDomain != "" {
		si.Address = c.Login + "@" + s.cfg.MailDomain
	}
	if h, ok := v.Hand(); ok {
		si.Help = &h
	}
	return si
}

// handleSession describes the visitor's session, making it first if the
// page's cookie has none yet.
func (s *Server) handleSession(w http.ResponseWriter, r *http.Request) {
	v, err := s.visitorOrCreate(r)
	if err != nil {
		refuseJSON(w, err) // an API: JSON whatever the Accept header says
		return
	}
	writeJSON(w, http.StatusOK, s.info(v))
}

// handleReset gives the visitor a pristine sandbox. A form post is sent
// back to the page; a script asking for JSON gets the new session info.
func (s *Server) handleReset(w http.ResponseWriter, r *http.Request) {
	v := s.visitor(r)
	if v == nil {
		if wantsJSON(r) {
			jsonError(w, http.StatusUnauthorized, errNoCookie.Error())
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s.cfg.Visitors.Reset(v)
	s.cfg.Logger.Info("web: sandbox reset", "visitor", v.Name())
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, s.info(v))
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// handleName sets the name the visitor gives the organiser (form field
// "name"), shown beside their pseudonym on the admin page.
func (s *Server) handleName(w http.ResponseWriter, r *http.Request) {
	v := visitorOf(r)
	r.Body = http.MaxBytesReader(w, r.Body, 1<<10)
	if err := r.ParseForm(); err != nil {
		jsonError(w, http.StatusRequestEntityTooLarge, "a name is at most 40 characters")
		return
	}
	name := v.SetDisplayName(r.PostFormValue("name"))
	writeJSON(w, http.StatusOK, map[string]string{"display_name": name, "pseudonym": v.Name(), "handle": v.Handle})
}

// handleHelp raises the visitor's hand for the organiser (form field
// "note", an optional line), or lowers it ("lower" set). It answers the
// hand as it is now.
func (s *Server) handleHelp(w http.ResponseWriter, r *http.Request) {
	v := visitorOf(r)
	r.Body = http.MaxBytesReader(w, r.Body, 1<<10)
	if err := r.ParseForm(); err != nil {
		jsonError(w, http.StatusRequestEntityTooLarge, "a note is at most 140 characters")
		return
	}
	if r.PostFormValue("lower") != "" {
		v.LowerHand("you")
		writeJSON(w, http.StatusOK, map[string]any{"raised": false})
		return
	}
	h := v.RaiseHand(r.PostFormValue("note"))
	writeJSON(w, http.StatusOK, map[string]any{"raised": true, "note": h.Note, "since": h.Since})
}
