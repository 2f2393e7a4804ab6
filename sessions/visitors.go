package sessions

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pop3playground/pop3playground/pop3/limit"
)

// A Visitor is one person using the web playground: a secret token (their
// cookie, and what the WebSocket bridge sends in its PROXY header), a
// personal login for other clients, and a sandbox that lives as long as they
// keep coming back (DESIGN §3, §5).
type Visitor struct {
	// Token is the visitor's secret: 128 random bits as 32 hex digits.
	Token string
	// ID names the visitor in personal logins (guest.ID): 50 random bits as
	// 10 lower-case base32 characters. It is not a secret on its own: a
	// personal login also needs the account's password.
	ID      string
	Sandbox *Sandbox
	Created time.Time
	// IP is the address the visitor came from (limit.AddrKey: IPv6 as its
	// /64), for the per-address cap.
	IP string

	// Events are what the POP3 server did in this visitor's sandbox.
	Events EventLog
	// Lab is the visitor's client lab (their lab login's scenario and
	// report card).
	Lab Lab

	lastSeen atomic.Int64 // unix nanoseconds
	stored   atomic.Int64 // unix nanoseconds of the last TouchVisitor in the store
	vs       *Visitors
	bridges  atomic.Int32
	applied  uint64        // the last fact of its stream applied here (fold.go's follower only)
	caughtUp chan struct{} // closed once this replica has applied its stream so far (fold.go)
	used     atomic.Bool   // opened a terminal or an event stream
	mailIn   atomic.Int64  // messages delivered to the visitor by SMTP

	// Handle names the visitor to the organiser (with Name, a pseudonym):
	// 40 random bits, unrelated to Token and ID.
	Handle string

	mu        sync.Mutex
	lessons   lessonState
	open      openConns     // the connections in the visitor's sandbox
	display   string        // the name the visitor gave the organiser
	gone      chan struct{} // closed when the visitor is forgotten
	status    Status
	hand      *Hand // the student asked for help
	errStreak int   // -ERR replies in a row
}

// Touch records activity: the visitor's idle timer starts again, here
// and, now and then, in the store.
func (v *Visitor) Touch() {
	now := time.Now().UnixNano()
	v.lastSeen.Store(now)
	if v.vs != nil && v.vs.Store != nil {
		v.touchStore(now)
	}
}

// LastSeen is when the visitor was last active.
func (v *Visitor) LastSeen() time.Time { return time.Unix(0, v.lastSeen.Load()) }

// MailIn is how many messages SMTP delivered to the visitor.
func (v *Visitor) MailIn() int64 { return v.mailIn.Load() }

// Gone is closed when the visitor is forgotten (ended, or expired): their
// event streams end, and the page makes a new session.
func (v *Visitor) Gone() <-chan struct{} { return v.gone }

// Use records that the visitor opened a terminal or an event stream: from
// now on it expires after Visitors.TTL, not UnusedTTL.
func (v *Visitor) Use() {
	v.used.Store(true)
	v.Touch()
}

// Used reports whether the visitor ever opened a terminal or event stream.
func (v *Visitor) Used() bool { return v.used.Load() }

// PersonalLogin is the user name that reaches account in this visitor's
// sandbox from any POP3 client.
func (v *Visitor) PersonalLogin(account string) string { return account + "." + v.ID }

// AcquireBridge counts a new WebSocket bridge of the visitor, if fewer than
// max are open; ReleaseBridge undoes it. A visitor with a bridge open does
// not expire.
func (v *Visitor) AcquireBridge(max int) bool {
	for {
		n := v.bridges.Load()
		if max > 0 && int(n) >= max {
			return false
		}
		if v.bridges.CompareAndSwap(n, n+1) {
			v.Use()
			return true
		}
	}
}

// ReleaseBridge undoes AcquireBridge.
func (v *Visitor) ReleaseBridge() {
	v.bridges.Add(-1)
	v.Touch()
}

// Bridges is how many bridges the visitor has open.
func (v *Visitor) Bridges() int { return int(v.bridges.Load()) }

// Errors from Visitors.Create.
var (
	ErrFull      = errors.New("sessions: the playground has as many visitors as it may hold")
	ErrIPTooMany = errors.New("sessions: too many visitor sessions from one address")
	ErrTooFast   = errors.New("sessions: visitor sessions are being made too fast from one address")
)

