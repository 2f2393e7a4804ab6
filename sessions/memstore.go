package sessions

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pop3playground/pop3playground/pop3/limit"
)

// MemStore is a Store in the process: the reference implementation of
// the contract, and two replicas in one test when two Visitors share it.
type MemStore struct {
	mu        sync.Mutex
	byToken   map[string]memVisitor
	byID      map[string]string // ID → token
	sandboxes map[string]*SandboxState
	bodies    map[string]map[string][]byte // sandbox ID → UID → octets
	leases    map[string]memLease          // id + "\x00" + account
	counted   map[string]memCount          // token → what Admit counts, until it expires
	rate      limit.RateLimiter
	replicas  uint64
	streams   map[string][]Fact
	arms      map[string]map[string]time.Time   // address key → visitor ID → until
	admins    map[string]time.Time              // organisers' sign-ins → until
	limiters  map[[2]float64]*limit.RateLimiter // Bucket's, by rate and burst
	followers map[*memFollower]struct{}
	now       func() time.Time
}

type memCount struct {
	ip      string
	expires time.Time
}

type memVisitor struct {
	r       VisitorRecord
	expires time.Time
}

type memLease struct {
	owner   string
	expires time.Time
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	return &MemStore{byToken: map[string]memVisitor{}, byID: map[string]string{},
		sandboxes: map[string]*SandboxState{}, bodies: map[string]map[string][]byte{}, leases: map[string]memLease{},
		counted: map[string]memCount{}, streams: map[string][]Fact{}, arms: map[string]map[string]time.Time{}, admins: map[string]time.Time{}, limiters: map[[2]float64]*limit.RateLimiter{}, followers: map[*memFollower]struct{}{}, now: time.Now}
}

var _ Store = (*MemStore)(nil)

// liveLocked is the token's record if it has not expired. s.mu is held.
func (s *MemStore) liveLocked(token string) (memVisitor, bool) {
	v, ok := s.byToken[token]
	if ok && !s.now().Before(v.expires) {
		s.forgetLocked(v.r)
		return memVisitor{}, false
	}
	return v, ok
}

func (s *MemStore) forgetLocked(r VisitorRecord) {
	delete(s.byToken, r.Token)
	delete(s.byID, r.ID)
	delete(s.sandboxes, r.ID)
	delete(s.bodies, r.ID)
	delete(s.counted, r.Token)
	delete(s.streams, r.ID)
}

func (s *MemStore) CreateVisitor(_ context.Context, r VisitorRecord, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.liveLocked(r.Token); ok {
		return ErrExists
	}
	if tok, ok := s.byID[r.ID]; ok {
		if _, live := s.liveLocked(tok); live {
			return ErrExists
		}
	}
	s.byToken[r.Token] = memVisitor{r: r, expires: s.now().Add(ttl)}
	s.byID[r.ID] = r.Token
	return nil
}

func (s *MemStore) VisitorByToken(_ context.Context, token string) (VisitorRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.liveLocked(token); ok {
		return v.r, nil
	}
	return VisitorRecord{}, ErrNotFound
}

func (s *MemStore) VisitorByID(_ context.Context, id string) (VisitorRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.liveLocked(s.byID[id]); ok {
		return v.r, nil
	}
	return VisitorRecord{}, ErrNotFound
}

func (s *MemStore) TouchVisitor(_ context.Context, r VisitorRecord, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.liveLocked(r.Token)
	if !ok {
		return ErrNotFound
	}
	v.expires = s.now().Add(ttl)
	s.byToken[r.Token] = v
	if c, ok := s.counted[r.Token]; ok {
		c.expires = v.expires
		s.counted[r.Token] = c
	}
	return nil
}

func (s *MemStore) DeleteVisitor(_ context.Context, r VisitorRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgetLocked(r)
	return nil
}

