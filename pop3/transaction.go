package pop3

import (
	"fmt"
	"io"
	"strconv"
)

// stat counts the messages not marked for deletion and their octets.
func (c *conn) stat() (count int, size int64) {
	return c.count - c.marks.n, c.size - c.marks.octet
}

func (c *conn) handleCapa(arg string) error {
	if err := noArgs("CAPA", arg); err != nil {
		return err
	}
	c.ok("capability list follows")
	for _, cmd := range capaAfter {
		if c.offers(cmd) {
			c.writeLine(cmd.capa)
		}
	}
	for _, capa := range protocolCapas {
		c.writeLine(capa)
	}
	c.pipelining = true
	if c.state == stateAuthorization {
		for _, cmd := range capaBefore {
			if c.offers(cmd) {
				c.writeLine(cmd.capa)
			}
		}
	}
	if c.srv.Implementation != "" {
		c.writeLine("IMPLEMENTATION " + c.srv.Implementation)
	}
	c.writeLine(".")
	return nil
}

func (c *conn) handleQuit(arg string) error {
	if err := noArgs("QUIT", arg); err != nil {
		return err
	}
	c.closing = true
	c.end = "quit"
	if c.state == stateAuthorization {
		c.ok("signing off")
		return nil
	}
	// RFC 1939 §6: QUIT from TRANSACTION enters UPDATE, which removes the
	// marked messages; the +OK goes out only after they are gone.
	c.state = stateUpdate
	c.emit(Event{Kind: EventState, State: stateUpdate.String(), User: c.user})
	var marked []int
	if c.marks.n > 0 {
		marked = c.marks.list()
	}
	var err error
	if len(marked) > 0 {
		err = c.md.Delete(marked)
	}
	if cerr := c.md.Close(); cerr != nil {
		c.srv.Logger.Error("pop3: releasing maildrop", "conn", c.info.ID, "user", c.logUser(c.user), "err", cerr)
	}
	c.md = nil
	if err != nil {
		c.emit(Event{Kind: EventLockReleased, User: c.user})
		c.srv.Logger.Error("pop3: removing messages", "conn", c.info.ID, "user", c.logUser(c.user), "err", err)
		return errorf(KindSysTemp, "some messages marked for deletion were not removed")
	}
	c.removed = len(marked)
	nums := make([]int, len(marked))
	for k, i := range marked {
		nums[k] = i + 1
	}
	c.emit(Event{Kind: EventUpdate, User: c.user, Deleted: nums})
	c.emit(Event{Kind: EventLockReleased, User: c.user})
	b := appendPlural(c.status("+OK signing off: "), len(marked), "message")
	if left := c.count - len(marked); left == 0 {
		b = append(b, " deleted, maildrop empty"...)
	} else {
		b = append(b, " deleted, "...)
		b = strconv.AppendInt(b, int64(left), 10)
		b = append(b, " left"...)
	}
	c.send(c.appendNote(b))
	return nil
}

func (c *conn) handleStat(arg string) error {
	if err := noArgs("STAT", arg); err != nil {
		return err
	}
	// RFC 1939 §5: exactly "+OK count size", marked messages not counted.
	count, size := c.stat()
	c.said = said{count: count, octets: size}
	b := strconv.AppendInt(c.status("+OK "), int64(count), 10)
	b = append(b, ' ')
	c.send(strconv.AppendInt(b, size, 10))
	return nil
}

// handleList and handleUIDL share their shape: a scan listing of every
// message not marked, or one line for one message.
func (c *conn) handleList(arg string) error { return c.scanListing("LIST", arg) }

func (c *conn) handleUIDL(arg string) error { return c.scanListing("UIDL", arg) }

// appendListing appends message i's line of a LIST or UIDL listing:
// "number size" or "number unique-id".
func (c *conn) appendListing(b []byte, verb string, i int) []byte {
	b = strconv.AppendInt(b, int64(i+1), 10)
	b = append(b, ' ')
	m := c.md.Message(i)
	if verb == "LIST" {
		return strconv.AppendInt(b, m.Size, 10)
	}
	return append(b, m.UID...)
}

func (c *conn) scanListing(verb, arg string) error {
	args, n := fields(arg)
	switch n {
	case 0:
		if verb == "LIST" {
			c.send(c.appendStat(c.status("+OK ")))
		} else {
			c.send(c.status("+OK unique-id listing follows"))
		}
		w := c.writer()
		line := c.lb[:0]
		for i := range c.count {
			if !c.marks.has(i) {
				line = append(c.appendListing(line[:0], verb, i), '\r', '\n')
				w.Write(line)
			}
		}
		c.lb = line[:0]
		c.writeLine(".")
		return nil
	case 1:
		i, err := c.parseMsgNum(verb, args[0])
		if err != nil {
			return err
		}
		m := c.md.Message(i)
		c.said = said{one: true, msg: i + 1, octets: m.Size, uid: m.UID}
		c.send(c.appendListing(c.status("+OK "), verb, i))
		return nil
	default:
		return errorf(KindSyntax, "%s takes at most one message number, e.g. %s 1", verb, verb)
	}
}

