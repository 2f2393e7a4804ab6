// inspector.js: what the server sees, drawn only from the events it emits
// (GET /events): the RFC 1939 state, the maildrop lock, the maildrop with
// its marks, and the other sessions in this visitor's sandbox.

const STATE_HELP = {
  AUTHORIZATION: "The client must identify itself: USER and PASS, APOP or AUTH. CAPA, STLS and QUIT work too.",
  TRANSACTION: "The maildrop is locked for this session: STAT, LIST, UIDL, TOP, RETR, DELE, RSET and NOOP work. QUIT enters UPDATE.",
  UPDATE: "QUIT from TRANSACTION: the server removes the marked messages, releases the lock and closes the connection.",
};
const KEEP_CLOSED = 20; // closed connections remembered

const lower = (s) => s.charAt(0).toLowerCase() + s.slice(1);

export class Inspector {
  constructor(tab) {
    this.tab = tab; // this page's name in the events of its terminal
    this.conns = new Map(); // conn → {id, via, tab, remote, state, user, open, reason}
    this.locks = new Map(); // account → conn holding its lock
    this.maildrop = null; // {conn, user, messages, updated, note}
    this.mine = 0; // this page's terminal's newest connection
    this.frame = 0;
    const $ = (id) => document.getElementById(id);
    this.el = {
      fsm: document.querySelector(".fsm"),
      conn: $("insp-conn"),
      lock: $("insp-lock"),
      lockText: $("insp-lock-text"),
      table: $("insp-maildrop"),
      caption: $("insp-maildrop-caption"),
      others: $("insp-others"),
    };
  }

  // handle takes one entry of the event stream.
  handle(type, d) {
    if (type === "mail") {
      // Delivered by SMTP: a session logged in keeps its maildrop.
      const md = this.maildrop || (this.maildrop = emptyMaildrop(""));
      md.note = d.note;
      this.draw();
      return;
    }
    if (type === "reset") {
      const md = this.maildrop;
      const c = md && this.conns.get(md.conn);
      if (c && c.open && c.state === "TRANSACTION") {
        // RFC 1939 §8: a session's maildrop is fixed at its login. The
        // one logged in keeps its view; only the next login sees it all.
        md.note = "The sandbox was reset. This session still sees the maildrop it had when it logged in, marks included (RFC 1939 §8), but what it deletes at QUIT no longer applies: QUIT and log in again to see every message back.";
      } else {
        this.maildrop = emptyMaildrop("The sandbox was reset: every message is back at your next login.");
      }
      this.draw();
      return;
    }
    if (type !== "pop3") return;
    let c = this.conns.get(d.conn);
    if (!c) {
      c = { id: d.conn, via: d.via, tab: d.tab || "", remote: d.remote || "", state: "AUTHORIZATION", user: "", open: true, reason: "" };
      this.conns.set(d.conn, c);
      if (c.tab === this.tab) this.mine = d.conn;
    }
    const md = this.maildrop && this.maildrop.conn === d.conn ? this.maildrop : null;
    switch (d.kind) {
      case "connected":
        c.remote = d.remote || "";
        break;
      case "state":
        c.state = d.state;
        if (d.user) c.user = d.user;
        if (d.state === "TRANSACTION") {
          // The event lists the first messages only (a page); count and
          // octets are the whole maildrop's, marks carry their sizes.
          const messages = (d.messages || []).map((m, i) => ({ n: i + 1, size: m.size, uid: m.uid, subject: m.subject || "", marked: false, deleted: false }));
          this.maildrop = {
            conn: d.conn, user: d.user, updated: false, note: "", messages,
            count: d.count || 0, octets: d.octets || 0, marks: new Map(),
          };
        }
        break;
      case "lock-taken":
        this.locks.set(d.user, d.conn);
        c.user = d.user;
        break;
      case "lock-released":
        if (this.locks.get(d.user) === d.conn) this.locks.delete(d.user);
        break;
      case "lock-refused":
        c.refused = d.user;
        break;
      case "marked":
      case "unmarked":
        if (!md) break;
        if (d.kind === "marked") md.marks.set(d.msg, d.octets || 0);
        else md.marks.delete(d.msg);
        if (md.messages[d.msg - 1]) md.messages[d.msg - 1].marked = d.kind === "marked";
        break;
      case "update":
        if (md) {
          md.updated = true;
          for (const n of d.deleted || []) if (md.messages[n - 1]) md.messages[n - 1].deleted = true;
          const k = (d.deleted || []).length;
          md.note = k ? `QUIT entered UPDATE: ${k} message${k > 1 ? "s" : ""} removed for good.` : "QUIT entered UPDATE: nothing was marked, nothing removed.";
        }
        break;
      case "closed":
        c.open = false;
        c.reason = d.reason || "";
        if (md && !md.updated) {
          const marked = md.marks.size > 0;
          md.marks.clear();
          for (const m of md.messages) m.marked = false;
          if (marked) md.note = "The connection ended without QUIT: nothing was deleted (RFC 1939 §6).";
        }
        this.prune();
        break;
    }
    this.draw();
  }

