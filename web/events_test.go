package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pop3playground/pop3playground/pop3"
)

type sseEvent struct {
	id, name string
	ev       pop3.Event
}

// stream opens GET /events and returns a function reading the next event.
func (b *browser) stream(t *testing.T, lastID string) func() sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", b.e.http.URL+"/events", nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /events: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	r := bufio.NewReader(resp.Body)
	lines := make(chan string)
	go func() {
		defer close(lines)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			lines <- strings.TrimRight(l, "\n")
		}
	}()
	return func() sseEvent {
		t.Helper()
		var e sseEvent
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("event stream ended")
				}
				switch {
				case strings.HasPrefix(l, "id: "):
					e.id = l[4:]
				case strings.HasPrefix(l, "event: "):
					e.name = l[7:]
				case strings.HasPrefix(l, "data: "):
					json.Unmarshal([]byte(l[6:]), &e.ev)
				case l == "" && e.name != "":
					return e
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no event in 10s")
			}
		}
	}
}

// until reads events up to the first of this kind.
func until(t *testing.T, next func() sseEvent, kind pop3.EventKind) sseEvent {
	t.Helper()
	for {
		if e := next(); e.ev.Kind == kind {
			return e
		}
	}
}

func TestEventsStream(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.visit(t), e.visit(t)
	next := alice.stream(t, "")
	bobNext := bob.stream(t, "")

	tm := alice.terminal()
	if ev := next(); ev.ev.Kind != pop3.EventConnected || ev.id != "1" {
		t.Errorf("first event %+v", ev)
	}
	tm.login()
	st := until(t, next, pop3.EventState)
	if st.ev.State != "TRANSACTION" || len(st.ev.Messages) != 7 || st.ev.Messages[0].Subject != "Welcome to the POP3 Playground" {
		t.Errorf("state event %+v", st.ev)
	}
	tm.cmd("DELE 2", "+OK")
	if m := until(t, next, pop3.EventMarked); m.ev.Msg != 2 {
		t.Errorf("marked %+v", m.ev)
	}
	reply := until(t, next, pop3.EventReply)

	tm.cmd("QUIT", "+OK")
	until(t, next, pop3.EventClosed)

	// A reconnecting browser resumes after the last event it saw.
	resumed := alice.stream(t, reply.id)
	if ev := resumed(); ev.ev.Kind != pop3.EventCommand || ev.ev.Line != "QUIT" {
		t.Errorf("after Last-Event-ID %s came %+v, want the QUIT command", reply.id, ev)
	}

	// A personal login's events reach the same stream once it logs in.
	conn, err := net.Dial("tcp", e.pop3Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "USER %s\r\nPASS visitor\r\n", alice.session()["login"])
	if ev := until(t, resumed, pop3.EventLockTaken); !strings.HasPrefix(ev.ev.User, "guest.") {
		t.Errorf("personal login's lock event %+v", ev.ev)
	}

	// Bob saw nothing of Alice's; his own session shows up.
	bt := bob.terminal()
	bt.login()
	if ev := bobNext(); ev.ev.Kind != pop3.EventConnected || ev.id != "1" {
		t.Errorf("bob's first event %+v", ev)
	}
}

func TestEventsNeedASession(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.http.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a cookie: %s", resp.Status)
	}
}
