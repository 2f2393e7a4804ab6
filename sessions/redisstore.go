package sessions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore is a Store on Redis (≥ 7) or Valkey, for replicas. Keys,
// under a prefix:
//
//	v:t:TOKEN   the visitor's record (JSON), with the visitor's TTL
//	v:i:ID      its token, with the same TTL
//	sb:ID       hash: gen; n, the messages delivered; per account,
//	            d:ACCOUNT (deleted UIDs), x:ACCOUNT (refs of what
//	            arrived), one per line, and s:ACCOUNT (the newest
//	            bulletin seen); it lives as long as v:i:ID
//	sbm:ID      hash: UID → the octets of a message delivered by SMTP,
//	            as long as v:i:ID
//	lk:ID:ACCT  the maildrop lock's owner, with the lease's TTL
//	n:all       sorted set: every counted visitor's token, scored by when
//	            it expires (Admit); n:ip:KEY the same per address key
//	r:KEY       hash: the token bucket of visitors made from KEY
//	ev:ID       list: the visitor's facts as "NUMBER DATA", the last
//	            EventLogSize, as long as v:i:ID (a list: a third of a
//	            stream's memory for the same facts); each is published
//	            on channel ev:ID too
//	evn:ID      the number of the visitor's last fact
//	adm:ID      an organiser's sign-in, with its TTL
//	b:KEY       hash: a token bucket every replica shares (Bucket)
//	arm:KEY     sorted set: the visitors who used the client lab from
//	            address KEY, scored by when that lapses
//
// Every change that must hold across replicas is one script, run
// atomically by the server: no read-modify-write races between replicas.
// The keys are for one Redis (or a primary with replicas), not Redis
// Cluster: a script reads keys of one visitor that could hash apart.
type RedisStore struct {
	rdb    redis.UniversalClient
	prefix string
}

var _ Store = (*RedisStore)(nil)

// NewRedisStore connects to the store at url (redis://HOST:PORT/DB, or
// rediss:// for TLS), with timeouts short enough that a client is
// refused with words, not kept waiting, when it is down.
func NewRedisStore(url string) (*RedisStore, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("--store %q: %v (want redis://HOST:PORT/DB)", url, err)
	}
	opt.DialTimeout = 2 * time.Second
	opt.ReadTimeout = time.Second
	opt.WriteTimeout = time.Second
	opt.MaxRetries = 1
	return &RedisStore{rdb: redis.NewClient(opt), prefix: "pop3pg:"}, nil
}

// Close closes the connections.
func (s *RedisStore) Close() error { return s.rdb.Close() }

func (s *RedisStore) key(parts ...string) string { return s.prefix + strings.Join(parts, ":") }

// createVisitor sets both keys if neither exists.
var createVisitor = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('DEL', KEYS[3], KEYS[4], KEYS[5], KEYS[6])
return 1`)

func (s *RedisStore) CreateVisitor(ctx context.Context, r VisitorRecord, ttl time.Duration) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	ok, err := createVisitor.Run(ctx, s.rdb, []string{s.key("v", "t", r.Token), s.key("v", "i", r.ID), s.key("sb", r.ID), s.key("sbm", r.ID),
		s.key("ev", r.ID), s.key("evn", r.ID)},
		b, r.Token, ttl.Milliseconds()).Int()
	if err != nil {
		return err
	}
	if ok == 0 {
		return ErrExists
	}
	return nil
}

// admit checks and counts a new visitor, on the server's clock: the
// expired are dropped from the counts first; a token counted already
// passes.
var admit = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 'ok' end
local maxip, max = tonumber(ARGV[4]), tonumber(ARGV[5])
if maxip > 0 and redis.call('ZCARD', KEYS[2]) >= maxip then return 'ip' end
if max > 0 and redis.call('ZCARD', KEYS[1]) >= max then return 'full' end
local rate, burst = tonumber(ARGV[2]), tonumber(ARGV[3])
if rate > 0 then
  local tokens = tonumber(redis.call('HGET', KEYS[3], 't') or burst)
  local last = tonumber(redis.call('HGET', KEYS[3], 'at') or now)
  tokens = math.min(burst, tokens + (now - last) * rate / 1000)
  if tokens < 1 then return 'rate' end
  redis.call('HSET', KEYS[3], 't', tokens - 1, 'at', now)
  redis.call('PEXPIRE', KEYS[3], math.ceil(burst / rate * 1000) + 1000)
end
local exp = now + tonumber(ARGV[6])
redis.call('ZADD', KEYS[1], exp, ARGV[1])
redis.call('ZADD', KEYS[2], exp, ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return 'ok'`)

