package pop3

import (
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
