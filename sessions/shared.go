package sessions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/pop3playground/pop3playground/pop3"
)

// Replicas (DESIGN §9): with Visitors.Store set, a visitor lives in the
// store, and each replica holds the visitors it serves as a cache of
// their records. A visitor made on one replica, or on this one before a
// restart, is found on any: by its cookie's token or its personal
// login's ID. What a sandbox deleted is in the store too (Sandbox.store);
// the maildrop lock is a lease there.

// ErrStore: the store did not answer; the client is refused with words
// and may try again.
var ErrStore = errors.New("sessions: the playground's store is not answering")

// touchEvery is how often a visitor's activity is carried to the store,
// at most: its TTL there is long, and a request need not wait for it.
const touchEvery = time.Minute

// storeLog is where failures of the store are told.
func (vs *Visitors) storeLog() *slog.Logger {
	if vs.Logger != nil {
		return vs.Logger
	}
	return slog.Default()
}

// createShared stores a new visitor's record, drawing another ID if one
// is taken on another replica, and holds the visitor here.
func (vs *Visitors) createShared(r VisitorRecord) (*Visitor, error) {
	if err := vs.admitShared(r); err != nil {
		return nil, err
	}
	for range 4 {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		err := vs.Store.CreateVisitor(ctx, r, vs.TTL)
		cancel()
		switch {
		case err == nil:
			vs.mu.Lock()
			defer vs.mu.Unlock()
			if v := vs.byToken[r.Token]; v != nil {
				return v, nil
			}
			return vs.holdLocked(r), nil
		case errors.Is(err, ErrExists):
			// The token is another replica's visitor, or the ID is taken.
			if v := vs.Get(r.Token); v != nil {
				return v, nil
			}
			vs.mu.Lock()
			r.ID = vs.newIDLocked()
			vs.mu.Unlock()
		default:
			vs.storeLog().Warn("sessions: the store refused a new visitor", "err", err)
			return nil, ErrStore
		}
	}
	return nil, ErrStore
}

// admitShared counts a new visitor against the caps and the rate every
// replica shares. At a cap, a visitor of this replica who never opened a
// terminal or event stream makes room, as in one process.
func (vs *Visitors) admitShared(r VisitorRecord) error {
	lim := Limits{Rate: vs.Rate.Rate, Burst: vs.Rate.Burst, MaxPerIP: vs.MaxPerIP, Max: vs.Max}
	for try := 0; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		err := vs.Store.Admit(ctx, r, lim, vs.TTL)
		cancel()
		capped := errors.Is(err, ErrIPTooMany) || errors.Is(err, ErrFull)
		switch {
		case err == nil:
			return nil
		case capped && try == 0:
			key := r.IP
			if errors.Is(err, ErrFull) {
				key = ""
			}
			vs.mu.Lock()
			victim := vs.unusedLocked(key, time.Now())
			if victim != nil {
				vs.removeLocked(victim, "unused, to make room for a new visitor")
			}
			vs.mu.Unlock()
			if victim == nil {
				return err
			}
			vs.forgetShared(victim)
		case capped || errors.Is(err, ErrTooFast):
			return err
		default:
			vs.storeLog().Warn("sessions: the store did not count a new visitor", "err", err)
			return ErrStore
		}
	}
}

// fromStore finds a visitor in the store and holds it here: nil if there
// is none, ErrStore if the store did not answer. With wait, what the
// visitor did on other replicas (its lessons, its lab) is applied
// before it returns; without, in the background (a POP3 login needs
// only the sandbox).
func (vs *Visitors) fromStore(wait bool, get func(context.Context) (VisitorRecord, error)) (*Visitor, error) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	r, err := get(ctx)
	cancel()
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, nil
	case err != nil:
		vs.storeLog().Warn("sessions: the store did not answer a visitor lookup", "err", err)
		return nil, ErrStore
	}
	vs.mu.Lock()
	v := vs.byToken[r.Token]
	if v == nil {
		v = vs.holdLocked(r)
	}
	vs.mu.Unlock()
	if wait {
		v.waitCaughtUp()
	}
	return v, nil
}

// waitCaughtUp waits, within the store's timeout, until this replica has
// applied what the visitor's stream held when it began to hold it.
func (v *Visitor) waitCaughtUp() {
	if v.caughtUp == nil {
		return
	}
	select {
	case <-v.caughtUp:
	case <-time.After(storeTimeout):
	}
}

