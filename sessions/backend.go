package sessions

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/pop3/limit"
)

// Backend serves a World over POP3.
//
// A connection from the web bridge carries its visitor's token in a PROXY v2
// TLV (type TLVToken); its login opens the account in that visitor's
// sandbox. A personal login ("guest.k7m2xq9dab" with guest's password)
// reaches the same sandbox from any client. Any other login gets a fresh
// sandbox for that connection alone: what it deletes lasts until the
// connection closes, and the replies say so.
type Backend struct {
	World *World
	// Visitors, if set, are the web playground's visitors.
	Visitors *Visitors

	direct atomic.Int64 // throw-away sandboxes in use
}

// DirectSandboxes is how many throw-away sandboxes of direct logins are in
// use.
func (b *Backend) DirectSandboxes() int64 { return b.direct.Load() }

// TLVToken is the PROXY v2 TLV type that carries a visitor's token: the
// first of the range the PROXY protocol leaves to applications (0xE0–0xEF).
const TLVToken = 0xE0

// TLVTab is the PROXY v2 TLV type that names the page (browser tab) a
// bridged connection comes from, so that the page can tell its own
// terminal's events from those of the visitor's other connections.
const TLVTab = 0xE1

var _ pop3.APOPBackend = (*Backend)(nil)

// connectionNote tells a direct client why its deletions do not last.
const connectionNote = "a private copy for this connection: the next connection starts afresh; use your personal login from the web page to keep changes"

// goneVisitor refuses a bridged login whose visitor this process does
// not hold, saying what it knows of why.
func (b *Backend) goneVisitor(token string) error {
	if why, ok := b.Visitors.Forgotten(token); ok {
		return &pop3.LoginError{Code: "SYS/PERM", Text: "your playground session has ended (" + why + "): reload the page to get a new one"}
	}
	return &pop3.LoginError{Code: "SYS/PERM", Text: "the PROXY header names no playground session this server gave out (it may have restarted since): reload the page to get a new one"}
}

// sandbox finds the sandbox a login goes to, the account name within it,
// and the visitor of a personal login. direct is true for a throw-away
// sandbox of this connection alone.
func (b *Backend) sandbox(c *pop3.ConnInfo, user string) (sb *Sandbox, account string, personal *Visitor, direct bool, err error) {
	if b.Visitors != nil {
		if tok, ok := c.ProxyTLVs[TLVToken]; ok && c.Proxied {
			v := b.Visitors.Get(string(tok))
			if v == nil {
				return nil, "", nil, false, b.goneVisitor(string(tok))
			}
			return v.Sandbox, user, nil, false, nil
		}
		if b.World.Account(user) == nil {
			if account, id, ok := splitPersonal(user); ok {
				v, err := b.Visitors.Lookup(id)
				if err != nil {
					return nil, "", nil, false, errStoreDown
				}
				if v != nil {
					v.Touch()
					return v.Sandbox, account, v, false, nil
				}
			}
		}
	}
	return NewSandbox(b.World), user, nil, true, nil
}

// labVisitor is the visitor whose lab login (or address's local part)
// name is: LAB.ID, when the world has no account of that name.
func (vs *Visitors) labVisitor(name string) *Visitor {
	if vs.world.Account(LabAccount) != nil {
		return nil
	}
	account, id, ok := splitPersonal(name)
	if !ok || account != LabAccount {
		return nil
	}
	v := vs.ByID(id)
	if v != nil {
		v.waitCaughtUp() // the lab's scenario, chosen on any replica
	}
	return v
}

// labVisitor is the visitor whose lab login user is, on a direct
// connection, or nil.
func (b *Backend) labVisitor(c *pop3.ConnInfo, user string) *Visitor {
	if b.Visitors == nil || c.Proxied {
		return nil
	}
	v := b.Visitors.labVisitor(user)
	if v != nil {
		v.Touch()
		b.Visitors.bindConn(c.ID, v) // the lab grades failed logins too
	}
	return v
}

// Login implements pop3.Backend.
func (b *Backend) Login(ctx context.Context, c *pop3.ConnInfo, user, password string) (pop3.Maildrop, error) {
	if v := b.labVisitor(c, user); v != nil {
		return v.Lab.login(c, password, "", "")
	}
	sb, account, personal, direct, err := b.sandbox(c, user)
	if err != nil {
		return nil, err
	}
	md, err := sb.Login(account, password)
	return b.opened(c, personal, md, err, direct)
}

// LoginAPOP implements pop3.APOPBackend.
func (b *Backend) LoginAPOP(ctx context.Context, c *pop3.ConnInfo, user, timestamp, digest string) (pop3.Maildrop, error) {
	if v := b.labVisitor(c, user); v != nil {
		return v.Lab.login(c, "", timestamp, digest)
	}
	sb, account, personal, direct, err := b.sandbox(c, user)
	if err != nil {
		return nil, err
	}
	md, err := sb.LoginAPOP(account, timestamp, digest)
	return b.opened(c, personal, md, err, direct)
}

// opened finishes a login: a personal login's events go to its visitor
// from now on, once the password was right, even if the maildrop was
// locked ([IN-USE] is part of a lesson); a failed guess at someone's
// login tells them nothing.
func (b *Backend) opened(c *pop3.ConnInfo, personal *Visitor, md *Maildrop, err error, direct bool) (pop3.Maildrop, error) {
	if errors.Is(err, errVisitorGone) {
		// As if this process never had the visitor.
		if personal != nil {
			return nil, pop3.ErrAuthFailed
		}
		return nil, b.goneVisitor(string(c.ProxyTLVs[TLVToken]))
	}
	if personal != nil && errors.Is(err, pop3.ErrAuthFailed) && b.Visitors != nil {
		// Not on the visitor's page (it may be a stranger's guess), but
		// where the organiser looks when a student says "it says wrong
		// password".
		b.Visitors.errors.add(ErrorNote{Time: time.Now(), Visitor: personal.Name(),
			Command: "personal login from " + remoteHost(c), Reply: "-ERR [AUTH] wrong user name or password"})
	}
	if personal != nil && (err == nil || errors.Is(err, pop3.ErrMaildropInUse)) {
		b.Visitors.bindConn(c.ID, personal)
	}
	if err != nil {
		return nil, err
	}
	if direct {
		md.note = connectionNote
		b.direct.Add(1)
		md.release = func() { b.direct.Add(-1) }
	}
	return md, nil
}

// Login checks user's password and opens their maildrop in the sandbox.
func (sb *Sandbox) Login(user, password string) (*Maildrop, error) {
	a := sb.world.Account(user)
	if a == nil {
		// Compare anyway, so that timing does not tell which users exist.
		limit.Equal(password, "\x00no such user")
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
func (a *Account) CheckPassword(password string) bool { return limit.Equal(password, a.password) }

// remoteHost is the client's address without its port.
func remoteHost(c *pop3.ConnInfo) string {
	if c == nil || c.RemoteAddr == nil {
		return "?"
	}
	return limit.Host(c.RemoteAddr.String())
}
