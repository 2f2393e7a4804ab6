// Package limit holds what every listener of the playground a stranger can
// reach needs to bound them: the key a client address counts under (IPv6
// by its /64), token buckets, counters of what is open, trusted networks,
// and the two small things every check needs (the host of an address,
// comparing secrets in constant time). The POP3 server, the SMTP edge,
// the web side and the visitors all count with these, so that a class
// behind one NAT is one address everywhere.
package limit

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Host is the host of a host:port address, or the address itself (its
// IPv6 brackets removed) when it has no port.
func Host(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

// Equal reports whether two secrets are equal, in time that depends on
// neither (their lengths included): both are hashed first.
func Equal(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

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

// A Bucket is one token bucket: at most Burst tokens, refilled at Rate a
// second from the time it was made.
type Bucket struct {
	Rate, Burst float64
	tokens      float64
	last        time.Time
}

// NewBucket returns a full bucket.
func NewBucket(rate, burst float64, now time.Time) *Bucket {
	return &Bucket{Rate: rate, Burst: burst, tokens: burst, last: now}
}

// tokensAt is what the bucket holds at now.
func (b *Bucket) tokensAt(now time.Time) float64 {
	return min(b.Burst, b.tokens+now.Sub(b.last).Seconds()*b.Rate)
}

// TryTake takes n tokens at now if the bucket holds them.
func (b *Bucket) TryTake(n float64, now time.Time) bool {
	b.tokens, b.last = b.tokensAt(now), now
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

// Wait takes n tokens, waiting until the bucket has refilled enough; the
// bucket may go into debt for a take larger than Burst, which the next
// ones repay. Not safe for concurrent use.
func (b *Bucket) Wait(ctx context.Context, n float64) error {
	now := time.Now()
	b.tokens, b.last = b.tokensAt(now)-n, now
	if b.tokens >= 0 {
		return nil
	}
	t := time.NewTimer(time.Duration(-b.tokens / b.Rate * float64(time.Second)))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// A RateLimiter is a token bucket per key: Burst events at once, then Rate
// a second. Buckets that have refilled are forgotten, so it holds only the
// keys that were busy lately. Its zero value allows everything.
type RateLimiter struct {
	Rate  float64 // events a second; zero means no limit
	Burst int

	mu      sync.Mutex
	buckets map[string]*Bucket
	swept   time.Time
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
		rl.buckets = make(map[string]*Bucket)
	}
	b := rl.buckets[key]
	if b == nil {
		if len(rl.buckets) >= maxBuckets || now.Sub(rl.swept) > time.Minute {
			rl.sweepLocked(now)
		}
		if len(rl.buckets) >= maxBuckets {
			return false
		}
		b = NewBucket(rl.Rate, float64(rl.Burst), now)
		rl.buckets[key] = b
	}
	return b.TryTake(1, now)
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
	return b == nil || b.tokensAt(now) >= 1
}

// sweepLocked forgets the buckets that are full again.
func (rl *RateLimiter) sweepLocked(now time.Time) {
	rl.swept = now
	for k, b := range rl.buckets {
		if b.tokensAt(now) >= b.Burst {
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
