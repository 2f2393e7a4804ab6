package sessions

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"
)

// A visitor's state beyond its sandbox (its event log, its table of
// connections, its lessons) is a function of the facts of its sandbox,
// in order: what its POP3 sessions did, resets, mail in, and the lesson
// controls (start, restart, rewind, restore). In one process the facts
// are applied as they happen. With a Store they are published to the
// visitor's stream, and every replica that holds the visitor applies
// the stream, in the store's order: all of them fold the same facts into
// the same state, and derive the same lesson progress, so that a page on
// one replica sees what a session on another did, and a step done on
// one ticks the lesson started on another.

// A fact is one entry of a visitor's stream.
type fact struct {
	Type    string         `json:"t,omitempty"`
	Event   *Event         `json:"-"` // carried as factWire.E
	Tab     string         `json:"tab,omitempty"`
	Via     string         `json:"via,omitempty"`
	Account string         `json:"a,omitempty"`
	Op      string         `json:"op,omitempty"` // a lesson control: start, restart, rewind, restore
	Lesson  string         `json:"l,omitempty"`
	Step    int            `json:"s,omitempty"` // a rewind's step; a watch's +1 or -1
	Saved   map[string]int `json:"saved,omitempty"`
	Help    *Hand          `json:"h,omitempty"`
	Text    string         `json:"x,omitempty"` // an announcement; a display name
	Wire    *wireFacts     `json:"w,omitempty"` // a direct connection's client, for the lab
	Lab     *labFact       `json:"lab,omitempty"`
}

// fromRequest reports whether a fact comes from a request a page or a
// script made (published before it is answered), not from a session
// (published in the background: no command waits on the store).
func (f fact) fromRequest() bool {
	switch f.Type {
	case EntryPOP3, EntryMail:
		return false
	case factLab:
		return f.Lab.Op == "choose" || f.Lab.Op == "reset" || f.Lab.Op == "proof"
	}
	return true
}

// factLab is the Type of a change of the client lab.
const factLab = "lab"

// factControl is the Type of a lesson control.
const factControl = "control"

// record applies a fact now, in one process, or publishes it for every
// replica to apply (this one too, when it comes back from the store).
// A POP3 session's facts are published in the background; a request's
// (a lesson control, a scenario chosen) before it is answered, so that
// the next request, on whichever replica, finds it in the store.
func (vs *Visitors) record(v *Visitor, f fact) {
	if vs.Store == nil {
		vs.apply(v, f)
		return
	}
	var done chan struct{}
	if f.fromRequest() {
		done = make(chan struct{})
	}
	vs.replicaState().publish(v.ID, f, done)
	if done != nil {
		select {
		case <-done:
		case <-time.After(storeTimeout):
		}
	}
}

// apply folds one fact into v's state.
func (vs *Visitors) apply(v *Visitor, f fact) {
	switch f.Type {
	case EntryPOP3:
		if f.Via == "pop3" && v.Lab.recording(f.Event.Conn) {
			v.Lab.observe(*f.Event, f.Wire)
		}
		v.Events.Append(Entry{Type: EntryPOP3, Event: *f.Event, Tab: f.Tab, Via: f.Via})
		vs.advance(v, *f.Event, f.Tab)
	case factLab:
		v.Lab.apply(*f.Lab)
	case EntryReset:
		v.Events.Append(Entry{Type: EntryReset, Event: *f.Event})
		vs.advance(v, *f.Event, "")
	case EntryMail:
		v.Events.Append(Entry{Type: EntryMail, Account: f.Account})
		vs.advance(v, *f.Event, "")
	case EntryHelp:
		v.applyHelp(f.Help, f.Account)
	case EntryWatch:
		v.applyWatch(f.Step)
	case factControl:
		vs.control(v, f)
	case factName:
		v.mu.Lock()
		v.display = f.Text
		v.mu.Unlock()
	case factEnd:
		vs.drop(v, "ended by the organiser")
	}
}

// factEnd is the Type of an organiser's ending a visitor's session.
const factEnd = "end"

// control applies a lesson control.
func (vs *Visitors) control(v *Visitor, f fact) {
	l := vs.lesson(f.Lesson)
	if l == nil && f.Op != "restore" {
		return
	}
	now := time.Now()
	if f.Event != nil {
		now = f.Event.Time
	}
	v.mu.Lock()
	var p *Progress
	switch f.Op {
	case "start":
		v.lessons.start(l, v.open.last, false, now)
	case "restart":
		v.lessons.start(l, v.open.last, true, now)
		p = &Progress{Lesson: l.ID, Steps: len(l.Steps)}
	case "rewind":
		if v.lessons.rewind(l, f.Step, v.open.last, now) == nil {
			p = &Progress{Lesson: l.ID, Done: f.Step - 1, Steps: len(l.Steps)}
		}
	case "restore":
		v.lessons.restore(vs.Lessons, f.Saved, v.open.last)
	}
	v.mu.Unlock()
	if p != nil {
		v.Events.Append(Entry{Type: EntryLesson, Lesson: p})
	}
}

