// Package limit holds what every listener of the playground a stranger can
// reach needs to bound them: the key a client address counts under (IPv6
// by its /64), and token buckets per key. The POP3 server, the SMTP edge,
// the web side and the visitors all count with these, so that a class
// behind one NAT is one address everywhere.
package limit

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// AddrKey is the key under which per-address limits count a client: its
// IPv4 address, or the /64 network of its IPv6 address (one host, or one
// home or office network, is usually given a whole /64, so counting IPv6
// addresses one by one limits nothing). Anything that does not parse as an
// address is its own key.
func AddrKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
}

// A RateLimiter is a token bucket per key: Burst events at once, then Rate
// a second. Buckets that have refilled are forgotten, so it holds only the
// keys that were busy lately. Its zero value allows everything.
type RateLimiter struct {
	Rate  float64 // events a second; zero means no limit
	Burst int

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets bounds a RateLimiter's memory whatever keys it is shown: past
// it, a new key is refused until busy keys have refilled.
const maxBuckets = 100_000

// Allow takes one event for key at now and reports whether it is within
// the limit.
func (rl *RateLimiter) Allow(key string, now time.Time) bool {
	if rl == nil || rl.Rate <= 0 {
		return true
	}
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if rl.buckets == nil {
		rl.buckets = make(map[string]*bucket)
	}
	b := rl.buckets[key]
	if b == nil {
		if len(rl.buckets) >= maxBuckets || now.Sub(rl.swept) > time.Minute {
			rl.sweepLocked(now)
		}
		if len(rl.buckets) >= maxBuckets {
			return false
		}
		b = &bucket{tokens: float64(rl.Burst), last: now}
		rl.buckets[key] = b
	}
	b.tokens = min(float64(rl.Burst), b.tokens+now.Sub(b.last).Seconds()*rl.Rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Peek reports whether Allow would allow an event for key at now, without
// taking it.
func (rl *RateLimiter) Peek(key string, now time.Time) bool {
	if rl == nil || rl.Rate <= 0 {
		return true
	}
	rl.mu.Lock()
	defer rl.mu.Unlock()
	b := rl.buckets[key]
	return b == nil || b.tokens+now.Sub(b.last).Seconds()*rl.Rate >= 1
}

// sweepLocked forgets the buckets that are full again.
func (rl *RateLimiter) sweepLocked(now time.Time) {
	rl.swept = now
	for k, b := range rl.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*rl.Rate >= float64(rl.Burst) {
			delete(rl.buckets, k)
		}
	}
}

// Len is how many keys the limiter holds.
func (rl *RateLimiter) Len() int {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	return len(rl.buckets)
}

// A Counter counts what is open (connections, sessions) in all and under
// a key each (AddrKey), against bounds given at each call (0: no bound),
// so that the fields a server is configured with stay its own.
type Counter struct {
	mu    sync.Mutex
	total int
	per   map[string]int
}

// Admit counts one more in all, if fewer than max are open.
func (c *Counter) Admit(max int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if max > 0 && c.total >= max {
		return false
	}
	c.total++
	return true
}

// Claim counts one more under key, if fewer than perKey are.
func (c *Counter) Claim(key string, perKey int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if perKey > 0 && c.per[key] >= perKey {
		return false
	}
	if c.per == nil {
		c.per = make(map[string]int)
	}
	c.per[key]++
	return true
}

// Release undoes Admit, and Claim under key unless key is "".
func (c *Counter) Release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total--
	c.unclaimLocked(key)
}

// Unclaim undoes Claim alone.
func (c *Counter) Unclaim(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unclaimLocked(key)
}

func (c *Counter) unclaimLocked(key string) {
	if key == "" {
		return
	}
	if c.per[key]--; c.per[key] <= 0 {
		delete(c.per, key)
	}
}

// Total is how many are counted in all; Under, how many under key.
func (c *Counter) Total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

func (c *Counter) Under(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.per[key]
}

// Networks are trusted networks: a proxy's, the bridge's loopback.
type Networks []netip.Prefix

// Contains reports whether ip is in one of the networks; an IPv4 address
// mapped into IPv6 counts as IPv4.
func (ns Networks) Contains(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, n := range ns {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// ContainsAddr is Contains for a peer's address (host:port).
func (ns Networks) ContainsAddr(a net.Addr) bool {
	ap, err := netip.ParseAddrPort(a.String())
	return err == nil && ns.Contains(ap.Addr())
}
