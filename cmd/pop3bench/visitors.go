package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The visitors mode measures what visitors cost a running playground:
// it makes n visitors as browsers do (GET /, then /api/session with the
// cookie), optionally opens a terminal (/ws, greeted) and an event stream
// (/events) for each, and reads the server's own figures from /metrics
// before and after.
//
//	pop3bench -web http://localhost:8080 -token TOKEN -visitors 5000
//	pop3bench -web http://localhost:8080 -token TOKEN -visitors 4000 -open
type visitorsConfig struct {
	web      string
	token    string
	visitors int
	open     bool
	settle   time.Duration // longest wait for the server's next GC
}

// serverFigures are read from /metrics.
type serverFigures struct {
	heap, rss, visitors float64
	lastGC              float64 // unix seconds
}

func runVisitors(ctx context.Context, cfg visitorsConfig, stdout io.Writer) error {
	u, err := url.Parse(cfg.web)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-web %q: want the playground's URL, e.g. http://localhost:8080", cfg.web)
	}
	before, err := settled(ctx, cfg)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 10 * time.Second}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	start := time.Now()
	for i := range cfg.visitors {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		cookie, err := visitorCookie(client, cfg.web)
		if err != nil {
			return fmt.Errorf("visitor %d: %w", i+1, err)
		}
		if !cfg.open {
			continue
		}
		s, err := openRaw(u.Host, "/events", cookie, "", " 200 ")
		if err != nil {
			return fmt.Errorf("visitor %d: event stream: %w", i+1, err)
		}
		held = append(held, s)
		ws, err := openRaw(u.Host, "/ws", cookie, cfg.web, " 101 ")
		if err != nil {
			return fmt.Errorf("visitor %d: terminal: %w", i+1, err)
		}
		held = append(held, ws)
	}
	made := time.Since(start)
	client.CloseIdleConnections()
	after, err := settled(ctx, cfg)
	if err != nil {
		return err
	}
	n := after.visitors - before.visitors
	what := "idle visitors"
	if cfg.open {
		what = "visitors with a terminal and an event stream"
	}
	fmt.Fprintf(stdout, "%d %s made in %.1fs (%.0f/s); the server holds %.0f more visitors\n",
		cfg.visitors, what, made.Seconds(), float64(cfg.visitors)/made.Seconds(), n)
	if n <= 0 {
		return errors.New("the server holds no more visitors than before")
	}
	target := 16.0
	if cfg.open {
		target = 64
	}
	heap := (after.heap - before.heap) / n / 1024
	fmt.Fprintf(stdout, "  heap %.1f KiB/visitor (%.2f of the %.0f KiB target; live heap just after the server's own GC)\n", heap, heap/target, target)
	fmt.Fprintf(stdout, "  RSS  %.1f KiB/visitor (goroutine stacks and buffers included)\n", (after.rss-before.rss)/n/1024)
	return nil
}

// visitorCookie loads the page and its session, as the page's script
// does, and returns the Cookie header of the visitor it made.
func visitorCookie(client *http.Client, base string) (string, error) {
	resp, err := client.Get(base + "/")
	if err != nil {
		return "", err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /: %s", resp.Status)
	}
	var cookie string
	for _, c := range resp.Cookies() {
		if c.Name == "pop3pg_session" {
			cookie = c.Name + "=" + c.Value
		}
	}
	if cookie == "" {
		return "", errors.New("GET / set no session cookie")
	}
	req, _ := http.NewRequest("GET", base+"/api/session", nil)
	req.Header.Set("Cookie", cookie)
	req.Header.Set("Accept", "application/json")
	resp, err = client.Do(req)
	if err != nil {
		return "", err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("/api/session: %s %s", resp.Status, body)
	}
	return cookie, nil
}

// openRaw opens a long-lived request (an event stream, or a WebSocket
// by hand) on a bare connection and checks its status line: a client
// that costs the measurement nothing but its socket.
func openRaw(host, path, cookie, origin, want string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		return nil, err
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nCookie: " + cookie + "\r\n"
	if origin != "" {
		req += "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: " + origin + "\r\n"
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		c.Close()
		return nil, err
	}
	r := bufio.NewReaderSize(c, 256)
	status, err := r.ReadString('\n')
	if err != nil || !strings.Contains(status, want) {
		c.Close()
		return nil, fmt.Errorf("%s: %q %v", path, strings.TrimSpace(status), err)
	}
	if origin != "" { // wait for the POP3 greeting's frame
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				c.Close()
				return nil, err
			}
			if l == "\r\n" {
				break
			}
		}
		if _, err := r.Peek(2); err != nil {
			c.Close()
			return nil, fmt.Errorf("no greeting: %w", err)
		}
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// settled waits for the server's next garbage collection (the runtime
// runs one at least every two minutes) and returns the figures just
// after it: the heap then is what is live, not what is yet to collect.
func settled(ctx context.Context, cfg visitorsConfig) (serverFigures, error) {
	first, err := figures(ctx, cfg)
	if err != nil {
		return first, err
	}
	deadline := time.Now().Add(cfg.settle)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return first, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		f, err := figures(ctx, cfg)
		if err != nil {
			return f, err
		}
		if f.lastGC > first.lastGC {
			return f, nil
		}
	}
	return figures(ctx, cfg)
}

// figures reads the server's heap, RSS and visitors from /metrics.
func figures(ctx context.Context, cfg visitorsConfig) (serverFigures, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", cfg.web+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+cfg.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return serverFigures{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return serverFigures{}, fmt.Errorf("/metrics: %s (give the admin token with -token)", resp.Status)
	}
	var f serverFigures
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, _ := strconv.ParseFloat(value, 64)
		switch name {
		case "go_memstats_heap_alloc_bytes":
			f.heap = v
		case "process_resident_memory_bytes":
			f.rss = v
		case "pop3pg_visitors":
			f.visitors = v
		case "go_memstats_last_gc_time_seconds":
			f.lastGC = v
		}
	}
	return f, sc.Err()
}