// lesson is the lesson with this ID, or nil.
func (vs *Visitors) lesson(id string) *Lesson {
	for _, l := range vs.Lessons {
		if l.ID == id {
			return l
		}
	}
	return nil
}

// replicaLink is what a Visitors with a Store runs: a publisher that sends
// the facts this replica records, in order, batched, without making a
// session wait; and a follower that applies the facts of every visitor
// held here as the store publishes them.
type replicaLink struct {
	vs     *Visitors
	out    chan published
	follow Follower
	catch  chan *Visitor // visitors to catch up, newly held
	behind chan behind   // visitors whose stream may be ahead of what was applied

	dropped  atomic.Int64 // facts dropped for a full queue
	toldDrop atomic.Int64 // when that was last logged

	boardApplied uint64 // the board's last fact applied (the follower's)
	boardMu      sync.Mutex
	boardWait    chan struct{} // closed when the board changes
}

type published struct {
	id   string
	f    fact          // encoded by the publisher, not the session
	done chan struct{} // closed once the store has it, if not nil
}

// replicaState starts the replica's publisher and follower once.
func (vs *Visitors) replicaState() *replicaLink {
	vs.replicaOnce.Do(func() {
		r := &replicaLink{vs: vs, out: make(chan published, 4096), catch: make(chan *Visitor, 1024), behind: make(chan behind, 1024)}
		r.follow = vs.Store.Follow(context.Background())
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		r.follow.Add(ctx, announcements, board)
		if facts, err := vs.Store.Facts(ctx, announcements, 0); err == nil && len(facts) > 0 {
			r.announced(facts[len(facts)-1])
		}
		if facts, err := vs.Store.Facts(ctx, board, 0); err == nil {
			for _, f := range facts {
				r.posted(f)
			}
		}
		cancel()
		go r.publishLoop()
		go r.followLoop()
		vs.replica = r
	})
	return vs.replica
}

// announcements is the stream of the organiser's announcements, one
// for every replica; board, of the bulletins posted and withdrawn on
// the admin page, which every replica applies in order after its files.
const (
	announcements = "_announcements"
	board         = "_board"
)

// posted applies a bulletin posted or withdrawn, once, in order.
func (r *replicaLink) posted(f Fact) {
	if f.Seq <= r.boardApplied {
		return
	}
	r.boardApplied = f.Seq
	var ft fact
	if json.Unmarshal(f.Data, &ft) != nil {
		return
	}
	b := &r.vs.world.Bulletins
	switch ft.Type {
	case "post":
		if _, err := b.add([]byte(ft.Text), "posted"); err != nil {
			r.vs.storeLog().Warn("sessions: a bulletin posted on another replica was not added", "err", err)
		}
	case "withdraw":
		b.Withdraw(ft.Step)
	}
	r.boardChanged()
}

// boardChanged wakes those waiting for the board to change.
func (r *replicaLink) boardChanged() {
	r.boardMu.Lock()
	defer r.boardMu.Unlock()
	if r.boardWait != nil {
		close(r.boardWait)
		r.boardWait = nil
	}
}

// publishBoard publishes a change of the board and waits, within the
// store's timeout, until this replica has applied it (done).
func (vs *Visitors) publishBoard(f fact, done func() bool) error {
	r := vs.replicaState()
	b, _ := json.Marshal(f)
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := vs.Store.Publish(ctx, board, [][]byte{b}); err != nil {
		return ErrStore
	}
	for !done() {
		r.boardMu.Lock()
		if r.boardWait == nil {
			r.boardWait = make(chan struct{})
		}
		wait := r.boardWait
		r.boardMu.Unlock()
		if done() {
			break
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return ErrStore
		}
	}
	return nil
}

// announced makes an announcement from the stream the current one.
func (r *replicaLink) announced(f Fact) {
	var ft fact
	if json.Unmarshal(f.Data, &ft) != nil {
		return
	}
	posted := time.Now()
	if ft.Event != nil {
		posted = ft.Event.Time
	}
	a := &r.vs.announce
	a.mu.Lock()
	defer a.mu.Unlock()
	if f.Seq > a.current.ID {
		a.setLocked(Announcement{ID: f.Seq, Text: ft.Text, Posted: posted})
	}
}

