package sessions

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/pop3/limit"
)

// The client lab: a student points the POP3 client they wrote at their
// lab login (LabAccount.ID, password LabPassword), picks a scenario, and
// the lab grades what the server saw the client do. The lab login has a
// maildrop of its own (labMessages), made to trip the usual bugs, so that
// the lessons' guest maildrop is never in the way.
const (
	LabAccount  = "lab"
	LabPassword = "lab"
)

// A LabScenario is one way the lab's server behaves toward the student's
// client, and what a correct client does then.
type LabScenario struct {
	ID       string `json:"id"`
	Protocol string `json:"protocol"` // the client it tests: pop3 or smtp
	Title    string `json:"title"`
	Does     string `json:"does"` // what a correct client does
	Fault    bool   `json:"fault,omitempty"`

	shape    func(w io.Writer, first bool) io.Writer // replies after login; first: the lab's first login
	login    error                                   // the lab's first login is refused with this
	offers   func(verb string) bool                  // the commands left after login (pop3.Offerer); nil: all
	apopOnly bool                                    // logins other than APOP are refused
	replies  func(w io.Writer) io.Writer             // SMTP replies after RCPT TO the lab address (from the greeting on, on the lab port)

	// Before the login, on the lab port only (labport.go):
	preOffers func(verb string) bool // the POP3 commands offered; nil: all
	greet421  bool                   // the first SMTP connection gets 421 for a greeting
}

// LabScenarios are the client lab's POP3 scenarios. Only legal server
// behaviour, unless Fault says otherwise.
var LabScenarios = []LabScenario{
	{ID: "plain", Protocol: "pop3", Title: "A maildrop that tests framing",
		Does: "Retrieves every message and saves exactly the bytes sent: the stuffed dots removed (a line \".\" alone, \"..\", \".x\", a first body line that starts with a dot), a 998-octet line, 8-bit text and RFC 2047 headers, an empty body, a 1 MB message; then QUIT."},
	{ID: "one-byte", Protocol: "pop3", Title: "Replies one octet at a time",
		Does:  "Reads until CRLF, and until the line \".\", however the bytes are cut: here every octet of the first 64 KB of replies after the login arrives in a write of its own.",
		shape: func(w io.Writer, _ bool) io.Writer { return &oneByteWriter{w: w, left: 64 << 10} }},
	{ID: "split", Protocol: "pop3", Title: "Line ends and the final dot split across segments",
		Does: "Keeps reading when a read ends between CR and LF, or between a message's last line and its \".\" line: here, for the first 64 KB of replies after the login, every CRLF is cut in two, a pause between the halves.",
		shape: func(w io.Writer, _ bool) io.Writer {
			return &splitWriter{w: w, pause: 2 * time.Millisecond, left: 64 << 10}
		}},
	{ID: "pause", Protocol: "pop3", Title: "A pause in the middle of a message",
		Does:  "Waits for the rest of a reply rather than give up on a short read: here the first long reply after the login (a message) stops for two seconds half-way through.",
		shape: func(w io.Writer, _ bool) io.Writer { return &pauseWriter{w: w, pause: 2 * time.Second} }},
	{ID: "sys-temp", Protocol: "pop3", Title: "A temporary refusal, then success",
		Does:  "Reports -ERR [SYS/TEMP] as a temporary problem and logs in again later (RFC 3206 §3): the first login is refused, the next one works.",
		login: &pop3.LoginError{Code: "SYS/TEMP", Text: "the maildrop cannot be opened right now (the client lab's sys-temp scenario): try again in a moment"}},
	{ID: "in-use", Protocol: "pop3", Title: "The maildrop is locked, then free",
		Does:  "Tells \"maildrop in use\" from \"wrong password\" by the response code (RFC 2449 §8.1.1) and tries again later: the first login gets -ERR [IN-USE], the next one works.",
		login: pop3.ErrMaildropInUse},
	{ID: "auth-close", Protocol: "pop3", Title: "A wrong-password reply, and the connection closed",
		Does:  "Reports the failed login and stops, without hanging on a connection the server closed and without sending commands after the -ERR: the first login gets -ERR [AUTH] and the server hangs up.",
		login: &pop3.LoginError{Code: "AUTH", Text: "wrong user name or password (the client lab's auth-close scenario), closing the connection", Close: true}},
	{ID: "minimal", Protocol: "pop3", Title: "No TOP, UIDL or CAPA after the login",
		Does:   "Gets every message with RETR alone: after the login the server answers TOP, UIDL and CAPA as unknown commands (all three are optional, RFC 1939 §7, RFC 2449 §5), and a correct client falls back rather than repeat a refused command.",
		offers: func(verb string) bool { return verb != "TOP" && verb != "UIDL" && verb != "CAPA" }},
	{ID: "apop-only", Protocol: "pop3", Title: "APOP only",
		Does:     "Logs in with APOP, the MD5 digest of the greeting's timestamp and the password (RFC 1939 §7): here the lab login refuses USER/PASS and AUTH.",
		apopOnly: true},
	{ID: "rfc1939", Protocol: "pop3", Title: "A bare RFC 1939 server: no CAPA, STLS or AUTH",
		Does:      "Logs in with USER and PASS and gets every message without the extensions: on the lab port this server answers CAPA, STLS and AUTH as unknown commands, before the login and after it (RFC 2449 §5: a client whose CAPA gets -ERR assumes none of them; one set to require TLS stops and says so, which is right too).",
		offers:    func(verb string) bool { return verb != "CAPA" },
		preOffers: func(verb string) bool { return verb != "CAPA" && verb != "STLS" && verb != "AUTH" }},
	{ID: "drop-retr", Protocol: "pop3", Title: "The connection dropped in the middle of a message", Fault: true,
		Does: "Does not keep a message whose \".\" line never came, and reports the error; nothing is deleted, since the session never reached UPDATE (RFC 1939 §6). Only the lab's first session is cut, 4 KB into the replies after the login.",
		shape: func(w io.Writer, first bool) io.Writer {
			if !first {
				return w
			}
			return &dropWriter{w: w, left: 4 << 10}
		}},
}

