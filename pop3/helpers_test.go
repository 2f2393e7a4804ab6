package pop3_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/sessions"
)

// testWorld is the embedded default world, loaded once.
var testWorld = sync.OnceValue(func() *sessions.World {
	w, err := sessions.DefaultWorld()
	if err != nil {
		panic(err)
	}
	return w
})

// sharedBackend serves every login from one sandbox, as a visitor's
// connections are, so that tests see locks and deletions across sessions.
// closed receives the user of every Maildrop released.
type sharedBackend struct {
	sb     *sessions.Sandbox
	closed chan string
	infos  chan pop3.ConnInfo
}

func (b *sharedBackend) Login(ctx context.Context, c *pop3.ConnInfo, user, pass string) (pop3.Maildrop, error) {
	select {
	case b.infos <- *c:
	default:
	}
	md, err := b.sb.Login(user, pass)
	if err != nil {
		return nil, err
	}
	return &notifyMaildrop{md, b.closed, user}, nil
}

func (b *sharedBackend) LoginAPOP(ctx context.Context, c *pop3.ConnInfo, user, timestamp, digest string) (pop3.Maildrop, error) {
	md, err := b.sb.LoginAPOP(user, timestamp, digest)
	if err != nil {
		return nil, err
	}
	return &notifyMaildrop{md, b.closed, user}, nil
}

type notifyMaildrop struct {
	*sessions.Maildrop
	closed chan string
	user   string
}

func (m *notifyMaildrop) Close() error {
	err := m.Maildrop.Close()
	select {
	case m.closed <- m.user:
	default:
	}
	return err
}

type testEnv struct {
	srv  *pop3.Server
	addr string
	// proxyAddr is a listener for proxies on loopback (ServeProxied).
	proxyAddr string
	be        *sharedBackend
	log       *syncBuffer
	certs     *x509.CertPool
	caFile    string // the certificate as PEM, for curl and Python
	served    chan error
}

type option func(*pop3.Server)

// testServer starts a Server on 127.0.0.1:0 with the default world in one
// shared sandbox, short delays, and a self-signed certificate for STLS.
func testServer(t testing.TB, opts ...option) *testEnv {
	t.Helper()
	be := &sharedBackend{sb: sessions.NewSandbox(testWorld()), closed: make(chan string, 16), infos: make(chan pop3.ConnInfo, 16)}
	env := &testEnv{be: be, log: &syncBuffer{}, served: make(chan error, 1)}
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

// client is a line-level POP3 client for transcripts.
type client struct {
	t        *testing.T
	conn     net.Conn
	r        *bufio.Reader
	greeting string
}

func (env *testEnv) dial(t *testing.T) *client {
	t.Helper()
	conn, err := net.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	c.greeting = c.readLine()
	return c
}

// greeted returns a client past a greeting that must be +OK.
func (env *testEnv) greeted(t *testing.T) *client {
	t.Helper()
	c := env.dial(t)
	if !strings.HasPrefix(c.greeting, "+OK ") {
		t.Fatalf("greeting %q, want +OK", c.greeting)
	}
	return c
}

// authenticated returns a client logged in as guest, in TRANSACTION.
func (env *testEnv) authenticated(t *testing.T) *client {
	t.Helper()
	c := env.greeted(t)
	c.expect("USER guest", "+OK ")
	c.expect("PASS visitor", "+OK guest's maildrop has 7 messages (54859 octets)")
	return c
}

func (c *client) send(line string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
}

func (c *client) readLine() string {
	c.t.Helper()
	line, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading a reply: %v (got %q)", err, line)
	}
	if !strings.HasSuffix(line, "\r\n") {
		c.t.Fatalf("reply %q does not end with CRLF", line)
	}
	return strings.TrimSuffix(line, "\r\n")
}

// cmd sends a command and returns its status line.
func (c *client) cmd(line string) string {
	c.t.Helper()
	c.send(line)
	return c.readLine()
}

// expect sends a command and checks that its status line starts with want.
func (c *client) expect(line, want string) string {
	c.t.Helper()
	got := c.cmd(line)
	if !strings.HasPrefix(got, want) {
		c.t.Fatalf("%s: got %q, want %q", line, got, want)
	}
	return got
}

// expectRe sends a command and matches its status line against re.
func (c *client) expectRe(line, re string) string {
	c.t.Helper()
	got := c.cmd(line)
	if !regexp.MustCompile(re).MatchString(got) {
		c.t.Fatalf("%s: got %q, want match for %q", line, got, re)
	}
	return got
}

// body reads a multi-line body up to its "." line and undoes dot-stuffing.
func (c *client) body() []string {
	c.t.Helper()
	var lines []string
	for {
		l := c.readLine()
		if l == "." {
			return lines
		}
		lines = append(lines, strings.TrimPrefix(l, "."))
	}
}

// rawBody reads a multi-line body as sent, "." line included.
func (c *client) rawBody() string {
	c.t.Helper()
	var b strings.Builder
	for {
		l := c.readLine()
		b.WriteString(l + "\r\n")
		if l == "." {
			return b.String()
		}
	}
}

// expectClosed checks that the server closes the connection.
func (c *client) expectClosed() {
	c.t.Helper()
	if line, err := c.r.ReadString('\n'); err != io.EOF {
		c.t.Fatalf("connection still open: read %q, %v", line, err)
	}
}

func apopDigest(timestamp, secret string) string {
	sum := md5.Sum([]byte(timestamp + secret))
	return hex.EncodeToString(sum[:])
}

var timestampRe = regexp.MustCompile(`<[^<>]+@[^<>]+>`)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

func listenLoopback() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// expectLine reads a line that must start with want.
func (c *client) expectLine(want string) string {
	c.t.Helper()
	got := c.readLine()
	if !strings.HasPrefix(got, want) {
		c.t.Fatalf("got %q, want %q", got, want)
	}
	return got
}

// waitFor polls cond for up to five seconds.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