// Visitors holds the visitor sessions of the web playground. Everything
// lives in memory: a restart forgets every visitor and sandbox.
type Visitors struct {
	world *World
	// TTL is how long a visitor may stay idle before their session and
	// sandbox are freed; UnusedTTL, if shorter, is how long one who never
	// opened a terminal or an event stream stays.
	TTL       time.Duration
	UnusedTTL time.Duration
	// Max bounds the visitors held at once, MaxPerIP those from one
	// address (IPv6 by /64, limit.AddrKey); zero means no limit.
	Max      int
	MaxPerIP int
	// Rate bounds how fast visitors are made from one address: a burst
	// for a classroom behind one NAT, then a steady rate.
	Rate limit.RateLimiter
	// Lessons are the lessons whose steps tick from the visitors' events.
	Lessons []*Lesson
	// HopKey signs the id of the Received field the playground adds to
	// mail it delivers, so that the mail view knows that hop from one a
	// sender wrote; random unless set (replicas share one).
	HopKey []byte
	// LabDelay is how long the client lab's ports hold their greeting
	// back, so that a client that talks first is seen (labport.go).
	LabDelay time.Duration
	// Store, if set, is shared with the other replicas of the playground
	// (shared.go): a visitor made on one is found on every one, and so is
	// what its sandbox deleted; nil keeps everything in the process.
	Store Store
	// Logger is told when the store fails; slog's default if nil.
	Logger *slog.Logger

	mu      sync.Mutex
	byToken map[string]*Visitor
	byID    map[string]*Visitor
	perIP   limit.Counter       // visitors per client address (AddrKey)
	conns   map[uint64]*Visitor // personal-login connections, by ID

	forgotten   forgottenTokens
	announce    announcer
	observed    atomic.Bool // the POP3 server reports events to Observe
	completions counters    // lesson ID → visitors who finished it
	errors      errorRing
	arms        labArms // who used the lab from where (labport.go)

	replicaOnce sync.Once
	replica     *replicaLink // with a Store: the facts published and followed (fold.go)
	heldAll     atomic.Int64 // when All last held every visitor of the store
}

// Defaults of NewVisitors.
const (
	// DefaultVisitorTTL is the idle time after which a visitor is forgotten.
	DefaultVisitorTTL = 2 * time.Hour
	// DefaultUnusedTTL is how long a visitor who never opened a terminal
	// or an event stream is kept.
	DefaultUnusedTTL = 10 * time.Minute
	// A classroom of 100 behind one NAT may arrive at once; then two new
	// visitors a second from one address.
	DefaultVisitorBurst = 100
	DefaultVisitorRate  = 2
)

// NewVisitors returns an empty set of visitors of w.
func NewVisitors(w *World) *Visitors {
	key := make([]byte, 32)
	rand.Read(key)
	return &Visitors{
		HopKey:    key,
		world:     w,
		TTL:       DefaultVisitorTTL,
		UnusedTTL: DefaultUnusedTTL,
		LabDelay:  DefaultLabDelay,
		Rate:      limit.RateLimiter{Rate: DefaultVisitorRate, Burst: DefaultVisitorBurst},
		byToken:   make(map[string]*Visitor),
		byID:      make(map[string]*Visitor),
		conns:     make(map[uint64]*Visitor),
	}
}

// World is the world the visitors' sandboxes copy.
func (vs *Visitors) World() *World { return vs.world }

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewToken returns a fresh visitor token: 128 random bits as 32 hex digits.
func NewToken() string {
	var tok [16]byte
	rand.Read(tok[:])
	return hex.EncodeToString(tok[:])
}

// New makes a visitor coming from ip, with a new token and a pristine
// sandbox.
func (vs *Visitors) New(ip string) (*Visitor, error) { return vs.Create(NewToken(), ip) }

// Create returns the visitor with this token, making it (with a pristine
// sandbox) if there is none. The token must be one the caller made and
// vouches for (the web side signs the cookie it sets). The limits are
// checked before anything is allocated: a refused visitor costs nothing.
func (vs *Visitors) Create(token, ip string) (*Visitor, error) {
	key := limit.AddrKey(ip)
	vs.mu.Lock()
	if v := vs.byToken[token]; v != nil {
		vs.mu.Unlock()
		if vs.Store == nil || !vs.goneShared(v) {
			v.Touch()
			return v, nil
		}
		vs.mu.Lock()
	}
	now := time.Now()
	if vs.Store == nil {
		if err := vs.admitLocked(key, now); err != nil {
			vs.mu.Unlock()
			return nil, err
		}
	}
	var handle [5]byte
	rand.Read(handle[:])
	r := VisitorRecord{Token: token, Handle: idEncoding.EncodeToString(handle[:]), Created: now, IP: key, ID: vs.newIDLocked()}
	if vs.Store == nil {
		defer vs.mu.Unlock()
		return vs.holdLocked(r), nil
	}
	vs.mu.Unlock()
	return vs.createShared(r)
}