// The SMTP scenarios, for a student's sending client.
func init() {
	LabScenarios = append(LabScenarios,
		LabScenario{ID: "smtp-plain", Protocol: "smtp", Title: "SMTP: send the test message",
			Does: "Sends the lab's test message to the lab address exactly as given: EHLO first, CRLF line ends, every line that starts with \".\" dot-stuffed (a line \".\" alone too), Date and From fields in the header (RFC 5321 §4.5.2, RFC 5322 §3.6)."},
		LabScenario{ID: "smtp-451", Protocol: "smtp", Title: "SMTP: a temporary refusal of the recipient",
			Does: "Treats 451 as \"not now\" and sends again later (RFC 5321 §4.2.1): the first RCPT TO the lab address is refused with 451 4.3.0, the next ones are taken."},
		LabScenario{ID: "smtp-slow", Protocol: "smtp", Title: "SMTP: slow replies",
			Does:    "Waits for each reply as long as RFC 5321 §4.5.3.2 allows (minutes, not seconds): every reply after the RCPT TO the lab address comes after a pause of three seconds.",
			replies: func(w io.Writer) io.Writer { return &delayWriter{w: w, delay: 3 * time.Second} }},
		LabScenario{ID: "smtp-split", Protocol: "smtp", Title: "SMTP: replies cut into pieces",
			Does:    "Reads a reply to its CRLF however it arrives: on the lab SMTP port every line of every reply, the greeting on, comes in three segments (the code, the text, the CRLF), a pause between them, so the multi-line 250- reply to EHLO arrives a piece at a time; on the public port, the replies after the RCPT TO the lab address.",
			replies: func(w io.Writer) io.Writer { return &pieceWriter{w: w, pause: 50 * time.Millisecond} }},
		LabScenario{ID: "smtp-421", Protocol: "smtp", Title: "SMTP: 421 for a greeting",
			Does:     "Takes 421 at the greeting as \"not now\" (RFC 5321 §3.8, §4.2.1): sends nothing more on that connection, which the server closes, and connects again later. On the lab SMTP port the first connection gets 421 4.3.2; the next ones are greeted.",
			greet421: true},
		LabScenario{ID: "smtp-552", Protocol: "smtp", Title: "SMTP: the message refused for good",
			Does: "Reports a 5xx reply to the user and does not send the same message again (RFC 5321 §4.2.1): the first message's DATA gets 552 5.3.4."},
	)
}

