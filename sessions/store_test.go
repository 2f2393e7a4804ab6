package sessions

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/pop3playground/pop3playground/sessions/storetest"
)

// A storeUnderTest is a Store and a way to let its clock run on.
type storeUnderTest struct {
	Store
	advance func(time.Duration)
}

// The stores the contract is checked on: the in-process one, Redis as
// miniredis plays it, and a real redis-server when there is one (CI
// installs it; POP3PG_REQUIRE_REDIS=1 makes its absence a failure).
func storesUnderTest(t *testing.T) map[string]func(t *testing.T) storeUnderTest {
	return map[string]func(t *testing.T) storeUnderTest{
		"mem": func(t *testing.T) storeUnderTest {
			s := NewMemStore()
			now := time.Now()
			s.now = func() time.Time { return now }
			return storeUnderTest{s, func(d time.Duration) { now = now.Add(d) }}
		},
		"miniredis": func(t *testing.T) storeUnderTest {
			m := miniredis.RunT(t)
			s, err := NewRedisStore("redis://" + m.Addr() + "/0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			now := time.Now()
			m.SetTime(now)
			return storeUnderTest{s, func(d time.Duration) { now = now.Add(d); m.SetTime(now); m.FastForward(d) }}
		},
		"redis-server": func(t *testing.T) storeUnderTest {
			addr := storetest.RedisServer(t)
			s, err := NewRedisStore("redis://" + addr + "/0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return storeUnderTest{s, time.Sleep}
		},
	}
}

// The contract every Store keeps.
func TestStoreContract(t *testing.T) {
	for name, open := range storesUnderTest(t) {
		t.Run(name, func(t *testing.T) {
			for _, c := range []struct {
				name string
				run  func(*testing.T, storeUnderTest)
			}{
				{"visitors", contractVisitors},
				{"expiry", contractExpiry},
				{"leases", contractLeases},
				{"deletions", contractDeletions},
				{"arrivals", contractArrivals},
				{"admission", contractAdmission},
				{"streams", contractStreams},
				{"admin", func(t *testing.T, s storeUnderTest) {
					s.AdminSession(ctx, "org", 300*time.Millisecond)
					if ok, err := s.AdminSession(ctx, "org", -1); !ok || err != nil {
						t.Errorf("a sign-in: %v %v", ok, err)
					}
					if ok, _ := s.AdminSession(ctx, "other", -1); ok {
						t.Error("a sign-in never made holds")
					}
					s.advance(400 * time.Millisecond)
					if ok, _ := s.AdminSession(ctx, "org", -1); ok {
						t.Error("a sign-in past its TTL holds")
					}
					s.AdminSession(ctx, "org2", time.Hour)
					s.AdminSession(ctx, "org2", 0)
					if ok, _ := s.AdminSession(ctx, "org2", -1); ok {
						t.Error("a sign-out did not forget the sign-in")
					}
					for i, want := range []bool{true, true, false} {
						if ok, err := s.Bucket(ctx, "guess:a", 1, 2, true); ok != want || err != nil {
							t.Errorf("take %d: %v %v", i, ok, err)
						}
					}
					if ok, _ := s.Bucket(ctx, "guess:a", 1, 2, false); ok {
						t.Error("an empty bucket peeks full")
					}
					if ok, _ := s.Bucket(ctx, "guess:b", 1, 2, false); !ok {
						t.Error("another key's bucket is empty")
					}
					s.advance(1100 * time.Millisecond)
					if ok, _ := s.Bucket(ctx, "guess:a", 1, 2, true); !ok {
						t.Error("the bucket did not refill")
					}
				}},
				{"arms", func(t *testing.T, s storeUnderTest) {
					s.Arm(ctx, "192.0.2.1", "a", 300*time.Millisecond)
					s.Arm(ctx, "192.0.2.1", "b", time.Hour)
					s.Arm(ctx, "192.0.2.9", "c", time.Hour)
					if ids, err := s.Armed(ctx, "192.0.2.1"); err != nil || !slices.Equal(ids, []string{"a", "b"}) {
						t.Errorf("Armed: %v, %v", ids, err)
					}
					s.advance(400 * time.Millisecond)
					if ids, _ := s.Armed(ctx, "192.0.2.1"); !slices.Equal(ids, []string{"b"}) {
						t.Errorf("Armed after a's lapsed: %v", ids)
					}
				}},
				{"replicas", func(t *testing.T, s storeUnderTest) {
					a, err1 := s.Replica(ctx)
					b, err2 := s.Replica(ctx)
					if err1 != nil || err2 != nil || a == 0 || a == b {
						t.Errorf("Replica: %d %v, %d %v", a, err1, b, err2)
					}
				}},
			} {
				t.Run(c.name, func(t *testing.T) { c.run(t, open(t)) })
			}
		})
	}
}

var ctx = context.Background()

func record(n int) VisitorRecord {
	return VisitorRecord{Token: fmt.Sprintf("tok%d", n), ID: fmt.Sprintf("id%d", n), Handle: "h", IP: "192.0.2.1",
		Created: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
}

func contractVisitors(t *testing.T, s storeUnderTest) {
	r := record(1)
	if err := s.CreateVisitor(ctx, r, time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, get := range []func() (VisitorRecord, error){
		func() (VisitorRecord, error) { return s.VisitorByToken(ctx, r.Token) },
		func() (VisitorRecord, error) { return s.VisitorByID(ctx, r.ID) },
	} {
		if got, err := get(); err != nil || got != r {
			t.Errorf("got %+v, %v; want %+v", got, err, r)
		}
	}
	dupToken, dupID := record(2), record(3)
	dupToken.Token, dupID.ID = r.Token, r.ID
	for _, d := range []VisitorRecord{dupToken, dupID} {
		if err := s.CreateVisitor(ctx, d, time.Hour); !errors.Is(err, ErrExists) {
			t.Errorf("a taken token or ID: %v, want ErrExists", err)
		}
	}
	if _, err := s.VisitorByID(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("an unknown ID: %v", err)
	}
	if all, err := s.Visitors(ctx); err != nil || len(all) != 1 || all[0] != r {
		t.Errorf("Visitors: %+v, %v", all, err)
	}
	if gone, err := s.Gone(ctx, []string{r.Token, "nobody"}); err != nil || !slices.Equal(gone, []bool{false, true}) {
		t.Errorf("Gone: %v, %v", gone, err)
	}
	if st, _ := s.Sandbox(ctx, r.ID); st.Gone {
		t.Error("the sandbox of a live visitor is Gone")
	}
	if err := s.DeleteVisitor(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := s.VisitorByToken(ctx, r.Token); !errors.Is(err, ErrNotFound) {
		t.Errorf("a deleted visitor: %v", err)
	}
	if gone, _ := s.Gone(ctx, []string{r.Token}); !gone[0] {
		t.Error("a deleted visitor is not Gone")
	}
	if st, _ := s.Sandbox(ctx, r.ID); !st.Gone {
		t.Error("the sandbox of a deleted visitor is not Gone")
	}
	if err := s.TouchVisitor(ctx, r, time.Hour); !errors.Is(err, ErrNotFound) {
		t.Errorf("touching a deleted visitor: %v", err)
	}
}

func contractExpiry(t *testing.T, s storeUnderTest) {
	a, b := record(1), record(2)
	s.CreateVisitor(ctx, a, 300*time.Millisecond)
	s.CreateVisitor(ctx, b, 300*time.Millisecond)
	s.ResetSandbox(ctx, b.ID)
	s.advance(200 * time.Millisecond)
	if err := s.TouchVisitor(ctx, b, time.Hour); err != nil {
		t.Fatal(err)
	}
	s.advance(200 * time.Millisecond)
	if _, err := s.VisitorByToken(ctx, a.Token); !errors.Is(err, ErrNotFound) {
		t.Errorf("an idle visitor after its TTL: %v", err)
	}
	if _, err := s.VisitorByID(ctx, b.ID); err != nil {
		t.Errorf("a touched visitor: %v", err)
	}
	if st, _ := s.Sandbox(ctx, b.ID); st.Gen != 1 {
		t.Errorf("a touched visitor's sandbox: %+v", st)
	}
	// The ID of an expired visitor can be given out again.
	c := record(3)
	c.ID = a.ID
	if err := s.CreateVisitor(ctx, c, time.Hour); err != nil {
		t.Errorf("reusing an expired visitor's ID: %v", err)
	}
}

func contractLeases(t *testing.T, s storeUnderTest) {
	lease := func(owner string) bool {
		ok, err := s.Lease(ctx, "id1", "guest", owner, 300*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !lease("a") || lease("b") || !lease("a") {
		t.Fatal("a lease: taken by a, refused to b, renewed by a")
	}
	if ok, _ := s.Lease(ctx, "id1", "mrose", "b", time.Second); !ok {
		t.Error("another account's lock is another lock")
	}
	s.Release(ctx, "id1", "guest", "b") // not b's: nothing happens
	if lease("b") {
		t.Error("a release by someone else freed the lock")
	}
	s.advance(400 * time.Millisecond)
	if !lease("b") {
		t.Error("a lease not renewed did not expire")
	}
	s.Release(ctx, "id1", "guest", "b")
	if !lease("c") {
		t.Error("a released lock is not free")
	}
}

func contractDeletions(t *testing.T, s storeUnderTest) {
	r := record(1)
	s.CreateVisitor(ctx, r, time.Hour)
	if st, err := s.Sandbox(ctx, r.ID); err != nil || st.Gen != 0 || len(st.Deleted) != 0 {
		t.Fatalf("a new sandbox: %+v, %v", st, err)
	}
	if err := s.Delete(ctx, r.ID, "guest", "a", 0, []string{"u1"}); !errors.Is(err, ErrConflict) {
		t.Errorf("deleting without the lease: %v, want ErrConflict", err)
	}
	s.Lease(ctx, r.ID, "guest", "a", time.Hour)
	if err := s.Delete(ctx, r.ID, "guest", "a", 0, []string{"u1", "u2"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, r.ID, "guest", "a", 0, []string{"u2", "u3"}); err != nil {
		t.Fatal(err)
	}
	st, _ := s.Sandbox(ctx, r.ID)
	if got := st.Deleted["guest"]; !slices.Equal(got, []string{"u1", "u2", "u3"}) || len(st.Deleted) != 1 {
		t.Errorf("deleted: %v", st.Deleted)
	}
	// A reset since the login: the session's QUIT deletes nothing.
	if err := s.ResetSandbox(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, r.ID, "guest", "a", 0, []string{"u4"}); !errors.Is(err, ErrConflict) {
		t.Errorf("deleting after a reset: %v, want ErrConflict", err)
	}
	st, _ = s.Sandbox(ctx, r.ID)
	if st.Gen != 1 || len(st.Deleted) != 0 {
		t.Errorf("after a reset: %+v", st)
	}
	if err := s.DeleteVisitor(ctx, r); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Sandbox(ctx, r.ID); st.Gen != 0 || len(st.Deleted) != 0 {
		t.Errorf("a deleted visitor's sandbox: %+v", st)
	}
}

func contractArrivals(t *testing.T, s storeUnderTest) {
	r := record(1)
	s.CreateVisitor(ctx, r, time.Hour)
	for i, uid := range []string{"smtp.a", "smtp.b"} {
		if err := s.Deliver(ctx, r.ID, "guest", StoredMessage{UID: uid, Data: []byte("Subject: " + uid + "\r\n\r\nhi\r\n")}, 2); err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
	}
	if err := s.Deliver(ctx, r.ID, "guest", StoredMessage{UID: "smtp.c", Data: []byte("x")}, 2); !errors.Is(err, ErrMailboxFull) {
		t.Errorf("a delivery past max: %v, want ErrMailboxFull", err)
	}
	if b, err := s.Message(ctx, r.ID, "smtp.b"); err != nil || string(b) != "Subject: smtp.b\r\n\r\nhi\r\n" {
		t.Errorf("Message: %q, %v", b, err)
	}
	if err := s.Arrived(ctx, r.ID, "guest", "a", []string{"b:1:abcd"}, 1); !errors.Is(err, ErrConflict) {
		t.Errorf("bulletins without the lease: %v", err)
	}
	s.Lease(ctx, r.ID, "guest", "a", time.Hour)
	if err := s.Arrived(ctx, r.ID, "guest", "a", []string{"b:1:abcd", "b:2:ef01"}, 2); err != nil {
		t.Fatal(err)
	}
	st, _ := s.Sandbox(ctx, r.ID)
	if got := st.Extra["guest"]; !slices.Equal(got, []string{"m:smtp.a", "m:smtp.b", "b:1:abcd", "b:2:ef01"}) || st.Seen["guest"] != 2 || st.Delivered != 2 {
		t.Fatalf("after arrivals: %+v", st)
	}
	// QUIT deletes a delivered message (its octets go), a bulletin's
	// copy and a world message, in one compare-and-set.
	if err := s.Delete(ctx, r.ID, "guest", "a", 0, []string{"m:smtp.a", "b:2:ef01", "u7"}); err != nil {
		t.Fatal(err)
	}
	st, _ = s.Sandbox(ctx, r.ID)
	if !slices.Equal(st.Extra["guest"], []string{"m:smtp.b", "b:1:abcd"}) || !slices.Equal(st.Deleted["guest"], []string{"u7"}) {
		t.Errorf("after QUIT: %+v", st)
	}
	if _, err := s.Message(ctx, r.ID, "smtp.a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a deleted message's octets: %v", err)
	}
	// A reset empties it all, the delivered count too.
	s.ResetSandbox(ctx, r.ID)
	st, _ = s.Sandbox(ctx, r.ID)
	if len(st.Extra["guest"]) != 0 || st.Seen["guest"] != 0 || st.Delivered != 0 {
		t.Errorf("after a reset: %+v", st)
	}
	if _, err := s.Message(ctx, r.ID, "smtp.b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a reset sandbox's octets: %v", err)
	}
}

func contractAdmission(t *testing.T, s storeUnderTest) {
	v := func(tok, ip string) VisitorRecord { return VisitorRecord{Token: tok, ID: "id" + tok, IP: ip} }
	caps := Limits{MaxPerIP: 2, Max: 3}
	for _, tc := range []struct {
		r    VisitorRecord
		want error
	}{
		{v("t1", "a"), nil}, {v("t2", "a"), nil}, {v("t3", "a"), ErrIPTooMany}, {v("t3", "b"), nil},
		{v("t4", "c"), ErrFull}, {v("t1", "a"), nil}, // counted already
	} {
		if err := s.Admit(ctx, tc.r, caps, 300*time.Millisecond); !errors.Is(err, tc.want) {
			t.Errorf("Admit(%s from %s): %v, want %v", tc.r.Token, tc.r.IP, err, tc.want)
		}
	}
	if err := s.DeleteVisitor(ctx, v("t1", "a")); err != nil {
		t.Fatal(err)
	}
	if err := s.Admit(ctx, v("t4", "c"), caps, 300*time.Millisecond); err != nil {
		t.Errorf("a place freed by DeleteVisitor: %v", err)
	}
	s.advance(400 * time.Millisecond)
	if err := s.Admit(ctx, v("t5", "a"), Limits{MaxPerIP: 1, Max: 1}, time.Hour); err != nil {
		t.Errorf("after every count expired: %v", err)
	}

	rate := Limits{Rate: 1, Burst: 2}
	for i, want := range []error{nil, nil, ErrTooFast} {
		if err := s.Admit(ctx, v(fmt.Sprint("r", i), "d"), rate, time.Hour); !errors.Is(err, want) {
			t.Errorf("visitor %d from one address at once: %v, want %v", i, err, want)
		}
	}
	s.advance(1100 * time.Millisecond)
	if err := s.Admit(ctx, v("r3", "d"), rate, time.Hour); err != nil {
		t.Errorf("a second later: %v", err)
	}
}

func contractStreams(t *testing.T, s storeUnderTest) {
	r := record(1)
	s.CreateVisitor(ctx, r, time.Hour)
	f := s.Follow(ctx)
	defer f.Close()
	if err := f.Add(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(ctx, r.ID, [][]byte{[]byte("one"), []byte("two words")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(ctx, "someone else", [][]byte{[]byte("not followed")}); err != nil {
		t.Fatal(err)
	}
	s.Publish(ctx, r.ID, [][]byte{[]byte("three")})
	for i, want := range []string{"one", "two words", "three"} {
		select {
		case got := <-f.Facts():
			if got.Visitor != r.ID || got.Seq != uint64(i+1) || string(got.Data) != want {
				t.Errorf("fact %d: %+v", i+1, got)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("fact %d not received", i+1)
		}
	}
	facts, err := s.Facts(ctx, r.ID, 1)
	if err != nil || len(facts) != 2 || facts[0].Seq != 2 || string(facts[1].Data) != "three" {
		t.Errorf("Facts after 1: %+v, %v", facts, err)
	}
	if heads, err := s.Heads(ctx, []string{r.ID, "nobody"}); err != nil || !slices.Equal(heads, []uint64{3, 0}) {
		t.Errorf("Heads: %v, %v", heads, err)
	}
	f.Remove(ctx, r.ID)
	time.Sleep(50 * time.Millisecond)
	s.Publish(ctx, r.ID, [][]byte{[]byte("four")})
	select {
	case got := <-f.Facts():
		t.Errorf("a fact after Remove: %+v", got)
	case <-time.After(100 * time.Millisecond):
	}
	// The stream is bounded.
	many := make([][]byte, EventLogSize+200)
	for i := range many {
		many[i] = []byte(fmt.Sprint(i))
	}
	s.Publish(ctx, r.ID, many)
	if facts, _ := s.Facts(ctx, r.ID, 0); len(facts) > EventLogSize+100 || facts[len(facts)-1].Seq != uint64(4+len(many)) {
		t.Errorf("after %d more: %d kept, last %d", len(many), len(facts), facts[len(facts)-1].Seq)
	}
	s.DeleteVisitor(ctx, r)
	if facts, _ := s.Facts(ctx, r.ID, 0); len(facts) != 0 {
		t.Errorf("a deleted visitor's stream: %d facts", len(facts))
	}
}
