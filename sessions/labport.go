package sessions

import (
	"context"
	"io"
	"net"
	"sync"
	"time"

	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/pop3/limit"
)

// The client lab's own ports: a POP3 and an SMTP listener that greet
// after LabGreetingDelay, so that a client that talks first is seen, and
// that can behave before the login as a scenario says (no CAPA or STLS;
// 421 at the greeting; an EHLO reply in pieces). The public ports greet
// at once and never change for a scenario.
//
// Before its login a connection names no one, so a lab port gives it to
// the visitor whose lab panel or script was last used from the same
// client address (limit.AddrKey) within labArmTTL. When several were (a
// classroom behind one NAT), it cannot tell them apart: it gives the
// connection to no one until the login names the lab, and applies no
// scenario before it; each of them is told so on their card.

// DefaultLabDelay is how long the lab ports hold the greeting back
// (Visitors.LabDelay).
const DefaultLabDelay = time.Second

// labArmTTL is how long a visitor's use of the lab from an address
// claims that address's lab-port connections; maxArmsPerKey bounds the
// visitors remembered per address.
const (
	labArmTTL     = 10 * time.Minute
	maxArmsPerKey = 8
)

// labArms are the visitors who used the lab lately, by client address.
type labArms struct {
	mu sync.Mutex
	by map[string][]labArm
}

type labArm struct {
	v  *Visitor
	at time.Time
}

// ArmLab notes that v used the lab (chose a scenario, or read its card)
// from client address ip: the lab ports' next connections from that
// address are v's.
func (vs *Visitors) ArmLab(v *Visitor, ip string) {
	key, now := limit.AddrKey(ip), time.Now()
	if vs.Store != nil { // the lab port may be another replica's
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		if err := vs.Store.Arm(ctx, key, v.ID, labArmTTL); err != nil {
			vs.storeLog().Warn("sessions: the store did not note a use of the lab", "err", err)
		}
		return
	}
	a := &vs.arms
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.by == nil {
		a.by = make(map[string][]labArm)
	}
	arms := a.by[key][:0:0]
	for _, x := range a.by[key] {
		if x.v != v && now.Sub(x.at) < labArmTTL {
			arms = append(arms, x)
		}
	}
	if len(arms) == maxArmsPerKey {
		arms = arms[1:]
	}
	a.by[key] = append(arms, labArm{v: v, at: now})
	a.pruneLocked(now)
}

// pruneLocked forgets addresses whose arms have all expired, now and
// then (when the map has grown by half since the last time).
func (a *labArms) pruneLocked(now time.Time) {
	if len(a.by) < 64 || len(a.by)%32 != 0 {
		return
	}
	for key, arms := range a.by {
		if now.Sub(arms[len(arms)-1].at) >= labArmTTL {
			delete(a.by, key)
		}
	}
}

// armed is the one live visitor who used the lab from addr's key within
// labArmTTL, and how many did.
func (vs *Visitors) armed(addr net.Addr) (v *Visitor, n int) {
	key, now := limit.AddrKey(limit.Host(addr.String())), time.Now()
	if vs.Store != nil {
		return vs.armedShared(key)
	}
	vs.arms.mu.Lock()
	arms := vs.arms.by[key]
	vs.arms.mu.Unlock()
	for _, x := range arms {
		if now.Sub(x.at) < labArmTTL && vs.ByID(x.v.ID) == x.v {
			v, n = x.v, n+1
		}
	}
	if n != 1 {
		v = nil
	}
	for _, x := range arms {
		if n > 1 && vs.ByID(x.v.ID) == x.v {
			x.v.Lab.shared(n)
		}
	}
	return v, n
}

// LabPrelude is how the lab's POP3 port meets a connection
// (pop3.Server.ServePrelude): the greeting held back, and, for the one
// visitor it belongs to, the scenario's commands before the login. The
// Server must report its events to vs (pop3.Server.Observer).
func (vs *Visitors) LabPrelude(c *pop3.ConnInfo) pop3.Prelude {
	p := pop3.Prelude{Delay: vs.LabDelay}
	v, _ := vs.armed(c.RemoteAddr)
	if v == nil {
		return p
	}
	sc := v.Lab.Scenario()
	if sc.Protocol != "pop3" {
		return p
	}
	v.Lab.portConn(c.ID)
	vs.observed.Store(true) // the server reports to vs: the binding ends at close
	vs.bindConn(c.ID, v)    // the lab sees what the client does before the login
	p.Offers = sc.preOffers
	return p
}

// A LabSMTPPrelude is how the lab's SMTP port meets a connection.
type LabSMTPPrelude struct {
	// Refuse, if set, is the reply sent instead of the greeting, before
	// the connection is closed.
	Refuse string
	// Shape, if set, is the way every reply goes out, the greeting on.
	Shape func(io.Writer) io.Writer
}

// LabSMTP is how the lab's SMTP port meets a connection from addr: the
// scenario of the one visitor it belongs to, if any.
func (vs *Visitors) LabSMTP(addr net.Addr) LabSMTPPrelude {
	v, _ := vs.armed(addr)
	if v == nil {
		return LabSMTPPrelude{}
	}
	return v.Lab.smtpPrelude()
}

// armedShared is armed with a store: the visitors who used the lab from
// key on any replica.
func (vs *Visitors) armedShared(key string) (v *Visitor, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	ids, err := vs.Store.Armed(ctx, key)
	cancel()
	if err != nil {
		return nil, 0
	}
	var live []*Visitor
	for _, id := range ids {
		if x := vs.ByID(id); x != nil {
			x.waitCaughtUp()
			live = append(live, x)
		}
	}
	if len(live) > 1 {
		for _, x := range live {
			x.Lab.shared(len(live))
		}
	}
	if len(live) == 1 {
		return live[0], 1
	}
	return nil, len(live)
}
