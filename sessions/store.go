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

	// Sandbox is a sandbox's diff over the world: empty for one never
	// changed.
	Sandbox(ctx context.Context, id string) (SandboxState, error)
	// Delete records, at QUIT, that account's messages with these UIDs
	// are deleted in sandbox id, if owner still holds the account's
	// lease and the sandbox is still at generation gen (a reset since
	// the login deletes nothing): a compare-and-set, so that two
	// replicas never both apply deletions. It fails with ErrConflict
	// otherwise.
	Delete(ctx context.Context, id, account, owner string, gen uint64, uids []string) error
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
	Gen     uint64              // bumped by every reset
	Deleted map[string][]string // account → UIDs of the world's messages deleted
}

// Errors of a Store.
var (
	ErrNotFound = errors.New("sessions: not in the store")
	ErrExists   = errors.New("sessions: already in the store")
	ErrConflict = errors.New("sessions: the lease or the sandbox changed meanwhile")
)

// storeTimeout bounds one call to the store: past it the client gets a
// polite refusal with words, never a hang.
const storeTimeout = 3 * time.Second

// LeaseTTL is how long a maildrop lock outlives the session that holds
// it if its replica dies (SIGKILL): the live session renews it every
// LeaseTTL/3.
const LeaseTTL = 15 * time.Second