// admitLocked checks the limits on making a visitor from key. At a cap,
// a visitor who never opened a terminal or event stream makes room:
// someone who only asked for sessions cannot lock out the people behind
// the same address, or everyone. vs.mu is held.
func (vs *Visitors) admitLocked(key string, now time.Time) error {
	if vs.MaxPerIP > 0 && vs.perIP.Under(key) >= vs.MaxPerIP && !vs.evictUnusedLocked(key, now) {
		return ErrIPTooMany
	}
	if vs.Max > 0 && len(vs.byToken) >= vs.Max && !vs.evictUnusedLocked("", now) {
		return ErrFull
	}
	if !vs.Rate.Allow(key, now) {
		return ErrTooFast
	}
	return nil
}

// newIDLocked draws a visitor ID this process does not hold. vs.mu is
// held.
func (vs *Visitors) newIDLocked() string {
	for {
		var id [7]byte // 56 bits drawn, 50 used
		rand.Read(id[:])
		if s := idEncoding.EncodeToString(id[:])[:10]; vs.byID[s] == nil {
			return s
		}
	}
}

// holdLocked makes the visitor of a record and holds it here, with a
// pristine sandbox (or, with a Store, the sandbox the store says).
// vs.mu is held.
func (vs *Visitors) holdLocked(r VisitorRecord) *Visitor {
	v := &Visitor{Token: r.Token, ID: r.ID, Handle: r.Handle, Created: r.Created, IP: r.IP,
		Sandbox: NewSandbox(vs.world), gone: make(chan struct{}), vs: vs}
	if vs.Store != nil {
		v.Sandbox.store, v.Sandbox.id, v.Sandbox.log = vs.Store, r.ID, vs.storeLog()
		v.Sandbox.forget = func() { vs.drop(v, "forgotten by the store") }
		v.stored.Store(time.Now().UnixNano())
	}
	v.Lab.rec = func(f labFact) { vs.record(v, fact{Type: factLab, Lab: &f}) }
	v.Touch()
	vs.byToken[v.Token] = v
	vs.byID[v.ID] = v
	vs.perIP.Claim(r.IP, 0)
	if vs.Store != nil {
		v.Events.shared, v.caughtUp = true, make(chan struct{})
		go vs.replicaState().hold(v)
	}
	return v
}

// unusedGrace is how long a new visitor's page has to open its terminal
// or event stream before the visitor may be evicted to make room.
const unusedGrace = 30 * time.Second

// unusedLocked is the visitor an unused one would be evicted to make
// room: the least recently seen (from the address key, or from anywhere
// if key is empty) who never opened a terminal or event stream, is older
// than unusedGrace and holds no maildrop; or nil. vs.mu is held.
func (vs *Visitors) unusedLocked(key string, now time.Time) *Visitor {
	var victim *Visitor
	for _, v := range vs.byToken {
		if v.Used() || key != "" && v.IP != key || now.Sub(v.Created) < unusedGrace || v.Sandbox.InUse() {
			continue
		}
		if victim == nil || v.LastSeen().Before(victim.LastSeen()) {
			victim = v
		}
	}
	return victim
}

// evictUnusedLocked forgets unusedLocked's visitor, if any, and reports
// whether there was one. vs.mu is held.
func (vs *Visitors) evictUnusedLocked(key string, now time.Time) bool {
	victim := vs.unusedLocked(key, now)
	if victim != nil {
		vs.removeLocked(victim, "unused, to make room for a new visitor")
	}
	return victim != nil
}

// Admits reports, without making anything, whether a visitor from ip
// could be made now: nil, or the error Create would return.
func (vs *Visitors) Admits(ip string) error {
	key := limit.AddrKey(ip)
	vs.mu.Lock()
	defer vs.mu.Unlock()
	now := time.Now()
	switch {
	case vs.MaxPerIP > 0 && vs.perIP.Under(key) >= vs.MaxPerIP && vs.unusedLocked(key, now) == nil:
		return ErrIPTooMany
	case vs.Max > 0 && len(vs.byToken) >= vs.Max && vs.unusedLocked("", now) == nil:
		return ErrFull
	}
	return nil
}

// Get returns the visitor with this token and marks them active, or nil.
func (vs *Visitors) Get(token string) *Visitor {
	vs.mu.Lock()
	v := vs.byToken[token]
	vs.mu.Unlock()
	if v == nil && vs.Store != nil {
		v, _ = vs.fromStore(true, func(ctx context.Context) (VisitorRecord, error) { return vs.Store.VisitorByToken(ctx, token) })
	}
	if v != nil {
		v.Touch()
	}
	return v
}

// ByID returns the visitor a personal login names, or nil.
func (vs *Visitors) ByID(id string) *Visitor {
	v, _ := vs.Lookup(id)
	return v
}

