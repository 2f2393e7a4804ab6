package sessions

import (
	"context"
	"errors"
	"time"
)

// The store boundary (DESIGN §9): what the replicas of one playground
// share. A Store holds records, never views: a visitor's record (token,
// ID, handle), each sandbox's diff over the world (per account, the
// world's messages deleted there, by UID), a generation that Reset
// bumps, and the maildrop locks as leases. The world is never in it:
// every replica loads the same files, so a UID names the same message on
// each. Visitors with no Store keep everything in the process, as one
// replica always did.
//
// Two implementations pass one contract suite (store_test.go): MemStore,
// in the process (two Visitors sharing one are two replicas in a test),
// and RedisStore, for replicas on Redis or Valkey.
type Store interface {
	// CreateVisitor stores a new visitor's record, for ttl. It fails
	// with ErrExists if the token or the ID is taken.
	CreateVisitor(ctx context.Context, r VisitorRecord, ttl time.Duration) error
	// VisitorByToken and VisitorByID find a record, or fail with
	// ErrNotFound.
	VisitorByToken(ctx context.Context, token string) (VisitorRecord, error)
	VisitorByID(ctx context.Context, id string) (VisitorRecord, error)
	// TouchVisitor keeps a record (and its sandbox) for another ttl.
	TouchVisitor(ctx context.Context, r VisitorRecord, ttl time.Duration) error
	// DeleteVisitor forgets a record and its sandbox.
	DeleteVisitor(ctx context.Context, r VisitorRecord) error
	// Visitors lists the records of every visitor held, for the
	// organiser's page (any replica shows every visitor).
	Visitors(ctx context.Context) ([]VisitorRecord, error)
	// Admit counts a new visitor against the limits every replica
	// shares, atomically: lim.Rate a second from r.IP (an address key)
	// after lim.Burst, lim.MaxPerIP live from it, lim.Max live in all
	// (zero: no limit). It fails with ErrTooFast, ErrIPTooMany or ErrFull
	// and counts nothing then. A visitor counts until DeleteVisitor or
	// its TTL, which TouchVisitor extends.
	Admit(ctx context.Context, r VisitorRecord, lim Limits, ttl time.Duration) error

	// Sandbox is a sandbox's diff over the world: empty for one never
	// changed. Its Gone is set when the store holds no visitor of that
	// ID: ended on another replica, expired, or a store that came back
	// empty.
	Sandbox(ctx context.Context, id string) (SandboxState, error)
	// Gone reports which of these tokens' visitors the store no longer
	// holds.
	Gone(ctx context.Context, tokens []string) ([]bool, error)
	// Delete records, at QUIT, that account's messages are deleted in
	// sandbox id: the world's by UID, those that arrived by their ref
	// (SandboxState.Extra). It applies only if owner still holds the
	// account's lease and the sandbox is still at generation gen (a
	// reset since the login deletes nothing): a compare-and-set, so that
	// two replicas never both apply deletions. It fails with ErrConflict
	// otherwise.
	Delete(ctx context.Context, id, account, owner string, gen uint64, uids []string) error
	// Deliver adds a message that arrived by SMTP to account's maildrop
	// in sandbox id, unless the sandbox holds max of them already (max 0:
	// no limit): ErrMailboxFull. No lease is needed: mail arrives while a
	// session holds the maildrop, and that session keeps its view.
	Deliver(ctx context.Context, id, account string, m StoredMessage, max int) error
	// Message is the octets of a message Deliver stored, by UID.
	Message(ctx context.Context, id, uid string) ([]byte, error)
	// Arrived adds refs of bulletins' copies to account's maildrop and
	// records seen as the newest bulletin delivered, if owner holds the
	// account's lease (ErrConflict otherwise).
	Arrived(ctx context.Context, id, account, owner string, refs []string, seen int) error
	// ResetSandbox gives the sandbox back the world's messages and bumps
	// its generation.
	ResetSandbox(ctx context.Context, id string) error

	// Lease takes the lock on sandbox id's account for owner, or renews
	// it if owner holds it, for ttl (RFC 1939 §8, across replicas). It
	// reports false if another owner holds it.
	Lease(ctx context.Context, id, account, owner string, ttl time.Duration) (bool, error)
	// Release gives the lock up if owner holds it (compare-and-delete).
	Release(ctx context.Context, id, account, owner string) error

	// Ping reports whether the store answers (/readyz).
	Ping(ctx context.Context) error
	// Publish appends facts to visitor id's stream (the last
	// EventLogSize kept, as long as the visitor), numbering them 1, 2, …
	// in the order the store takes them, and tells every replica that
	// follows id.
	Publish(ctx context.Context, id string, facts [][]byte) error
	// Facts are the facts of id's stream numbered after seq, in order.
	Facts(ctx context.Context, id string, after uint64) ([]Fact, error)
	// Heads are the numbers of these visitors' last facts (0: none).
	Heads(ctx context.Context, ids []string) ([]uint64, error)
	// Follow returns a Follower: the facts published from now on, for
	// the visitors it is told to follow.
	Follow(ctx context.Context) Follower

	// Arm notes that visitor id used the client lab from address key,
	// for ttl; Armed lists the visitors who did within their ttl
	// (labport.go: a lab port's connection from key is theirs).
	Arm(ctx context.Context, key, id string, ttl time.Duration) error
	Armed(ctx context.Context, key string) ([]string, error)

	// AdminSession stores an organiser's sign-in for ttl (ttl > 0),
	// forgets it (ttl 0), or, with ttl < 0, reports whether it holds.
	AdminSession(ctx context.Context, id string, ttl time.Duration) (bool, error)
	// Bucket is a token bucket every replica shares: it reports whether
	// key has a token left (rate a second after burst) and, with take,
	// takes it.
	Bucket(ctx context.Context, key string, rate float64, burst int, take bool) (bool, error)

	// Replica gives a starting replica a number no other replica of
	// the store had: its connections are numbered from it
	// (pop3.Server.IDBase).
	Replica(ctx context.Context) (uint64, error)
}