// LabScenarioByID returns the scenario, or nil.
func LabScenarioByID(id string) *LabScenario {
	for i := range LabScenarios {
		if LabScenarios[i].ID == id {
			return &LabScenarios[i]
		}
	}
	return nil
}

// maxLabSessions bounds the sessions a lab remembers; maxLabLines, the
// commands it remembers of each.
const (
	maxLabSessions = 20
	maxLabLines    = 200
)

// A Lab is a visitor's client lab: the scenario, its own maildrop (a
// sandbox of the lab world), and what the server saw of the client.
type Lab struct {
	mu       sync.Mutex
	scenario *LabScenario
	sandbox  *Sandbox
	logins   int // login attempts since the scenario was chosen
	sessions []*labSession
	proofs   []Proof

	// SMTP: the messages sent to the lab address, the RCPTs to it, and
	// whether one was refused (smtp-451) and one taken after that.
	mail                   []*labMail
	rcpts                  int
	rcptRefused, rcptLater bool

	// The lab ports: a 421 given for a greeting, and the most visitors
	// seen using the lab from this visitor's address at once (labport.go).
	gave421  bool
	sharedBy int

	// rec records a change of the lab as a fact of its visitor's stream
	// (fold.go): applied at once in one process, on every replica with a
	// store. nil (a Lab alone, in tests): applied at once.
	rec func(labFact)
}

// A labFact is a change of a lab, as its visitor's stream carries it.
type labFact struct {
	Op       string       `json:"op"` // choose, reset, login, port, shared, proof, rcpt, mail, 421
	Scenario string       `json:"sc,omitempty"`
	Conn     uint64       `json:"c,omitempty"`
	Before   []string     `json:"b,omitempty"`
	Wire     *wireFacts   `json:"w,omitempty"`
	Counted  bool         `json:"n,omitempty"`  // a login that counts (the password was right)
	Refused  bool         `json:"r,omitempty"`  // a login refused; a recipient refused (smtp-451)
	Shared   int          `json:"sh,omitempty"` // visitors using the lab from one address
	Proofs   []Proof      `json:"p,omitempty"`
	Mail     *labMailFact `json:"m,omitempty"`
}

// wireFacts are what a POP3 connection's ConnInfo says of its client.
type wireFacts struct {
	BareLF     bool     `json:"lf,omitempty"`
	Held       bool     `json:"held,omitempty"`
	SpokeFirst bool     `json:"early,omitempty"`
	Unwaited   []string `json:"unwaited,omitempty"`
}

func wireOf(c *pop3.ConnInfo) *wireFacts {
	if c == nil || !c.BareLF && c.GreetingHeld == 0 && !c.SpokeFirst && len(c.Unwaited) == 0 {
		return nil // nothing to say: nothing carried
	}
	return &wireFacts{BareLF: c.BareLF, Held: c.GreetingHeld > 0, SpokeFirst: c.SpokeFirst, Unwaited: c.Unwaited}
}

// record applies f, through the visitor's stream if there is one.
func (l *Lab) record(f labFact) {
	if l.rec != nil {
		l.rec(f)
		return
	}
	l.apply(f)
}

