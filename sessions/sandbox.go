package sessions

import (
	"io"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/pop3playground/pop3playground/pop3"
)

// A Sandbox is a private copy of the world, as a copy-on-write view: an
// account's maildrop is the world's message list, shared, less the
// messages deleted in this sandbox, plus those that arrived in it. Making
// one costs nothing, and neither a login nor a deletion copies the world's
// list: what a sandbox keeps grows with what its visitor did, not with the
// size of the world (DESIGN §4).
type Sandbox struct {
	world *World

	mu     sync.Mutex
	views  map[string]view // accounts whose maildrop differs from the world's
	locked map[string]bool // maildrops held by a session
	gen    uint64          // bumped by Reset
	fresh  time.Time       // when it was made or last reset
	seen   map[string]int  // the newest bulletin each account has had
	// delivered counts the messages delivered by SMTP since the sandbox
	// was made or reset (Delivery.MaxDelivered).
	delivered int

	// store, if set, holds what the sandbox deleted and its locks, for
	// every replica (shared.go); id names the sandbox there (its
	// visitor's ID).
	store Store
	id    string
	log   *slog.Logger
	cache map[string]*Message // delivered messages by UID, resolved once
	// forget drops the sandbox's visitor here when the store has none.
	forget func()
}

// A view is one account's maildrop in a sandbox: the world's messages
// (base, shared) less those deleted here (gone), then the ones that
// arrived here (extra: bulletins, SMTP deliveries). A view never changes
// once made; a change makes a new one, so a session keeps the maildrop it
// logged in to (RFC 1939 §8).
type view struct {
	base  []*Message
	gone  []int32 // indexes into base, ascending
	extra []*Message
	size  int64 // octets of the messages in the view
}

func (v *view) len() int { return len(v.base) - len(v.gone) + len(v.extra) }

// baseIndex is the index in base of the view's i-th message, for i less
// than len(base)-len(gone): i plus the number of gone messages before it.
// gone[k]-k (the view index just after the k-th gap) never decreases, so
// a binary search finds them.
func (v *view) baseIndex(i int) int {
	return i + sort.Search(len(v.gone), func(k int) bool { return int(v.gone[k])-k > i })
}

// at is the view's i-th message.
func (v *view) at(i int) *Message {
	if n := len(v.base) - len(v.gone); i >= n {
		return v.extra[i-n]
	}
	return v.base[v.baseIndex(i)]
}

// with is v and then msgs.
func (v view) with(msgs ...*Message) view {
	v.extra = append(slices.Clip(v.extra), msgs...)
	for _, m := range msgs {
		v.size += m.Size()
	}
	return v
}

// without is v less its messages at these indexes. It costs what the
// sandbox has deleted and received, never the size of the world's list.
func (v *view) without(indexes []int) view {
	nv := view{base: v.base, size: v.size}
	n := len(v.base) - len(v.gone)
	var drop []int32 // into base
	dropExtra := make(map[int]bool)
	indexes = slices.Compact(slices.Sorted(slices.Values(indexes)))
	for _, i := range indexes {
		if i < 0 || i >= v.len() {
			continue
		}
		nv.size -= v.at(i).Size()
		if i >= n {
			dropExtra[i-n] = true
		} else {
			drop = append(drop, int32(v.baseIndex(i)))
		}
	}
	nv.gone = mergeSorted(v.gone, drop) // drop is ascending, and never in gone
	for k, m := range v.extra {
		if !dropExtra[k] {
			nv.extra = append(nv.extra, m)
		}
	}
	return nv
}

