package sessions

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/pop3playground/pop3playground/pop3/pop3test"
	"github.com/pop3playground/pop3playground/sessions/storetest"
)

// The costs of replicas on a real redis-server (skipped without one):
//
//	go test -run '^$' -bench 'Store' -benchtime 1x ./sessions
//
// BenchmarkStoreMemory: the store's memory per idle visitor, and per
// visitor after the lab sheet (a personal login, LIST, RETR 3, DELE 3,
// QUIT). BenchmarkStoreRoundTrips: the store's round trips per personal
// login and per QUIT. BenchmarkPersonalLogins: whole personal-login
// sessions a second, in the process and on the store, in one run.

// tripCounter counts the round trips a session waits on: a script, a
// pipeline, one command each. What a replica does in the background is
// not counted: publishing a visitor's facts (pipelines of the publish
// script), following a visitor (SUBSCRIBE, on the replica's pub/sub
// connection) and catching up on its stream (LRANGE); nor a new pooled
// connection's handshake (HELLO, CLIENT SETINFO).
type tripCounter struct{ n atomic.Int64 }

func background(cmd redis.Cmder) bool {
	args := cmd.Args()
	switch name := strings.ToLower(fmt.Sprint(args[0])); {
	case name == "lrange" || name == "subscribe" || name == "unsubscribe" || name == "hello" || name == "client":
		return true
	case (name == "eval" || name == "evalsha") && len(args) > 1:
		return strings.Contains(fmt.Sprint(args[1]), "RPUSH") || fmt.Sprint(args[1]) == publish.Hash()
	}
	return false
}

func (c *tripCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *tripCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !background(cmd) {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (c *tripCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !background(cmds[0]) {
			c.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

func benchRedis(b *testing.B) (*RedisStore, *redis.Client, *tripCounter) {
	addr := storetest.RedisServer(b)
	s, err := NewRedisStore("redis://" + addr + "/0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	trips := &tripCounter{}
	s.rdb.AddHook(trips)
	admin := redis.NewClient(&redis.Options{Addr: addr})
	b.Cleanup(func() { admin.Close() })
	return s, admin, trips
}

// usedMemory is the server's used_memory.
func usedMemory(b *testing.B, c *redis.Client) int64 {
	info, err := c.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Fatal("no used_memory")
	return 0
}

// labSheet is the lab sheet as a personal login does it.
func labSheet(b *testing.B, addr, login string) {
	c := pop3test.Dial(b, addr)
	c.Expect("USER "+login, "+OK")
	c.Expect("PASS visitor", "+OK")
	c.Do("LIST", "+OK")
	c.Do("RETR 3", "+OK")
	c.Expect("DELE 3", "+OK")
	c.Expect("QUIT", "+OK")
}

func BenchmarkStoreMemory(b *testing.B) {
	const n = 1000
	store, admin, _ := benchRedis(b)
	w := loadDefault(b)
	r := startBenchReplica(b, w, store)
	for b.Loop() {
		admin.FlushAll(context.Background())
		before := usedMemory(b, admin)
		vs := make([]*Visitor, n)
		for i := range vs {
			v, err := r.vs.New(fmt.Sprintf("10.%d.%d.1", i/250, i%250))
			if err != nil {
				b.Fatal(err)
			}
			vs[i] = v
		}
		idle := usedMemory(b, admin)
		for _, v := range vs[:100] {
			labSheet(b, r.addr, v.PersonalLogin("guest"))
		}
		after := usedMemory(b, admin)
		b.ReportMetric(float64(idle-before)/n, "B/idle-visitor")
		b.ReportMetric(float64(idle-before)/n+float64(after-idle)/100, "B/visitor-after-lab-sheet")
	}
}

func BenchmarkStoreRoundTrips(b *testing.B) {
	store, _, trips := benchRedis(b)
	w := loadDefault(b)
	maker, r := startBenchReplica(b, w, store), startBenchReplica(b, w, store)
	measure := func(report bool) {
		v, err := maker.vs.New("192.0.2.1")
		if err != nil {
			b.Fatal(err)
		}
		login := v.PersonalLogin("guest")
		for _, first := range []bool{true, false} { // on a replica that has not seen the visitor, then has
			c := pop3test.Dial(b, r.addr)
			c.Expect("USER "+login, "+OK")
			start := trips.n.Load()
			c.Expect("PASS visitor", "+OK")
			loggedIn := trips.n.Load()
			c.Do("LIST", "+OK")
			c.Do("RETR 1", "+OK")
			c.Expect("DELE 1", "+OK")
			if during := trips.n.Load() - loggedIn; during != 0 {
				b.Errorf("transaction commands waited on %d round trips", during)
			}
			quit := trips.n.Load()
			c.Expect("QUIT", "+OK")
			pop3test.WaitFor(b, func() bool { return !v.Sandbox.InUse() })
			switch {
			case !report:
			case first:
				b.ReportMetric(float64(loggedIn-start), "trips/first-login")
			default:
				b.ReportMetric(float64(loggedIn-start), "trips/login")
				b.ReportMetric(float64(trips.n.Load()-quit), "trips/quit")
			}
		}
	}
	measure(false) // the scripts' first runs load them (EVALSHA, then EVAL): once a server
	for b.Loop() {
		measure(true)
	}
}

// BenchmarkPersonalLogins: sessions of a personal login (USER, PASS,
// STAT, RETR 1, QUIT) from 8 clients, in the process and on the store.
func BenchmarkPersonalLogins(b *testing.B) {
	w := loadDefault(b)
	run := func(b *testing.B, store Store) {
		r := startBenchReplica(b, w, store)
		logins := make([]string, 8)
		for i := range logins {
			v, err := r.vs.New(fmt.Sprintf("10.0.%d.1", i))
			if err != nil {
				b.Fatal(err)
			}
			logins[i] = v.PersonalLogin("guest")
		}
		var next atomic.Int64
		b.SetParallelism(4) // 2 cores × 4 = 8 clients
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			login := logins[next.Add(1)%8]
			for pb.Next() {
				c := pop3test.Dial(b, r.addr)
				c.Expect("USER "+login, "+OK")
				c.Expect("PASS visitor", "+OK")
				c.Expect("STAT", "+OK")
				c.Do("RETR 1", "+OK")
				c.Expect("QUIT", "+OK")
				c.Conn.Close()
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sessions/s")
	}
	b.Run("in-process", func(b *testing.B) { run(b, nil) })
	b.Run("redis", func(b *testing.B) {
		store, _, _ := benchRedis(b)
		run(b, store)
	})
}

// startBenchReplica is startReplica for benchmarks, with the limits on
// visitors off.
func startBenchReplica(b *testing.B, w *World, store Store) *replica {
	r := startReplica(b, w, store)
	r.vs.Rate.Rate, r.vs.MaxPerIP = 0, 0
	r.srv.MaxConnsPerIP = 0
	return r
}