// apply folds a fact into the lab.
func (l *Lab) apply(f labFact) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch f.Op {
	case "choose":
		l.scenario = LabScenarioByID(f.Scenario)
		l.resetLocked()
	case "reset":
		l.resetLocked()
	case "login":
		s := l.sessionLocked(f.Conn)
		s.noteWire(f.Wire)
		if s.before == nil {
			s.before = slices.Clone(f.Before)
		}
		if f.Counted {
			l.logins++
		}
		if f.Refused {
			s.refuse()
		} else {
			s.loggedIn = true
		}
	case "port":
		s := l.sessionLocked(f.Conn)
		s.port, s.met = true, true
	case "shared":
		l.sharedBy = max(l.sharedBy, f.Shared)
	case "proof":
		l.proofs = append(l.proofs, f.Proofs...)
		if len(l.proofs) > maxProofs {
			l.proofs = l.proofs[len(l.proofs)-maxProofs:]
		}
	case "rcpt":
		l.rcpts++
		if f.Refused {
			l.rcptRefused = true
		} else {
			l.rcptLater = l.rcptLater || l.rcptRefused
		}
	case "mail":
		m := f.Mail.mail()
		if len(l.mail) == maxLabMail {
			l.mail = l.mail[1:]
		}
		l.mail = append(l.mail, m)
	case "421":
		l.gave421 = true
	}
}

// A labSession is what the server saw of one connection of the client.
type labSession struct {
	conn     uint64
	before   []string // the verbs sent before the login (pop3.ConnInfo.Before)
	port     bool     // on the lab port: the greeting was held back
	met      bool     // given to this lab from the greeting on: the scenario applied before the login
	early    bool     // the client spoke before the greeting
	unwaited []string // commands sent before the reply to the one before (pop3.ConnInfo.Unwaited)
	bareLF   bool
	loggedIn bool
	refused  bool   // a login was refused
	afterRef int    // len(lines) at the first refusal
	quit     bool   // the client sent QUIT
	end      string // why it closed; "" while open
	lines    []labLine
}

// A labLine is a command and what was answered.
type labLine struct {
	Command string
	Reply   string
	Kind    pop3.ReplyKind
	OK      bool
}

// Scenario is the scenario chosen ("plain" until one is).
func (l *Lab) Scenario() *LabScenario {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.scenario == nil {
		return &LabScenarios[0]
	}
	return l.scenario
}

// Choose starts a scenario afresh: a new maildrop, nothing seen yet.
func (l *Lab) Choose(id string) error {
	if LabScenarioByID(id) == nil {
		return fmt.Errorf("no scenario %q", id)
	}
	l.record(labFact{Op: "choose", Scenario: id})
	return nil
}

// Reset forgets what the lab saw and gives it a new maildrop, keeping
// the scenario (the sandbox's Reset).
func (l *Lab) Reset() { l.record(labFact{Op: "reset"}) }

func (l *Lab) resetLocked() {
	l.sandbox, l.logins, l.sessions, l.proofs = nil, 0, nil, nil
	l.mail, l.rcpts, l.rcptRefused, l.rcptLater = nil, 0, false, false
	l.gave421, l.sharedBy = false, 0
}

// login is a login to the lab on connection c: the scenario may refuse
// it, else the lab's maildrop opens, shaped by the scenario. What it
// decides is recorded as a fact (a replica that serves the lab's next
// login may be another).
func (l *Lab) login(c *pop3.ConnInfo, password, timestamp, digest string) (pop3.Maildrop, error) {
	f := labFact{Op: "login", Conn: c.ID, Before: c.Before, Wire: wireOf(c), Refused: true}
	md, err := l.decideLogin(c, password, timestamp, digest, &f)
	l.record(f)
	return md, err
}