// A VisitorRecord is what every replica knows of a visitor.
type VisitorRecord struct {
	Token   string    `json:"token"`
	ID      string    `json:"id"`
	Handle  string    `json:"handle"`
	IP      string    `json:"ip"` // limit.AddrKey of where it came from
	Created time.Time `json:"created"`
}

// SandboxState is a sandbox's diff over the world.
type SandboxState struct {
	Gone    bool                // the store holds no visitor of this ID
	Gen     uint64              // bumped by every reset
	Deleted map[string][]string // account → UIDs of the world's messages deleted
	// Extra are the messages that arrived, per account, in order, by
	// ref: "m:UID" for one delivered by SMTP (its octets by
	// Store.Message), "b:ID:HASH" for a bulletin's copy (the world has
	// the bulletin; HASH tells one posted on another replica).
	Extra     map[string][]string
	Seen      map[string]int // account → the newest bulletin delivered
	Delivered int            // messages delivered by SMTP since made or reset
}

// A Fact is one entry of a visitor's stream.
type Fact struct {
	Visitor string // its ID
	Seq     uint64
	Data    []byte
}

// A Follower receives the facts published for the visitors it follows,
// in the order of each visitor's stream. Add returns once what is
// published after it reaches the follower.
type Follower interface {
	Add(ctx context.Context, ids ...string) error
	Remove(ctx context.Context, ids ...string) error
	Facts() <-chan Fact
	Close() error
}

// Limits are the caps on making visitors that hold across replicas.
type Limits struct {
	Rate          float64
	Burst         int
	MaxPerIP, Max int
}

// A StoredMessage is a delivered message as the store keeps it.
type StoredMessage struct {
	UID  string
	Data []byte
}

// Errors of a Store.
var (
	ErrNotFound    = errors.New("sessions: not in the store")
	ErrExists      = errors.New("sessions: already in the store")
	ErrConflict    = errors.New("sessions: the lease or the sandbox changed meanwhile")
	ErrMailboxFull = errors.New("sessions: the sandbox holds as many delivered messages as it may")
)

// storeTimeout bounds one call to the store: past it the client gets a
// polite refusal with words, never a hang.
const storeTimeout = 3 * time.Second

// LeaseTTL is how long a maildrop lock outlives the session that holds
// it if its replica dies (SIGKILL): the live session renews it every
// LeaseTTL/3, so a replica that dies just after a renewal holds it
// LeaseTTL at most, inside the 15 s the issue allows.
const LeaseTTL = 12 * time.Second

func newSandboxState() SandboxState {
	return SandboxState{Deleted: map[string][]string{}, Extra: map[string][]string{}, Seen: map[string]int{}}
}
