package check

import (
	"fmt"
	"strconv"
	"strings"
)

// The checks of a logged-in session, on the messages of the maildrop.

// listing reads LIST or UIDL without an argument: message number → value.
func listing(c *client, verb string) (map[int]string, []int, string, error) {
	st, raw, _, err := c.multi(verb)
	if err != nil {
		return nil, nil, st, err
	}
	if !ok(st) {
		return nil, nil, st, nil
	}
	m := map[int]string{}
	var order []int
	for _, l := range raw {
		f := strings.Fields(l)
		n, err := strconv.Atoi(f[0])
		if len(f) != 2 || err != nil {
			return nil, nil, st, fmt.Errorf("a %s line is %q: want \"number value\"", verb, l)
		}
		m[n] = f[1]
		order = append(order, n)
	}
	return m, order, st, nil
}

// stat reads STAT's count and size: the numbers only, so that a server
// whose STAT has extra words fails stat-format alone.
func stat(c *client) (count int, size int64, status string) {
	status, _ = c.cmd("STAT")
	fmt.Sscanf(status, "+OK %d %d", &count, &size)
	return count, size, status
}

func needMessages(s *suite) (string, string, bool) {
	if !s.loggedIn {
		return Skip, "no login", false
	}
	if s.count == 0 {
		return Skip, "the maildrop is empty: put a message or two in it (pop3check fixture)", false
	}
	return "", "", true
}

func checkListSum(s *suite) (string, string) {
	if !s.loggedIn {
		return Skip, "no login"
	}
	c, err := s.session(true)
	if err != nil {
		return Fail, err.Error()
	}
	m, order, st, err := listing(c, "LIST")
	if err != nil || !ok(st) {
		return Fail, fmt.Sprintf("LIST got %q (%v)", st, err)
	}
	var sum int64
	s.sizes = map[int]int64{}
	for i, n := range order {
		if n != i+1 {
			return Fail, fmt.Sprintf("LIST line %d names message %d: messages are numbered from 1, in order", i+1, n)
		}
		size, err := strconv.ParseInt(m[n], 10, 64)
		if err != nil {
			return Fail, fmt.Sprintf("message %d's size is %q", n, m[n])
		}
		s.sizes[n] = size
		sum += size
	}
	if len(order) != s.count || sum != s.size {
		return Fail, fmt.Sprintf("LIST has %d messages of %d octets, STAT said %d of %d", len(order), sum, s.count, s.size)
	}
	return Pass, ""
}

func checkListOne(s *suite) (string, string) {
	if st, d, ok := needMessages(s); !ok {
		return st, d
	}
	c, err := s.session(true)
	if err != nil {
		return Fail, err.Error()
	}
	want := fmt.Sprintf("+OK 1 %d", s.sizes[1])
	st, err := c.cmd("LIST 1")
	if err != nil {
		return Fail, err.Error()
	}
	if st != want {
		return Fail, fmt.Sprintf("LIST 1 got %q, want %q (a single line: RFC 1939 §5)", st, want)
	}
	if next, err := c.cmd("NOOP"); err != nil || !ok(next) {
		return Fail, fmt.Sprintf("after LIST 1, NOOP got %q: LIST n has no body", next)
	}
	return Pass, ""
}

func checkListNoSuch(s *suite) (string, string) {
	if !s.loggedIn {
		return Skip, "no login"
	}
	return expectErr(s, true, fmt.Sprintf("LIST %d", s.count+1))
}

func checkRetrNoSuch(s *suite) (string, string) {
	if !s.loggedIn {
		return Skip, "no login"
	}
	return expectErr(s, true, fmt.Sprintf("RETR %d", s.count+1), "RETR 0")
}

// maxRetr bounds the messages retr-size retrieves.
const maxRetr = 20

func checkRetrSize(s *suite) (string, string) {
	if st, d, ok := needMessages(s); !ok {
		return st, d
	}
	c, err := s.session(true)
	if err != nil {
		return Fail, err.Error()
	}
	for n := 1; n <= min(s.count, maxRetr); n++ {
		st, raw, content, err := c.multi(fmt.Sprint("RETR ", n))
		if err != nil {
			return Fail, fmt.Sprintf("RETR %d: %v", n, err)
		}
		if !ok(st) {
			return Fail, fmt.Sprintf("RETR %d got %q", n, st)
		}
		if i, l, bad := unstuffed(raw); bad {
			return Fail, fmt.Sprintf("RETR %d: body line %d is %q on the wire: a line that starts with \".\" must get a second one (dot-stuffing, RFC 1939 §3), or a client takes \".\" alone for the end", n, i, truncateLine(l))
		}
		if int64(len(content)) != s.sizes[n] {
			return Warn, fmt.Sprintf("RETR %d sent %d octets (dot-stuffing undone), LIST said %d: a client that trusts LIST's size cuts or waits", n, len(content), s.sizes[n])
		}
	}
	return Pass, fmt.Sprintf("%d message(s) retrieved", min(s.count, maxRetr))
}

