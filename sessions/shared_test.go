package sessions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/pop3/pop3test"
)

// A replica is one playground process as the tests run it: its visitors
// on a shared store, and a POP3 server on a real listener.
type replica struct {
	vs   *Visitors
	srv  *pop3.Server
	addr string
}

func startReplica(t testing.TB, w *World, store Store) *replica {
	t.Helper()
	vs := NewVisitors(w)
	vs.Store = store
	vs.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := pop3.NewServer(&Backend{World: w, Visitors: vs})
	if store != nil {
		n, err := store.Replica(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		srv.IDBase = n << 40
	}
	srv.Observer = vs
	srv.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv.AuthFailureDelay = time.Millisecond
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return &replica{vs: vs, srv: srv, addr: l.Addr().String()}
}

// sharedStores are the stores the replica tests run on: in the process,
// and Redis as miniredis plays it (the real redis-server runs in
// cmd/pop3playground's replica test).
func sharedStores(t *testing.T) map[string]func(t *testing.T) Store {
	return map[string]func(t *testing.T) Store{
		"mem": func(*testing.T) Store { return NewMemStore() },
		"miniredis": func(t *testing.T) Store {
			s, err := NewRedisStore("redis://" + miniredis.RunT(t).Addr() + "/0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
}

// stat logs in to addr as user and returns STAT's reply.
func stat(t *testing.T, addr, user string) string {
	t.Helper()
	c := pop3test.Dial(t, addr)
	c.Expect("USER "+user, "+OK")
	c.Expect("PASS visitor", "+OK")
	got := c.Expect("STAT", "+OK")
	c.Expect("QUIT", "+OK")
	return got
}

// Two replicas on one store are one playground: a visitor made on A logs
// in on B with its personal login; what B deletes, A sees; the lock
// holds across them; a reset on one is a reset on both; and a replica
// started afresh (a restart) finds the visitor and its deletions.
func TestReplicasShareVisitorsAndSandboxes(t *testing.T) {
	w := loadDefault(t)
	for name, open := range sharedStores(t) {
		t.Run(name, func(t *testing.T) {
			store := open(t)
			a, b := startReplica(t, w, store), startReplica(t, w, store)
			v, err := a.vs.New("192.0.2.1")
			if err != nil {
				t.Fatal(err)
			}
			login := v.PersonalLogin("guest")

			c := pop3test.Dial(t, b.addr)
			c.Expect("USER "+login, "+OK")
			c.Expect("PASS visitor", "+OK "+login+"'s maildrop has 7 messages")
			// While B holds the maildrop, A refuses it.
			l := pop3test.Dial(t, a.addr)
			l.Expect("USER "+login, "+OK")
			l.Expect("PASS visitor", "-ERR [IN-USE]")
			c.Expect("DELE 1", "+OK")
			c.Expect("DELE 3", "+OK")
			c.Expect("QUIT", "+OK")
			if got := stat(t, a.addr, login); !strings.HasPrefix(got, "+OK 5 ") {
				t.Errorf("STAT on A after B deleted two: %q", got)
			}

			// A replica started afresh finds the visitor by its cookie's
			// token, and its sandbox as it was.
			fresh := startReplica(t, w, store)
			if got := fresh.vs.Get(v.Token); got == nil || got.ID != v.ID || got.Handle != v.Handle {
				t.Fatalf("a fresh replica's Get: %+v", got)
			}
			if got := stat(t, fresh.addr, login); !strings.HasPrefix(got, "+OK 5 ") {
				t.Errorf("STAT on a fresh replica: %q", got)
			}

			// A reset on B is a reset everywhere.
			b.vs.Reset(b.vs.Get(v.Token))
			if got := stat(t, a.addr, login); !strings.HasPrefix(got, "+OK 7 ") {
				t.Errorf("STAT on A after a reset on B: %q", got)
			}

			// A session that logged in before a reset on another replica
			// deletes nothing at its QUIT.
			c = pop3test.Dial(t, a.addr)
			c.Expect("USER "+login, "+OK")
			c.Expect("PASS visitor", "+OK")
			c.Expect("DELE 2", "+OK")
			b.vs.Reset(b.vs.Get(v.Token))
			c.Expect("QUIT", "+OK")
			if got := stat(t, b.addr, login); !strings.HasPrefix(got, "+OK 7 ") {
				t.Errorf("STAT after a QUIT that followed a reset: %q", got)
			}

			// Ended on A: forgotten by every replica (B drops its copy as
			// the end reaches it; a fresh one never finds it), and B's
			// login answers as a process that never had it would.
			a.vs.End(v.Token)
			if got := startReplica(t, w, store).vs.Get(v.Token); got != nil {
				t.Errorf("an ended visitor is found by a fresh replica")
			}
			pop3test.WaitFor(t, func() bool { return b.vs.Len() == 0 })
			c = pop3test.Dial(t, b.addr)
			c.Expect("USER "+login, "+OK")
			c.Expect("PASS visitor", "-ERR [AUTH]")

			// A visitor that lapsed in the store: the replicas that hold it
			// forget it at their sweep.
			v3, _ := a.vs.New("192.0.2.1")
			b.vs.Get(v3.Token)
			store.DeleteVisitor(ctx, v3.record())
			b.vs.sweepShared()
			if b.vs.Len() != 0 {
				t.Error("B still holds a visitor its store forgot, after its sweep")
			}

			// A store that forgot a visitor (it came back empty): the
			// replica that holds it finds out at the login.
			v2, _ := a.vs.New("192.0.2.1")
			store.DeleteVisitor(ctx, v2.record())
			c = pop3test.Dial(t, a.addr)
			c.Expect("USER "+v2.PersonalLogin("guest"), "+OK")
			c.Expect("PASS visitor", "-ERR [AUTH]")
			if a.vs.Get(v2.Token) != nil {
				t.Error("A still holds a visitor its store forgot")
			}
		})
	}
}

// A lease that is not renewed lapses: a replica that died holding a
// maildrop (no Close, no renewal) blocks it for LeaseTTL at most.
func TestLeaseOfADeadReplicaLapses(t *testing.T) {
	m := miniredis.RunT(t)
	store, err := NewRedisStore("redis://" + m.Addr() + "/0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() }) // after the replicas' servers
	w := loadDefault(t)
	a, b := startReplica(t, w, store), startReplica(t, w, store)
	v, _ := a.vs.New("192.0.2.1")
	// The dead replica's session: the lease taken, never renewed or released.
	if ok, _ := store.Lease(ctx, v.ID, "guest", "dead", LeaseTTL); !ok {
		t.Fatal("lease")
	}
	c := pop3test.Dial(t, b.addr)
	c.Expect("USER "+v.PersonalLogin("guest"), "+OK")
	c.Expect("PASS visitor", "-ERR [IN-USE]")
	m.FastForward(LeaseTTL)
	c.Expect("USER "+v.PersonalLogin("guest"), "+OK")
	c.Expect("PASS visitor", "+OK")
}

// A store that does not answer: a personal login is refused with
// -ERR [SYS/TEMP] and words, mail to a personal address with 451 4.3.0,
// a new visitor with ErrStore, each within the store's timeout; when the
// store is back, the same replica serves again without a restart.
func TestStoreDownRefusesWithWords(t *testing.T) {
	m := miniredis.RunT(t)
	store, err := NewRedisStore("redis://" + m.Addr() + "/0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	w := loadDefault(t)
	a, b := startReplica(t, w, store), startReplica(t, w, store)
	v, _ := a.vs.New("192.0.2.1")
	login := v.PersonalLogin("guest")
	d := NewDelivery(b.vs, "play.example")

	m.Close()
	start := time.Now()
	c := pop3test.Dial(t, b.addr)
	c.Expect("USER "+login, "+OK")
	c.Expect("PASS visitor", "-ERR [SYS/TEMP] the playground's store is not answering right now")
	if _, err := b.vs.New("192.0.2.2"); !errors.Is(err, ErrStore) {
		t.Errorf("a new visitor with the store down: %v", err)
	}
	s := &smtpSession{d: d}
	if err := s.Rcpt(login+"@play.example", nil); err == nil || !strings.Contains(err.Error(), "451") {
		t.Errorf("RCPT to a personal address with the store down: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the refusals took %v", took)
	}

	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	c.Expect("USER "+login, "+OK")
	c.Expect("PASS visitor", "+OK")
	c.Expect("QUIT", "+OK")
}

// Mail delivered on one replica is in the maildrop on every replica, and
// deleted from every replica by one QUIT; a bulletin arrives once, not
// once per replica.
func TestReplicasShareArrivals(t *testing.T) {
	w := loadDefault(t)
	if _, err := w.Bulletins.Post("org@example.org", "Welcome", "Hello."); err != nil {
		t.Fatal(err)
	}
	for name, open := range sharedStores(t) {
		t.Run(name, func(t *testing.T) {
			store := open(t)
			a, b := startReplica(t, w, store), startReplica(t, w, store)
			v, _ := a.vs.New("192.0.2.1")
			login := v.PersonalLogin("guest")
			// The first login, on A, gets the bulletin: 8.
			if got := stat(t, a.addr, login); !strings.HasPrefix(got, "+OK 8 ") {
				t.Fatalf("STAT on A with a bulletin: %q", got)
			}
			// Mail in on B.
			s := &smtpSession{d: NewDelivery(b.vs, "play.example"), ip: "192.0.2.9", helo: "teacher"}
			if err := s.Rcpt(login+"@play.example", nil); err != nil {
				t.Fatal(err)
			}
			if err := s.Data(strings.NewReader("From: t@example.org\r\nSubject: From B\r\n\r\nhello\r\n")); err != nil {
				t.Fatal(err)
			}
			// On A: 9, the bulletin once and B's delivery last.
			c := pop3test.Dial(t, a.addr)
			c.Expect("USER "+login, "+OK")
			c.Expect("PASS visitor", "+OK "+login+"'s maildrop has 9 messages")
			if top := strings.Join(c.Do("TOP 9 0", "+OK"), "\n"); !strings.Contains(top, "Subject: From B") {
				t.Errorf("message 9 on A:\n%s", top)
			}
			c.Expect("DELE 9", "+OK")
			c.Expect("DELE 8", "+OK")
			c.Expect("QUIT", "+OK")
			if got := stat(t, b.addr, login); !strings.HasPrefix(got, "+OK 7 ") {
				t.Errorf("STAT on B after A deleted both: %q", got)
			}
			// The page's view on B sees it too.
			if n := len(b.vs.Get(v.Token).Sandbox.Messages("guest")); n != 7 {
				t.Errorf("B's mail view lists %d messages", n)
			}
		})
	}
}

// The caps on visitors hold across replicas: two visitors per address
// on a cap of two, whichever replica each arrives at.
func TestReplicasShareTheCaps(t *testing.T) {
	w := loadDefault(t)
	for name, open := range sharedStores(t) {
		t.Run(name, func(t *testing.T) {
			store := open(t)
			a, b := startReplica(t, w, store), startReplica(t, w, store)
			for _, r := range []*replica{a, b} {
				r.vs.MaxPerIP = 2
			}
			first, err := a.vs.New("192.0.2.1")
			if err != nil {
				t.Fatal(err)
			}
			first.Use() // opened a terminal: never evicted
			if _, err := b.vs.New("192.0.2.1"); err != nil {
				t.Fatal(err)
			}
			if _, err := a.vs.New("192.0.2.1"); !errors.Is(err, ErrIPTooMany) {
				t.Errorf("a third from one address, on A: %v, want ErrIPTooMany (A holds no unused visitor)", err)
			}
			if _, err := a.vs.New("192.0.2.2"); err != nil {
				t.Errorf("another address: %v", err)
			}
		})
	}
}

// A visitor's events and lessons across replicas: the lesson started on
// A (the page's replica) ticks from a personal login's session on B, and
// both replicas fold the same log, entry for entry and number for
// number, so that a page that reconnects elsewhere resumes where it was.
func TestReplicasShareEventsAndLessons(t *testing.T) {
	w := loadDefault(t)
	lessons, err := BuiltinLessons()
	if err != nil {
		t.Fatal(err)
	}
	for name, open := range sharedStores(t) {
		t.Run(name, func(t *testing.T) {
			store := open(t)
			a, b := startReplica(t, w, store), startReplica(t, w, store)
			a.vs.Lessons, b.vs.Lessons = lessons, lessons
			v, _ := a.vs.New("192.0.2.1")
			a.vs.StartLesson(v, lessons[0])
			login := v.PersonalLogin("guest")
			c := pop3test.Dial(t, b.addr)
			c.Expect("USER "+login, "+OK")
			c.Expect("PASS visitor", "+OK")
			c.Do("LIST", "+OK")
			c.Do("RETR 3", "+OK")
			c.Expect("QUIT", "+OK")

			done := func(v *Visitor) bool { // the lesson done, and the session's end folded
				entries, _, _ := v.Events.Since(0)
				ticked := false
				for _, e := range entries {
					ticked = ticked || e.Type == EntryLesson && e.Lesson.Lesson == lessons[0].ID && e.Lesson.Done == len(lessons[0].Steps)
				}
				return ticked && entries[len(entries)-1].Event.Kind == EventClosed
			}
			pop3test.WaitFor(t, func() bool { return done(v) })
			vb := b.vs.Get(v.Token)
			pop3test.WaitFor(t, func() bool { return done(vb) })
			ea, _, _ := v.Events.Since(0)
			eb, _, _ := vb.Events.Since(0)
			if len(ea) != len(eb) {
				for _, e := range ea {
					t.Logf("A %d %s %s %+v", e.ID, e.Type, e.Event.Kind, e.Lesson)
				}
				for _, e := range eb {
					t.Logf("B %d %s %s %+v", e.ID, e.Type, e.Event.Kind, e.Lesson)
				}
				t.Fatalf("A's log has %d entries, B's %d", len(ea), len(eb))
			}
			for i := range ea {
				if ea[i].ID != eb[i].ID || ea[i].Type != eb[i].Type || ea[i].Event.Kind != eb[i].Event.Kind {
					t.Errorf("entry %d: A %d %s %s, B %d %s %s", i, ea[i].ID, ea[i].Type, ea[i].Event.Kind, eb[i].ID, eb[i].Type, eb[i].Event.Kind)
				}
			}
			// A page on A that read up to some entry resumes on B after it.
			mid := ea[len(ea)/2].ID
			rest, missed, _ := vb.Events.Since(mid)
			if missed || len(rest) != len(ea)-len(ea)/2-1 {
				t.Errorf("resuming on B after %d: %d entries (missed %v), want %d", mid, len(rest), missed, len(ea)-len(ea)/2-1)
			}
			if p := v.Progress()[lessons[0].ID]; p != len(lessons[0].Steps) {
				t.Errorf("A's progress: %d", p)
			}
		})
	}
}

// What a class does beside its sessions holds across replicas too: a
// hand raised on one replica is up on the other, the organiser watching
// from one is seen on the other, the name given on one is shown on the
// other, an announcement made on one is on every page, and the
// organiser's page on any replica lists every visitor.
func TestReplicasShareTheClass(t *testing.T) {
	for name, open := range sharedStores(t) {
		t.Run(name, func(t *testing.T) {
			store := open(t)
			a, b := startReplica(t, loadDefault(t), store), startReplica(t, loadDefault(t), store) // a world each, as processes have
			v, _ := a.vs.New("192.0.2.1")
			vb := b.vs.Get(v.Token)
			v.RaiseHand("stuck on RETR")
			v.SetDisplayName("Ada")
			vb.Watch(+1)
			pop3test.WaitFor(t, func() bool {
				h, up := vb.Hand()
				return up && h.Note == "stuck on RETR" && vb.DisplayName() == "Ada" && v.Status().Watchers == 1
			})
			vb.LowerHand("the organiser")
			pop3test.WaitFor(t, func() bool { _, up := v.Hand(); return !up })

			if _, err := a.vs.Announce("Stop and look up"); err != nil {
				t.Fatal(err)
			}
			pop3test.WaitFor(t, func() bool { an, _ := b.vs.Announcement(); return an.Text == "Stop and look up" })

			// A bulletin posted on A is on B's board, with the same ID,
			// and reaches a maildrop at a login on B; withdrawn on B, it
			// is withdrawn on A.
			bul, err := a.vs.PostBulletin("org@example.org", "Room change", "We move to room 2.")
			if err != nil {
				t.Fatal(err)
			}
			pop3test.WaitFor(t, func() bool {
				l := b.vs.World().Bulletins.Bulletins()
				return len(l) > 0 && l[len(l)-1].ID == bul.ID && l[len(l)-1].Subject == "Room change"
			})
			if got := stat(t, b.addr, v.PersonalLogin("guest")); !strings.HasPrefix(got, "+OK 8 ") {
				t.Errorf("STAT on B after a bulletin posted on A: %q", got)
			}
			if !b.vs.WithdrawBulletin(bul.ID) {
				t.Fatal("withdrawing on B")
			}
			pop3test.WaitFor(t, func() bool {
				for _, x := range a.vs.World().Bulletins.Bulletins() {
					if x.ID == bul.ID {
						return x.Withdrawn
					}
				}
				return false
			})

			// Ended on A: B's copy is gone at once (its pages told), not
			// at B's next sweep; found by handle on B first.
			ended, _ := a.vs.New("192.0.2.3")
			if got := b.vs.ByHandle(ended.Handle); got == nil || got.ID != ended.ID {
				t.Fatalf("B's ByHandle of a visitor made on A: %v", got)
			}
			gone := b.vs.ByHandle(ended.Handle).Gone()
			a.vs.End(ended.Token)
			select {
			case <-gone:
			case <-time.After(5 * time.Second):
				t.Error("a visitor ended on A is still held on B")
			}

			// A visitor made on B, listed by A's organiser page.
			other, _ := b.vs.New("192.0.2.2")
			found := false
			for _, x := range a.vs.All() {
				found = found || x.ID == other.ID
			}
			if !found {
				t.Error("A's organiser page does not list a visitor made on B")
			}
		})
	}
}

// The client lab across replicas: a scenario chosen on A (the page's
// replica) is played by B's lab port to the client that connects there
// from the address A saw; B's observations reach A's card; a proof
// submitted on B is on A's card.
func TestReplicasShareTheLab(t *testing.T) {
	w := loadDefault(t)
	for name, open := range sharedStores(t) {
		t.Run(name, func(t *testing.T) {
			store := open(t)
			a, b := startReplica(t, w, store), startReplica(t, w, store)
			b.vs.LabDelay = 50 * time.Millisecond
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go b.srv.ServePrelude(l, b.vs.LabPrelude)
			v, _ := a.vs.New("127.0.0.1")
			if err := v.Lab.Choose("rfc1939"); err != nil {
				t.Fatal(err)
			}
			a.vs.ArmLab(v, "127.0.0.1")

			c := pop3test.Dial(t, l.Addr().String())
			c.Expect("CAPA", "-ERR unknown command")
			c.Expect("USER "+labLogin(v), "+OK")
			c.Expect("PASS lab", "+OK")
			for i := 1; i <= len(labMessages); i++ {
				c.Do(fmt.Sprint("RETR ", i), "+OK")
			}
			c.Expect("QUIT", "+OK")

			pop3test.WaitFor(t, func() bool { // the session's end folded on A
				n := 0
				for _, ch := range v.Lab.Card().Checks {
					if (ch.ID == "fallback" || ch.ID == "quit") && ch.Status == LabPass {
						n++
					}
				}
				return n == 2
			})
			checks := map[string]string{}
			for _, ch := range v.Lab.Card().Checks {
				checks[ch.ID] = ch.Status
			}
			for id, want := range map[string]string{"greeting": LabPass, "login": LabPass, "retrieved": LabPass, "quit": LabPass, "commands": LabPass} {
				if checks[id] != want {
					t.Errorf("A's card: %s %s, want %s", id, checks[id], want)
				}
			}
			b.vs.Get(v.Token).Lab.Submit(nil, []string{LabMaildrop()[0].SHA256 + "  1.eml"})
			pop3test.WaitFor(t, func() bool { return len(v.Lab.Card().Proofs) == 1 })
		})
	}
}

// A fact a replica missed (here: published straight to the store, as if
// the replica's pub/sub connection had dropped at that moment) is caught
// up at the replica's next sweep.
func TestReplicaCatchesUpAFactItMissed(t *testing.T) {
	for name, open := range sharedStores(t) {
		t.Run(name, func(t *testing.T) {
			store := open(t)
			a := startReplica(t, loadDefault(t), store)
			v, _ := a.vs.New("192.0.2.1")
			v.waitCaughtUp()
			a.vs.replicaState().follow.Remove(ctx, v.ID) // deaf to it for a moment
			b, _ := json.Marshal(fact{Type: factName, Text: "Grace"})
			if err := store.Publish(ctx, v.ID, [][]byte{b}); err != nil {
				t.Fatal(err)
			}
			a.vs.replicaState().follow.Add(ctx, v.ID)
			time.Sleep(50 * time.Millisecond)
			if v.DisplayName() == "Grace" {
				t.Fatal("the fact was not missed: the test shows nothing")
			}
			a.vs.sweepShared()
			pop3test.WaitFor(t, func() bool { return v.DisplayName() == "Grace" })
		})
	}
}
