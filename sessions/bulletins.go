package sessions

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limits of the bulletin board: it is filled by the organiser, but nothing
// a server holds should grow without bound.
const (
	MaxBulletins    = 200
	MaxBulletinSize = 256 << 10
)

// A Bulletin is a message that every maildrop receives once, at its next
// login (UCB popper's -b): a file of --bulletins DIR or one posted from the
// admin page.
type Bulletin struct {
	ID      int // from 1, in the order they were added
	Subject string
	Source  string // the file, or "posted"
	Posted  time.Time
	// Withdrawn bulletins are delivered no more; copies already in a
	// maildrop stay there, as mail does.
	Withdrawn bool
	data      []byte // CRLF line ends; the header checked
}

// A Board holds the bulletins. Each account of each sandbox gets a copy of
// every bulletin added after it last looked, with To: naming the account and
// Status: headers removed; the organiser's files are only read.
type Board struct {
	mu     sync.Mutex
	list   []*Bulletin
	copies map[copyKey]*Message // the per-account copies, shared by sandboxes
}

type copyKey struct {
	id      int
	account string
}

// Bulletins returns the board's bulletins, oldest first.
func (b *Board) Bulletins() []*Bulletin {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.list)
}

// Len is how many bulletins the board holds, withdrawn ones left out.
func (b *Board) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, bul := range b.list {
		if !bul.Withdrawn {
			n++
		}
	}
	return n
}

// Withdraw stops delivering the bulletin with this ID; it reports
// whether there was one still on the board.
func (b *Board) Withdraw(id int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if id < 1 || id > len(b.list) || b.list[id-1].Withdrawn {
		return false
	}
	withdrawn := *b.list[id-1]
	withdrawn.Withdrawn = true
	b.list[id-1] = &withdrawn // readers of Bulletins keep their copy
	return true
}

var errBoardFull = fmt.Errorf("the board holds %d bulletins, as many as it may", MaxBulletins)

func (b *Board) add(raw []byte, source string) (*Bulletin, error) {
	if len(raw) > MaxBulletinSize {
		return nil, fmt.Errorf("%s: %d octets, more than a bulletin may have (%d)", source, len(raw), MaxBulletinSize)
	}
	m, err := newMessage(raw, source, 1)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.list) >= MaxBulletins {
		return nil, errBoardFull
	}
	bul := &Bulletin{ID: len(b.list) + 1, Subject: m.Subject, Source: source, Posted: time.Now(), data: m.data}
	b.list = append(b.list, bul)
	return bul, nil
}

// Post adds a bulletin written on the admin page: a plain-text message
// from from, with this subject and body.
func (b *Board) Post(from, subject, body string) (*Bulletin, error) {
	raw, err := composeBulletin(from, subject, body)
	if err != nil {
		return nil, err
	}
	return b.add(raw, "posted")
}

