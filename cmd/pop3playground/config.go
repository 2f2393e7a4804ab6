package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pop3playground/pop3playground/pop3"
	"github.com/pop3playground/pop3playground/sessions"
	"github.com/pop3playground/pop3playground/web"
)

// config is everything the flags and environment decide.
type config struct {
	pop3Addr         string
	pop3ProxyAddr    string
	pop3sAddr        string
	hostname         string
	mailboxes        string
	users            string
	idleTimeout      time.Duration
	tlsCert, tlsKey  string
	trace            string
	traceMaxBytes    byteSize
	cpuProfile       string
	loginTimeout     time.Duration
	unusedTTL        time.Duration
	visitorRate      float64
	visitorBurst     int
	maxConns         int
	trustedProxies   prefixList
	maxConnsPerIP    int
	maxLineLength    int
	maxErrors        int
	maxAuthFailures  int
	authFailureDelay time.Duration
	shutdownTimeout  time.Duration

	httpAddr         string
	labPOP3Addr      string
	labSMTPAddr      string
	labTargets       string
	smtpAddr         string
	smtpProxyAddr    string
	smtpMaxConns     int
	smtpMaxConnsIP   int
	mailDomain       string
	smtpMaxSize      byteSize
	smtpMaxStored    byteSize
	smtpRate         float64
	smtpBurst        int
	smtpVisitorRate  float64
	smtpVisitorBurst int
	smtpMaxDelivered int
	publicHost       string
	visitorTTL       time.Duration
	maxVisitors      int
	maxVisitorsPerIP int
	maxTerminals     int
	origins          string
	lessons          string
	builtinLessons   string
	bulletins        string
	adminToken       string
	tokenGenerated   bool // adminToken was made at start: print it
	httpConns        int  // the web side's share of the descriptors
	check            bool
	probe            string
	store            string
}

const envPrefix = "POP3PG_"

// envName is the environment variable for a flag: --pop3-addr → POP3PG_POP3_ADDR.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	return parseConfigBudget(args, getenv, stderr, newBudget(raiseFileLimit()))
}

// parseConfigBudget is parseConfig with the descriptor budget the
// defaults are derived from.
func parseConfigBudget(args []string, getenv func(string) string, stderr io.Writer, b budget) (*config, error) {
	cfg := &config{httpConns: b.httpConns}
	fs := flag.NewFlagSet("pop3playground", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.define(fs, b)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: pop3playground [flags]\n\nRuns a POP3 server on a world of mailboxes; every login gets a sandbox.\nEach flag may also be set by the environment variable shown.\n\n")
		fs.VisitAll(func(f *flag.Flag) {
			name, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(stderr, "  --%s %s\n    \t%s", f.Name, name, usage)
			if f.DefValue != "" && f.DefValue != "0" {
				fmt.Fprintf(stderr, " (default %s)", f.DefValue)
			}
			fmt.Fprintf(stderr, "\n    \t[$%s]\n", envName(f.Name))
		})
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	// The environment fills in what the command line did not set.
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(envName(f.Name)); v != "" && !set[f.Name] && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("$%s: %v", envName(f.Name), err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if err := cfg.validate(fs, stderr); err != nil {
		return nil, err
	}
	return cfg, nil
}

// byteSize is a flag of a size in octets: a number, or one with a unit as
// people write them (100MB, 1.5 GiB, 64k). KB, MB and GB are powers of
// 1000, KiB, MiB and GiB powers of 1024; a bare K, M or G is binary.
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }
func (b *byteSize) Get() any       { return int64(*b) }

func (b *byteSize) Set(v string) error {
	s := strings.TrimSpace(v)
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	mult, ok := map[string]float64{
		"": 1, "b": 1, "octets": 1, "bytes": 1,
		"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
		"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
		"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
	}[strings.ToLower(unit)]
	f, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || f < 0 || f*mult > 1<<62 {
		return fmt.Errorf("%q is not a size: give octets (1048576) or a number with KB, MB, GB, KiB, MiB or GiB (1MiB)", v)
	}
	*b = byteSize(f * mult)
	return nil
}

// prefixList is a flag of comma-separated networks; a bare address is a
// network of one.
type prefixList []netip.Prefix

func (p *prefixList) String() string {
	if p == nil || len(*p) == 0 {
		return "none"
	}
	s := make([]string, len(*p))
	for i, x := range *p {
		s[i] = x.String()
	}
	return strings.Join(s, ",")
}

func (p *prefixList) Set(v string) error {
	*p = nil
	if v == "none" {
		return nil
	}
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		pr, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return fmt.Errorf("%q is neither a network (10.0.0.0/8) nor an address", f)
			}
			pr = netip.PrefixFrom(a, a.BitLen())
		}
		*p = append(*p, pr.Masked())
	}
	return nil
}