// announceShared publishes an announcement for every replica, and
// returns it once this one has it.
func (vs *Visitors) announceShared(text string) (Announcement, error) {
	vs.replicaState() // following the announcements
	_, changed := vs.Announcement()
	b, _ := json.Marshal(fact{Type: "announce", Text: text, Event: &Event{Time: time.Now()}})
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := vs.Store.Publish(ctx, announcements, [][]byte{b}); err != nil {
		return Announcement{}, ErrStore
	}
	select {
	case <-changed:
	case <-ctx.Done():
	}
	a, _ := vs.Announcement()
	return a, nil
}

// publish queues a fact; a full queue (the store far behind) drops it
// rather than hold a session up.
func (r *replicaLink) publish(id string, f fact, done chan struct{}) {
	select {
	case r.out <- published{id, f, done}:
	default:
		// Told once a minute at most: a store that is down for long
		// would otherwise fill the log.
		if n := r.dropped.Add(1); n == 1 || time.Since(time.Unix(0, r.toldDrop.Load())) > time.Minute {
			r.toldDrop.Store(time.Now().UnixNano())
			r.vs.storeLog().Warn("sessions: the store is behind: visitors' events are being dropped", "dropped", n)
		}
	}
}

// publishLoop sends the queued facts, each visitor's in order, as many
// at a time as are waiting.
func (r *replicaLink) publishLoop() {
	encode := func(f fact) []byte { b, _ := json.Marshal(f); return b }
	for p := range r.out {
		batch := map[string][][]byte{p.id: {encode(p.f)}}
		order := []string{p.id}
		var done []chan struct{}
		if p.done != nil {
			done = append(done, p.done)
		}
	more:
		for len(order) < 64 {
			select {
			case q := <-r.out:
				if batch[q.id] == nil {
					order = append(order, q.id)
				}
				batch[q.id] = append(batch[q.id], encode(q.f))
				if q.done != nil {
					done = append(done, q.done)
				}
			default:
				break more
			}
		}
		for _, id := range order {
			ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
			if err := r.vs.Store.Publish(ctx, id, batch[id]); err != nil {
				if n := r.dropped.Add(int64(len(batch[id]))); time.Since(time.Unix(0, r.toldDrop.Load())) > time.Minute {
					r.toldDrop.Store(time.Now().UnixNano())
					r.vs.storeLog().Warn("sessions: the store did not take visitors' events", "err", err, "dropped", n)
				}
			}
			cancel()
		}
		for _, d := range done {
			close(d)
		}
	}
}

// hold follows a visitor newly held here, and catches up on its stream;
// v.caughtUp is closed once it has.
func (r *replicaLink) hold(v *Visitor) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := r.follow.Add(ctx, v.ID); err != nil {
		r.vs.storeLog().Warn("sessions: cannot follow a visitor's events", "err", err)
	}
	select {
	case r.catch <- v:
	default:
		close(v.caughtUp)
	}
}

// behind is a visitor whose stream's last fact is head.
type behind struct {
	v    *Visitor
	head uint64
}

// nudge has the follower catch v up if its stream is past what was
// applied (the follower alone reads v.applied).
func (r *replicaLink) nudge(v *Visitor, head uint64) {
	select {
	case r.behind <- behind{v, head}:
	default:
	}
}

// unhold stops following a visitor no longer held.
func (r *replicaLink) unhold(v *Visitor) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	r.follow.Remove(ctx, v.ID)
}

// followLoop applies facts in each visitor's order: one published after
// a gap (this replica just began to follow, or missed some) is preceded
// by the missing ones, read from the stream.
func (r *replicaLink) followLoop() {
	facts := r.follow.Facts()
	for {
		select {
		case v := <-r.catch:
			r.catchUp(v)
			close(v.caughtUp)
		case b := <-r.behind:
			if b.head > b.v.applied {
				r.catchUp(b.v)
			}
		case f, ok := <-facts:
			if !ok {
				return
			}
			switch f.Visitor {
			case announcements:
				r.announced(f)
				continue
			case board:
				r.posted(f)
				continue
			}
			v := r.vs.held(f.Visitor)
			switch {
			case v == nil || f.Seq <= v.applied:
			case f.Seq == v.applied+1:
				r.applyFact(v, f)
			default:
				r.catchUp(v)
			}
		}
	}
}

