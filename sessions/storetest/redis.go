// Package storetest helps tests that need the replicas' store.
package storetest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// RedisServer starts a real redis-server on a free loopback port for the
// test, with nothing saved to disk, and returns its address; it skips
// the test without one, or fails it if POP3PG_REQUIRE_REDIS=1.
func RedisServer(t testing.TB) string { return StartRedis(t).Addr }

// A Redis is a redis-server a test can stop and start again (empty: it
// saves nothing) on the same address.
type Redis struct {
	Addr string
	t    testing.TB
	bin  string
	dir  string
	cmd  *exec.Cmd
}

// StartRedis is RedisServer, returning the server.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("POP3PG_REQUIRE_REDIS") == "1" {
			t.Fatal("redis-server is not installed (apt-get install redis-server)")
		}
		t.Skip("redis-server is not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Redis{Addr: l.Addr().String(), t: t, bin: bin, dir: t.TempDir()}
	l.Close()
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// Start starts the server (again), and waits until it listens.
func (r *Redis) Start() {
	r.t.Helper()
	_, port, _ := net.SplitHostPort(r.Addr)
	r.cmd = exec.Command(r.bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", r.dir,
		"--logfile", filepath.Join(r.dir, "redis.log"))
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", r.Addr); err == nil {
			c.Close()
			return
		}
		if i == 100 {
			r.t.Fatalf("redis-server did not listen on %s", r.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server: what it held is lost.
func (r *Redis) Stop() {
	if r.cmd != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}