func (s *RedisStore) Admit(ctx context.Context, r VisitorRecord, lim Limits, ttl time.Duration) error {
	res, err := admit.Run(ctx, s.rdb, []string{s.key("n", "all"), s.key("n", "ip", r.IP), s.key("r", r.IP)},
		r.Token, lim.Rate, lim.Burst, lim.MaxPerIP, lim.Max, ttl.Milliseconds()).Text()
	switch {
	case err != nil:
		return err
	case res == "ip":
		return ErrIPTooMany
	case res == "full":
		return ErrFull
	case res == "rate":
		return ErrTooFast
	}
	return nil
}

func (s *RedisStore) VisitorByToken(ctx context.Context, token string) (VisitorRecord, error) {
	var r VisitorRecord
	b, err := s.rdb.Get(ctx, s.key("v", "t", token)).Bytes()
	if errors.Is(err, redis.Nil) {
		return r, ErrNotFound
	}
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal(b, &r)
}

// visitorByID finds the record by its ID in one round trip.
var visitorByID = redis.NewScript(`
local tok = redis.call('GET', KEYS[1])
if not tok then return false end
return redis.call('GET', ARGV[1] .. tok)`)

func (s *RedisStore) VisitorByID(ctx context.Context, id string) (VisitorRecord, error) {
	var r VisitorRecord
	b, err := visitorByID.Run(ctx, s.rdb, []string{s.key("v", "i", id)}, s.key("v", "t", "")).Text()
	if errors.Is(err, redis.Nil) {
		return r, ErrNotFound
	}
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal([]byte(b), &r)
}

// touchVisitor extends the record, its ID and its sandbox.
var touchVisitor = redis.NewScript(`
if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[3], ARGV[1])
redis.call('PEXPIRE', KEYS[4], ARGV[1])
local t = redis.call('TIME')
local exp = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
redis.call('ZADD', KEYS[5], 'XX', exp, ARGV[2])
redis.call('ZADD', KEYS[6], 'XX', exp, ARGV[2])
redis.call('PEXPIRE', KEYS[6], ARGV[1])
redis.call('PEXPIRE', KEYS[7], ARGV[1])
redis.call('PEXPIRE', KEYS[8], ARGV[1])
return 1`)

func (s *RedisStore) TouchVisitor(ctx context.Context, r VisitorRecord, ttl time.Duration) error {
	ok, err := touchVisitor.Run(ctx, s.rdb, []string{s.key("v", "t", r.Token), s.key("v", "i", r.ID), s.key("sb", r.ID), s.key("sbm", r.ID),
		s.key("n", "all"), s.key("n", "ip", r.IP), s.key("ev", r.ID), s.key("evn", r.ID)}, ttl.Milliseconds(), r.Token).Int()
	if err == nil && ok == 0 {
		err = ErrNotFound
	}
	return err
}

func (s *RedisStore) DeleteVisitor(ctx context.Context, r VisitorRecord) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.key("v", "t", r.Token), s.key("v", "i", r.ID), s.key("sb", r.ID), s.key("sbm", r.ID), s.key("ev", r.ID), s.key("evn", r.ID))
		p.ZRem(ctx, s.key("n", "all"), r.Token)
		p.ZRem(ctx, s.key("n", "ip", r.IP), r.Token)
		return nil
	})
	return err
}

func (s *RedisStore) Sandbox(ctx context.Context, id string) (SandboxState, error) {
	st := newSandboxState()
	var all *redis.MapStringStringCmd
	var exists *redis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		all = p.HGetAll(ctx, s.key("sb", id))
		exists = p.Exists(ctx, s.key("v", "i", id))
		return nil
	})
	if err != nil {
		return st, err
	}
	h := all.Val()
	st.Gone = exists.Val() == 0
	for f, v := range h {
		switch {
		case f == "gen":
			st.Gen, _ = strconv.ParseUint(v, 10, 64)
		case f == "n":
			st.Delivered, _ = strconv.Atoi(v)
		case strings.HasPrefix(f, "d:") && v != "":
			st.Deleted[f[2:]] = strings.Split(v, "\n")
		case strings.HasPrefix(f, "x:") && v != "":
			st.Extra[f[2:]] = strings.Split(v, "\n")
		case strings.HasPrefix(f, "s:"):
			st.Seen[f[2:]], _ = strconv.Atoi(v)
		}
	}
	return st, nil
}