func checkUIDL(s *suite) (string, string) {
	if !s.loggedIn {
		return Skip, "no login"
	}
	c, err := s.session(true)
	if err != nil {
		return Fail, err.Error()
	}
	m, order, st, err := listing(c, "UIDL")
	if err != nil {
		return Fail, err.Error()
	}
	if isErr(st) {
		return Skip, "the server has no UIDL (optional, RFC 1939 §7)"
	}
	seen := map[string]int{}
	for _, n := range order {
		id := m[n]
		if len(id) < 1 || len(id) > 70 || strings.IndexFunc(id, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0 {
			return Fail, fmt.Sprintf("message %d's unique-id %q: 1 to 70 characters from 0x21 to 0x7E", n, id)
		}
		if k, dup := seen[id]; dup {
			return Fail, fmt.Sprintf("messages %d and %d have the same unique-id %q", k, n, id)
		}
		seen[id] = n
	}
	s.uids = m
	return Pass, ""
}

func checkUIDLOne(s *suite) (string, string) {
	if s.uids == nil || s.count == 0 {
		return Skip, "no UIDL, or no message"
	}
	c, err := s.session(true)
	if err != nil {
		return Fail, err.Error()
	}
	m, _, _, err := listing(c, "UIDL")
	if err != nil {
		return Fail, err.Error()
	}
	want := "+OK 1 " + m[1]
	if st, err := c.cmd("UIDL 1"); err != nil || st != want {
		return Fail, fmt.Sprintf("UIDL 1 got %q, want %q, as in the listing", st, want)
	}
	return Pass, ""
}

func checkUIDLStable(s *suite) (string, string) {
	if s.uids == nil {
		return Skip, "no UIDL"
	}
	c, err := s.session(true)
	if err != nil {
		return Fail, err.Error()
	}
	m, _, _, err := listing(c, "UIDL")
	if err != nil {
		return Fail, err.Error()
	}
	for n, id := range s.uids {
		if m[n] != id {
			return Fail, fmt.Sprintf("message %d's unique-id was %q, now %q", n, id, m[n])
		}
	}
	return Pass, ""
}

func checkTop(s *suite) (string, string) {
	if st, d, ok := needMessages(s); !ok {
		return st, d
	}
	c, err := s.session(true)
	if err != nil {
		return Fail, err.Error()
	}
	st, raw, _, err := c.multi("TOP 1 0")
	switch {
	case err != nil:
		return Fail, err.Error()
	case isErr(st):
		return Skip, "the server has no TOP (optional, RFC 1939 §7)"
	case len(raw) == 0 || raw[len(raw)-1] != "":
		return Fail, "TOP 1 0 did not end with the blank line that ends the header"
	}
	return Pass, ""
}

func checkDeleMarks(s *suite) (string, string) {
	if st, d, ok := needMessages(s); !ok {
		return st, d
	}
	c, err := s.session(true)
	if err != nil {
		return Fail, err.Error()
	}
	defer c.cmd("RSET")
	if st, err := c.cmd("DELE 1"); err != nil || !ok(st) {
		return Fail, fmt.Sprintf("DELE 1 got %q", st)
	}
	if n, size, st := stat(c); n != s.count-1 || size != s.size-s.sizes[1] {
		return Fail, fmt.Sprintf("after DELE 1, STAT got %q, want %d messages of %d octets: marked messages are not counted", st, s.count-1, s.size-s.sizes[1])
	}
	for _, cmd := range []string{"LIST 1", "RETR 1", "DELE 1"} {
		if st, _ := c.cmd(cmd); !isErr(st) {
			return Fail, fmt.Sprintf("after DELE 1, %s got %q, want -ERR", cmd, st)
		}
	}
	return Pass, ""
}

func checkRset(s *suite) (string, string) {
	if st, d, ok := needMessages(s); !ok {
		return st, d
	}
	c, err := s.session(true)
	if err != nil {
		return Fail, err.Error()
	}
	c.cmd("DELE 1")
	if st, _ := c.cmd("RSET"); !ok(st) {
		return Fail, "RSET got " + strconv.Quote(st)
	}
	if n, size, st := stat(c); n != s.count || size != s.size {
		return Fail, fmt.Sprintf("after RSET, STAT got %q, want %d messages of %d octets", st, s.count, s.size)
	}
	return Pass, ""
}

func checkNoop(s *suite) (string, string) { return expectOK(s, "NOOP") }
func checkCase(s *suite) (string, string) { return expectOK(s, "stat") }

// expectOK logs in and sends a command that must get +OK.
func expectOK(s *suite, cmd string) (string, string) {
	if !s.loggedIn {
		return Skip, "no login"
	}
	c, err := s.session(true)
	if err != nil {
		return Fail, err.Error()
	}
	if st, _ := c.cmd(cmd); !ok(st) {
		return Fail, cmd + " got " + strconv.Quote(st)
	}
	return Pass, ""
}

func checkDroppedKeeps(s *suite) (string, string) {
	if st, d, ok := needMessages(s); !ok {
		return st, d
	}
	c, err := s.session(true)
	if err != nil {
		return Fail, err.Error()
	}
	count, size, _ := stat(c)
	c.cmd("DELE 1")
	c.Close() // no QUIT; session waits out a lock not yet released
	again, err := s.session(true)
	if err != nil {
		return Fail, "logging in again: " + err.Error()
	}
	if n, sz, st := stat(again); n != count || sz != size {
		return Fail, fmt.Sprintf("after a session marked message 1 and dropped, STAT got %q, want %d messages of %d octets: only QUIT deletes", st, count, size)
	}
	return Pass, ""
}

func checkLock(s *suite) (string, string) {
	if !s.loggedIn {
		return Skip, "no login"
	}
	first, err := s.session(true)
	if err != nil {
		return Fail, err.Error()
	}
	defer first.cmd("QUIT")
	second, err := s.dial()
	if err != nil {
		return Fail, err.Error()
	}
	err = second.login(s.t.User, s.t.Pass)
	if err == nil {
		return Warn, "a second session logged in while the first held the maildrop: RFC 1939 §8 wants an exclusive lock (some servers turn it off, e.g. Dovecot's pop3_lock_session = no)"
	}
	return Pass, ""
}

func checkOverlong(s *suite) (string, string) {
	return expectErr(s, false, "NOOP "+strings.Repeat("x", 600))
}

func checkPipelining(s *suite) (string, string) {
	if !s.caps["PIPELINING"] {
		return Skip, "PIPELINING is not in CAPA"
	}
	c, err := s.session(true)
	if err != nil {
		return Fail, err.Error()
	}
	c.note("C", "NOOP, STAT, NOOP in one write")
	if err := c.raw("NOOP\r\nSTAT\r\nNOOP\r\n"); err != nil {
		return Fail, err.Error()
	}
	for _, want := range []string{"+OK", "+OK ", "+OK"} {
		l, err := c.line()
		if err != nil || !strings.HasPrefix(l, want) {
			return Fail, fmt.Sprintf("got %q, want %q (%v)", l, want, err)
		}
	}
	return Pass, ""
}

func checkQuitUpdate(s *suite) (string, string) {
	if !s.t.Destructive {
		return Skip, "deletes a message: run with --destructive"
	}
	if st, d, ok := needMessages(s); !ok {
		return st, d
	}
	c, err := s.session(true)
	if err != nil {
		return Fail, err.Error()
	}
	count, size, _ := stat(c)
	var last int64
	if m, _, _, err := listing(c, "LIST"); err == nil {
		last, _ = strconv.ParseInt(m[count], 10, 64)
	}
	c.cmd(fmt.Sprint("DELE ", count))
	if st, _ := c.cmd("QUIT"); !ok(st) {
		return Fail, "QUIT got " + strconv.Quote(st)
	}
	// No pause here: RFC 1939 §6 has the deletions done before the +OK,
	// so the next session sees them at once.
	again, err := s.session(true)
	if err != nil {
		return Fail, err.Error()
	}
	if n, sz, st := stat(again); n != count-1 || sz != size-last {
		return Fail, fmt.Sprintf("after DELE %d and QUIT, STAT got %q, want %d messages of %d octets: QUIT from TRANSACTION removes the marked messages", count, st, count-1, size-last)
	}
	return Pass, ""
}

func truncateLine(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