func (l *Lab) decideLogin(c *pop3.ConnInfo, password, timestamp, digest string, f *labFact) (pop3.Maildrop, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ok := limit.Equal(password, LabPassword)
	if digest != "" {
		ok = pop3.CheckAPOP(timestamp, LabPassword, digest)
	}
	if !ok {
		return nil, pop3.ErrAuthFailed
	}
	sc := l.scenario
	if sc == nil {
		sc = &LabScenarios[0]
	}
	if sc.apopOnly && digest == "" {
		return nil, &pop3.LoginError{Code: "AUTH", Text: "this maildrop takes APOP only (the client lab's apop-only scenario): send APOP, the login and the MD5 of the greeting's timestamp and the password"}
	}
	f.Counted = true
	if l.logins == 0 && sc.login != nil {
		return nil, sc.login
	}
	if l.sandbox == nil {
		l.sandbox = NewSandbox(labWorld())
	}
	md, err := l.sandbox.Open(LabAccount)
	if err != nil {
		return nil, err
	}
	f.Refused = false
	if sc.offers != nil {
		return &offeringMaildrop{Maildrop: md, offers: sc.offers}, nil
	}
	if sc.shape == nil {
		return md, nil
	}
	first := true
	for _, o := range l.sessions {
		first = first && (o.conn == c.ID || !o.loggedIn)
	}
	return &shapedMaildrop{Maildrop: md, shape: func(w io.Writer) io.Writer { return sc.shape(w, first) }}, nil
}

// refuse notes a refused login, and where the commands after the first
// refusal begin.
func (s *labSession) refuse() {
	if !s.refused {
		s.refused, s.afterRef = true, len(s.lines)
	}
}

// noteWire keeps what the connection's ConnInfo said of the client.
func (s *labSession) noteWire(w *wireFacts) {
	if w == nil {
		return
	}
	s.bareLF = s.bareLF || w.BareLF
	s.port = s.port || w.Held
	s.early = s.early || w.SpokeFirst
	if len(w.Unwaited) > len(s.unwaited) {
		s.unwaited = slices.Clone(w.Unwaited)
	}
}

// portConn notes a connection to the lab port given to this lab before
// its login.
func (l *Lab) portConn(conn uint64) { l.record(labFact{Op: "port", Conn: conn}) }

// shared notes that n visitors used the lab from this one's address at
// once, so that the lab port could not tell whose a connection was.
func (l *Lab) shared(n int) {
	l.mu.Lock()
	known := l.sharedBy >= n
	l.mu.Unlock()
	if !known {
		l.record(labFact{Op: "shared", Shared: n})
	}
}

// sessionLocked is the record of connection conn, made if new.
func (l *Lab) sessionLocked(conn uint64) *labSession {
	for _, s := range l.sessions {
		if s.conn == conn {
			return s
		}
	}
	s := &labSession{conn: conn}
	if len(l.sessions) == maxLabSessions {
		l.sessions = l.sessions[1:]
	}
	l.sessions = append(l.sessions, s)
	return s
}

// recording reports whether conn is one of the lab's connections.
func (l *Lab) recording(conn uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.sessions {
		if s.conn == conn && s.end == "" {
			return true
		}
	}
	return false
}

// observe records an event of one of the lab's connections.
func (l *Lab) observe(e Event, w *wireFacts) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sessionLocked(e.Conn)
	s.noteWire(w)
	switch e.Kind {
	case EventCommand:
		if len(s.lines) < maxLabLines {
			s.lines = append(s.lines, labLine{Command: e.Line})
		}
		if strings.EqualFold(e.Verb, "QUIT") {
			s.quit = true
		}
	case EventReply:
		if n := len(s.lines); n > 0 && s.lines[n-1].Reply == "" {
			ln := &s.lines[n-1]
			ln.Reply, ln.Kind, ln.OK = e.Line, pop3.ReplyKind(e.Reply), e.OK
		}
	case EventClosed:
		s.end = e.Reason
	}
}

// shapedMaildrop is the lab's maildrop with the scenario's way of
// delivering replies (pop3.Shaper).
type shapedMaildrop struct {
	*Maildrop
	shape func(io.Writer) io.Writer
}