func (c *conn) handleRetr(arg string) error {
	i, err := c.oneMessage("RETR", arg)
	if err != nil {
		return err
	}
	err = c.sendMessage(i, -1)
	if err == nil {
		c.retrieved++
	}
	return err
}

func (c *conn) handleTop(arg string) error {
	args, n := fields(arg)
	if n != 2 {
		return errorf(KindMsgArg, "TOP needs a message number and a number of body lines, e.g. TOP 1 10")
	}
	i, err := c.parseMsgNum("TOP", args[0])
	if err != nil {
		return err
	}
	lines, ok := parseNumber(args[1])
	if !ok {
		return errorf(KindSyntax, "%s is not a number of lines; e.g. TOP %d 0 for the header alone", quoteArg(args[1]), i+1)
	}
	return c.sendMessage(i, lines)
}

// sendMessage sends message i as a multi-line reply: all of it (RETR,
// top < 0) or its header and top lines of its body (TOP).
func (c *conn) sendMessage(i, top int) error {
	r, err := c.md.Open(i)
	if err != nil {
		c.srv.Logger.Error("pop3: opening message", "conn", c.info.ID, "user", c.logUser(c.user), "msg", i+1, "err", err)
		return errorf(KindSysTemp, "cannot read message %d right now; try again later", i+1)
	}
	defer r.Close()
	if top < 0 {
		size := c.md.Message(i).Size
		c.said = said{msg: i + 1, octets: size}
		b := strconv.AppendInt(c.status("+OK "), size, 10)
		c.send(append(b, " octets"...))
	} else {
		c.send(c.status("+OK top of message follows"))
	}
	c.dw = dotWriter{w: c.writer()}
	if top < 0 {
		_, err = io.Copy(&c.dw, r)
	} else {
		err = copyTop(&c.dw, r, top)
	}
	if err != nil {
		// The +OK is out: a broken body cannot be followed by -ERR.
		if c.out.err == nil {
			c.srv.Logger.Error("pop3: reading message", "conn", c.info.ID, "user", c.logUser(c.user), "msg", i+1, "err", err)
		}
		return &connError{err}
	}
	if err := c.dw.Close(); err != nil {
		return &connError{err}
	}
	return nil
}

func (c *conn) handleDele(arg string) error {
	i, err := c.oneMessage("DELE", arg)
	if err != nil {
		return err
	}
	size := c.md.Message(i).Size
	c.marks.set(i, c.count, size)
	c.emit(Event{Kind: EventMarked, Msg: i + 1, Octets: size})
	b := strconv.AppendInt(c.status("+OK message "), int64(i+1), 10)
	c.send(append(b, " marked for deletion; it is removed when you QUIT"...))
	return nil
}

func (c *conn) handleRset(arg string) error {
	if err := noArgs("RSET", arg); err != nil {
		return err
	}
	c.marks.each(func(i int) { c.emit(Event{Kind: EventUnmarked, Msg: i + 1}) })
	c.marks.clear()
	c.send(c.appendStat(c.status("+OK maildrop has ")))
	return nil
}

func (c *conn) handleNoop(arg string) error {
	if err := noArgs("NOOP", arg); err != nil {
		return err
	}
	c.send(c.status("+OK"))
	return nil
}

func explainList(r replyState) string {
	if r.one {
		return fmt.Sprintf("LIST %d: message %d is %d octets as RETR sends it, CRLF line ends included, before dot-stuffing (RFC 1939 §5).", r.msg, r.msg, r.octets)
	}
	return "LIST: one line per message, \"number size\", ending with a line holding only \".\"; marked messages are left out (RFC 1939 §5)."
}

func explainUIDL(r replyState) string {
	if r.one {
		return fmt.Sprintf("UIDL %d: the unique-id %s stays the same across sessions, so a client can tell which messages it has already seen (RFC 1939 §7).", r.msg, r.uid)
	}
	return "UIDL: \"number unique-id\" for every message; a client that leaves mail on the server compares these to download only new messages (RFC 1939 §7)."
}

func explainQuit(r replyState) string {
	if r.state != stateUpdate {
		return "QUIT before logging in ends the session; there was no maildrop to update (RFC 1939 §4)."
	}
	deleted := "No messages were marked, so none were removed."
	if r.removed > 0 {
		deleted = fmt.Sprintf("Removed: %s.", plural(r.removed, "message"))
	}
	return "QUIT from TRANSACTION entered the UPDATE state: the marked messages were removed and the lock released before this +OK (RFC 1939 §6). " + deleted
}

// oneMessage parses the argument of a command that takes one message
// number (RETR, DELE) into a message index.
func (c *conn) oneMessage(verb, arg string) (int, error) {
	args, n := fields(arg)
	if n != 1 {
		return 0, errorf(KindMsgArg, "%s needs a message number, e.g. %s 1", verb, verb)
	}
	return c.parseMsgNum(verb, args[0])
}
