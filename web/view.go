package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/pop3playground/pop3playground/sessions"
)

// handleView shows a message as a mail client does: the page sends what
// RETR brought (dot-unstuffed) and gets the header decoded, its parts and
// its route. The HTML parts are for a sandboxed iframe only.
func (s *Server) handleView(w http.ResponseWriter, r *http.Request) {
	v := visitorOf(r)
	release, err := s.views.enter(r.Context(), v)
	if err != nil {
		s.refused("view", err)
		w.Header().Set("Retry-After", "2")
		code := http.StatusServiceUnavailable
		if errors.Is(err, errViewBusy) {
			code = http.StatusTooManyRequests
		}
		jsonError(w, code, err.Error())
		return
	}
	defer release()
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, sessions.MaxViewSize))
	if err != nil {
		jsonError(w, http.StatusRequestEntityTooLarge, "the message is too large to view")
		return
	}
	view, err := s.cfg.Visitors.ViewMessage(raw)
	if err != nil {
		jsonError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	// HTML parts as they are: escaping < > & as \u003c would make an
	// HTML part's JSON six times its size (the response is JSON, nosniff).
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(view)
}

// Bounds of /api/view, which parses what a visitor sends: each view may
// hold a few times MaxViewSize while it runs, so one visitor parses one
// message at a time and the process at most maxViews at once; the others
// wait a moment for a turn, then are told to try again.
const (
	maxViews     = 4
	viewWaitTime = 5 * time.Second
)

var (
	errViewBusy = errors.New("the playground is still showing your previous message: one at a time")
	errViewFull = errors.New("the playground is busy showing other people's messages: try again in a moment")
)

// A viewGate admits mail views: one a visitor, maxViews in all.
type viewGate struct {
	mu    sync.Mutex
	busy  map[*sessions.Visitor]bool
	slots chan struct{}
	once  sync.Once
}

// enter waits for a turn for v; release ends it.
func (g *viewGate) enter(ctx context.Context, v *sessions.Visitor) (release func(), err error) {
	g.once.Do(func() {
		g.busy = make(map[*sessions.Visitor]bool)
		g.slots = make(chan struct{}, maxViews)
	})
	g.mu.Lock()
	if g.busy[v] {
		g.mu.Unlock()
		return nil, errViewBusy
	}
	g.busy[v] = true
	g.mu.Unlock()
	leave := func() {
		g.mu.Lock()
		delete(g.busy, v)
		g.mu.Unlock()
	}
	t := time.NewTimer(viewWaitTime)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return func() { <-g.slots; leave() }, nil
	case <-t.C:
		leave()
		return nil, errViewFull
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
}
