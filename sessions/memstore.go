package sessions

import (
	"context"
	"slices"
	"sync"
	"time"
)

// MemStore is a Store in the process: the reference implementation of
// the contract, and two replicas in one test when two Visitors share it.
type MemStore struct {
	mu        sync.Mutex
	byToken   map[string]memVisitor
	byID      map[string]string // ID → token
	sandboxes map[string]*SandboxState
	leases    map[string]memLease // id + "\x00" + account
	now       func() time.Time
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
		sandboxes: map[string]*SandboxState{}, leases: map[string]memLease{}, now: time.Now}
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
	return nil
}

func (s *MemStore) DeleteVisitor(_ context.Context, r VisitorRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgetLocked(r)
	return nil
}

func (s *MemStore) Sandbox(_ context.Context, id string) (SandboxState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := SandboxState{Deleted: map[string][]string{}}
	if sb := s.sandboxes[id]; sb != nil {
		st.Gen = sb.Gen
		for a, uids := range sb.Deleted {
			st.Deleted[a] = slices.Clone(uids)
		}
	}
	return st, nil
}

func (s *MemStore) Delete(_ context.Context, id, account, owner string, gen uint64, uids []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.leases[id+"\x00"+account]
	sb := s.sandboxes[id]
	cur := uint64(0)
	if sb != nil {
		cur = sb.Gen
	}
	if !ok || l.owner != owner || !s.now().Before(l.expires) || cur != gen {
		return ErrConflict
	}
	if sb == nil {
		sb = &SandboxState{Deleted: map[string][]string{}}
		s.sandboxes[id] = sb
	}
	for _, u := range uids {
		if !slices.Contains(sb.Deleted[account], u) {
			sb.Deleted[account] = append(sb.Deleted[account], u)
		}
	}
	return nil
}

func (s *MemStore) ResetSandbox(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sb := s.sandboxes[id]
	if sb == nil {
		sb = &SandboxState{}
		s.sandboxes[id] = sb
	}
	sb.Gen++
	sb.Deleted = map[string][]string{}
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
