package sessions

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/pop3playground/pop3playground/pop3"
)

func loadDefault(t *testing.T) *World {
	t.Helper()
	w, err := DefaultWorld()
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestSandboxesAreIsolated(t *testing.T) {
	w := loadDefault(t)
	a, b := NewSandbox(w), NewSandbox(w)
	md, err := a.Login("guest", "visitor")
	if err != nil {
		t.Fatal(err)
	}
	if err := md.Delete([]int{0, 2}); err != nil {
		t.Fatal(err)
	}
	md.Close()
	if n := len(a.Messages("guest")); n != 5 {
		t.Errorf("sandbox a has %d messages after deleting 2 of 7", n)
	}
	if n := len(b.Messages("guest")); n != 7 {
		t.Errorf("sandbox b sees a's deletion: %d messages", n)
	}
	if n := len(w.Account("guest").Messages); n != 7 {
		t.Errorf("the world changed: %d messages", n)
	}
	// The sandbox shares the messages themselves with the world.
	if a.Messages("guest")[0] != w.Account("guest").Messages[1] {
		t.Error("a sandbox copied a message instead of sharing it")
	}
	a.Reset()
	if n := len(a.Messages("guest")); n != 7 {
		t.Errorf("after Reset: %d messages", n)
	}
}

func TestSandboxLock(t *testing.T) {
	sb := NewSandbox(loadDefault(t))
	md, err := sb.Login("guest", "visitor")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Login("guest", "visitor"); !errors.Is(err, pop3.ErrMaildropInUse) {
		t.Errorf("second login: %v, want ErrMaildropInUse", err)
	}
	if _, err := sb.Login("mrose", "tanstaaf"); err != nil {
		t.Errorf("another account: %v", err)
	}
	md.Close()
	md.Close() // twice is harmless
	if _, err := sb.Login("guest", "visitor"); err != nil {
		t.Errorf("after Close: %v", err)
	}
}

func TestSandboxResetDuringSession(t *testing.T) {
	sb := NewSandbox(loadDefault(t))
	md, _ := sb.Login("guest", "visitor")
	sb.Reset()
	md.Delete([]int{0})
	md.Close()
	if n := len(sb.Messages("guest")); n != 7 {
		t.Errorf("a deletion from before Reset applied after it: %d messages", n)
	}
}

func TestLoginFailures(t *testing.T) {
	sb := NewSandbox(loadDefault(t))
	for _, tc := range []struct{ user, pass string }{{"guest", "wrong"}, {"nobody", "visitor"}, {"guest", ""}, {"Guest", "visitor"}} {
		if _, err := sb.Login(tc.user, tc.pass); !errors.Is(err, pop3.ErrAuthFailed) {
			t.Errorf("Login(%q, %q) = %v, want ErrAuthFailed", tc.user, tc.pass, err)
		}
	}
}

func TestMaildropContent(t *testing.T) {
	sb := NewSandbox(loadDefault(t))
	md, _ := sb.Login("guest", "visitor")
	defer md.Close()
	infos := md.Messages()
	for i, info := range infos {
		r, err := md.Open(i)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		if int64(len(b)) != info.Size {
			t.Errorf("message %d: %d octets, listed as %d", i+1, len(b), info.Size)
		}
	}
}

func TestBackendGivesEachConnectionAFreshSandbox(t *testing.T) {
	be := &Backend{World: loadDefault(t)}
	md1, err := be.Login(context.Background(), &pop3.ConnInfo{ID: 1}, "guest", "visitor")
	if err != nil {
		t.Fatal(err)
	}
	md2, err := be.Login(context.Background(), &pop3.ConnInfo{ID: 2}, "guest", "visitor")
	if err != nil {
		t.Fatalf("a second direct connection was locked out: %v", err)
	}
	md1.Delete([]int{0})
	md1.Close()
	if n := len(md2.Messages()); n != 7 {
		t.Errorf("connection 2 sees %d messages", n)
	}
	if note := md2.(pop3.Noter).Note(); note == "" {
		t.Error("a per-connection maildrop must say that it is private")
	}
	md2.Close()
}
