package sessions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore is a Store on Redis (≥ 7) or Valkey, for replicas. Keys,
// under a prefix:
//
//	v:t:TOKEN   the visitor's record (JSON), with the visitor's TTL
//	v:i:ID      its token, with the same TTL
//	sb:ID       hash: gen, and d:ACCOUNT → deleted UIDs, one per line;
//	            it lives as long as v:i:ID
//	lk:ID:ACCT  the maildrop lock's owner, with the lease's TTL
//
// Every change that must hold across replicas is one script, run
// atomically by the server: no read-modify-write races between replicas.
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
redis.call('DEL', KEYS[3])
return 1`)

func (s *RedisStore) CreateVisitor(ctx context.Context, r VisitorRecord, ttl time.Duration) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	ok, err := createVisitor.Run(ctx, s.rdb, []string{s.key("v", "t", r.Token), s.key("v", "i", r.ID), s.key("sb", r.ID)},
		b, r.Token, ttl.Milliseconds()).Int()
	if err != nil {
		return err
	}
	if ok == 0 {
		return ErrExists
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

func (s *RedisStore) VisitorByID(ctx context.Context, id string) (VisitorRecord, error) {
	tok, err := s.rdb.Get(ctx, s.key("v", "i", id)).Result()
	if errors.Is(err, redis.Nil) {
		return VisitorRecord{}, ErrNotFound
	}
	if err != nil {
		return VisitorRecord{}, err
	}
	return s.VisitorByToken(ctx, tok)
}

// touchVisitor extends the record, its ID and its sandbox.
var touchVisitor = redis.NewScript(`
if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[3], ARGV[1])
return 1`)

func (s *RedisStore) TouchVisitor(ctx context.Context, r VisitorRecord, ttl time.Duration) error {
	ok, err := touchVisitor.Run(ctx, s.rdb, []string{s.key("v", "t", r.Token), s.key("v", "i", r.ID), s.key("sb", r.ID)}, ttl.Milliseconds()).Int()
	if err == nil && ok == 0 {
		err = ErrNotFound
	}
	return err
}

func (s *RedisStore) DeleteVisitor(ctx context.Context, r VisitorRecord) error {
	return s.rdb.Del(ctx, s.key("v", "t", r.Token), s.key("v", "i", r.ID), s.key("sb", r.ID)).Err()
}

func (s *RedisStore) Sandbox(ctx context.Context, id string) (SandboxState, error) {
	st := SandboxState{Deleted: map[string][]string{}}
	h, err := s.rdb.HGetAll(ctx, s.key("sb", id)).Result()
	if err != nil {
		return st, err
	}
	for f, v := range h {
		switch {
		case f == "gen":
			st.Gen, _ = strconv.ParseUint(v, 10, 64)
		case strings.HasPrefix(f, "d:") && v != "":
			st.Deleted[f[2:]] = strings.Split(v, "\n")
		}
	}
	return st, nil
}

// deleteUIDs is the compare-and-set of Delete: the lease still the
// owner's, the generation unchanged; then the UIDs are added, each once,
// and the sandbox lives as long as its visitor's ID key.
var deleteUIDs = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local gen = redis.call('HGET', KEYS[2], 'gen') or '0'
if gen ~= ARGV[2] then return 0 end
local field = 'd:' .. ARGV[3]
local cur = redis.call('HGET', KEYS[2], field) or ''
local seen = {}
for u in string.gmatch(cur, '[^\n]+') do seen[u] = true end
for i = 4, #ARGV do
  if not seen[ARGV[i]] then
    seen[ARGV[i]] = true
    if cur == '' then cur = ARGV[i] else cur = cur .. '\n' .. ARGV[i] end
  end
end
redis.call('HSET', KEYS[2], field, cur)
local ttl = redis.call('PTTL', KEYS[3])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1`)

func (s *RedisStore) Delete(ctx context.Context, id, account, owner string, gen uint64, uids []string) error {
	args := append([]any{owner, strconv.FormatUint(gen, 10), account}, anys(uids)...)
	ok, err := deleteUIDs.Run(ctx, s.rdb, []string{s.key("lk", id, account), s.key("sb", id), s.key("v", "i", id)}, args...).Int()
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

// resetSandbox bumps the generation and drops every deletion.
var resetSandbox = redis.NewScript(`
local gen = redis.call('HINCRBY', KEYS[1], 'gen', 1)
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if f ~= 'gen' then redis.call('HDEL', KEYS[1], f) end
end
local ttl = redis.call('PTTL', KEYS[2])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) else redis.call('PEXPIRE', KEYS[1], 86400000) end
return gen`)

func (s *RedisStore) ResetSandbox(ctx context.Context, id string) error {
	return resetSandbox.Run(ctx, s.rdb, []string{s.key("sb", id), s.key("v", "i", id)}).Err()
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
