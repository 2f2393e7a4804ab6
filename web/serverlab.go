package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pop3playground/pop3playground/pop3/check"
	"github.com/pop3playground/pop3playground/sessions"
)

// The server lab: the page runs pop3check's suite against a POP3 server a
// student wrote, only at the hosts and ports the organiser lists
// (Config.LabTargets), so that the page can never be made to reach
// anything else.

// A LabTarget is a host (as typed) and a range of ports the server lab
// may check.
type LabTarget struct {
	Host   string
	Lo, Hi int
}

func (t LabTarget) String() string {
	if t.Lo == t.Hi {
		return net.JoinHostPort(t.Host, strconv.Itoa(t.Lo))
	}
	return net.JoinHostPort(t.Host, fmt.Sprintf("%d-%d", t.Lo, t.Hi))
}

// ParseLabTargets reads "HOST:PORT" and "HOST:LOW-HIGH", comma-separated.
func ParseLabTargets(s string) ([]LabTarget, error) {
	var out []LabTarget
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		host, ports, err := net.SplitHostPort(item)
		if err != nil || host == "" {
			return nil, fmt.Errorf("%q: want HOST:PORT or HOST:LOW-HIGH", item)
		}
		lo, hi, _ := strings.Cut(ports, "-")
		if hi == "" {
			hi = lo
		}
		l, err1 := strconv.Atoi(lo)
		h, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || l < 1 || h > 65535 || l > h {
			return nil, fmt.Errorf("%q: ports are 1 to 65535, LOW-HIGH with LOW ≤ HIGH", item)
		}
		out = append(out, LabTarget{Host: strings.ToLower(host), Lo: l, Hi: h})
	}
	return out, nil
}

// labTargetOK reports whether host:port is one the organiser allows.
func (s *Server) labTargetOK(host string, port int) bool {
	for _, t := range s.cfg.LabTargets {
		if strings.EqualFold(t.Host, host) && t.Lo <= port && port <= t.Hi {
			return true
		}
	}
	return false
}

// serverLabRuns bounds the runs at once: one per visitor, two in all.
type serverLabRuns struct {
	mu      sync.Mutex
	running map[*sessions.Visitor]bool
	slots   chan struct{}
}

var (
	errLabBusy = errors.New("a check of yours is still running: wait for it to finish")
	errLabFull = errors.New("the server lab is checking other students' servers: try again in a minute")
)

func (g *serverLabRuns) enter(v *sessions.Visitor) (func(), error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.slots == nil {
		g.slots, g.running = make(chan struct{}, 2), map[*sessions.Visitor]bool{}
	}
	if g.running[v] {
		return nil, errLabBusy
	}
	select {
	case g.slots <- struct{}{}:
	default:
		return nil, errLabFull
	}
	g.running[v] = true
	return func() {
		g.mu.Lock()
		delete(g.running, v)
		g.mu.Unlock()
		<-g.slots
	}, nil
}

// handleServerLab runs the suite against the server the form names
// (host, port, user, pass, tls) and streams each result as a line of
// JSON as soon as it is known; the last line sums them up.
func (s *Server) handleServerLab(w http.ResponseWriter, r *http.Request) {
	v := visitorOf(r)
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	host := strings.TrimSpace(r.PostFormValue("host"))
	port, err := strconv.Atoi(r.PostFormValue("port"))
	if err != nil || host == "" {
		jsonError(w, http.StatusBadRequest, "want host, port, user and pass")
		return
	}
	if !s.labTargetOK(host, port) {
		allowed := make([]string, len(s.cfg.LabTargets))
		for i, t := range s.cfg.LabTargets {
			allowed[i] = t.String()
		}
		msg := "the organiser allows the server lab no targets (--lab-targets)"
		if len(allowed) > 0 {
			msg = "the server lab checks only " + strings.Join(allowed, ", ") + " (the organiser's --lab-targets)"
		}
		jsonError(w, http.StatusForbidden, net.JoinHostPort(host, strconv.Itoa(port))+" is not a target: "+msg)
		return
	}
	release, err := s.serverLab.enter(v)
	if err != nil {
		w.Header().Set("Retry-After", "10")
		jsonError(w, http.StatusTooManyRequests, err.Error())
		return
	}
	defer release()
	t := check.Target{Addr: net.JoinHostPort(host, strconv.Itoa(port)), Host: host, User: r.PostFormValue("user"), Pass: r.PostFormValue("pass"),
		TLS: r.PostFormValue("tls") != "", Insecure: true, Timeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Minute)
	defer cancel()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	n := map[string]int{}
	check.RunEach(ctx, t, func(res check.Result) {
		n[res.Status]++
		enc.Encode(res)
		rc.Flush()
	})
	enc.Encode(map[string]int{"checks": check.Count(), "passed": n[check.Pass], "failed": n[check.Fail], "warned": n[check.Warn], "skipped": n[check.Skip]})
}
