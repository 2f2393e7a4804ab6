package pop3

import (
	"encoding/json"
	"strings"
	"time"
)

// traceRecord is one line of the --trace file.
type traceRecord struct {
	Time time.Time `json:"time"`
	Conn uint64    `json:"conn"`
	From string    `json:"from"` // "client" or "server"
	Line string    `json:"line"`
}

// maxTraceLine bounds one traced line; longer ones are cut.
const maxTraceLine = 1000

func (s *Server) trace(conn uint64, from, line string) {
	if len(line) > maxTraceLine {
		line = line[:maxTraceLine] + "…"
	}
	b, err := json.Marshal(traceRecord{Time: time.Now().UTC(), Conn: conn, From: from, Line: line})
	if err != nil {
		return
	}
	b = append(b, '\n')
	s.traceMu.Lock()
	defer s.traceMu.Unlock()
	s.Trace.Write(b)
}

func (c *conn) traceClient(line string) {
	if c.srv.Trace != nil {
		c.srv.trace(c.info.ID, "client", line)
	}
}

// traceServer is given every octet written to the client and traces it line
// by line.
func (c *conn) traceServer(p []byte) {
	for len(p) > 0 {
		i := 0
		for i < len(p) && p[i] != '\n' {
			i++
		}
		if len(c.out.partial) < maxTraceLine+1 {
			c.out.partial = append(c.out.partial, p[:min(i, maxTraceLine+1-len(c.out.partial))]...)
		}
		if i == len(p) {
			return
		}
		line := c.out.partial
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		c.srv.trace(c.info.ID, "server", string(line))
		c.out.partial = c.out.partial[:0]
		p = p[i+1:]
	}
}

// maskSecrets returns a command line fit for the trace: passwords, SASL
// initial responses and APOP digests are replaced by "****".
func maskSecrets(verb, arg, line string) string {
	switch verb {
	case "PASS":
		if arg != "" {
			if line[:len(verb)] == "PASS" {
				return "PASS ****" // as most clients send it: no allocation
			}
			return line[:len(verb)] + " ****"
		}
	case "AUTH", "APOP":
		// Keep the first argument (mechanism, or user name), mask the rest.
		first, rest, ok := strings.Cut(arg, " ")
		if ok && rest != "" {
			return line[:len(verb)] + " " + first + " ****"
		}
	}
	return line
}
