package web

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/pop3playground/pop3playground/pop3/limit"
	"github.com/pop3playground/pop3playground/sessions"
)

// maxProofBody bounds what a student may submit as saved messages: the
// lab's maildrop is a little over 1 MB.
const maxProofBody = 4 << 20

// labAPI is the client lab's API at /api/lab: the page's (with the
// visitor's cookie) and a script's (HTTP Basic with the lab login and
// its password, so that a student's CI can fetch its own card).
type labAPI struct{ *Server }

func (a labAPI) Routes() chi.Router {
	r := chi.NewRouter()
	r.Use(a.withLabVisitor)
	r.Get("/", a.handleLab)
	r.Get("/smtp-body", a.handleLabSMTPBody)
	r.Post("/scenario", a.handleLabScenario)
	r.Post("/proof", a.handleLabProof)
	return r
}

// withLabVisitor finds the visitor by cookie, or by the lab login over
// HTTP Basic; without either it answers 401 in the one way.
func (s *Server) withLabVisitor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pass, ok := r.BasicAuth(); ok {
			account, id, _ := strings.Cut(user, ".")
			v := s.cfg.Visitors.ByID(id)
			if account != sessions.LabAccount || v == nil || !limit.Equal(pass, sessions.LabPassword) {
				w.Header().Set("WWW-Authenticate", `Basic realm="client lab"`)
				jsonError(w, http.StatusUnauthorized, "the lab's login is "+sessions.LabAccount+".ID (from the playground page), password "+sessions.LabPassword)
				return
			}
			r = withVisitorValue(r, v)
			next.ServeHTTP(w, r)
			return
		}
		s.withVisitor(next).ServeHTTP(w, r)
	})
}

// labInfo is GET /api/lab: where to point the client, the scenarios, and
// the report card.
type labInfo struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Login    string `json:"login"`
	Password string `json:"password"`
	// Address is where a sending client sends the test message (the SMTP
	// scenarios), and SMTPPort the port, when mail in is on.
	Address   string                 `json:"address,omitempty"`
	SMTPPort  int                    `json:"smtp_port,omitempty"`
	Scenarios []sessions.LabScenario `json:"scenarios"`
	Card      sessions.LabCard       `json:"card"`
	Proofs    []sessions.Proof       `json:"submitted,omitempty"` // what this request submitted
}

func (s *Server) labInfo(v *sessions.Visitor) labInfo {
	info := labInfo{Host: s.cfg.PublicHost, Port: firstPort(s.cfg.LabPort, s.cfg.PublicPort), Login: sessions.LabAccount + "." + v.ID, Password: sessions.LabPassword,
		Scenarios: sessions.LabScenarios, Card: v.Lab.Card()}
	if s.cfg.MailDomain != "" {
		info.Address = info.Login + "@" + s.cfg.MailDomain
		info.SMTPPort = firstPort(s.cfg.LabSMTPPort, s.cfg.SMTPPort)
	}
	return info
}

// firstPort is the first of the ports that is on.
func firstPort(ports ...string) int {
	for _, p := range ports {
		if n, err := strconv.Atoi(p); err == nil && n > 0 {
			return n
		}
	}
	return 0
}

// arm tells the lab ports that the visitor uses the lab from the
// request's client address (sessions.Visitors.ArmLab).
func (s *Server) arm(r *http.Request, v *sessions.Visitor) {
	s.cfg.Visitors.ArmLab(v, s.clientAddr(r).Addr().String())
}

// handleLab answers the card: JSON, or Markdown with ?format=md (or an
// Accept of text/markdown), to download.
func (s *Server) handleLab(w http.ResponseWriter, r *http.Request) {
	v := visitorOf(r)
	s.arm(r, v)
	if r.URL.Query().Get("format") == "md" || strings.Contains(r.Header.Get("Accept"), "text/markdown") {
		w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Disposition", `attachment; filename="client-lab-card.md"`)
		io.WriteString(w, v.Lab.Card().Markdown(sessions.LabAccount+"."+v.ID))
		return
	}
	writeJSON(w, http.StatusOK, s.labInfo(v))
}

// handleLabSMTPBody is the body of the test message the SMTP scenarios
// ask a sending client to send, CRLF line ends and all.
func (s *Server) handleLabSMTPBody(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="lab-test-body.txt"`)
	io.WriteString(w, sessions.LabSMTPBody)
}

// handleLabScenario starts a scenario afresh (form field "scenario").
func (s *Server) handleLabScenario(w http.ResponseWriter, r *http.Request) {
	v := visitorOf(r)
	r.Body = http.MaxBytesReader(w, r.Body, 1<<10)
	if err := v.Lab.Choose(r.PostFormValue("scenario")); err != nil {
		jsonError(w, http.StatusBadRequest, err.Error()+": see GET /api/lab for the scenarios")
		return
	}
	s.arm(r, v)
	writeJSON(w, http.StatusOK, s.labInfo(v))
}

// handleLabProof compares what the client saved with the lab's maildrop:
// files in a multipart form (field "files"), SHA-256 digests one per line
// (form field "digests", or a text/plain body, as sha256sum prints them).
func (s *Server) handleLabProof(w http.ResponseWriter, r *http.Request) {
	v := visitorOf(r)
	r.Body = http.MaxBytesReader(w, r.Body, maxProofBody)
	files := map[string][]byte{}
	var digests []string
	ctype := r.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ctype, "multipart/form-data"):
		if err := r.ParseMultipartForm(maxProofBody); err != nil {
			jsonError(w, http.StatusRequestEntityTooLarge, "the saved messages are at most 4 MB in all")
			return
		}
		for _, fh := range r.MultipartForm.File["files"] {
			f, err := fh.Open()
			if err != nil {
				continue
			}
			b, _ := io.ReadAll(f)
			f.Close()
			files[fh.Filename] = b
		}
		digests = lines(r.FormValue("digests"))
	case strings.HasPrefix(ctype, "application/x-www-form-urlencoded"):
		digests = lines(r.PostFormValue("digests"))
	default:
		b, err := io.ReadAll(r.Body)
		if err != nil {
			jsonError(w, http.StatusRequestEntityTooLarge, "the digests are at most 4 MB")
			return
		}
		digests = lines(string(b))
	}
	if len(files) == 0 && len(digests) == 0 {
		jsonError(w, http.StatusBadRequest, "send saved messages (multipart field files) or SHA-256 digests (one per line, as sha256sum prints them)")
		return
	}
	info := s.labInfo(v)
	info.Proofs = v.Lab.Submit(files, digests)
	info.Card = v.Lab.Card()
	writeJSON(w, http.StatusOK, info)
}

// lines are the non-empty lines of s, at most 100.
func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() && len(out) < 100 {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}
