package limit

import (
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
