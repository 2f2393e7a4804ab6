package sessions

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/pop3playground/pop3playground/pop3"
)

func TestNewVisitor(t *testing.T) {
	vs := NewVisitors(loadDefault(t))
	a, err := vs.New("192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := vs.New("192.0.2.1")
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(a.Token) {
		t.Errorf("token %q: want 128 bits as 32 hex digits", a.Token)
	}
	if !regexp.MustCompile(`^[a-z2-7]{10}$`).MatchString(a.ID) {
		t.Errorf("id %q: want 10 base32 characters (50 bits)", a.ID)
	}
	if a.Token == b.Token || a.ID == b.ID || a.Sandbox == b.Sandbox {
		t.Error("two visitors share a token, an id or a sandbox")
	}
	if got := a.PersonalLogin("guest"); got != "guest."+a.ID {
		t.Errorf("personal login %q", got)
	}
	if vs.Get(a.Token) != a || vs.ByID(b.ID) != b || vs.Get("nope") != nil || vs.Len() != 2 {
		t.Error("lookups are wrong")
	}
	if !vs.End(a.Token) || vs.Get(a.Token) != nil || vs.ByID(a.ID) != nil || vs.End(a.Token) {
		t.Error("End did not forget the visitor exactly once")
	}
}

func TestVisitorLimits(t *testing.T) {
	vs := NewVisitors(loadDefault(t))
	vs.Max, vs.MaxPerIP = 3, 2
	for range 2 {
		if _, err := vs.New("192.0.2.1"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := vs.New("192.0.2.1"); !errors.Is(err, ErrIPTooMany) {
		t.Errorf("third from one address: %v, want ErrIPTooMany", err)
	}
	c, err := vs.New("192.0.2.2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vs.New("192.0.2.3"); !errors.Is(err, ErrFull) {
		t.Errorf("fourth: %v, want ErrFull", err)
	}
	vs.End(c.Token)
	if _, err := vs.New("192.0.2.3"); err != nil {
		t.Errorf("after one left: %v", err)
	}
}

func TestSweepForgetsIdleVisitorsOnly(t *testing.T) {
	vs := NewVisitors(loadDefault(t))
	vs.TTL = time.Hour
	idle, _ := vs.New("a")
	bridged, _ := vs.New("a")
	locked, _ := vs.New("a")
	active, _ := vs.New("a")
	later := time.Now().Add(2 * time.Hour)
	bridged.AcquireBridge(4)
	md, err := locked.Sandbox.Open("guest")
	if err != nil {
		t.Fatal(err)
	}
	active.lastSeen.Store(later.UnixNano())
	bridged.lastSeen.Store(0)
	if n := vs.Sweep(later); n != 1 || vs.Get(idle.Token) != nil {
		t.Errorf("swept %d; want only the idle visitor", n)
	}
	bridged.ReleaseBridge()
	md.Close()
	for _, v := range []*Visitor{bridged, locked} {
		v.lastSeen.Store(0)
	}
	if n := vs.Sweep(later); n != 2 || vs.Len() != 1 {
		t.Errorf("swept %d, %d left; want the two released ones gone", n, vs.Len())
	}
}

func TestRunSweeps(t *testing.T) {
	vs := NewVisitors(loadDefault(t))
	vs.TTL = 20 * time.Millisecond
	vs.New("a")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go vs.Run(ctx)
	for deadline := time.Now().Add(5 * time.Second); vs.Len() > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("an idle visitor was never swept")
		}
	}
}

func TestBridgeCap(t *testing.T) {
	v := &Visitor{}
	for range 3 {
		if !v.AcquireBridge(3) {
			t.Fatal("refused below the cap")
		}
	}
	if v.AcquireBridge(3) {
		t.Error("a fourth bridge was allowed")
	}
	v.ReleaseBridge()
	if !v.AcquireBridge(3) || v.Bridges() != 3 {
		t.Error("a released slot was not reusable")
	}
}

func TestBackendRoutesLogins(t *testing.T) {
	w := loadDefault(t)
	vs := NewVisitors(w)
	be := &Backend{World: w, Visitors: vs}
	alice, _ := vs.New("a")
	bob, _ := vs.New("b")
	bridged := func(v *Visitor) *pop3.ConnInfo {
		return &pop3.ConnInfo{Proxied: true, ProxyTLVs: map[byte][]byte{TLVToken: []byte(v.Token)}}
	}
	ctx := context.Background()

	// Alice deletes message 1 through the bridge.
	md, err := be.Login(ctx, bridged(alice), "guest", "visitor")
	if err != nil {
		t.Fatal(err)
	}
	if n := md.(pop3.Noter).Note(); n != "" {
		t.Errorf("a visitor's login has the direct-connection note %q", n)
	}
	md.Delete([]int{0})
	md.Close()

	// Her personal login sees it; Bob's bridge and a direct login do not.
	count := func(md pop3.Maildrop, err error) int {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer md.Close()
		return len(infos(md))
	}
	if n := count(be.Login(ctx, &pop3.ConnInfo{}, alice.PersonalLogin("guest"), "visitor")); n != 6 {
		t.Errorf("personal login sees %d messages, want 6", n)
	}
	if n := count(be.Login(ctx, bridged(bob), "guest", "visitor")); n != 7 {
		t.Errorf("another visitor sees %d messages, want 7", n)
	}
	if n := count(be.Login(ctx, &pop3.ConnInfo{}, "guest", "visitor")); n != 7 {
		t.Errorf("a direct login sees %d messages, want 7", n)
	}

	// The personal login needs the right password, and the lock is shared
	// with the bridge.
	if _, err := be.Login(ctx, &pop3.ConnInfo{}, alice.PersonalLogin("guest"), "wrong"); !errors.Is(err, pop3.ErrAuthFailed) {
		t.Errorf("wrong password: %v", err)
	}
	held, err := be.Login(ctx, bridged(alice), "guest", "visitor")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := be.Login(ctx, &pop3.ConnInfo{}, alice.PersonalLogin("guest"), "visitor"); !errors.Is(err, pop3.ErrMaildropInUse) {
		t.Errorf("personal login while the bridge holds the lock: %v, want ErrMaildropInUse", err)
	}
	held.Close()

	// A TLV token is only believed from a trusted proxy (Proxied).
	forged := &pop3.ConnInfo{ProxyTLVs: map[byte][]byte{TLVToken: []byte(alice.Token)}}
	if n := count(be.Login(ctx, forged, "guest", "visitor")); n != 7 {
		t.Errorf("an unproxied connection with a token reached a visitor's sandbox (%d messages)", n)
	}

	// A gone visitor gets a reply that says what to do; an unknown
	// personal login is just a failed login.
	vs.End(alice.Token)
	var le *pop3.LoginError
	if _, err := be.Login(ctx, bridged(alice), "guest", "visitor"); !errors.As(err, &le) || le.Code != "SYS/PERM" {
		t.Errorf("expired token: %v, want a SYS/PERM LoginError", err)
	}
	if _, err := be.Login(ctx, &pop3.ConnInfo{}, alice.PersonalLogin("guest"), "visitor"); !errors.Is(err, pop3.ErrAuthFailed) {
		t.Errorf("ended visitor's personal login: %v", err)
	}

	// APOP works with personal logins too.
	ts := "<1.2@test>"
	md, err = be.LoginAPOP(ctx, &pop3.ConnInfo{}, bob.PersonalLogin("guest"), ts, apop(ts, "visitor"))
	if err != nil {
		t.Fatalf("APOP with a personal login: %v", err)
	}
	md.Close()
}

func apop(timestamp, secret string) string {
	sum := md5.Sum([]byte(timestamp + secret))
	return hex.EncodeToString(sum[:])
}