// Lookup is ByID that tells a visitor that does not exist (nil, nil)
// from a store that did not answer (ErrStore).
func (vs *Visitors) Lookup(id string) (*Visitor, error) {
	vs.mu.Lock()
	v := vs.byID[id]
	vs.mu.Unlock()
	if v == nil && vs.Store != nil {
		return vs.fromStore(false, func(ctx context.Context) (VisitorRecord, error) { return vs.Store.VisitorByID(ctx, id) })
	}
	return v, nil
}

// End forgets a visitor: their sandbox is freed once no session holds it.
func (vs *Visitors) End(token string) bool {
	vs.mu.Lock()
	v := vs.byToken[token]
	vs.mu.Unlock()
	if v == nil {
		return false
	}
	if vs.Store != nil {
		// Every replica that holds the visitor drops it now, its pages
		// told at once; then the store forgets it.
		vs.record(v, fact{Type: factEnd})
		vs.forgetShared(v)
	}
	vs.drop(v, "ended by the organiser")
	return true
}

func (vs *Visitors) removeLocked(v *Visitor, why string) {
	vs.forgotten.add(v.Token, why)
	close(v.gone)
	delete(vs.byToken, v.Token)
	delete(vs.byID, v.ID)
	vs.perIP.Unclaim(v.IP)
	if vs.Store != nil {
		go vs.replicaState().unhold(v)
	}
}

// Forgotten says why the visitor of token was forgotten, if it was one of
// the last forgottenSize this process forgot.
func (vs *Visitors) Forgotten(token string) (why string, ok bool) {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	why, ok = vs.forgotten.why[forgottenKey(token)]
	return why, ok
}

// forgottenSize bounds the tokens remembered after their visitor is gone.
const forgottenSize = 4096

// forgottenTokens remembers why recent visitors were forgotten, by a hash
// of their token, so that a terminal that comes back can be told what
// happened rather than guessed at.
type forgottenTokens struct {
	why   map[[8]byte]string
	order [][8]byte // oldest first, at most forgottenSize
}

func forgottenKey(token string) [8]byte {
	sum := sha256.Sum256([]byte(token))
	return [8]byte(sum[:8])
}

func (f *forgottenTokens) add(token, why string) {
	if f.why == nil {
		f.why = make(map[[8]byte]string)
	}
	k := forgottenKey(token)
	if len(f.order) >= forgottenSize {
		delete(f.why, f.order[0])
		f.order = append(f.order[:0], f.order[1:]...)
	}
	f.why[k] = why
	f.order = append(f.order, k)
}

// Len is how many visitors are held.
func (vs *Visitors) Len() int {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	return len(vs.byToken)
}

// All returns every visitor held, in no particular order: with a Store,
// every replica's (the organiser's page on any replica shows everyone).
func (vs *Visitors) All() []*Visitor {
	if vs.Store != nil {
		vs.holdEveryone()
	}
	vs.mu.Lock()
	defer vs.mu.Unlock()
	all := make([]*Visitor, 0, len(vs.byToken))
	for _, v := range vs.byToken {
		all = append(all, v)
	}
	return all
}

// Sweep forgets the visitors idle for longer than TTL (UnusedTTL for
// those who never opened a terminal or event stream), except those with a
// bridge open or a maildrop locked, and returns how many it forgot.
func (vs *Visitors) Sweep(now time.Time) int {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	n := 0
	for _, v := range vs.byToken {
		ttl := vs.TTL
		if !v.Used() && vs.UnusedTTL > 0 && vs.UnusedTTL < ttl {
			ttl = vs.UnusedTTL
		}
		if now.Sub(v.LastSeen()) > ttl && v.Bridges() == 0 && !v.Sandbox.InUse() {
			vs.removeLocked(v, "idle too long")
			n++
		}
	}
	return n
}

// Run sweeps every minute (or TTL/4 if shorter) until ctx is done.
func (vs *Visitors) Run(ctx context.Context) {
	ttl := vs.TTL
	if vs.UnusedTTL > 0 {
		ttl = min(ttl, vs.UnusedTTL)
	}
	every := min(time.Minute, max(ttl/4, 10*time.Millisecond))
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			vs.Sweep(now)
			if vs.Store != nil {
				vs.sweepShared()
			}
		}
	}
}

// LogName is how the log names a login (pop3.Server.LogUser): a personal
// login as its account and the visitor's pseudonym, so that the log never
// holds what logs in to someone's sandbox.
func (vs *Visitors) LogName(user string) string {
	account, id, ok := splitPersonal(user)
	if !ok {
		return user
	}
	if v := vs.ByID(id); v != nil {
		return account + " (" + v.Name() + ")"
	}
	return account + ".(unknown)"
}

// splitPersonal splits a personal login "account.ID" at its last dot.
func splitPersonal(user string) (account, id string, ok bool) {
	i := strings.LastIndexByte(user, '.')
	if i <= 0 || len(user)-i-1 != 10 {
		return "", "", false
	}
	return user[:i], user[i+1:], true
}
