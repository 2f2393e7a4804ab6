package sessions

import (
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/pop3playground/pop3playground/pop3/limit"
)

func TestCreateIsIdempotentPerToken(t *testing.T) {
	vs := NewVisitors(loadDefault(t))
	tok := NewToken()
	a, err := vs.Create(tok, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := vs.Create(tok, "192.0.2.1")
	if err != nil || a != b || vs.Len() != 1 {
		t.Errorf("a second Create of one token: %p, %p, %v, %d visitors; want the same one", a, b, err, vs.Len())
	}
}

// Per-address limits count an IPv6 /64 as one address: one host (or one
// home) gets a whole /64 and could otherwise take them all.
func TestVisitorLimitsGroupIPv6By64(t *testing.T) {
	vs := NewVisitors(loadDefault(t))
	vs.MaxPerIP = 5
	for i := range 5 {
		if _, err := vs.New(fmt.Sprintf("2001:db8:1:2::%x", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := vs.New("2001:db8:1:2:ffff::9"); !errors.Is(err, ErrIPTooMany) {
		t.Errorf("sixth from one /64: %v, want ErrIPTooMany", err)
	}
	if _, err := vs.New("2001:db8:1:3::1"); err != nil {
		t.Errorf("another /64: %v", err)
	}
	if err := vs.Admits("2001:db8:1:2::77"); !errors.Is(err, ErrIPTooMany) {
		t.Errorf("Admits from the full /64: %v", err)
	}
}

func TestVisitorCreationIsRateLimitedPerAddress(t *testing.T) {
	vs := NewVisitors(loadDefault(t))
	vs.Rate = limit.RateLimiter{Rate: 0.001, Burst: 30}
	for i := range 30 { // a classroom behind one NAT
		if _, err := vs.New("198.51.100.7"); err != nil {
			t.Fatalf("visitor %d of the burst: %v", i+1, err)
		}
	}
	if _, err := vs.New("198.51.100.7"); !errors.Is(err, ErrTooFast) {
		t.Errorf("past the burst: %v, want ErrTooFast", err)
	}
	if _, err := vs.New("198.51.100.8"); err != nil {
		t.Errorf("another address: %v", err)
	}
}

func TestUnusedVisitorsExpireSooner(t *testing.T) {
	vs := NewVisitors(loadDefault(t))
	vs.TTL, vs.UnusedTTL = 2*time.Hour, 10*time.Minute
	unused, _ := vs.New("a")
	used, _ := vs.New("a")
	used.Use()
	if n := vs.Sweep(time.Now().Add(11 * time.Minute)); n != 1 || vs.Get(unused.Token) != nil || vs.Get(used.Token) == nil {
		t.Errorf("swept %d; want only the visitor who never opened a terminal", n)
	}
	if n := vs.Sweep(time.Now().Add(3 * time.Hour)); n != 1 {
		t.Errorf("swept %d; want the used one after TTL", n)
	}
}

func TestEventLogGrowsOnDemandAndKeepsValues(t *testing.T) {
	var l EventLog
	if cap(l.ring) != 0 {
		t.Fatal("an empty log holds space")
	}
	for i := range EventLogSize + 10 {
		l.Append(Entry{Type: EntryPOP3, Event: Event{Kind: EventCommand, Msg: i + 1}})
	}
	entries, missed, _ := l.Since(0)
	if !missed || len(entries) != EventLogSize || entries[0].ID != 11 || entries[len(entries)-1].Event.Msg != EventLogSize+10 {
		t.Fatalf("Since(0): %d entries from %d, missed %v", len(entries), entries[0].ID, missed)
	}
	if got, _, _ := l.Since(uint64(EventLogSize + 8)); len(got) != 2 || got[0].ID != EventLogSize+9 {
		t.Errorf("Since(last-2) = %d entries", len(got))
	}
}

// BenchmarkIdleVisitor reports the heap one idle visitor costs, made as
// the page's first /api/session makes it, measured over 5,000 of them.
func BenchmarkIdleVisitor(b *testing.B) {
	w, err := DefaultWorld()
	if err != nil {
		b.Fatal(err)
	}
	const n = 5000
	var perVisitor float64
	for range b.N {
		vs := NewVisitors(w)
		vs.Rate = limit.RateLimiter{}
		before := heapInUse()
		for i := range n {
			if _, err := vs.New(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)); err != nil {
				b.Fatal(err)
			}
		}
		perVisitor = float64(heapInUse()-before) / n
		runtime.KeepAlive(vs)
	}
	b.ReportMetric(perVisitor, "heap-B/visitor")
	b.ReportMetric(perVisitor/16384, "of-16KiB-target")
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// The log names a personal login by its account and the visitor's
// pseudonym, never by the ID that logs in to the sandbox.
func TestLogNameHidesPersonalLogins(t *testing.T) {
	vs := NewVisitors(loadDefault(t))
	v, _ := vs.New("192.0.2.1")
	for user, want := range map[string]string{
		"guest":                   "guest",
		v.PersonalLogin("guest"):  "guest (" + v.Name() + ")",
		"guest.abcdefghij":        "guest.(unknown)",
		"someone.with.dots.in.it": "someone.with.dots.in.it",
	} {
		if got := vs.LogName(user); got != want {
			t.Errorf("LogName(%q) = %q, want %q", user, got, want)
		}
	}
}

// At a cap, visitors who never opened a terminal make room: someone who
// only asks for sessions cannot lock out the people behind their address.
func TestUnusedVisitorsMakeRoomAtTheCaps(t *testing.T) {
	vs := NewVisitors(loadDefault(t))
	vs.MaxPerIP, vs.Max = 3, 5
	var hoarded []*Visitor
	for range 3 {
		v, err := vs.New("203.0.113.5")
		if err != nil {
			t.Fatal(err)
		}
		hoarded = append(hoarded, v)
	}
	if _, err := vs.New("203.0.113.5"); !errors.Is(err, ErrIPTooMany) {
		t.Fatalf("at the cap with fresh visitors: %v, want ErrIPTooMany (they have a grace period)", err)
	}
	hoarded[0].Use() // a real student: never evicted
	for _, v := range hoarded {
		v.Created = v.Created.Add(-time.Minute)
	}
	student, err := vs.New("203.0.113.5")
	if err != nil {
		t.Fatalf("a student behind the hoarder's address: %v", err)
	}
	if vs.Get(hoarded[0].Token) == nil || vs.Len() != 3 {
		t.Errorf("the used visitor was evicted, or %d visitors held", vs.Len())
	}
	// The same holds for the global cap.
	vs.New("198.51.100.1")
	vs.New("198.51.100.2")
	if err := vs.Admits("198.51.100.3"); err != nil {
		t.Errorf("full, with an old unused visitor: %v", err)
	}
	if _, err := vs.New("198.51.100.3"); err != nil {
		t.Errorf("full, with an old unused visitor to evict: %v", err)
	}
	student.Use()
	for _, v := range vs.All() {
		v.Use()
	}
	if _, err := vs.New("198.51.100.4"); !errors.Is(err, ErrFull) {
		t.Errorf("full of used visitors: %v, want ErrFull", err)
	}
}
