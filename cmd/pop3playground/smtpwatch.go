// smtpwatch.go: what the SMTP edge sees of a client for the client lab
// (sessions.WireWatcher): whether it waited for the greeting on the lab
// port, and whether it waited for the replies RFC 2920 says it must.

package main

import (
	"bytes"
	"strings"
	"sync"
	"time"
)

// maxUnwaited bounds the lapses a connection remembers.
const maxUnwaited = 4

// A replyWatch follows the commands a client sends and the replies the
// server writes. With PIPELINING (after EHLO) a client may send commands
// in groups, but EHLO, DATA, QUIT, NOOP, VRFY, EXPN, STARTTLS and AUTH end
// a group: it reads their replies, and every reply before them, first
// (RFC 2920 §3.1); the message waits for 354. Without PIPELINING (before
// EHLO, or after HELO) every command waits for its reply (RFC 5321
// §4.3.2).
type replyWatch struct {
	mu        sync.Mutex
	esmtp     bool     // EHLO sent: PIPELINING in force (the server offers it)
	pending   int      // commands whose final reply is not written yet
	barrier   string   // the command whose reply the client must read first
	content   bool     // the message is being sent (354 written, "." not yet)
	in        lineHead // the client's lines: their first 16 octets
	out       lineHead // the server's: their first 4 (the code and the separator)
	unwaited  []string
	verbs     []string // the verbs of the pending commands, the first 16
	outOfTurn []string // commands refused as out of turn (outOfTurn)
}

// client notes octets the client sent.
func (w *replyWatch) client(p []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.in.feed(p, func(head []byte, n int) { w.clientLine(strings.TrimRight(string(head), "\r"), n) })
}

// A lineHead follows the lines of a byte stream across writes, keeping
// the first max octets of the line being read and its length.
type lineHead struct {
	max  int
	head []byte
	n    int
}

// feed calls line for each line p completes, with its start and length
// (the line end left out).
func (h *lineHead) feed(p []byte, line func(head []byte, n int)) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		part := p
		if i >= 0 {
			part = p[:i]
		}
		if k := h.max - len(h.head); k > 0 {
			h.head = append(h.head, part[:min(k, len(part))]...)
		}
		h.n += len(part)
		if i < 0 {
			return
		}
		line(h.head, h.n)
		h.head, h.n = h.head[:0], 0
		p = p[i+1:]
	}
}

func (w *replyWatch) clientLine(start string, n int) {
	if w.content {
		if start == "." && n <= 2 {
			w.content = false
			w.pending++ // the message's own reply
			if len(w.verbs) < 16 {
				w.verbs = append(w.verbs, "the message")
			}
		}
		return
	}
	verb, _, _ := strings.Cut(strings.ToUpper(start), " ")
	if w.barrier != "" && len(w.unwaited) < maxUnwaited {
		what := verb + " before the reply to " + w.barrier
		switch w.barrier {
		case "DATA":
			what = "the message before the 354 reply to DATA"
		case greeting:
			what = verb + " before the greeting"
		}
		w.unwaited = append(w.unwaited, what)
	}
	w.pending++
	if len(w.verbs) < 16 {
		w.verbs = append(w.verbs, verb)
	}
	switch verb {
	case "EHLO":
		w.esmtp = true
	case "HELO", "STARTTLS":
		w.esmtp = false
	}
	switch verb {
	case "EHLO", "HELO", "DATA", "QUIT", "NOOP", "VRFY", "EXPN", "STARTTLS", "AUTH":
		w.barrier = verb
	default:
		if !w.esmtp {
			w.barrier = verb
		}
	}
}

// server notes octets the server wrote: each final reply line ("250 ",
// not "250-") answers one command.
func (w *replyWatch) server(p []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.out.feed(p, func(r []byte, _ int) {
		if len(r) < 4 || r[3] != ' ' {
			return // a line of a multi-line reply, or not a reply
		}
		w.pending = max(0, w.pending-1)
		verb := ""
		if len(w.verbs) > 0 && w.barrier != greeting {
			verb, w.verbs = w.verbs[0], w.verbs[1:]
		}
		if outOfTurn(string(r[:3]), verb) && len(w.outOfTurn) < maxUnwaited {
			w.outOfTurn = append(w.outOfTurn, verb)
		}
		if string(r[:3]) == "354" {
			w.content = true
		}
		if w.pending == 0 {
			w.barrier = ""
		}
	})
}

// greeting is the barrier of a new connection: nothing before the 220.
const greeting = "greeting"

func newReplyWatch() replyWatch {
	return replyWatch{pending: 1, barrier: greeting, in: lineHead{max: 16}, out: lineHead{max: 4}}
}

// outOfTurn reports whether a reply refuses a command as out of turn:
// 503 (RFC 5321 §4.1.4), or 502 to a transaction command, as go-smtp
// answers RCPT before MAIL.
func outOfTurn(code, verb string) bool {
	switch verb {
	case "":
		return false
	case "MAIL", "RCPT", "DATA", "BDAT":
		return code == "503" || code == "502"
	}
	return code == "503"
}

// lapses are the commands sent before a reply the client had to wait for.
func (w *replyWatch) lapses() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.unwaited...)
}

// refusedOutOfTurn are the commands answered 503, bad sequence.
func (w *replyWatch) refusedOutOfTurn() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.outOfTurn...)
}

// holdGreeting waits out the lab port's delay before the greeting,
// noting a client that sends something meanwhile.
func (c *smtpConn) holdGreeting() {
	end := c.opened.Add(c.hold)
	c.Conn.SetReadDeadline(end)
	if _, err := c.r.Peek(1); err == nil {
		c.spokeFirst.Store(true)
		time.Sleep(time.Until(end))
	}
	c.Conn.SetReadDeadline(time.Time{})
}

// The client lab's questions (sessions.WireWatcher).
func (c *smtpConn) GreetingHeld() bool  { return c.hold > 0 }
func (c *smtpConn) SpokeFirst() bool    { return c.spokeFirst.Load() }
func (c *smtpConn) Unwaited() []string  { return c.watch.lapses() }
func (c *smtpConn) OutOfTurn() []string { return c.watch.refusedOutOfTurn() }
