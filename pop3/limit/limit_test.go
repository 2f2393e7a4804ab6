package limit

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestAddrKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2::9", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"not an address", "not an address"},
	} {
		if got := AddrKey(tc.in); got != tc.want {
			t.Errorf("AddrKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRateLimiter(t *testing.T) {
	rl := &RateLimiter{Rate: 2, Burst: 3}
	now := time.Unix(1_000_000, 0)
	var got []bool
	for range 4 {
		got = append(got, rl.Allow("a", now))
	}
	if fmt.Sprint(got) != "[true true true false]" {
		t.Errorf("a burst of 3: %v", got)
	}
	if !rl.Allow("b", now) {
		t.Error("another key is limited by the first")
	}
	if rl.Peek("a", now.Add(400*time.Millisecond)) || !rl.Peek("a", now.Add(500*time.Millisecond)) {
		t.Error("at 2 a second, a token is back after 500 ms, not before")
	}
	// Keys whose buckets are full again are forgotten.
	rl.Allow("c", now.Add(time.Hour))
	if n := rl.Len(); n != 1 {
		t.Errorf("after an hour the limiter holds %d keys, want 1", n)
	}
	var zero RateLimiter
	if !zero.Allow("x", now) || !(*RateLimiter)(nil).Allow("x", now) {
		t.Error("the zero value and nil allow everything")
	}
}

func TestCounter(t *testing.T) {
	var c Counter
	if !c.Admit(2) || !c.Claim("a", 1) || !c.Admit(2) {
		t.Fatal("within the bounds")
	}
	if c.Admit(2) {
		t.Error("a third past max 2")
	}
	if c.Claim("a", 1) || !c.Claim("b", 1) {
		t.Error("per key: a is full, b is not")
	}
	c.Release("a")
	c.Release("b")
	if c.Total() != 0 || c.Under("a") != 0 || len(c.per) != 0 {
		t.Errorf("after release: total %d, a %d, keys %d", c.Total(), c.Under("a"), len(c.per))
	}
	if !c.Admit(0) || !c.Claim("x", 0) {
		t.Error("0 is no bound")
	}
	c.Unclaim("x")
	if c.Under("x") != 0 || c.Total() != 1 {
		t.Error("Unclaim undoes the claim alone")
	}
}

func TestNetworks(t *testing.T) {
	ns := Networks{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:1", true}, {"[::ffff:127.0.0.9]:1", true}, {"[2001:db8::1]:1", true},
		{"192.0.2.1:1", false}, {"[::1]:1", false}, {"not an address", false},
	} {
		var a net.Addr
		if ap, err := netip.ParseAddrPort(tc.addr); err == nil {
			a = net.TCPAddrFromAddrPort(ap)
		} else {
			a = &net.UnixAddr{Name: tc.addr}
		}
		if got := ns.ContainsAddr(a); got != tc.want {
			t.Errorf("ContainsAddr(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

func TestHost(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:110": "192.0.2.1", "[2001:db8::1]:995": "2001:db8::1", "[2001:db8::1]": "2001:db8::1",
		"example.org": "example.org", "example.org:80": "example.org", "": "",
	} {
		if got := Host(in); got != want {
			t.Errorf("Host(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEqual(t *testing.T) {
	if !Equal("secret", "secret") || Equal("secret", "secreT") || Equal("secret", "secret\x00") || Equal("", "x") {
		t.Error("Equal is wrong")
	}
}

// A bucket gives its burst at once, then refills at its rate; a take
// larger than the burst is a debt the next takes repay.
func TestBucket(t *testing.T) {
	now := time.Unix(1000, 0)
	b := NewBucket(2, 3, now)
	for i := range 3 {
		if !b.TryTake(1, now) {
			t.Fatalf("take %d of the burst refused", i+1)
		}
	}
	if b.TryTake(1, now) {
		t.Fatal("a fourth take at once allowed")
	}
	if !b.TryTake(1, now.Add(500*time.Millisecond)) || b.TryTake(1, now.Add(500*time.Millisecond)) {
		t.Fatal("half a second at 2 a second is one token")
	}
	if !b.TryTake(3, now.Add(time.Hour)) {
		t.Fatal("a bucket never holds more than its burst, but holds that")
	}
	p := NewBucket(1e6, 10, time.Now())
	if err := p.Wait(context.Background(), 5); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := NewBucket(1, 1, time.Now()).Wait(ctx, 100); err == nil {
		t.Error("a wait of 99 s ended without its context's error")
	}
}