// composeBulletin is the message of a bulletin written on the admin page.
func composeBulletin(from, subject, body string) ([]byte, error) {
	subject = strings.TrimSpace(subject)
	switch {
	case subject == "":
		return nil, errors.New("a bulletin needs a subject")
	case strings.ContainsAny(subject, "\r\n") || strings.ContainsAny(from, "\r\n"):
		return nil, errors.New("the subject and sender are one line each")
	case strings.TrimSpace(body) == "":
		return nil, errors.New("a bulletin needs a text")
	}
	var msg bytes.Buffer
	now := time.Now()
	fmt.Fprintf(&msg, "Date: %s\r\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(&msg, "From: %s\r\n", from)
	fmt.Fprintf(&msg, "Subject: %s\r\n", subject)
	fmt.Fprintf(&msg, "Message-ID: <bulletin.%d@pop3playground>\r\n", now.UnixNano())
	msg.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	msg.WriteString(body)
	if msg.Len() > MaxBulletinSize {
		return nil, fmt.Errorf("posted: %d octets, more than a bulletin may have (%d)", msg.Len(), MaxBulletinSize)
	}
	return msg.Bytes(), nil
}

// PostBulletin posts a bulletin written on the admin page: on every
// replica, with a Store, in the same order, so that it has the same ID
// on each.
func (vs *Visitors) PostBulletin(from, subject, body string) (*Bulletin, error) {
	if vs.Store == nil {
		return vs.world.Bulletins.Post(from, subject, body)
	}
	raw, err := composeBulletin(from, subject, body)
	if err != nil {
		return nil, err
	}
	n := vs.world.Bulletins.Len()
	if err := vs.publishBoard(fact{Type: "post", Text: string(raw)}, func() bool { return vs.world.Bulletins.Len() > n }); err != nil {
		return nil, err
	}
	list := vs.world.Bulletins.Bulletins()
	if len(list) == 0 {
		return nil, errBoardFull
	}
	return list[len(list)-1], nil
}

// WithdrawBulletin withdraws a bulletin, on every replica.
func (vs *Visitors) WithdrawBulletin(id int) bool {
	if vs.Store == nil {
		return vs.world.Bulletins.Withdraw(id)
	}
	known := false
	for _, b := range vs.world.Bulletins.Bulletins() {
		known = known || b.ID == id && !b.Withdrawn
	}
	if !known {
		return false
	}
	withdrawn := func() bool {
		for _, b := range vs.world.Bulletins.Bulletins() {
			if b.ID == id {
				return b.Withdrawn
			}
		}
		return false
	}
	return vs.publishBoard(fact{Type: "withdraw", Step: id}, withdrawn) == nil
}

// LoadBulletins adds every file of dir (in natural order; dot files and
// folders skipped) as a bulletin. A file that is not a message is an error
// naming it and the line.
func (b *Board) LoadBulletins(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var names []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") && e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	slices.SortFunc(names, naturalCompare)
	for _, name := range names {
		data, err := fs.ReadFile(os.DirFS(dir), name)
		if err != nil {
			return err
		}
		if _, err := b.add(data, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

// deliver returns the copies for account of the bulletins after the one
// with ID seen, and the ID of the newest.
func (b *Board) deliver(account string, seen int) ([]*Message, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var msgs []*Message
	for _, bul := range b.list[min(seen, len(b.list)):] {
		if bul.Withdrawn {
			continue
		}
		msgs = append(msgs, b.copyLocked(bul, account))
	}
	return msgs, len(b.list)
}

// copyLocked is bul's copy for account, made once. b.mu is held.
func (b *Board) copyLocked(bul *Bulletin, account string) *Message {
	k := copyKey{bul.ID, account}
	m := b.copies[k]
	if m == nil {
		m = bulletinCopy(bul, account)
		sum := sha256.Sum256(bul.data)
		m.ref = fmt.Sprintf("b:%d:%x", bul.ID, sum[:4])
		if b.copies == nil {
			b.copies = make(map[copyKey]*Message)
		}
		b.copies[k] = m
	}
	return m
}

// byRef is the copy for account of the bulletin a ref names (a store's
// SandboxState.Extra), or nil if this board has no such bulletin: one
// posted on another replica.
func (b *Board) byRef(ref, account string) *Message {
	var id int
	var hash string
	if _, err := fmt.Sscanf(ref, "b:%d:%s", &id, &hash); err != nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if id < 1 || id > len(b.list) {
		return nil
	}
	if m := b.copyLocked(b.list[id-1], account); m.ref == ref {
		return m
	}
	return nil
}

// bulletinCopy is bul addressed to account: its To: fields replaced by one
// naming the account, its Status: fields (a mail client's read marks)
// removed, the body untouched and shared with every other copy: a
// bulletin costs its body once, and a header per account.
func bulletinCopy(bul *Bulletin, account string) *Message {
	head, body, _ := bytes.Cut(bul.data, []byte("\r\n\r\n"))
	var out bytes.Buffer
	out.Grow(len(head) + len(account) + 12)
	out.WriteString("To: " + account + "\r\n")
	drop := false
	for line := range bytes.SplitSeq(head, []byte("\r\n")) {
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			if !drop {
				out.Write(line)
				out.WriteString("\r\n")
			}
			continue
		}
		name, _, _ := bytes.Cut(line, []byte(":"))
		name = bytes.TrimSpace(name)
		drop = bytes.EqualFold(name, []byte("To")) || bytes.EqualFold(name, []byte("Status"))
		if !drop {
			out.Write(line)
			out.WriteString("\r\n")
		}
	}
	out.WriteString("\r\n")
	sum := sha256.Sum256(bul.data)
	return &Message{
		head:    slices.Clip(out.Bytes()),
		data:    body,
		uid:     "bulletin." + strconv.Itoa(bul.ID) + "." + hex.EncodeToString(sum[:6]),
		Subject: bul.Subject,
		Source:  bul.Source,
	}
}