  // loggedIn reports whether a session of this sandbox is in TRANSACTION.
  // messageCount is how many messages this page's session has (STAT's
  // count, less its marks), 0 if none is logged in.
  messageCount() {
    const md = this.maildrop;
    return md ? md.count - md.marks.size : 0;
  }

  loggedIn() {
    return [...this.conns.values()].some((c) => c.open && c.state === "TRANSACTION");
  }

  // terminalClosed is told when this page's terminal closed: if the
  // server could not say so (it restarted, the network went), the
  // session is shown ended all the same.
  terminalClosed() {
    const c = this.conns.get(this.mine);
    if (c && c.open) {
      c.open = false;
      c.reason = "the connection was lost";
      this.draw();
    }
  }

  // sessionLost starts afresh: the server forgot this page's sandbox.
  sessionLost(note) {
    this.conns.clear();
    this.locks.clear();
    this.mine = 0;
    this.maildrop = emptyMaildrop(note);
    this.draw();
  }

  prune() {
    const closed = [...this.conns.values()].filter((c) => !c.open && c.id !== this.mine);
    for (const c of closed.slice(0, Math.max(0, closed.length - KEEP_CLOSED))) this.conns.delete(c.id);
  }

  who(c) {
    if (c.tab && c.tab === this.tab) return "This terminal";
    if (c.via === "web") return "Another browser tab";
    const host = (c.remote || "").replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
    return host ? `Your personal login from ${host}` : "Your personal login";
  }

  // focus is the session to show: this page's terminal, else the newest.
  focus() {
    if (this.conns.has(this.mine)) return this.conns.get(this.mine);
    let best = null;
    for (const c of this.conns.values()) if (!best || c.open && !best.open || c.open === best.open && c.id > best.id) best = c;
    return best;
  }

