package sessions

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"

	"github.com/pop3playground/pop3playground/pop3"
)

// Backend serves a World over POP3. A login over a direct connection gets a
// fresh sandbox for that connection alone: what it deletes lasts until the
// connection closes.
type Backend struct {
	World *World
}

var _ pop3.APOPBackend = (*Backend)(nil)

// connectionNote tells a direct client why its deletions do not last.
const connectionNote = "a private copy for this connection: the next connection starts afresh"

// Login implements pop3.Backend.
func (b *Backend) Login(ctx context.Context, c *pop3.ConnInfo, user, password string) (pop3.Maildrop, error) {
	return withNote(NewSandbox(b.World).Login(user, password))
}

// LoginAPOP implements pop3.APOPBackend.
func (b *Backend) LoginAPOP(ctx context.Context, c *pop3.ConnInfo, user, timestamp, digest string) (pop3.Maildrop, error) {
	return withNote(NewSandbox(b.World).LoginAPOP(user, timestamp, digest))
}

func withNote(md *Maildrop, err error) (pop3.Maildrop, error) {
	if err != nil {
		return nil, err
	}
	md.note = connectionNote
	return md, nil
}

// Login checks user's password and opens their maildrop in the sandbox.
func (sb *Sandbox) Login(user, password string) (*Maildrop, error) {
	a := sb.world.Account(user)
	if a == nil {
		// Compare anyway, so that timing does not tell which users exist.
		passwordsEqual(password, "\x00no such user")
		return nil, pop3.ErrAuthFailed
	}
	if !a.CheckPassword(password) {
		return nil, pop3.ErrAuthFailed
	}
	return sb.Open(a.Name)
}

// LoginAPOP checks an APOP digest (RFC 1939 §7) and opens user's maildrop.
func (sb *Sandbox) LoginAPOP(user, timestamp, digest string) (*Maildrop, error) {
	a := sb.world.Account(user)
	if a == nil || !pop3.CheckAPOP(timestamp, a.password, digest) {
		return nil, pop3.ErrAuthFailed
	}
	return sb.Open(a.Name)
}

// CheckPassword reports whether password is the account's.
func (a *Account) CheckPassword(password string) bool { return passwordsEqual(password, a.password) }

// passwordsEqual compares in constant time, whatever the lengths.
func passwordsEqual(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}