// touchStore carries the visitor's activity to the store, at most every
// touchEvery, without making the caller wait.
func (v *Visitor) touchStore(now int64) {
	last := v.stored.Load()
	if time.Duration(now-last) < touchEvery || !v.stored.CompareAndSwap(last, now) {
		return
	}
	r := v.record()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		if err := v.vs.Store.TouchVisitor(ctx, r, v.vs.TTL); err != nil && !errors.Is(err, ErrNotFound) {
			v.vs.storeLog().Warn("sessions: the store did not keep a visitor", "err", err)
		}
	}()
}

// record is the visitor's record in the store.
func (v *Visitor) record() VisitorRecord {
	return VisitorRecord{Token: v.Token, ID: v.ID, Handle: v.Handle, IP: v.IP, Created: v.Created}
}

// forgetShared deletes an ended visitor from the store: every replica
// forgets it.
func (vs *Visitors) forgetShared(v *Visitor) {
	if vs.Store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := vs.Store.DeleteVisitor(ctx, v.record()); err != nil {
		vs.storeLog().Warn("sessions: the store did not forget a visitor", "err", err)
	}
}

// errVisitorGone: the store holds the sandbox's visitor no more (ended on
// another replica, expired, or a store that came back empty); the
// Backend answers as for a visitor this process never had.
var errVisitorGone = errors.New("sessions: the visitor is gone from the store")

// sweepShared forgets the visitors held here that the store holds no
// more: ended on another replica, expired there, or a store that came
// back empty.
func (vs *Visitors) sweepShared() {
	vs.mu.Lock()
	held := make([]*Visitor, 0, len(vs.byToken))
	tokens := make([]string, 0, len(vs.byToken))
	for tok, v := range vs.byToken {
		held, tokens = append(held, v), append(tokens, tok)
	}
	vs.mu.Unlock()
	if len(tokens) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	gone, err := vs.Store.Gone(ctx, tokens)
	if err != nil {
		return // the store is down: forget nothing
	}
	ids := make([]string, 0, len(held))
	for i, v := range held {
		if gone[i] {
			vs.drop(v, "ended on another replica, or forgotten by the store")
		} else {
			ids = append(ids, v.ID)
		}
	}
	// A fact this replica missed (its pub/sub connection dropped, say)
	// and that no later one revealed: catch up on whoever is behind.
	heads, err := vs.Store.Heads(ctx, ids)
	if err != nil {
		return
	}
	r := vs.replicaState()
	for i, id := range ids {
		if v := vs.held(id); v != nil && heads[i] > 0 {
			r.nudge(v, heads[i])
		}
	}
}

// goneShared reports whether the store forgot v (and then drops it
// here): Create asks, so that the page's session call, after a store
// came back empty or the visitor was ended elsewhere, makes a new
// visitor as after a restart. The store not answering keeps v.
func (vs *Visitors) goneShared(v *Visitor) bool {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	gone, err := vs.Store.Gone(ctx, []string{v.Token})
	if err != nil || !gone[0] {
		return false
	}
	vs.drop(v, "forgotten by the store")
	return true
}

// drop forgets v here, if it is still held.
func (vs *Visitors) drop(v *Visitor, why string) {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if vs.byToken[v.Token] == v {
		vs.removeLocked(v, why)
	}
}

// errStoreDown refuses a login while the store does not answer.
var errStoreDown = &pop3.LoginError{Code: "SYS/TEMP", Text: "the playground's store is not answering right now: try again in a moment"}

// openShared takes the account's lease in the store, brings the sandbox
// up to what the store says it deleted, and opens the maildrop; the
// lease is renewed while the session lives.
func (sb *Sandbox) openShared(account string) (*Maildrop, error) {
	owner := NewToken()
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	ok, err := sb.store.Lease(ctx, sb.id, account, owner, LeaseTTL)
	if err != nil {
		sb.log.Warn("sessions: the store did not answer a login", "err", err)
		return nil, errStoreDown
	}
	if !ok {
		return nil, pop3.ErrMaildropInUse
	}
	st, err := sb.store.Sandbox(ctx, sb.id)
	if err == nil && st.Gone {
		sb.store.Release(ctx, sb.id, account, owner)
		if sb.forget != nil {
			sb.forget()
		}
		return nil, errVisitorGone
	}
	if err == nil {
		err = sb.arrive(ctx, account, owner, &st)
	}
	var extra []*Message
	if err == nil {
		extra, err = sb.resolve(ctx, account, st.Extra[account])
	}
	if err != nil {
		sb.store.Release(ctx, sb.id, account, owner)
		sb.log.Warn("sessions: the store did not answer a login", "err", err)
		return nil, errStoreDown
	}
	sb.mu.Lock()
	sb.syncLocked(account, st, extra)
	md, err := sb.openLocked(account)
	sb.mu.Unlock()
	if err != nil {
		sb.store.Release(ctx, sb.id, account, owner)
		return nil, err
	}
	md.owner, md.renewed = owner, make(chan struct{})
	go md.renew()
	return md, nil
}

