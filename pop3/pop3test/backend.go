// Package pop3test holds what tests of a POP3 server need, for every
// package of this module alike (as net/http/httptest does for HTTP): an
// in-memory Backend with known maildrops, a line-level client that knows
// which replies have a body, and small helpers. It is for tests only.
package pop3test

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"golang.org/x/tools/txtar"

	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/pop3/limit"
)

//go:embed testdata/maildrops.txtar
var maildrops []byte

// A Backend serves maildrops from memory, with what RFC 1939 asks of a
// real one: one session at a time holds a maildrop (§8), and deletions
// made at QUIT last for the next sessions. Its zero value has no users.
type Backend struct {
	// Closed receives the user of every maildrop released, and Infos the
	// connection of every login; both are buffered, and a value is dropped
	// when a test does not read them.
	Closed chan string
	Infos  chan pop3.ConnInfo

	mu    sync.Mutex
	boxes map[string]*box
}

type box struct {
	pass   string
	msgs   []message
	locked bool
}

type message struct {
	text, uid, subject string
}

// NewBackend returns a Backend with the test maildrops
// (testdata/maildrops.txtar): guest (password visitor) with seven
// messages of the shapes a server meets (a 48 KB one, dot-led lines, 8-bit
// and encoded headers), and mrose (tanstaaf) with two.
func NewBackend() *Backend {
	b := newBackend()
	for _, f := range txtar.Parse(maildrops).Files {
		user, _, _ := strings.Cut(f.Name, "/")
		text := strings.ReplaceAll(string(f.Data), "\n", "\r\n")
		b.add(user, map[string]string{"guest": "visitor", "mrose": "tanstaaf"}[user], text)
	}
	return b
}

// NewLargeBackend returns a Backend whose guest (password visitor) has n
// small messages, "message 0" to "message n-1" by subject.
func NewLargeBackend(n int) *Backend {
	b := newBackend()
	for i := range n {
		b.add("guest", "visitor", fmt.Sprintf("From: a@example.org\r\nSubject: message %d\r\n\r\nHello %d.\r\n", i, i))
	}
	return b
}

func newBackend() *Backend {
	return &Backend{Closed: make(chan string, 16), Infos: make(chan pop3.ConnInfo, 16), boxes: map[string]*box{}}
}

func (b *Backend) add(user, pass, text string) {
	bx := b.boxes[user]
	if bx == nil {
		bx = &box{pass: pass}
		b.boxes[user] = bx
	}
	sum := sha256.Sum256([]byte(text))
	m := message{text: text, uid: hex.EncodeToString(sum[:12])}
	for line := range strings.SplitSeq(text, "\r\n") {
		if line == "" {
			break
		}
		if s, ok := strings.CutPrefix(line, "Subject: "); ok {
			m.subject = s
		}
	}
	bx.msgs = append(bx.msgs, m)
}

// Messages are user's messages now, as a new session would see them.
func (b *Backend) Messages(user string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	if bx := b.boxes[user]; bx != nil {
		for _, m := range bx.msgs {
			out = append(out, m.text)
		}
	}
	return out
}

// Login implements pop3.Backend.
func (b *Backend) Login(_ context.Context, c *pop3.ConnInfo, user, pass string) (pop3.Maildrop, error) {
	b.note(c)
	return b.open(user, func(bx *box) bool { return limit.Equal(pass, bx.pass) })
}

// LoginAPOP implements pop3.APOPBackend.
func (b *Backend) LoginAPOP(_ context.Context, c *pop3.ConnInfo, user, timestamp, digest string) (pop3.Maildrop, error) {
	b.note(c)
	return b.open(user, func(bx *box) bool { return pop3.CheckAPOP(timestamp, bx.pass, digest) })
}

func (b *Backend) note(c *pop3.ConnInfo) {
	if c == nil {
		return
	}
	select {
	case b.Infos <- *c:
	default:
	}
}

func (b *Backend) open(user string, ok func(*box) bool) (pop3.Maildrop, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	bx := b.boxes[user]
	switch {
	case bx == nil || !ok(bx):
		return nil, pop3.ErrAuthFailed
	case bx.locked:
		return nil, pop3.ErrMaildropInUse
	}
	bx.locked = true
	md := &maildrop{b: b, user: user, bx: bx, msgs: slices.Clone(bx.msgs)}
	for _, m := range md.msgs {
		md.size += int64(len(m.text))
	}
	return md, nil
}

// maildrop is a session's view of a box: its messages fixed at login.
type maildrop struct {
	b    *Backend
	user string
	bx   *box
	msgs []message
	size int64
}

func (m *maildrop) Stat() (int, int64) { return len(m.msgs), m.size }

func (m *maildrop) Message(i int) pop3.MessageInfo {
	msg := m.msgs[i]
	return pop3.MessageInfo{Size: int64(len(msg.text)), UID: msg.uid, Subject: msg.subject}
}

func (m *maildrop) Open(i int) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(m.msgs[i].text)), nil
}

func (m *maildrop) Delete(indexes []int) error {
	m.b.mu.Lock()
	defer m.b.mu.Unlock()
	gone := map[string]bool{}
	for _, i := range indexes {
		gone[m.msgs[i].uid] = true
	}
	m.bx.msgs = slices.DeleteFunc(m.bx.msgs, func(msg message) bool { return gone[msg.uid] })
	return nil
}

func (m *maildrop) Close() error {
	m.b.mu.Lock()
	m.bx.locked = false
	m.b.mu.Unlock()
	select {
	case m.b.Closed <- m.user:
	default:
	}
	return nil
}
