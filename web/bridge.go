package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/pires/go-proxyproto"

	"github.com/pop3playground/pop3playground/pop3/limit"
	"github.com/pop3playground/pop3playground/sessions"
)

// WebSocket close codes the terminal understands (the 4000–4999 range is
// the application's, RFC 6455 §7.4.2).
const (
	// CloseConnectFailed: the POP3 server could not be reached; the
	// terminal prints telnet's "Unable to connect to remote host".
	CloseConnectFailed websocket.StatusCode = 4001
	// CloseForeignHost: the POP3 server closed the connection; the
	// terminal prints "Connection closed by foreign host."
	CloseForeignHost websocket.StatusCode = 4000
	// CloseRefused: the playground would not open this terminal; the
	// reason says why in words the page shows ("you already have 4
	// terminals open").
	CloseRefused websocket.StatusCode = 4002
	// CloseNoSession: the page's session is gone (a restart, or the
	// organiser ended it); the page makes a new one and may retry.
	CloseNoSession websocket.StatusCode = 4003
	// CloseEnded: the organiser ended the visitor's session.
	CloseEnded websocket.StatusCode = 4004
)

const endedReason = "The organiser ended your session. Press Enter for a fresh one."

// refuseTerminal opens the WebSocket only to close it at once with a
// reason: a browser cannot read an HTTP error on a WebSocket, and the
// student should read why, not "reload the page?".
func (s *Server) refuseTerminal(w http.ResponseWriter, r *http.Request, code websocket.StatusCode, why string) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: s.cfg.OriginPatterns})
	if err != nil {
		s.bridgeError("handshake")
		return
	}
	if len(why) > 120 { // a close reason is at most 123 octets
		why = why[:120]
	}
	ws.Close(code, why)
}

// A bridge is one WebSocket piped to one TCP connection to the POP3
// listener: bytes go both ways untouched, in binary frames (DESIGN §7).
type bridge struct {
	ws    *websocket.Conn
	tcp   net.Conn
	v     *sessions.Visitor
	ended atomic.Bool // the organiser ended the visitor's session
}

// handleBridge upgrades to a WebSocket, dials the POP3 listener, sends a
// PROXY v2 header naming the browser and carrying the visitor's token, and
// pipes bytes until either side closes; then it closes the other.
func (s *Server) handleBridge(w http.ResponseWriter, r *http.Request) {
	// The page makes its visitor (/api/session) before it opens a
	// terminal. A cookie whose visitor is gone (a restart, the
	// organiser's End, expiry) is told so, never quietly given a new one:
	// the page then makes the new visitor and shows who it is now.
	v := s.visitor(r)
	if v == nil {
		why := "your playground session is gone: the page is making a new one"
		if _, ok := s.cookieToken(r); !ok {
			_, why = refusal(errNoCookie)
		}
		s.refuseTerminal(w, r, CloseNoSession, why)
		return
	}
	if !v.AcquireBridge(s.cfg.MaxBridges) {
		s.bridgeError("limit")
		s.refuseTerminal(w, r, CloseRefused, fmt.Sprintf("you already have %d terminals open: close one (or a tab) first", s.cfg.MaxBridges))
		return
	}
	defer v.ReleaseBridge()
	if !s.budget.acquire() {
		s.refused("terminal", errDescriptors)
		s.refuseTerminal(w, r, CloseRefused, "the playground is out of connections right now: try again in a minute")
		return
	}
	defer s.budget.release()

	// Accept refuses (403) an Origin other than the page's own host or
	// OriginPatterns: cross-site WebSocket hijacking.
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: s.cfg.OriginPatterns})
	if err != nil {
		s.cfg.Logger.Info("web: WebSocket refused", "err", err, "origin", r.Header.Get("Origin"))
		s.bridgeError("handshake")
		return
	}
	defer ws.CloseNow()
	ws.SetReadLimit(s.cfg.MaxMessage)

	b := &bridge{ws: ws, v: v}
	ctx, ok := s.track(b)
	if !ok {
		ws.Close(websocket.StatusGoingAway, "the server is shutting down")
		return
	}
	defer s.untrack(b)

	// The target is chosen by name among our own listeners, never by
	// the browser's address.
	target := s.cfg.POP3Addr
	if r.URL.Query().Get("target") == "smtp" && s.cfg.SMTPAddr != "" {
		target = s.cfg.SMTPAddr
	}
	tcp, err := s.dial(ctx, target, v, pageTab(r), s.clientAddr(r).Addr().AsSlice(), s.clientAddr(r).Port())
	if err != nil {
		s.cfg.Logger.Warn("web: bridge cannot reach its listener", "addr", target, "err", err)
		s.bridgeError("connect")
		ws.Close(CloseConnectFailed, connectReason(err))
		return
	}
	b.tcp = tcp
	defer tcp.Close()
	b.run(ctx, s, v)
}

// pageTab is the ?tab= the page names itself by (letters, digits, - and _,
// at most 32), or "".
func pageTab(r *http.Request) string {
	tab := r.URL.Query().Get("tab")
	if len(tab) > 32 || strings.ContainsFunc(tab, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_')
	}) {
		return ""
	}
	return tab
}