// arrive delivers the bulletins the account has not had, in the store
// (under the lease just taken), and adds them to st.
func (sb *Sandbox) arrive(ctx context.Context, account, owner string, st *SandboxState) error {
	msgs, newest := sb.world.Bulletins.deliver(account, st.Seen[account])
	if newest <= st.Seen[account] {
		return nil
	}
	refs := make([]string, len(msgs))
	for i, m := range msgs {
		refs[i] = m.ref
	}
	if err := sb.store.Arrived(ctx, sb.id, account, owner, refs, newest); err != nil {
		return err
	}
	st.Extra[account] = append(st.Extra[account], refs...)
	st.Seen[account] = newest
	return nil
}

// resolve finds the messages that arrived, by ref: a bulletin's copy on
// the world's board, a delivered message in the sandbox's cache or, once,
// in the store. A ref this replica cannot resolve (a bulletin posted on
// another replica) is left out.
func (sb *Sandbox) resolve(ctx context.Context, account string, refs []string) ([]*Message, error) {
	out := make([]*Message, 0, len(refs))
	for _, ref := range refs {
		if uid, ok := strings.CutPrefix(ref, "m:"); ok {
			sb.mu.Lock()
			m := sb.cache[uid]
			sb.mu.Unlock()
			if m == nil {
				data, err := sb.store.Message(ctx, sb.id, uid)
				if errors.Is(err, ErrNotFound) {
					continue
				}
				if err != nil {
					return nil, err
				}
				if m, err = parseMessage(data, "delivered", 1); err != nil {
					continue
				}
				m.uid, m.ref = uid, ref
				sb.mu.Lock()
				sb.cacheLocked(m)
				sb.mu.Unlock()
			}
			out = append(out, m)
			continue
		}
		if m := sb.world.Bulletins.byRef(ref, account); m != nil {
			out = append(out, m)
		}
	}
	return out, nil
}

// cacheLocked keeps a delivered message of the sandbox by UID, so that
// a login resolves it without the store. sb.mu is held.
func (sb *Sandbox) cacheLocked(m *Message) {
	if sb.cache == nil {
		sb.cache = make(map[string]*Message)
	}
	sb.cache[m.uid] = m
}

// syncLocked makes account's maildrop here what the store says: after a
// reset on any replica, a pristine sandbox; the world's messages less
// those deleted on any replica, then those that arrived (extra, in
// order). sb.mu is held.
func (sb *Sandbox) syncLocked(account string, st SandboxState, extra []*Message) {
	if st.Gen != sb.gen {
		clear(sb.views)
		clear(sb.seen)
		clear(sb.cache)
		sb.gen, sb.fresh = st.Gen, time.Now()
	}
	sb.delivered = st.Delivered
	if sb.seen == nil {
		sb.seen = make(map[string]int)
	}
	sb.seen[account] = max(sb.seen[account], st.Seen[account]) // openLocked delivers nothing twice
	deleted := make(map[string]bool, len(st.Deleted[account]))
	for _, u := range st.Deleted[account] {
		deleted[u] = true
	}
	var v view
	if a := sb.world.Account(account); a != nil {
		v.base = a.Messages
		for i, m := range a.Messages {
			if deleted[m.uid] {
				v.gone = append(v.gone, int32(i))
			} else {
				v.size += m.Size()
			}
		}
	}
	sb.setViewLocked(account, v.with(extra...))
}

// renew keeps the lease while the session lives. A lease it cannot
// renew is let go: its QUIT then deletes nothing, and says so.
func (md *Maildrop) renew() {
	t := time.NewTicker(LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-md.renewed:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
			ok, err := md.sb.store.Lease(ctx, md.sb.id, md.account, md.owner, LeaseTTL)
			cancel()
			if err == nil && !ok {
				md.sb.log.Warn("sessions: a maildrop's lease was taken by another session", "sandbox", md.sb.id)
				return
			}
		}
	}
}

