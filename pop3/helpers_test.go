package pop3_test

import (
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/pop3/pop3test"
)

type testEnv struct {
	srv  *pop3.Server
	addr string
	// proxyAddr is a listener for proxies on loopback (ServeProxied).
	proxyAddr string
	be        *pop3test.Backend
	log       *pop3test.SyncBuffer
	certs     *x509.CertPool
	caFile    string // the certificate as PEM, for curl and Python
	served    chan error
}

type option func(*pop3.Server)

// testServer starts a Server on 127.0.0.1:0 with the test maildrops
// (pop3test.NewBackend), short delays, and a self-signed certificate for
// STLS.
func testServer(t testing.TB, opts ...option) *testEnv {
	t.Helper()
	be := pop3test.NewBackend()
	env := &testEnv{be: be, log: &pop3test.SyncBuffer{}, served: make(chan error, 1)}
	srv := pop3.NewServer(be)
	srv.Hostname = "pop.test"
	srv.AuthFailureDelay = time.Millisecond
	srv.Logger = slog.New(slog.NewTextHandler(env.log, nil))
	cert, err := pop3.SelfSignedCertificate("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	env.certs = x509.NewCertPool()
	env.certs.AddCert(cert.Leaf)
	env.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(env.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Leaf.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		o(srv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// A proxied listener beside it, for proxies on loopback.
	lp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env.srv, env.addr, env.proxyAddr = srv, l.Addr().String(), lp.Addr().String()
	go func() { env.served <- srv.Serve(l) }()
	go srv.ServeProxied(lp, loopbackNets)
	t.Cleanup(func() {
		srv.Close()
		if err := <-env.served; !errors.Is(err, pop3.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		if strings.Contains(env.log.String(), "panic") {
			t.Errorf("server log has a panic:\n%s", env.log)
		}
	})
	return env
}

// client is the shared line-level client.
type client = pop3test.Client

func (env *testEnv) dial(t *testing.T) *client {
	t.Helper()
	conn, err := net.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	c := pop3test.NewClient(t, conn)
	c.Greeting = c.ReadLine()
	return c
}

// greeted returns a client past a greeting that must be +OK.
func (env *testEnv) greeted(t *testing.T) *client {
	t.Helper()
	c := env.dial(t)
	if !strings.HasPrefix(c.Greeting, "+OK ") {
		t.Fatalf("greeting %q, want +OK", c.Greeting)
	}
	return c
}

// authenticated returns a client logged in as guest, in TRANSACTION.
func (env *testEnv) authenticated(t *testing.T) *client {
	t.Helper()
	c := env.greeted(t)
	c.Expect("USER guest", "+OK ")
	c.Expect("PASS visitor", "+OK guest's maildrop has 7 messages (54859 octets)")
	return c
}

func apopDigest(timestamp, secret string) string {
	sum := md5.Sum([]byte(timestamp + secret))
	return hex.EncodeToString(sum[:])
}

var timestampRe = regexp.MustCompile(`<[^<>]+@[^<>]+>`)

func listenLoopback() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