// define declares the flags, with defaults from the descriptor budget.
func (cfg *config) define(fs *flag.FlagSet, b budget) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	fs.StringVar(&cfg.pop3Addr, "pop3-addr", "localhost:65000", "TCP `address` of the POP3 listener (STLS available)")
	fs.StringVar(&cfg.httpAddr, "http-addr", "localhost:8080", "TCP `address` of the web playground; off if empty")
	fs.StringVar(&cfg.labPOP3Addr, "lab-pop3-addr", "localhost:65110", "TCP `address` of the client lab's POP3 port: it greets after a second, to see a client that talks first, and can play a scenario from the greeting on for the visitor using the lab from the client's address; off if empty")
	fs.StringVar(&cfg.labSMTPAddr, "lab-smtp-addr", "localhost:2526", "TCP `address` of the client lab's SMTP port (as --lab-pop3-addr, for sending clients); off if empty or without --smtp-addr")
	fs.StringVar(&cfg.labTargets, "lab-targets", "", "the POP3 servers the page's server lab may check: `HOST:PORT` or HOST:LOW-HIGH, comma-separated (a student's server on the lab machines, say); empty: none, or localhost's ports 1024-65535 when --http-addr is on loopback (a start on your own machine)")
	fs.StringVar(&cfg.smtpAddr, "smtp-addr", "localhost:2525", "TCP `address` of the SMTP listener that delivers mail to personal addresses (STARTTLS available); off if empty")
	fs.StringVar(&cfg.smtpProxyAddr, "smtp-proxy-addr", "", "TCP `address` of an SMTP listener for a proxy in front (HAProxy, nginx): every connection must come from --trusted-proxies and begin with a PROXY protocol header; off if empty")
	fs.Float64Var(&cfg.smtpRate, "smtp-rate", 1, "messages a second one client address (IPv6: one /64) may send after a burst of --smtp-burst; 0 for no limit")
	fs.IntVar(&cfg.smtpBurst, "smtp-burst", 60, "messages one client address may send at once")
	fs.Float64Var(&cfg.smtpVisitorRate, "smtp-visitor-rate", 0.2, "messages a second one visitor may receive after a burst of --smtp-visitor-burst; 0 for no limit")
	fs.IntVar(&cfg.smtpVisitorBurst, "smtp-visitor-burst", 20, "messages one visitor may receive at once")
	fs.IntVar(&cfg.smtpMaxDelivered, "smtp-max-delivered", sessions.DefaultMaxDelivered, "messages delivered into one sandbox until it is reset (452 4.2.2 past it); 0 for no limit")
	fs.IntVar(&cfg.smtpMaxConns, "smtp-max-conns", 500, "most SMTP sessions at once; 0 for no limit")
	fs.IntVar(&cfg.smtpMaxConnsIP, "smtp-max-conns-per-ip", 200, "most SMTP sessions at once from one client address (IPv6: one /64), browser terminals counted by the browser's address; a classroom behind NAT shares one; 0 for no limit")
	fs.StringVar(&cfg.mailDomain, "mail-domain", "", "`domain` of the personal addresses (NAME.ID@DOMAIN); the public host if empty")
	cfg.smtpMaxSize = 1 << 20
	fs.Var(&cfg.smtpMaxSize, "smtp-max-size", "largest message the SMTP listener accepts (`size`: octets, or with KB, MB, KiB, MiB…)")
	cfg.smtpMaxStored = sessions.DefaultMaxStored
	fs.Var(&cfg.smtpMaxStored, "smtp-max-stored", "most delivered mail held at once, all sandboxes together (`size`); past it SMTP answers 452 4.3.1; 0 for no limit")
	fs.StringVar(&cfg.publicHost, "public-host", "", "host `name` the page tells people to use from other clients; the --http-addr host (or localhost) if empty")
	fs.DurationVar(&cfg.visitorTTL, "visitor-ttl", sessions.DefaultVisitorTTL, "forget a web visitor and their sandbox after this long idle")
	fs.DurationVar(&cfg.unusedTTL, "unused-visitor-ttl", sessions.DefaultUnusedTTL, "forget a web visitor who never opened a terminal after this long")
	fs.IntVar(&cfg.maxVisitors, "max-visitors", b.maxVisitors, fmt.Sprintf("most web visitors (each with a sandbox) at once; 0 for no limit (default from the descriptor limit %d: %d each)", b.files, descriptorsPerVisitor))
	fs.IntVar(&cfg.maxVisitorsPerIP, "max-visitors-per-ip", 200, "most web visitors from one address (IPv6: one /64) at once (a classroom shares one); 0 for no limit")
	fs.Float64Var(&cfg.visitorRate, "visitor-rate", sessions.DefaultVisitorRate, "new web visitors a second from one address (IPv6: one /64), after a burst of --visitor-burst; 0 for no limit")
	fs.IntVar(&cfg.visitorBurst, "visitor-burst", sessions.DefaultVisitorBurst, "new web visitors one address may make at once (a classroom behind NAT arriving together)")
	fs.IntVar(&cfg.maxTerminals, "max-terminals", web.DefaultMaxBridges, "most browser terminals one visitor may have open at once")
	fs.StringVar(&cfg.builtinLessons, "builtin-lessons", "", "which built-in `lessons` to show, in order: all, none, or IDs or numbers (1,3,5); default all with the embedded world, none with --mailboxes (they speak of the embedded world's accounts and messages)")
	fs.StringVar(&cfg.lessons, "lessons", "", "`directory` of the organiser's lesson files (*.md), shown after the built-in ones; one named like a built-in lesson replaces it")
	fs.StringVar(&cfg.bulletins, "bulletins", "", "`directory` of message files delivered once into every maildrop at its next login (UCB popper's -b); more can be posted from /admin")
	fs.StringVar(&cfg.adminToken, "admin-token", "", "`token` that opens /admin and /metrics; generated and printed at start if empty")
	fs.StringVar(&cfg.store, "store", "", "`URL` of a store shared by replicas (redis://HOST:PORT/DB, Redis 7 or Valkey): visitors, what their sandboxes deleted and the maildrop locks live there, so that any replica serves anyone and a restart forgets none of it; every replica needs the same --admin-token and world; empty: everything in the process")
	fs.StringVar(&cfg.probe, "probe", "", "GET this `URL` (e.g. http://127.0.0.1:8080/readyz), exit 0 if it answers 200 OK, 1 if not, without serving: a container HEALTHCHECK for images without curl")
	fs.BoolVar(&cfg.check, "check", false, "check the world (--mailboxes, --users), --lessons and --bulletins, print a summary, and exit without serving")
	fs.StringVar(&cfg.origins, "origins", "", "comma-separated extra `hosts` allowed to open the WebSocket (the page's own always is)")
	fs.StringVar(&cfg.pop3ProxyAddr, "pop3-proxy-addr", "", "TCP `address` of a POP3 listener for a proxy in front (HAProxy, nginx; Dovecot's haproxy = yes): every connection must come from --trusted-proxies and begin with a PROXY protocol header; off if empty")
	fs.StringVar(&cfg.pop3sAddr, "pop3s-addr", "", "TCP `address` of an implicit-TLS POP3 listener (POP3S), e.g. localhost:65995; off if empty")
	fs.StringVar(&cfg.hostname, "hostname", host, "host `name` in the greeting's APOP timestamp and the self-signed certificate")
	fs.StringVar(&cfg.mailboxes, "mailboxes", "", "`directory` of the organiser's world: NAME/ (Maildir or .eml files) or NAME.mbox per account; the embedded default world if empty")
	fs.StringVar(&cfg.users, "users", "", "`file` of name:password lines for --mailboxes")
	fs.DurationVar(&cfg.idleTimeout, "idle-timeout", pop3.DefaultIdleTimeout, "autologout timer: close a session idle this long (RFC 1939 §3: at least 10m)")
	fs.StringVar(&cfg.tlsCert, "tls-cert", "", "PEM certificate `file` for STLS and POP3S; a self-signed one for --hostname if empty")
	fs.StringVar(&cfg.tlsKey, "tls-key", "", "PEM private key `file` for --tls-cert")
	fs.StringVar(&cfg.trace, "trace", "", "append every line exchanged to this `file` as JSON lines, secrets masked")
	fs.StringVar(&cfg.cpuProfile, "cpu-profile", "", "write a CPU profile of the whole run to this `file` (go tool pprof), for performance work")
	cfg.traceMaxBytes = 100 << 20
	fs.Var(&cfg.traceMaxBytes, "trace-max-bytes", "rotate the --trace file to FILE.1 when it would grow past this `size` (octets, or 100MB, 1GiB…); 0 for no limit")
	fs.DurationVar(&cfg.loginTimeout, "login-timeout", pop3.DefaultLoginTimeout, "close a POP3 session that has not logged in this long after connecting; 0 for never")
	cfg.trustedProxies = prefixList{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	fs.Var(&cfg.trustedProxies, "trusted-proxies", "comma-separated `networks` that may connect to --pop3-proxy-addr and --smtp-proxy-addr, and set X-Forwarded-For on the web side; \"none\" for none")
	fs.IntVar(&cfg.maxConns, "max-conns", b.maxConns, fmt.Sprintf("most POP3 sessions at once; 0 for no limit (default from the descriptor limit %d)", b.files))
	fs.IntVar(&cfg.maxConnsPerIP, "max-conns-per-ip", 400, "most POP3 sessions at once from one client address (IPv6: one /64); a classroom behind NAT shares one, and each of --max-visitors-per-ip may open two terminals; 0 for no limit")
	fs.IntVar(&cfg.maxLineLength, "max-line-length", pop3.DefaultMaxLineLength, "longest command line in octets, CRLF included (RFC 2449: 255)")
	fs.IntVar(&cfg.maxErrors, "max-errors", pop3.DefaultMaxErrors, "close a session after this many lines in a row that are not commands (unknown verbs, junk, control characters)")
	fs.IntVar(&cfg.maxAuthFailures, "max-auth-failures", pop3.DefaultMaxAuthFailures, "close a session after this many failed logins")
	fs.DurationVar(&cfg.authFailureDelay, "auth-failure-delay", pop3.DefaultAuthFailureDelay, "delay of the reply to a failed login, doubled for each further failure")
	fs.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGINT or SIGTERM, how long to let sessions finish")
}