func (s *MemStore) Admit(_ context.Context, r VisitorRecord, lim Limits, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	live, fromIP := 0, 0
	for tok, c := range s.counted {
		switch {
		case !now.Before(c.expires):
			delete(s.counted, tok)
		case tok == r.Token:
			return nil // counted already
		default:
			live++
			if c.ip == r.IP {
				fromIP++
			}
		}
	}
	switch {
	case lim.MaxPerIP > 0 && fromIP >= lim.MaxPerIP:
		return ErrIPTooMany
	case lim.Max > 0 && live >= lim.Max:
		return ErrFull
	}
	s.rate.Rate, s.rate.Burst = lim.Rate, lim.Burst
	if !s.rate.Allow(r.IP, now) {
		return ErrTooFast
	}
	s.counted[r.Token] = memCount{ip: r.IP, expires: now.Add(ttl)}
	return nil
}

func (s *MemStore) Sandbox(_ context.Context, id string) (SandboxState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := newSandboxState()
	tok, ok := s.byID[id]
	st.Gone = !ok || !s.live(tok)
	if sb := s.sandboxes[id]; sb != nil {
		st.Gen, st.Delivered = sb.Gen, sb.Delivered
		for a, uids := range sb.Deleted {
			st.Deleted[a] = slices.Clone(uids)
		}
		for a, refs := range sb.Extra {
			st.Extra[a] = slices.Clone(refs)
		}
		maps.Copy(st.Seen, sb.Seen)
	}
	return st, nil
}

// sandboxLocked is sandbox id's state, made if new. s.mu is held.
func (s *MemStore) sandboxLocked(id string) *SandboxState {
	sb := s.sandboxes[id]
	if sb == nil {
		st := newSandboxState()
		sb = &st
		s.sandboxes[id] = sb
	}
	return sb
}

// leasedLocked reports whether owner holds account's lease. s.mu is held.
func (s *MemStore) leasedLocked(id, account, owner string) bool {
	l, ok := s.leases[id+"\x00"+account]
	return ok && l.owner == owner && s.now().Before(l.expires)
}

func (s *MemStore) Delete(_ context.Context, id, account, owner string, gen uint64, uids []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.leasedLocked(id, account, owner) || s.sandboxLocked(id).Gen != gen {
		return ErrConflict
	}
	sb := s.sandboxLocked(id)
	for _, u := range uids {
		switch {
		case slices.Contains(sb.Extra[account], u):
			sb.Extra[account] = slices.DeleteFunc(sb.Extra[account], func(r string) bool { return r == u })
			if uid, ok := strings.CutPrefix(u, "m:"); ok {
				delete(s.bodies[id], uid)
			}
		case !slices.Contains(sb.Deleted[account], u):
			sb.Deleted[account] = append(sb.Deleted[account], u)
		}
	}
	return nil
}

func (s *MemStore) Deliver(_ context.Context, id, account string, m StoredMessage, max int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sb := s.sandboxLocked(id)
	if max > 0 && sb.Delivered >= max {
		return ErrMailboxFull
	}
	sb.Delivered++
	sb.Extra[account] = append(sb.Extra[account], "m:"+m.UID)
	if s.bodies[id] == nil {
		s.bodies[id] = map[string][]byte{}
	}
	s.bodies[id][m.UID] = slices.Clone(m.Data)
	return nil
}

func (s *MemStore) Message(_ context.Context, id, uid string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.bodies[id][uid]
	if !ok {
		return nil, ErrNotFound
	}
	return b, nil
}

func (s *MemStore) Arrived(_ context.Context, id, account, owner string, refs []string, seen int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.leasedLocked(id, account, owner) {
		return ErrConflict
	}
	sb := s.sandboxLocked(id)
	sb.Extra[account] = append(sb.Extra[account], refs...)
	sb.Seen[account] = max(sb.Seen[account], seen)
	return nil
}

func (s *MemStore) ResetSandbox(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	gen := s.sandboxLocked(id).Gen + 1
	st := newSandboxState()
	st.Gen = gen
	s.sandboxes[id] = &st
	delete(s.bodies, id)
	return nil
}

func (s *MemStore) Lease(_ context.Context, id, account, owner string, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := id + "\x00" + account
	if l, ok := s.leases[key]; ok && l.owner != owner && s.now().Before(l.expires) {
		return false, nil
	}
	s.leases[key] = memLease{owner: owner, expires: s.now().Add(ttl)}
	return true, nil
}

func (s *MemStore) Release(_ context.Context, id, account, owner string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := id + "\x00" + account
	if l, ok := s.leases[key]; ok && l.owner == owner {
		delete(s.leases, key)
	}
	return nil
}