// mergeSorted merges two ascending lists into a new one.
func mergeSorted(a, b []int32) []int32 {
	out := make([]int32, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if a[0] <= b[0] {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
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
	if sb.store != nil {
		sb.resetShared()
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	clear(sb.views)
	clear(sb.seen)
	sb.delivered = 0
	sb.gen++
	sb.fresh = time.Now()
}

// viewLocked is an account's maildrop in the sandbox. sb.mu is held.
func (sb *Sandbox) viewLocked(account string) view {
	if v, ok := sb.views[account]; ok {
		return v
	}
	var v view
	if a := sb.world.Account(account); a != nil {
		v.base, v.size = a.Messages, a.size
	}
	return v
}

// setViewLocked gives an account a maildrop of its own in the sandbox.
func (sb *Sandbox) setViewLocked(account string, v view) {
	if sb.views == nil {
		sb.views = make(map[string]view)
	}
	sb.views[account] = v
}

// Messages lists an account's messages in the sandbox, as the next login
// sees them. It builds the list: a session uses its Maildrop instead.
func (sb *Sandbox) Messages(account string) []*Message {
	if sb.store != nil {
		sb.refresh(account)
	}
	sb.mu.Lock()
	v := sb.viewLocked(account)
	sb.mu.Unlock()
	msgs := make([]*Message, v.len())
	for i := range msgs {
		msgs[i] = v.at(i)
	}
	return msgs
}

// Open takes the exclusive lock on an account's maildrop (RFC 1939 §8) and
// returns it. It returns pop3.ErrMaildropInUse when a session holds it.
func (sb *Sandbox) Open(account string) (*Maildrop, error) {
	if sb.store != nil {
		return sb.openShared(account)
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.openLocked(account)
}

// openLocked takes the lock here and opens the maildrop. sb.mu is held.
func (sb *Sandbox) openLocked(account string) (*Maildrop, error) {
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
			sb.setViewLocked(account, sb.viewLocked(account).with(msgs...))
		}
	}
	return &Maildrop{sb: sb, account: account, view: sb.viewLocked(account), gen: sb.gen}, nil
}

// A Maildrop is one account of a sandbox, locked for one POP3 session.
type Maildrop struct {
	sb      *Sandbox
	account string
	view    view // as it was when the lock was taken
	gen     uint64
	owner   string        // of the lease in the store, if any
	renewed chan struct{} // closed by Close: the lease's renewal stops
	closed  bool
	note    string
	release func() // called once by Close, if set
	rd      messageReader
}

var _ pop3.Maildrop = (*Maildrop)(nil)
var _ pop3.Noter = (*Maildrop)(nil)

// Stat implements pop3.Maildrop.
func (md *Maildrop) Stat() (int, int64) { return md.view.len(), md.view.size }

// Message implements pop3.Maildrop.
func (md *Maildrop) Message(i int) pop3.MessageInfo {
	m := md.view.at(i)
	return pop3.MessageInfo{Size: m.Size(), UID: m.uid, Subject: m.Subject}
}

// Open implements pop3.Maildrop. The reader is the Maildrop's own, reused:
// a session reads one message at a time.
func (md *Maildrop) Open(i int) (io.ReadCloser, error) {
	m := md.view.at(i)
	md.rd = messageReader{parts: [2][]byte{m.head, m.data}}
	return &md.rd, nil
}

// messageReader reads a message's header copy and its shared content
// without copying either.
type messageReader struct {
	parts [2][]byte
}

func (r *messageReader) Read(p []byte) (int, error) {
	for len(r.parts[0]) == 0 {
		if len(r.parts[1]) == 0 {
			return 0, io.EOF
		}
		r.parts[0], r.parts[1] = r.parts[1], nil
	}
	n := copy(p, r.parts[0])
	r.parts[0] = r.parts[0][n:]
	return n, nil
}

// WriteTo hands the message to w in at most two writes (io.Copy uses it).
func (r *messageReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for k := range r.parts {
		if len(r.parts[k]) > 0 {
			n, err := w.Write(r.parts[k])
			total += int64(n)
			r.parts[k] = r.parts[k][n:]
			if err != nil {
				return total, err
			}
		}
	}
	return total, nil
}

func (r *messageReader) Close() error { return nil }

// Delete implements pop3.Maildrop: the account gets a new view without
// these messages; the world is untouched.
func (md *Maildrop) Delete(indexes []int) error {
	if md.owner != "" {
		if applied, err := md.deleteShared(indexes); err != nil || !applied {
			return err // refused, or the sandbox was reset meanwhile
		}
	}
	md.sb.mu.Lock()
	defer md.sb.mu.Unlock()
	if md.owner == "" && md.gen != md.sb.gen {
		return nil // the sandbox was reset meanwhile: nothing to delete from
	}
	// What arrived since this session logged in (SMTP) stays: the new
	// view is the current one less the messages this session saw.
	cur := md.sb.viewLocked(md.account)
	nv := md.view.without(indexes)
	if len(cur.extra) > len(md.view.extra) {
		nv = nv.with(cur.extra[len(md.view.extra):]...)
	}
	md.sb.setViewLocked(md.account, nv)
	return nil
}

// Close implements pop3.Maildrop: it releases the lock.
func (md *Maildrop) Close() error {
	md.sb.mu.Lock()
	first := !md.closed
	if first {
		md.closed = true
		delete(md.sb.locked, md.account)
		if md.release != nil {
			md.release()
		}
	}
	md.sb.mu.Unlock()
	if first && md.owner != "" {
		md.releaseShared()
	}
	return nil
}

// Note implements pop3.Noter.
func (md *Maildrop) Note() string { return md.note }
