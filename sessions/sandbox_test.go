package sessions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/pop3playground/pop3playground/pop3"
)

func loadDefault(t testing.TB) *World {
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
	infos := infos(md)
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
	if n := len(infos(md2)); n != 7 {
		t.Errorf("connection 2 sees %d messages", n)
	}
	if note := md2.(pop3.Noter).Note(); note == "" {
		t.Error("a per-connection maildrop must say that it is private")
	}
	md2.Close()
}

// infos lists a maildrop's messages, as a session sees them one by one.
func infos(md pop3.Maildrop) []pop3.MessageInfo {
	n, _ := md.Stat()
	out := make([]pop3.MessageInfo, n)
	for i := range out {
		out[i] = md.Message(i)
	}
	return out
}

// A view keeps the world's list and what changed, not a copy: after any
// mix of deletions and arrivals, its i-th message must be the i-th of the
// plain list a naive copy would hold.
func TestViewMatchesACopy(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	newMsg := func(n int) *Message { return &Message{data: make([]byte, n), uid: fmt.Sprint("m", n)} }
	for round := range 200 {
		base := make([]*Message, rng.IntN(50))
		for i := range base {
			base[i] = newMsg(i + 1)
		}
		v := view{base: base}
		for _, m := range base {
			v.size += m.Size()
		}
		want := slices.Clone(base)
		for step := range 20 {
			if rng.IntN(3) == 0 {
				m := newMsg(1000 + round*100 + step)
				v = v.with(m)
				want = append(want, m)
				continue
			}
			var del []int
			for i := range want {
				if rng.IntN(4) == 0 {
					del = append(del, i)
				}
			}
			if rng.IntN(5) == 0 {
				del = append(del, del...) // twice over: no message is removed twice
			}
			v = v.without(del)
			kept := want[:0:0]
			for i, m := range want {
				if !slices.Contains(del, i) {
					kept = append(kept, m)
				}
			}
			want = kept
		}
		if v.len() != len(want) {
			t.Fatalf("round %d: view has %d messages, the copy %d", round, v.len(), len(want))
		}
		var size int64
		for i, m := range want {
			if v.at(i) != m {
				t.Fatalf("round %d: message %d differs", round, i)
			}
			size += m.Size()
		}
		if v.size != size {
			t.Fatalf("round %d: view says %d octets, the copy holds %d", round, v.size, size)
		}
	}
}

// A sandbox keeps what its visitor changed, not a copy of the world: after
// deleting one message of a large maildrop it holds one index, and a
// message delivered during the session survives that session's QUIT.
func TestSandboxKeepsOnlyChanges(t *testing.T) {
	w := loadDefault(t)
	big := make([]*Message, 100_000)
	for i := range big {
		big[i] = w.Account("guest").Messages[i%7]
	}
	w.accounts["guest"] = newAccount("guest", "visitor", big)
	sb := NewSandbox(w)
	md, err := sb.Open("guest")
	if err != nil {
		t.Fatal(err)
	}
	if n, size := md.Stat(); n != 100_000 || size != w.accounts["guest"].size {
		t.Fatalf("Stat = %d, %d", n, size)
	}
	m, err := newMessage([]byte("Subject: late\r\n\r\nhello\r\n"), "t", 1)
	if err != nil {
		t.Fatal(err)
	}
	assignUIDs([]*Message{m})
	if err := sb.Deliver("guest", m, 0); err != nil {
		t.Fatal(err)
	}
	if err := md.Delete([]int{99_999}); err != nil {
		t.Fatal(err)
	}
	md.Close()
	v := sb.views["guest"]
	if len(v.gone) != 1 || len(v.extra) != 1 || &v.base[0] != &big[0] {
		t.Fatalf("the view keeps %d gone, %d extra, shares the world's list: %v", len(v.gone), len(v.extra), &v.base[0] == &big[0])
	}
	msgs := sb.Messages("guest")
	if len(msgs) != 100_000 || msgs[99_999] != m {
		t.Errorf("after deleting the last and receiving one: %d messages, last %q", len(msgs), msgs[len(msgs)-1].Subject)
	}
}