func (s *MemStore) Ping(context.Context) error { return nil }

// live reports whether token's visitor is held and unexpired. s.mu is
// held.
func (s *MemStore) live(token string) bool {
	_, ok := s.liveLocked(token)
	return ok
}

func (s *MemStore) Gone(_ context.Context, tokens []string) ([]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	gone := make([]bool, len(tokens))
	for i, t := range tokens {
		gone[i] = !s.live(t)
	}
	return gone, nil
}

func (s *MemStore) Replica(context.Context) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replicas++
	return s.replicas, nil
}

func (s *MemStore) Publish(_ context.Context, id string, facts [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[id]
	for _, d := range facts {
		var seq uint64 = 1
		if n := len(st); n > 0 {
			seq = st[n-1].Seq + 1
		}
		f := Fact{Visitor: id, Seq: seq, Data: slices.Clone(d)}
		if len(st) == EventLogSize {
			st = st[1:]
		}
		st = append(st, f)
		for fl := range s.followers {
			fl.deliver(f)
		}
	}
	s.streams[id] = st
	return nil
}

func (s *MemStore) Facts(_ context.Context, id string, after uint64) ([]Fact, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Fact
	for _, f := range s.streams[id] {
		if f.Seq > after {
			out = append(out, f)
		}
	}
	return out, nil
}

func (s *MemStore) Follow(context.Context) Follower {
	f := &memFollower{s: s, ids: map[string]bool{}, c: make(chan Fact, 4096)}
	s.mu.Lock()
	s.followers[f] = struct{}{}
	s.mu.Unlock()
	return f
}

// memFollower is a Follower of a MemStore.
type memFollower struct {
	s   *MemStore
	ids map[string]bool // guarded by s.mu
	c   chan Fact
}

// deliver sends f if followed. s.mu is held.
func (f *memFollower) deliver(fact Fact) {
	if f.ids[fact.Visitor] {
		select {
		case f.c <- fact:
		default: // a follower that does not read loses facts, as Redis's pub/sub does
		}
	}
}

func (f *memFollower) Add(_ context.Context, ids ...string) error {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	for _, id := range ids {
		f.ids[id] = true
	}
	return nil
}

func (f *memFollower) Remove(_ context.Context, ids ...string) error {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	for _, id := range ids {
		delete(f.ids, id)
	}
	return nil
}

func (f *memFollower) Facts() <-chan Fact { return f.c }

func (f *memFollower) Close() error {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	delete(f.s.followers, f)
	return nil
}

func (s *MemStore) Visitors(context.Context) ([]VisitorRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []VisitorRecord
	for tok := range s.byToken {
		if v, ok := s.liveLocked(tok); ok {
			out = append(out, v.r)
		}
	}
	return out, nil
}

func (s *MemStore) Arm(_ context.Context, key, id string, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.arms[key] == nil {
		s.arms[key] = map[string]time.Time{}
	}
	s.arms[key][id] = s.now().Add(ttl)
	return nil
}

func (s *MemStore) Armed(_ context.Context, key string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id, until := range s.arms[key] {
		if s.now().Before(until) {
			ids = append(ids, id)
		} else {
			delete(s.arms[key], id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

func (s *MemStore) AdminSession(_ context.Context, id string, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case ttl > 0:
		s.admins[id] = s.now().Add(ttl)
		return true, nil
	case ttl == 0:
		delete(s.admins, id)
		return false, nil
	}
	until, ok := s.admins[id]
	return ok && s.now().Before(until), nil
}

func (s *MemStore) Bucket(_ context.Context, key string, rate float64, burst int, take bool) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]float64{rate, float64(burst)}
	rl := s.limiters[k]
	if rl == nil {
		rl = &limit.RateLimiter{Rate: rate, Burst: burst}
		s.limiters[k] = rl
	}
	if !take {
		return rl.Peek(key, s.now()), nil
	}
	return rl.Allow(key, s.now()), nil
}

func (s *MemStore) Heads(_ context.Context, ids []string) ([]uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	heads := make([]uint64, len(ids))
	for i, id := range ids {
		if st := s.streams[id]; len(st) > 0 {
			heads[i] = st[len(st)-1].Seq
		}
	}
	return heads, nil
}