// deleteUIDs is the compare-and-set of Delete: the lease still the
// owner's, the generation unchanged; then a ref of what arrived leaves
// x:ACCOUNT (and a delivered message's octets go), and a world UID joins
// d:ACCOUNT, once. The sandbox lives as long as its visitor's ID key.
var deleteUIDs = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local gen = redis.call('HGET', KEYS[2], 'gen') or '0'
if gen ~= ARGV[2] then return 0 end
local function split(s)
  local t = {}
  for u in string.gmatch(s or '', '[^\n]+') do t[#t + 1] = u end
  return t
end
local dfield, xfield = 'd:' .. ARGV[3], 'x:' .. ARGV[3]
local deleted, extra = split(redis.call('HGET', KEYS[2], dfield)), split(redis.call('HGET', KEYS[2], xfield))
local inDeleted, drop = {}, {}
for _, u in ipairs(deleted) do inDeleted[u] = true end
local inExtra = {}
for _, r in ipairs(extra) do inExtra[r] = true end
for i = 4, #ARGV do
  local u = ARGV[i]
  if inExtra[u] then
    drop[u] = true
    if string.sub(u, 1, 2) == 'm:' then redis.call('HDEL', KEYS[4], string.sub(u, 3)) end
  elseif not inDeleted[u] then
    inDeleted[u] = true
    deleted[#deleted + 1] = u
  end
end
local kept = {}
for _, r in ipairs(extra) do if not drop[r] then kept[#kept + 1] = r end end
redis.call('HSET', KEYS[2], dfield, table.concat(deleted, '\n'), xfield, table.concat(kept, '\n'))
local ttl = redis.call('PTTL', KEYS[3])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1`)

func (s *RedisStore) Delete(ctx context.Context, id, account, owner string, gen uint64, uids []string) error {
	args := append([]any{owner, strconv.FormatUint(gen, 10), account}, anys(uids)...)
	ok, err := deleteUIDs.Run(ctx, s.rdb, []string{s.key("lk", id, account), s.key("sb", id), s.key("v", "i", id), s.key("sbm", id)}, args...).Int()
	if err == nil && ok == 0 {
		err = ErrConflict
	}
	return err
}

// deliver appends a delivered message, unless the sandbox is full, and
// keeps its octets as long as the visitor.
var deliver = redis.NewScript(`
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
if tonumber(ARGV[4]) > 0 and n >= tonumber(ARGV[4]) then return 0 end
redis.call('HSET', KEYS[1], 'n', n + 1)
local field = 'x:' .. ARGV[1]
local cur = redis.call('HGET', KEYS[1], field) or ''
if cur == '' then cur = 'm:' .. ARGV[2] else cur = cur .. '\nm:' .. ARGV[2] end
redis.call('HSET', KEYS[1], field, cur)
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
local ttl = redis.call('PTTL', KEYS[3])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return 1`)

func (s *RedisStore) Deliver(ctx context.Context, id, account string, m StoredMessage, max int) error {
	ok, err := deliver.Run(ctx, s.rdb, []string{s.key("sb", id), s.key("sbm", id), s.key("v", "i", id)}, account, m.UID, m.Data, max).Int()
	if err == nil && ok == 0 {
		err = ErrMailboxFull
	}
	return err
}

func (s *RedisStore) Message(ctx context.Context, id, uid string) ([]byte, error) {
	b, err := s.rdb.HGet(ctx, s.key("sbm", id), uid).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	return b, err
}

// arrived appends bulletins' refs and the newest seen, under the lease.
var arrived = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local field = 'x:' .. ARGV[2]
local cur = redis.call('HGET', KEYS[2], field) or ''
for i = 4, #ARGV do
  if cur == '' then cur = ARGV[i] else cur = cur .. '\n' .. ARGV[i] end
end
redis.call('HSET', KEYS[2], field, cur)
local seen = tonumber(redis.call('HGET', KEYS[2], 's:' .. ARGV[2]) or '0')
if tonumber(ARGV[3]) > seen then redis.call('HSET', KEYS[2], 's:' .. ARGV[2], ARGV[3]) end
local ttl = redis.call('PTTL', KEYS[3])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1`)

func (s *RedisStore) Arrived(ctx context.Context, id, account, owner string, refs []string, seen int) error {
	args := append([]any{owner, account, seen}, anys(refs)...)
	ok, err := arrived.Run(ctx, s.rdb, []string{s.key("lk", id, account), s.key("sb", id), s.key("v", "i", id)}, args...).Int()
	if err == nil && ok == 0 {
		err = ErrConflict
	}
	return err
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// resetSandbox bumps the generation and drops everything else.
var resetSandbox = redis.NewScript(`
local gen = redis.call('HINCRBY', KEYS[1], 'gen', 1)
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if f ~= 'gen' then redis.call('HDEL', KEYS[1], f) end
end
redis.call('DEL', KEYS[3])
local ttl = redis.call('PTTL', KEYS[2])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) else redis.call('PEXPIRE', KEYS[1], 86400000) end
return gen`)

func (s *RedisStore) ResetSandbox(ctx context.Context, id string) error {
	return resetSandbox.Run(ctx, s.rdb, []string{s.key("sb", id), s.key("v", "i", id), s.key("sbm", id)}).Err()
}

// lease takes a free lock, or renews the owner's.
var lease = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`)

func (s *RedisStore) Lease(ctx context.Context, id, account, owner string, ttl time.Duration) (bool, error) {
	ok, err := lease.Run(ctx, s.rdb, []string{s.key("lk", id, account)}, owner, ttl.Milliseconds()).Int()
	return ok == 1, err
}

// release deletes the lock if it is the owner's.
var release = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

func (s *RedisStore) Release(ctx context.Context, id, account, owner string) error {
	return release.Run(ctx, s.rdb, []string{s.key("lk", id, account)}, owner).Err()
}

func (s *RedisStore) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

func (s *RedisStore) Gone(ctx context.Context, tokens []string) ([]bool, error) {
	cmds := make([]*redis.IntCmd, len(tokens))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, t := range tokens {
			cmds[i] = p.Exists(ctx, s.key("v", "t", t))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	gone := make([]bool, len(tokens))
	for i, c := range cmds {
		gone[i] = c.Val() == 0
	}
	return gone, nil
}

func (s *RedisStore) Replica(ctx context.Context) (uint64, error) {
	n, err := s.rdb.Incr(ctx, s.key("replicas")).Uint64()
	return n, err
}

// publish appends facts, numbered, and tells the followers.
var publish = redis.NewScript(`
local seq = redis.call('INCRBY', KEYS[2], #ARGV - 1) - (#ARGV - 1)
for i = 2, #ARGV do
  seq = seq + 1
  local entry = seq .. ' ' .. ARGV[i]
  redis.call('RPUSH', KEYS[1], entry)
  redis.call('PUBLISH', KEYS[1], entry)
end
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[1]), -1)
local ttl = redis.call('PTTL', KEYS[3])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return seq`)

func (s *RedisStore) Publish(ctx context.Context, id string, facts [][]byte) error {
	if len(facts) == 0 {
		return nil
	}
	args := make([]any, 0, len(facts)+1)
	args = append(args, EventLogSize)
	for _, d := range facts {
		args = append(args, d)
	}
	return publish.Run(ctx, s.rdb, []string{s.key("ev", id), s.key("evn", id), s.key("v", "i", id)}, args...).Err()
}

func (s *RedisStore) Facts(ctx context.Context, id string, after uint64) ([]Fact, error) {
	entries, err := s.rdb.LRange(ctx, s.key("ev", id), 0, -1).Result()
	if err != nil {
		return nil, err
	}
	var out []Fact
	for _, e := range entries {
		if f, ok := parseFact(id, e); ok && f.Seq > after {
			out = append(out, f)
		}
	}
	return out, nil
}

// parseFact reads "NUMBER DATA".
func parseFact(id, entry string) (Fact, bool) {
	seq, data, ok := strings.Cut(entry, " ")
	n, err := strconv.ParseUint(seq, 10, 64)
	return Fact{Visitor: id, Seq: n, Data: []byte(data)}, ok && err == nil
}

func (s *RedisStore) Follow(ctx context.Context) Follower {
	ps := s.rdb.Subscribe(ctx)
	f := &redisFollower{s: s, ps: ps, c: make(chan Fact, 1024), waiting: map[string][]chan struct{}{}}
	go f.run()
	return f
}

// redisFollower is a Follower on Redis pub/sub: one connection a replica.
type redisFollower struct {
	s  *RedisStore
	ps *redis.PubSub
	c  chan Fact

	mu      sync.Mutex
	waiting map[string][]chan struct{} // channel → Adds waiting for the server's confirmation
}

func (f *redisFollower) run() {
	defer close(f.c)
	prefix := f.s.key("ev", "")
	for m := range f.ps.ChannelWithSubscriptions(redis.WithChannelSize(1024)) {
		switch m := m.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				f.mu.Lock()
				for _, w := range f.waiting[m.Channel] {
					close(w)
				}
				delete(f.waiting, m.Channel)
				f.mu.Unlock()
			}
		case *redis.Message:
			if fact, ok := parseFact(strings.TrimPrefix(m.Channel, prefix), m.Payload); ok {
				f.c <- fact
			}
		}
	}
}

func (f *redisFollower) channels(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = f.s.key("ev", id)
	}
	return out
}

// Add subscribes, and returns once the server has confirmed it: what is
// published after Add returns reaches the follower, so a catch-up read
// after it misses nothing.
func (f *redisFollower) Add(ctx context.Context, ids ...string) error {
	chans := f.channels(ids)
	waits := make([]chan struct{}, len(chans))
	f.mu.Lock()
	for i, ch := range chans {
		waits[i] = make(chan struct{})
		f.waiting[ch] = append(f.waiting[ch], waits[i])
	}
	f.mu.Unlock()
	if err := f.ps.Subscribe(ctx, chans...); err != nil {
		return err
	}
	for _, w := range waits {
		select {
		case <-w:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (f *redisFollower) Remove(ctx context.Context, ids ...string) error {
	return f.ps.Unsubscribe(ctx, f.channels(ids)...)
}

func (f *redisFollower) Facts() <-chan Fact { return f.c }
func (f *redisFollower) Close() error       { return f.ps.Close() }

func (s *RedisStore) Visitors(ctx context.Context) ([]VisitorRecord, error) {
	var out []VisitorRecord
	iter := s.rdb.Scan(ctx, 0, s.key("v", "t", "*"), 500).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, err
	}
	for len(keys) > 0 {
		n := min(len(keys), 500)
		vals, err := s.rdb.MGet(ctx, keys[:n]...).Result()
		if err != nil {
			return nil, err
		}
		for _, v := range vals {
			if str, ok := v.(string); ok {
				var r VisitorRecord
				if json.Unmarshal([]byte(str), &r) == nil {
					out = append(out, r)
				}
			}
		}
		keys = keys[n:]
	}
	return out, nil
}

// arm notes a visitor's use of the lab from an address, on the server's clock.
var arm = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1`)

func (s *RedisStore) Arm(ctx context.Context, key, id string, ttl time.Duration) error {
	return arm.Run(ctx, s.rdb, []string{s.key("arm", key)}, id, ttl.Milliseconds()).Err()
}

// armed lists the visitors whose use of the lab from an address holds.
var armed = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)`)

func (s *RedisStore) Armed(ctx context.Context, key string) ([]string, error) {
	ids, err := armed.Run(ctx, s.rdb, []string{s.key("arm", key)}).StringSlice()
	slices.Sort(ids)
	return ids, err
}

func (s *RedisStore) AdminSession(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	key := s.key("adm", id)
	switch {
	case ttl > 0:
		return true, s.rdb.Set(ctx, key, 1, ttl).Err()
	case ttl == 0:
		return false, s.rdb.Del(ctx, key).Err()
	}
	n, err := s.rdb.Exists(ctx, key).Result()
	return n == 1, err
}

// bucket is a token bucket on the server's clock: ARGV rate, burst,
// take (1 or 0).
var bucket = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local tokens = tonumber(redis.call('HGET', KEYS[1], 't') or burst)
local last = tonumber(redis.call('HGET', KEYS[1], 'at') or now)
tokens = math.min(burst, tokens + (now - last) * rate / 1000)
if tokens < 1 then return 0 end
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], 't', tokens - 1, 'at', now)
  redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
end
return 1`)

func (s *RedisStore) Bucket(ctx context.Context, key string, rate float64, burst int, take bool) (bool, error) {
	t := "0"
	if take {
		t = "1"
	}
	ok, err := bucket.Run(ctx, s.rdb, []string{s.key("b", key)}, rate, burst, t).Int()
	return ok == 1, err
}

func (s *RedisStore) Heads(ctx context.Context, ids []string) ([]uint64, error) {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.key("evn", id)
	}
	heads := make([]uint64, len(ids))
	if len(ids) == 0 {
		return heads, nil
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, err
	}
	for i, v := range vals {
		if str, ok := v.(string); ok {
			heads[i], _ = strconv.ParseUint(str, 10, 64)
		}
	}
	return heads, nil
}
