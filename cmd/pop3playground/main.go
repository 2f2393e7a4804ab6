// Command pop3playground runs the POP3 Playground: a real POP3 server on a
// fixture world of mailboxes, where every login gets its own sandbox.
//
// Every flag can also be set by an environment variable: --pop3-addr by
// POP3PG_POP3_ADDR, and so on; a flag on the command line wins.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/sessions"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "pop3playground:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))

	if cfg.probe != "" {
		return probe(ctx, cfg.probe, stdout)
	}
	if cfg.check {
		return check(cfg, stdout)
	}
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	world, lessons, err := loadAll(cfg)
	if err != nil {
		return err
	}
	// Loading read every file whole; give that memory back to the
	// system now rather than keep it as the process's high-water mark.
	debug.FreeOSMemory()
	for _, w := range world.Warnings {
		logger.Warn("world: " + w)
	}
	for _, w := range world.LessonWarnings(lessons) {
		logger.Warn("lessons: " + w)
	}

	p, err := newPlayground(cfg, world, lessons, logger)
	if err != nil {
		return err
	}
	defer p.closeTrace()
	if err := p.listen(); err != nil {
		return err
	}
	errc := p.serve()
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	defer stopSweep()
	go p.visitors.Run(sweepCtx)
	p.banner(stdout)

	select {
	case err := <-errc:
		p.close()
		return err
	case <-ctx.Done():
	}
	p.shutdown()
	return nil
}

func loadWorld(cfg *config) (*sessions.World, error) {
	if cfg.mailboxes == "" {
		return sessions.DefaultWorld()
	}
	return sessions.LoadDir(cfg.mailboxes, cfg.users)
}

// loadAll loads everything the organiser configured: the world with its
// bulletins, and the lessons.
func loadAll(cfg *config) (*sessions.World, []*sessions.Lesson, error) {
	world, err := loadWorld(cfg)
	if err != nil {
		return nil, nil, err
	}
	if cfg.bulletins != "" {
		if err := world.Bulletins.LoadBulletins(cfg.bulletins); err != nil {
			return nil, nil, fmt.Errorf("--bulletins: %w", err)
		}
	}
	lessons, err := loadLessons(cfg)
	if err != nil {
		return nil, nil, err
	}
	return world, lessons, nil
}

func loadLessons(cfg *config) ([]*sessions.Lesson, error) {
	builtin, err := sessions.BuiltinLessons()
	if err != nil {
		return nil, err
	}
	spec := cfg.builtinLessons
	if spec == "" {
		spec = "all"
		if cfg.mailboxes != "" {
			spec = "none"
		}
	}
	lessons, err := sessions.SelectLessons(builtin, spec)
	if err != nil {
		return nil, fmt.Errorf("--builtin-lessons: %w", err)
	}
	if cfg.lessons == "" {
		return lessons, nil
	}
	lessons, err = sessions.LoadLessons(os.DirFS(cfg.lessons), lessons)
	if err != nil {
		return nil, fmt.Errorf("--lessons %s: %w", cfg.lessons, err)
	}
	return lessons, nil
}

func tlsConfig(cfg *config) (*tls.Config, error) {
	var cert tls.Certificate
	var err error
	if cfg.tlsCert != "" {
		cert, err = tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
	} else {
		cert, err = pop3.SelfSignedCertificate(cfg.hostname, "localhost", "127.0.0.1", "::1")
	}
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

func printBanner(w io.Writer, cfg *config, world *sessions.World, addr net.Addr, pop3s, httpL net.Listener) {
	host, port, _ := net.SplitHostPort(addr.String())
	if h, _, err := net.SplitHostPort(cfg.pop3Addr); err == nil && h != "" {
		host = h
	}
	fmt.Fprintf(w, "POP3 Playground: POP3 on %s (STLS available)\n", addr)
	if pop3s != nil {
		fmt.Fprintf(w, "                 POP3S (implicit TLS) on %s\n", pop3s.Addr())
	}
	if httpL != nil {
		_, hp, _ := net.SplitHostPort(httpL.Addr().String())
		web := "http://" + net.JoinHostPort(publicHost(cfg), hp)
		fmt.Fprintf(w, "                 web playground on %s\n", web)
		if cfg.tokenGenerated {
			// Printed here, never logged: the log may go where the page's
			// visitors can read it.
			fmt.Fprintf(w, "                 organiser page on %s/admin (token %s; set --admin-token to keep one)\n", web, cfg.adminToken)
		} else {
			fmt.Fprintf(w, "                 organiser page on %s/admin (token from --admin-token)\n", web)
		}
	}
	accounts := world.Accounts()
	fmt.Fprintf(w, "World: %d accounts", len(accounts))
	if cfg.mailboxes == "" {
		fmt.Fprintf(w, " (the embedded default)")
	}
	fmt.Fprintln(w)
	if name, pass, ok := world.FirstLogin(); ok {
		fmt.Fprintf(w, "\nTry it:  nc -C %s %s    then  USER %s, PASS %s, LIST, RETR 1, QUIT\n", host, port, name, pass)
		fmt.Fprintf(w, "     or:  curl pop3://%s:%s@%s:%s/1\n", name, pass, host, port)
	}
}