  draw() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.render());
  }

  render() {
    this.frame = 0;
    const el = this.el;
    const f = this.focus();
    for (const li of el.fsm.children) {
      const lit = f && li.dataset.state === f.state;
      li.classList.toggle("lit", !!lit);
      if (lit) li.setAttribute("aria-current", "step");
      else li.removeAttribute("aria-current");
    }
    el.fsm.classList.toggle("ended", !!f && !f.open);
    if (!f) {
      el.conn.textContent = "No session yet: connect and the server's state shows here.";
    } else {
      const parts = [this.who(f)];
      parts.push(f.open ? (f.user ? `logged in as ${f.user}` : "not logged in") : `connection closed${f.reason ? " (" + f.reason + ")" : ""}`);
      el.conn.textContent = parts.join(" · ") + (f.open ? ". " + STATE_HELP[f.state] : ".");
    }

    if (this.locks.size === 0) {
      el.lockText.textContent = "Maildrop lock: free. The next login takes it.";
      el.lock.classList.remove("held");
    } else {
      el.lockText.textContent = [...this.locks].map(([user, conn]) => {
        const c = this.conns.get(conn);
        return `${user}'s maildrop is locked by ${c ? lower(this.who(c)) : "another session"}`;
      }).join("; ") + ". Another login to it gets -ERR [IN-USE].";
      el.lock.classList.add("held");
    }

    const md = this.maildrop;
    const tbody = el.table.tBodies[0];
    tbody.textContent = "";
    if (!md) {
      el.caption.textContent = "The maildrop appears when a session logs in.";
    } else {
      // Marked and deleted messages are left out of STAT alike: the marks
      // of a session that reached UPDATE are the messages it removed.
      let octets = md.octets;
      for (const size of md.marks.values()) octets -= size;
      const c = this.conns.get(md.conn);
      const sees = c && c.open ? "sees" : "last saw";
      const head = md.user ? `${md.user}'s maildrop as ${c ? lower(this.who(c)) : "a session"} ${sees} it: STAT ${md.count - md.marks.size} ${octets}.` : "";
      const page = md.count > md.messages.length
        ? `The table shows the first ${md.messages.length} of ${md.count.toLocaleString("en")} messages; LIST shows them all.` : "";
      el.caption.textContent = [head, page, md.note].filter(Boolean).join(" ");
      for (const m of md.messages) {
        const tr = tbody.insertRow();
        if (m.marked) tr.className = "marked";
        if (m.deleted) tr.className = "deleted";
        const cells = [String(m.n), String(m.size), m.uid, m.subject];
        for (const text of cells) tr.insertCell().textContent = text;
        if (m.marked || m.deleted) {
          const badge = document.createElement("span");
          badge.className = "badge " + (m.deleted ? "st-deleted" : "st-marked");
          badge.textContent = m.deleted ? "deleted" : "marked";
          tr.cells[3].append(" ", badge);
        }
      }
    }

    // A long maildrop scrolls in its own box; keyboard users reach it
    // then, and only then, with Tab.
    const wrap = el.table.parentElement;
    wrap.tabIndex = wrap.scrollHeight > wrap.clientHeight ? 0 : -1;

    const others = [...this.conns.values()].filter((c) => c.open && c !== f);
    el.others.textContent = others.length
      ? "Also in your sandbox: " + others.map((c) => `${this.who(c)} (${c.state}${c.user ? ", " + c.user : ""})`).join("; ") + "."
      : "";
  }
}

// emptyMaildrop stands for no session's maildrop, with a note.
function emptyMaildrop(note) {
  return { conn: 0, user: "", messages: [], count: 0, octets: 0, marks: new Map(), updated: false, note };
}

// Explainer puts the server's explanation of each reply under that reply in
// the terminal. The terminal reports the status lines it draws, the event
// stream the replies the server sent on this page's connection; both come in
// order, so each event is matched with the next drawn line of the same text.
export class Explainer {
  constructor(term, tab) {
    this.term = term;
    this.tab = tab;
    this.conn = 0;
    this.lines = []; // {el, text}: status lines drawn, not yet matched
    this.replies = []; // reply events of this.conn, not yet matched
  }

  // connected is called when the terminal opens a new connection.
  connected() {
    this.lines = [];
  }

  line(el, text) {
    this.lines.push({ el, text });
    if (this.lines.length > 200) this.lines.shift();
    this.match();
  }

  event(d) {
    if (!this.tab || d.tab !== this.tab) return;
    if (d.kind === "connected") {
      this.conn = d.conn;
      this.replies = [];
      return;
    }
    if (d.kind !== "reply" || d.conn !== this.conn) return;
    this.replies.push(d);
    if (this.replies.length > 200) this.replies.shift();
    this.match();
  }

  match() {
    while (this.replies.length && this.lines.length) {
      const r = this.replies[0];
      const i = this.lines.findIndex((l) => l.text === r.line);
      if (i < 0) return; // its line is not drawn yet
      const { el } = this.lines[i];
      this.lines.splice(0, i + 1); // lines before it were message text that looked like replies
      this.replies.shift();
      if (r.explain) this.term.explain(el, r.explain);
    }
  }
}
