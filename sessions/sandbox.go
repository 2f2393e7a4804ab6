package sessions

import (
	"io"
	"slices"
	"sync"
	"time"

	"github.com/pop3playground/pop3playground/pop3"
)

// A Sandbox is a private copy of the world, as a copy-on-write view: an
// account's message list is shared with the world until a QUIT deletes from
// it, and the messages themselves are always shared. Making one costs
// nothing; deleting copies one slice of pointers (DESIGN §4).
type Sandbox struct {
	world *World

	mu      sync.Mutex
	changed map[string][]*Message // accounts whose list differs from the world
	locked  map[string]bool       // maildrops held by a session
	gen     uint64                // bumped by Reset
	fresh   time.Time             // when it was made or last reset
	seen    map[string]int        // the newest bulletin each account has had
	// delivered counts the messages delivered by SMTP since the sandbox
	// was made or reset (Delivery.MaxDelivered).
	delivered int
}

// NewSandbox returns a pristine sandbox of w.
func NewSandbox(w *World) *Sandbox {
	// The maps are made on first use: an idle visitor's sandbox is a few
	// words (DESIGN §10).
	return &Sandbox{world: w, fresh: time.Now()}
}

// Fresh is when the sandbox was made or last reset.
func (sb *Sandbox) Fresh() time.Time {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.fresh
}

// InUse reports whether a session holds one of the sandbox's maildrops.
func (sb *Sandbox) InUse() bool {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return len(sb.locked) > 0
}

// Reset makes the sandbox as a new visitor's: the world's messages, and
// the bulletins posted so far at the next login. A session holding a
// maildrop keeps its lock and its view; what it deletes at QUIT no longer
// applies.
func (sb *Sandbox) Reset() {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	clear(sb.changed)
	clear(sb.seen)
	sb.delivered = 0
	sb.gen++
	sb.fresh = time.Now()
}

// setChangedLocked gives an account a list of its own in the sandbox.
func (sb *Sandbox) setChangedLocked(account string, msgs []*Message) {
	if sb.changed == nil {
		sb.changed = make(map[string][]*Message)
	}
	sb.changed[account] = msgs
}

// Messages returns the current message list of an account in the sandbox.
func (sb *Sandbox) Messages(account string) []*Message {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.messagesLocked(account)
}

func (sb *Sandbox) messagesLocked(account string) []*Message {
	if msgs, ok := sb.changed[account]; ok {
		return msgs
	}
	if a := sb.world.Account(account); a != nil {
		return a.Messages
	}
	return nil
}

// Open takes the exclusive lock on an account's maildrop (RFC 1939 §8) and
// returns it. It returns pop3.ErrMaildropInUse when a session holds it.
func (sb *Sandbox) Open(account string) (*Maildrop, error) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.locked[account] {
		return nil, pop3.ErrMaildropInUse
	}
	if sb.locked == nil {
		sb.locked = make(map[string]bool)
	}
	sb.locked[account] = true
	// Bulletins arrive at login, each once: a reset does not bring back
	// the ones already delivered.
	if msgs, newest := sb.world.Bulletins.deliver(account, sb.seen[account]); newest > sb.seen[account] {
		if sb.seen == nil {
			sb.seen = make(map[string]int)
		}
		sb.seen[account] = newest
		if len(msgs) > 0 {
			sb.setChangedLocked(account, append(slices.Clip(sb.messagesLocked(account)), msgs...))
		}
	}
	return &Maildrop{sb: sb, account: account, msgs: sb.messagesLocked(account), gen: sb.gen}, nil
}

// A Maildrop is one account of a sandbox, locked for one POP3 session.
type Maildrop struct {
	sb      *Sandbox
	account string
	msgs    []*Message // as they were when the lock was taken
	gen     uint64
	closed  bool
	note    string
	release func() // called once by Close, if set
}

var _ pop3.Maildrop = (*Maildrop)(nil)
var _ pop3.Noter = (*Maildrop)(nil)

// Messages implements pop3.Maildrop.
func (md *Maildrop) Messages() []pop3.MessageInfo {
	infos := make([]pop3.MessageInfo, len(md.msgs))
	for i, m := range md.msgs {
		infos[i] = pop3.MessageInfo{Size: m.Size(), UID: m.uid, Subject: m.Subject}
	}
	return infos
}

// Open implements pop3.Maildrop.
func (md *Maildrop) Open(i int) (io.ReadCloser, error) {
	return io.NopCloser(md.msgs[i].Reader()), nil
}

// Delete implements pop3.Maildrop: the account's list in the sandbox becomes
// a new slice without these messages; the world is untouched.
func (md *Maildrop) Delete(indexes []int) error {
	md.sb.mu.Lock()
	defer md.sb.mu.Unlock()
	if md.gen != md.sb.gen {
		return nil // the sandbox was reset meanwhile: nothing to delete from
	}
	kept := make([]*Message, 0, len(md.msgs))
	for i, m := range md.msgs {
		if !slices.Contains(indexes, i) {
			kept = append(kept, m)
		}
	}
	md.sb.setChangedLocked(md.account, kept)
	return nil
}

// Close implements pop3.Maildrop: it releases the lock.
func (md *Maildrop) Close() error {
	md.sb.mu.Lock()
	defer md.sb.mu.Unlock()
	if !md.closed {
		md.closed = true
		delete(md.sb.locked, md.account)
		if md.release != nil {
			md.release()
		}
	}
	return nil
}

// Note implements pop3.Noter.
func (md *Maildrop) Note() string { return md.note }