// catchUp applies what v's stream holds after what was applied.
func (r *replicaLink) catchUp(v *Visitor) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	facts, err := r.vs.Store.Facts(ctx, v.ID, v.applied)
	cancel()
	if err != nil {
		return
	}
	for _, f := range facts {
		if f.Seq > v.applied {
			r.applyFact(v, f)
		}
	}
}

// applyFact applies one fact, its log entries numbered from its place in
// the stream: the same numbers on every replica, so that a page that
// reconnects to another replica resumes where it was (Last-Event-ID).
func (r *replicaLink) applyFact(v *Visitor, f Fact) {
	v.applied = f.Seq
	var ft fact
	if json.Unmarshal(f.Data, &ft) != nil {
		return
	}
	v.Events.skipTo(f.Seq << 4)
	r.vs.apply(v, ft)
	// Activity on any replica keeps the visitor here too: a replica's
	// sweep forgets only the visitors idle everywhere.
	if now := time.Now().UnixNano(); now > v.lastSeen.Load() {
		v.lastSeen.Store(now)
	}
}

// held is the visitor with this ID held here, or nil.
func (vs *Visitors) held(id string) *Visitor {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	return vs.byID[id]
}

// A fact's event is carried compactly: short names, the time in
// milliseconds. A visitor's stream is most of what it costs the store.
type wireEvent struct {
	Kind     EventKind `json:"k"`
	Conn     uint64    `json:"c,omitempty"`
	Time     int64     `json:"t,omitempty"` // Unix milliseconds
	Remote   string    `json:"rm,omitempty"`
	Verb     string    `json:"v,omitempty"`
	Line     string    `json:"l,omitempty"`
	OK       bool      `json:"ok,omitempty"`
	Code     string    `json:"cd,omitempty"`
	Reply    string    `json:"r,omitempty"`
	State    string    `json:"st,omitempty"`
	User     string    `json:"u,omitempty"`
	Msg      int       `json:"m,omitempty"`
	Deleted  []int     `json:"d,omitempty"`
	Count    int       `json:"n,omitempty"`
	Octets   int64     `json:"o,omitempty"`
	Reason   string    `json:"rs,omitempty"`
	Messages []wireMsg `json:"ms,omitempty"`
	Explain  string    `json:"x,omitempty"`
}

type wireMsg struct {
	Size    int64  `json:"s"`
	UID     string `json:"u"`
	Subject string `json:"j,omitempty"`
}

// factWire is a fact as the stream carries it.
type factWire struct {
	factNoEvent
	E *wireEvent `json:"e,omitempty"`
}

// factNoEvent is fact without its methods, so that factWire's encoding
// does not recurse; its Event is left out (json:"-" below).
type factNoEvent fact

func (f fact) MarshalJSON() ([]byte, error) {
	w := factWire{factNoEvent: factNoEvent(f)}
	if f.Type == EntryPOP3 { // most facts: carried as the defaults
		w.Type = ""
		if f.Via == "pop3" {
			w.Via = ""
		}
	}
	if e := f.Event; e != nil {
		we := &wireEvent{Kind: e.Kind, Conn: e.Conn, Remote: e.Remote, Verb: e.Verb, Line: e.Line, OK: e.OK, Code: e.Code,
			Reply: e.Reply, State: e.State, User: e.User, Msg: e.Msg, Deleted: e.Deleted, Count: e.Count, Octets: e.Octets,
			Reason: e.Reason, Explain: e.Explain}
		if !e.Time.IsZero() {
			we.Time = e.Time.UnixMilli()
		}
		for _, m := range e.Messages {
			we.Messages = append(we.Messages, wireMsg(m))
		}
		w.E = we
	}
	return json.Marshal(w)
}

func (f *fact) UnmarshalJSON(b []byte) error {
	var w factWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*f = fact(w.factNoEvent)
	if f.Type == "" {
		f.Type = EntryPOP3
		if f.Via == "" {
			f.Via = "pop3"
		}
	}
	if we := w.E; we != nil {
		e := &Event{Kind: we.Kind, Conn: we.Conn, Remote: we.Remote, Verb: we.Verb, Line: we.Line, OK: we.OK, Code: we.Code,
			Reply: we.Reply, State: we.State, User: we.User, Msg: we.Msg, Deleted: we.Deleted, Count: we.Count, Octets: we.Octets,
			Reason: we.Reason, Explain: we.Explain}
		if we.Time != 0 {
			e.Time = time.UnixMilli(we.Time).UTC()
		}
		for _, m := range we.Messages {
			e.Messages = append(e.Messages, MessageSummary(m))
		}
		f.Event = e
	}
	return nil
}