func (m *shapedMaildrop) Shape(w io.Writer) io.Writer { return m.shape(w) }

// offeringMaildrop is the lab's maildrop without some optional commands
// (pop3.Offerer).
type offeringMaildrop struct {
	*Maildrop
	offers func(string) bool
}

func (m *offeringMaildrop) Offers(verb string) bool { return m.offers(verb) }

// oneByteWriter writes every octet in a write of its own, for the first
// left octets.
type oneByteWriter struct {
	w    io.Writer
	left int
}

func (o *oneByteWriter) Write(p []byte) (int, error) {
	if o.left <= 0 {
		return o.w.Write(p)
	}
	o.left -= len(p)
	for i := range p {
		if _, err := o.w.Write(p[i : i+1]); err != nil {
			return i, err
		}
	}
	return len(p), nil
}

// splitWriter cuts each write between CR and LF, pausing at each cut so
// that the parts travel apart (the final "." line of a body among them),
// for the first left octets.
type splitWriter struct {
	w     io.Writer
	pause time.Duration
	left  int // octets still to split
}

func (s *splitWriter) Write(p []byte) (int, error) {
	if s.left <= 0 {
		return s.w.Write(p)
	}
	s.left -= len(p)
	n := 0
	for len(p) > 0 {
		cut := len(p)
		if i := strings.Index(string(p), "\r\n"); i >= 0 {
			cut = i + 1 // after the CR
		}
		k, err := s.w.Write(p[:cut])
		n += k
		if err != nil {
			return n, err
		}
		p = p[cut:]
		if len(p) > 0 {
			time.Sleep(s.pause)
		}
	}
	return n, nil
}

// pauseWriter stops for a while half-way through the first write of at
// least 1 KB.
type pauseWriter struct {
	w      io.Writer
	pause  time.Duration
	paused bool
}

func (pw *pauseWriter) Write(p []byte) (int, error) {
	if pw.paused || len(p) < 1<<10 {
		return pw.w.Write(p)
	}
	pw.paused = true
	half := len(p) / 2
	n, err := pw.w.Write(p[:half])
	if err != nil {
		return n, err
	}
	time.Sleep(pw.pause)
	k, err := pw.w.Write(p[half:])
	return n + k, err
}

// delayWriter waits before each write.
type delayWriter struct {
	w     io.Writer
	delay time.Duration
}

func (d *delayWriter) Write(p []byte) (int, error) {
	time.Sleep(d.delay)
	return d.w.Write(p)
}

// pieceWriter writes each line of a reply in three pieces: its first
// three octets (the code), the rest of the line, and the CRLF, with a
// pause between every two, so that the lines of a multi-line reply
// travel apart too.
type pieceWriter struct {
	w     io.Writer
	pause time.Duration
}

func (pw *pieceWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		line := p
		if i := bytes.Index(p, []byte("\r\n")); i >= 0 {
			line = p[:i+2]
		}
		p = p[len(line):]
		code := min(3, len(line))
		text := max(code, len(line)-2)
		for _, part := range [][]byte{line[:code], line[code:text], line[text:]} {
			if len(part) == 0 {
				continue
			}
			if n > 0 {
				time.Sleep(pw.pause)
			}
			k, err := pw.w.Write(part)
			n += k
			if err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// dropWriter lets left octets through and then fails, which ends the
// session as if the network had dropped it.
type dropWriter struct {
	w    io.Writer
	left int
}

var errDropped = errors.New("the client lab's drop-retr scenario cut the connection")

func (d *dropWriter) Write(p []byte) (int, error) {
	if d.left <= 0 {
		return 0, errDropped
	}
	if len(p) > d.left {
		n, _ := d.w.Write(p[:d.left])
		d.left = 0
		return n, errDropped
	}
	d.left -= len(p)
	return d.w.Write(p)
}
