package main

import (
	"bufio"
	"context"
	"fmt"
	"strings"
)

// SMTP mode (-smtp): each session sends one message in lockstep, as a
// mail client or a student's script does (greeting, EHLO, MAIL, RCPT,
// DATA, QUIT), so that the playground's SMTP listener can be measured
// beside Postfix's smtp-sink or Mailpit in one run. A session counts as
// done when its message was accepted (250 after the data).

// smtpMessage is the message each session sends: a small text message.
const smtpMessage = "From: bench@example.org\r\nSubject: pop3bench\r\n\r\nA message from pop3bench.\r\n.\r\n"

func smtpSession(ctx context.Context, cfg *config, _ string) (*sessionStats, error) {
	nc, err := dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	c := &client{r: bufio.NewReaderSize(nc, 4<<10), w: bufio.NewWriter(nc), st: &sessionStats{}}
	if err := c.smtpReply("greeting", "220"); err != nil {
		return nil, err
	}
	for _, step := range []struct{ line, want string }{
		{"EHLO pop3bench", "250"},
		{"MAIL FROM:<" + cfg.from + ">", "250"},
		{"RCPT TO:<" + cfg.rcpt + ">", "250"},
		{"DATA", "354"},
	} {
		if err := c.send(step.line); err != nil {
			return nil, err
		}
		if err := c.smtpReply(step.line, step.want); err != nil {
			return nil, err
		}
	}
	if _, err := c.w.WriteString(smtpMessage); err != nil {
		return nil, err
	}
	if err := c.w.Flush(); err != nil {
		return nil, err
	}
	c.st.commands++
	if err := c.smtpReply("the message", "250"); err != nil {
		return nil, err
	}
	if err := c.send("QUIT"); err != nil {
		return nil, err
	}
	if err := c.smtpReply("QUIT", "221"); err != nil {
		return nil, err
	}
	return c.st, nil
}

func (c *client) send(line string) error {
	c.st.commands++
	c.w.WriteString(line)
	c.w.WriteString("\r\n")
	return c.w.Flush()
}

// smtpReply reads one reply, its continuation lines too, and checks its
// code.
func (c *client) smtpReply(what, want string) error {
	for {
		l, err := c.line()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if len(l) < 4 || l[3] != '-' {
			if !strings.HasPrefix(l, want) {
				return fmt.Errorf("%s: %q", what, l)
			}
			return nil
		}
	}
}