// validate refuses what cannot work together, and fills in the admin token.
func (cfg *config) validate(fs *flag.FlagSet, stderr io.Writer) error {
	switch {
	case cfg.mailboxes != "" && cfg.users == "":
		return errors.New("--mailboxes needs --users FILE with a name:password line for each account")
	case cfg.users != "" && cfg.mailboxes == "":
		return errors.New("--users goes with --mailboxes")
	case (cfg.tlsCert == "") != (cfg.tlsKey == ""):
		return errors.New("--tls-cert and --tls-key go together")
	case (cfg.pop3ProxyAddr != "" || cfg.smtpProxyAddr != "") && len(cfg.trustedProxies) == 0:
		return errors.New("--pop3-proxy-addr and --smtp-proxy-addr serve only --trusted-proxies, and it names none: list the proxy's address")
	case cfg.idleTimeout != 0 && cfg.idleTimeout < 10*time.Minute:
		fmt.Fprintf(stderr, "pop3playground: warning: --idle-timeout %v is shorter than the 10 minutes RFC 1939 §3 requires\n", cfg.idleTimeout)
	}
	if cfg.store != "" && cfg.adminToken == "" {
		return errors.New("--store needs --admin-token: replicas sign the visitors' cookies with a key made from it, so every replica must be given the same one")
	}
	if cfg.store != "" {
		if _, err := url.Parse(cfg.store); err != nil || !strings.HasPrefix(cfg.store, "redis://") && !strings.HasPrefix(cfg.store, "rediss://") {
			return fmt.Errorf("--store %q: give redis://HOST:PORT/DB (or rediss:// for TLS)", cfg.store)
		}
	}
	if cfg.adminToken == "" {
		var b [16]byte
		rand.Read(b[:])
		cfg.adminToken, cfg.tokenGenerated = hex.EncodeToString(b[:]), true
	} else if len(cfg.adminToken) < 16 {
		return errors.New("--admin-token is too short: use at least 16 characters (or leave it empty to get a random one)")
	}
	// A negative duration would mean "at once" or "never" by accident.
	var negative error
	fs.VisitAll(func(f *flag.Flag) {
		g, ok := f.Value.(flag.Getter)
		if !ok {
			return
		}
		if d, ok := g.Get().(time.Duration); ok && d < 0 && negative == nil {
			negative = fmt.Errorf("--%s %v: a duration here cannot be negative (0 turns it off where the flag says so)", f.Name, d)
		}
	})
	if negative != nil {
		return negative
	}
	if _, err := web.ParseLabTargets(cfg.labTargets); err != nil {
		return fmt.Errorf("--lab-targets: %v", err)
	}
	if cfg.maxLineLength < 64 {
		return fmt.Errorf("--max-line-length %d is too short for POP3 commands", cfg.maxLineLength)
	}
	return nil
}