// releaseShared stops renewing the lease and gives it up.
func (md *Maildrop) releaseShared() {
	close(md.renewed)
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := md.sb.store.Release(ctx, md.sb.id, md.account, md.owner); err != nil {
		md.sb.log.Warn("sessions: the store did not take back a lease; it lapses by itself", "err", err, "ttl", LeaseTTL)
	}
}

// errLeaseLost: the session's QUIT could not apply its deletions.
var errLeaseLost = errors.New("the maildrop's lock lapsed (its lease was not renewed in time, or the store did not answer): nothing was deleted")

// deleteShared applies a QUIT's deletions of the world's messages in
// the store: a compare-and-set on the lease and the generation. It
// reports false if the sandbox was reset since the login (nothing to
// delete from), and an error if the lease was lost.
func (md *Maildrop) deleteShared(indexes []int) (applied bool, err error) {
	var uids []string
	for _, i := range indexes {
		if i >= 0 && i < md.view.len() {
			m := md.view.at(i)
			if m.ref != "" {
				uids = append(uids, m.ref)
			} else {
				uids = append(uids, m.uid)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	err = md.sb.store.Delete(ctx, md.sb.id, md.account, md.owner, md.gen, uids)
	if errors.Is(err, ErrConflict) {
		if st, serr := md.sb.store.Sandbox(ctx, md.sb.id); serr == nil && st.Gen != md.gen {
			return false, nil
		}
		return false, errLeaseLost
	}
	return err == nil, err
}

// resetShared resets the sandbox for every replica.
func (sb *Sandbox) resetShared() {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := sb.store.ResetSandbox(ctx, sb.id); err != nil {
		sb.log.Warn("sessions: the store did not reset a sandbox", "err", err)
	}
}

// deliverShared stores a message delivered by SMTP, for every replica,
// and keeps it here.
func (sb *Sandbox) deliverShared(account string, m *Message, max int) error {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	err := sb.store.Deliver(ctx, sb.id, account, StoredMessage{UID: m.uid, Data: m.data}, max)
	if errors.Is(err, ErrMailboxFull) {
		return fmt.Errorf("the mailbox is full (%d delivered messages; Reset mailbox empties it)", max)
	}
	if err != nil {
		sb.log.Warn("sessions: the store did not take a delivery", "err", err)
		return errStoreDelivery
	}
	m.ref = "m:" + m.uid
	sb.mu.Lock()
	defer sb.mu.Unlock()
	sb.cacheLocked(m)
	sb.delivered++
	sb.setViewLocked(account, sb.viewLocked(account).with(m))
	return nil
}

// errStoreDelivery: a delivery the store did not take.
var errStoreDelivery = errors.New("the playground's store is not answering right now: try again later")

// refresh brings account's maildrop here up to the store, for a reader
// that takes no lock (the page's mail view); the store not answering
// leaves it as it was.
func (sb *Sandbox) refresh(account string) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	st, err := sb.store.Sandbox(ctx, sb.id)
	if err != nil {
		return
	}
	extra, err := sb.resolve(ctx, account, st.Extra[account])
	if err != nil {
		return
	}
	// New bulletins are left to the next login, which delivers them
	// under the lease.
	sb.mu.Lock()
	defer sb.mu.Unlock()
	sb.syncLocked(account, st, extra)
}

// holdEveryoneEvery bounds how often All asks the store for every visitor.
const holdEveryoneEvery = 5 * time.Second

// holdEveryone holds here every visitor the store has, at most every
// holdEveryoneEvery: the organiser's page lists each, with what its
// stream says it did, whichever replica it uses.
func (vs *Visitors) holdEveryone() {
	now := time.Now().UnixNano()
	last := vs.heldAll.Load()
	if time.Duration(now-last) < holdEveryoneEvery || !vs.heldAll.CompareAndSwap(last, now) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	recs, err := vs.Store.Visitors(ctx)
	if err != nil {
		return
	}
	vs.mu.Lock()
	defer vs.mu.Unlock()
	for _, r := range recs {
		if vs.byToken[r.Token] == nil {
			v := vs.holdLocked(r)
			v.lastSeen.Store(r.Created.UnixNano()) // not seen here: its activity is its stream's
		}
	}
}
