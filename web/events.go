package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/pop3playground/pop3playground/sessions"
)

// MaxStreams bounds the event streams (tabs) one visitor has open.
const MaxStreams = 8

// keepAlive is how often an idle event stream gets a comment, so that
// proxies keep it open and a vanished browser is noticed.
const keepAlive = 25 * time.Second

// handleEvents streams the visitor's log as server-sent events: "id: N",
// "event: TYPE", "data: {json}", TYPE one of pop3 (what the server did),
// lesson (a step ticked), reset (the sandbox was reset), watch (an
// organiser watches), announcement (the organiser's line for every page:
// the current one first, then each change) and gone (the visitor was ended
// or forgotten: the page asks for its new one). A browser that reconnects sends Last-Event-ID and
// resumes after it.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	// As for a terminal: a visitor is made by /api/session only, so that
	// the page learns who it is now when the server forgot who it was.
	v := s.visitor(r)
	if v == nil {
		jsonError(w, http.StatusUnauthorized, "your playground session is gone: load the page, or ask /api/session for a new one")
		return
	}
	v.Use()
	if !s.acquireStream(v) {
		http.Error(w, fmt.Sprintf("you already have %d event streams open: close a tab first", MaxStreams), http.StatusTooManyRequests)
		return
	}
	defer s.releaseStream(v)

	var last uint64
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		last, _ = strconv.ParseUint(id, 10, 64)
	} else if id := r.URL.Query().Get("after"); id != "" {
		last, _ = strconv.ParseUint(id, 10, 64)
	}

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	s.stream(w, r, v, last, true, func(w io.Writer, e sessions.Entry) {
		data := e.Data()
		if e.Type == sessions.EntryPOP3 {
			if e.Event.Kind == sessions.EventCommand {
				return // the page has the terminal's own echo; organisers see these
			}
			data = pageEvent{Event: e.Event, Tab: e.Tab, Via: e.Via}
		}
		buf.Reset()
		buf.WriteString("id: ")
		buf.WriteString(strconv.FormatUint(e.ID, 10))
		buf.WriteString("\nevent: ")
		buf.WriteString(e.Type)
		buf.WriteString("\ndata: ")
		if enc.Encode(data) == nil { // ends with a newline
			buf.WriteString("\n")
			w.Write(buf.Bytes())
		}
	})
}

// pageEvent is a POP3 event as the student's page reads it: where it
// came from, and without its time, which the page does not show (the
// field shadows the event's own, and is always left out).
type pageEvent struct {
	sessions.Event
	Time *struct{} `json:"time,omitempty"`
	Tab  string    `json:"tab,omitempty"`
	Via  string    `json:"via"`
}

// stream writes v's log after ID last as server-sent events, one entry at
// a time through write, until the client or the server goes away. A reader
// that fell behind the log gets "event: missed" first. Nothing is buffered
// per stream: it reads the bounded log at its own pace. A visitor's own
// open page (active) keeps them from expiring.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, v *sessions.Visitor, last uint64, active bool, write func(io.Writer, sessions.Entry)) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")

	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	var entries []sessions.Entry
	var announced uint64 // the announcement this page has
	var annChanged <-chan struct{}
	for {
		var missed bool
		var wait <-chan struct{}
		entries, missed, wait = v.Events.AppendSince(entries[:0], last)
		if missed {
			fmt.Fprint(w, "event: missed\ndata: {}\n\n")
		}
		if active && annChanged == nil {
			// The organiser's announcement: the one in force when the
			// page connects, then each change, at once (read again only
			// when it changed, not for every burst of events).
			var a sessions.Announcement
			a, annChanged = s.cfg.Visitors.Announcement()
			if a.ID != announced {
				announced = a.ID
				b, _ := json.Marshal(a)
				fmt.Fprintf(w, "event: announcement\ndata: %s\n\n", b)
			}
		}
		for _, e := range entries {
			write(w, e)
			last = e.ID
		}
		// The slice is kept for the next burst (a command's few events),
		// but not a replay's: a page load reads up to EventLogSize entries
		// at once, and an open stream must not hold them.
		if cap(entries) > 16 {
			entries = nil
		} else {
			clear(entries)
		}
		rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := rc.Flush(); err != nil {
			return // the client is gone or not reading
		}
		if active {
			v.Touch()
		}
		select {
		case <-wait:
		case <-annChanged:
			annChanged = nil
		case <-tick.C:
			fmt.Fprint(w, ": keep-alive\n\n")
		case <-r.Context().Done():
			return
		case <-s.streamsDone:
			return
		case <-v.Gone():
			// Said at once, so that the page shows who it is now
			// rather than learn it at its next reconnection.
			fmt.Fprint(w, "event: gone\ndata: {}\n\n")
			rc.Flush()
			return
		}
	}
}

func (s *Server) acquireStream(v *sessions.Visitor) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.streams[v] >= MaxStreams {
		return false
	}
	s.streams[v]++
	return true
}

func (s *Server) releaseStream(v *sessions.Visitor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.streams[v]--; s.streams[v] <= 0 {
		delete(s.streams, v)
	}
}

// CloseStreams ends every event stream: http.Server.Shutdown waits for
// handlers, and these never end by themselves. Register it with
// http.Server.RegisterOnShutdown.
func (s *Server) CloseStreams() {
	s.streamsOnce.Do(func() { close(s.streamsDone) })
}
