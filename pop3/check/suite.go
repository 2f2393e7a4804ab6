// Package check is pop3check's suite: checks of RFC 1939 and its
// extensions run against any POP3 server, each with its section, the
// word it rests on, and for a failure the exchange that showed it. The
// command (cmd/pop3check) and the page's server lab run it.
package check

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"time"
)

// A Target is the server under test and how to reach it.
type Target struct {
	Addr, Host  string // host:port, and the host alone (for TLS)
	User, Pass  string
	TLS         bool // pop3s: TLS from the first octet
	Insecure    bool // do not verify the certificate
	Timeout     time.Duration
	Destructive bool // checks may delete a message for good
	Fixture     bool // the maildrop is the known one (WriteFixture)
	// Slow is how long the autologout check idles (0: it is skipped);
	// User2 and Pass2 name a second account, for the checks that need one.
	Slow         time.Duration
	User2, Pass2 string
}

// ParseURL reads pop3://USER:PASS@HOST:PORT (or pop3s://, TLS from the
// first octet; the port defaults to 110 or 995), with a timeout of 10 s.
func ParseURL(raw string) (Target, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "pop3" && u.Scheme != "pop3s") || u.Host == "" || u.User == nil {
		return Target{}, fmt.Errorf("%q: want pop3://USER:PASS@HOST:PORT (or pop3s://)", raw)
	}
	t := Target{Host: u.Hostname(), User: u.User.Username(), TLS: u.Scheme == "pop3s", Timeout: 10 * time.Second}
	t.Pass, _ = u.User.Password()
	port := u.Port()
	if port == "" {
		port = map[bool]string{false: "110", true: "995"}[t.TLS]
	}
	t.Addr = net.JoinHostPort(t.Host, port)
	return t, nil
}

// A Result is one check's verdict.
type Result struct {
	ID       string   `json:"id"`
	Title    string   `json:"title"`
	RFC      string   `json:"rfc"`
	Word     string   `json:"word"`
	Status   string   `json:"status"`
	Detail   string   `json:"detail,omitempty"`
	Exchange []string `json:"exchange,omitempty"` // for a FAIL or WARN: what was sent and what came back
	Seconds  float64  `json:"seconds"`
}

// A suite runs the checks on one Target and keeps what they learn.
type suite struct {
	t        Target
	clients  []*client
	caps     map[string]bool
	loggedIn bool
	count    int
	size     int64
	sizes    map[int]int64
	uids     map[int]string
}

// dial opens a connection for the check under way.
func (s *suite) dial() (*client, error) {
	c, err := dial(s.t)
	if err == nil {
		s.clients = append(s.clients, c)
	}
	return c, err
}

func deadline(s *suite) time.Time { return time.Now().Add(s.t.Timeout) }

// Run runs every check in order, each on connections of its own.
func Run(ctx context.Context, t Target) []Result {
	var results []Result
	RunEach(ctx, t, func(r Result) { results = append(results, r) })
	return results
}

// RunEach is Run that hands each result to done as soon as it is known
// (the page shows the card as it fills).
func RunEach(ctx context.Context, t Target, done func(Result)) {
	s := &suite{t: t, caps: map[string]bool{}}
	for _, ch := range checks {
		if ctx.Err() != nil {
			return
		}
		start := time.Now()
		status, detail := ch.run(s)
		r := Result{ID: ch.id, Title: ch.title, RFC: ch.rfc, Word: ch.word, Status: status, Detail: detail,
			Seconds: time.Since(start).Seconds()}
		if status == Fail || status == Warn {
			for _, c := range s.clients {
				r.Exchange = append(r.Exchange, c.log...)
			}
		}
		for _, c := range s.clients {
			c.Close()
		}
		s.clients = nil
		done(r)
	}
}

// Count is how many checks Run runs.
func Count() int { return len(checks) }

// Fixture is the known maildrop's messages, LF line ends, as
// WriteFixture writes them.
func Fixture() []string {
	out := make([]string, len(fixtureMessages))
	for i, m := range fixtureMessages {
		out[i] = m.text(i)
	}
	return out
}