// dial connects to one of our own listeners (POP3, or SMTP for the SMTP
// terminal) and introduces the browser: its address, the visitor's token
// and the page's tab.
func (s *Server) dial(ctx context.Context, addr string, v *sessions.Visitor, tab string, ip []byte, port uint16) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	tcp, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	h := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: ip, Port: int(port)}, tcp.RemoteAddr())
	tlvs := []proxyproto.TLV{{Type: sessions.TLVToken, Value: []byte(v.Token)}}
	if tab != "" {
		tlvs = append(tlvs, proxyproto.TLV{Type: sessions.TLVTab, Value: []byte(tab)})
	}
	if err := h.SetTLVs(tlvs); err != nil {
		tcp.Close()
		return nil, err
	}
	tcp.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := h.WriteTo(tcp); err != nil {
		tcp.Close()
		return nil, err
	}
	tcp.SetWriteDeadline(time.Time{})
	return tcp, nil
}

// connectReason is a close reason like telnet's: "Connection refused".
func connectReason(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "Connection refused"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT):
		return "Connection timed out"
	}
	return "Unable to connect"
}

func (b *bridge) run(ctx context.Context, s *Server, v *sessions.Visitor) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(3)
	for _, half := range []func(context.Context){
		b.toBrowser,
		func(ctx context.Context) { b.toServer(ctx, s, v) },
		func(ctx context.Context) { b.ping(ctx, s.cfg.PingInterval) },
	} {
		go func() {
			defer wg.Done()
			defer cancel()
			half(ctx)
		}()
	}
	<-ctx.Done()
	// Whichever side ended, end the other: closing the TCP connection
	// unblocks its reader; the WebSocket is closed (if not already) with
	// a normal closure, which unblocks its reader too.
	b.tcp.Close()
	if b.ended.Load() {
		b.ws.Close(CloseEnded, endedReason)
	}
	b.ws.Close(websocket.StatusNormalClosure, "")
	wg.Wait()
}

// toBrowser copies POP3 → browser. When the server closes, it tells the
// browser so.
func (b *bridge) toBrowser(ctx context.Context) {
	// A terminal waiting for its user holds a small buffer; a burst
	// (RETR) borrows a large one from the pool while it lasts.
	small := make([]byte, smallRead)
	buf := small
	for {
		n, err := b.tcp.Read(buf)
		if n > 0 {
			if werr := b.ws.Write(ctx, websocket.MessageBinary, buf[:n]); werr != nil {
				return
			}
		}
		switch {
		case n == len(buf) && len(buf) == smallRead:
			buf = bigReads.Get().([]byte)
		case n < len(buf)/2 && len(buf) > smallRead:
			bigReads.Put(buf)
			buf = small
		}
		if err != nil {
			if len(buf) > smallRead {
				bigReads.Put(buf)
			}
			if errors.Is(err, io.EOF) {
				b.ws.Close(CloseForeignHost, "Connection closed by foreign host.")
			}
			return
		}
	}
}

// toServer copies browser → POP3, at most BridgeRate octets a second.
func (b *bridge) toServer(ctx context.Context, s *Server, v *sessions.Visitor) {
	tb := limit.NewBucket(float64(s.cfg.BridgeRate), float64(s.cfg.BridgeBurst), time.Now())
	for {
		typ, data, err := b.ws.Read(ctx)
		if err != nil {
			return // closed by the browser, too large, or cancelled
		}
		if typ != websocket.MessageBinary && typ != websocket.MessageText {
			continue
		}
		if err := tb.Wait(ctx, float64(len(data))); err != nil {
			return
		}
		v.Touch()
		if _, err := b.tcp.Write(data); err != nil {
			return
		}
	}
}

// ping keeps proxies from closing a quiet WebSocket and notices a browser
// that vanished without closing.
func (b *bridge) ping(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, pcancel := context.WithTimeout(ctx, every)
			err := b.ws.Ping(pctx)
			pcancel()
			if err != nil {
				return
			}
		}
	}
}

// The POP3 → browser read buffers: smallRead octets while a terminal is
// quiet (a status line fits), bigReads while a reply streams. 64 KiB holds
// most messages whole, one read and one frame; larger would not be faster
// for them, and a browser that stops reading holds its buffer until the
// pings give up on it (two PingIntervals).
const smallRead = 1 << 10

var bigReads = sync.Pool{New: func() any { return make([]byte, 64<<10) }}

// track registers a bridge so that Close can end it.
func (s *Server) track(b *bridge) (context.Context, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancels[b] = cancel
	s.wg.Add(1)
	return ctx, true
}

func (s *Server) untrack(b *bridge) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cancel, ok := s.cancels[b]; ok {
		cancel()
		delete(s.cancels, b)
		s.wg.Done()
	}
}

// OpenBridges is how many bridges are open.
// closeBridgesOf closes the terminals of a visitor whose session ended.
func (s *Server) closeBridgesOf(v *sessions.Visitor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for b := range s.cancels {
		if b.v == v {
			// The close frame with the reason goes out first; the
			// bridge then ends as for any close from the browser's side.
			// (Cancelling first would let the read's cancelled context
			// drop the connection before the frame is sent.)
			b.ended.Store(true)
			go b.ws.Close(CloseEnded, endedReason)
		}
	}
}

func (s *Server) OpenBridges() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.cancels)
}
